"""Planning the live factory: open orders → problem → plan file → dispatch lists, on SQLite."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import typer
from typer.testing import CliRunner

from microfab.commands.plan import plan_app
from microfab.errors import InputError, MicrofabError
from microfab.model.calendar import working_windows
from microfab.model.events import OrderEvent, OrderEventKind, PartCount
from microfab.model.factory import Factory
from microfab.model.factory_file import parse_factory
from microfab.model.orders import WorkOrderRequest
from microfab.plan.check import check_schedule
from microfab.plan.factory import OpenOrder, StepState, build_problem, plan_document
from microfab.plan.solvers import cpsat
from microfab.sim.scenario import SCENARIO_DIR
from microfab.store import EventStore, open_store
from microfab.track.orders import create_order

HKT = ZoneInfo("Asia/Hong_Kong")
MONDAY = dt.datetime(2026, 11, 23, 7, 0, tzinfo=HKT)  # not a public holiday
FACTORY_FILE = SCENARIO_DIR / "moulding-cell" / "factory.yaml"

app = typer.Typer()
app.add_typer(plan_app, name="plan")
runner = CliRunner()


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["plan", *args])
    if isinstance(result.exception, MicrofabError):
        return result.exception.exit_code, str(result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout


@pytest.fixture
def factory() -> Factory:
    return parse_factory(FACTORY_FILE.read_text(encoding="utf-8"), str(FACTORY_FILE))


@pytest.fixture
def plant(tmp_path: Path, factory: Factory) -> Iterator[tuple[str, EventStore]]:
    url = f"sqlite:///{tmp_path}/plant.db"
    with open_store(url) as store:
        store.apply_factory(factory, "factory.yaml")
        orders = [
            ("WO-1", "HSG-A", 600, {"colour": "black"}, "2026-11-23T12:00:00+08:00", 5),
            ("WO-2", "CAP-28", 8000, {"colour": "blue"}, "2026-11-23T11:00:00+08:00", 2),
            ("WO-3", "HSG-B", 500, {"colour": "grey"}, "2026-11-24T12:00:00+08:00", 5),
            ("WO-4", "HSG-A", 300, {"colour": "custom"}, "2026-11-23T18:00:00+08:00", 3),
        ]
        for order, sku, qty, options, due, priority in orders:
            create_order(
                store,
                factory,
                WorkOrderRequest(
                    order=order,
                    product=sku,
                    quantity=qty,
                    options=options,
                    due=dt.datetime.fromisoformat(due),
                    priority=priority,
                ),
                release=True,
                now=MONDAY - dt.timedelta(hours=1),
            )
        yield url, store


def _start_step(store: EventStore, order: str, seq: int, machine: str, at: dt.datetime) -> None:
    store.append(
        [
            OrderEvent(
                id=f"{order}-{seq}-started",
                ts=at,
                machine=machine,
                order=order,
                event=OrderEventKind.STARTED,
                operation=seq,
            ),
            PartCount(
                id=f"{order}-{seq}-count",
                ts=at,
                machine=machine,
                good=100,
                order=order,
                operation=seq,
            ),
        ]
    )


def test_open_orders_become_a_problem_in_working_time(factory: Factory) -> None:
    orders = [
        OpenOrder("WO-1", "HSG-A", 1000, {"colour": "custom"}, MONDAY + dt.timedelta(hours=6)),
        OpenOrder(
            "WO-2",
            "CAP-28",
            10000,
            {"colour": "red"},
            None,
            priority=1,
            steps=(StepState(10, "running", 10000, 4000, "yl/moulding/mc-1/imm/imm-2", MONDAY),),
        ),
        OpenOrder("WO-9", "NOPE", 5),
    ]
    fp = build_problem(factory, orders, start=MONDAY + dt.timedelta(minutes=30))
    problem = fp.problem
    assert fp.skipped == ("WO-9: product 'NOPE' is not in the factory model",)
    assert fp.origin == MONDAY.astimezone(dt.UTC)  # the running step started at 07:00
    assert [j.name for j in problem.jobs] == ["WO-1", "WO-2"]
    assert [j.weight for j in problem.jobs] == [5, 9]
    mould = problem.jobs[0].operations[0]
    # 1000 units × 7.5 s × 1.05 (custom colour) on imm-1, × 7.0 s × 1.05 on imm-2
    assert [(fp.machines[m.machine].rsplit("/", 1)[1], m.duration) for m in mould.modes] == [
        ("imm-1", 7875),
        ("imm-2", 7350),
    ]
    assert mould.earliest == 1800 and mould.setup_class == fp.families.index("housing-a")
    running = problem.jobs[1].operations[0]
    # 6000 units left × 0.8 s from now (07:30): fixed 07:00 → 07:30 + 4800 s
    assert running.fixed is not None and running.fixed.start == 0
    assert running.fixed.end == 1800 + 4800
    assert problem.setup_time(running.fixed.machine, fp.families.index("cap-28"), 0) in (0, 2700)

    result = cpsat.solve(problem, cpsat.Settings(time_limit=2.0))
    assert result.schedule is not None
    assert check_schedule(problem, result.schedule.assignments) == []
    document = plan_document(fp, result)
    windows = working_windows(factory.calendars[0], MONDAY, MONDAY + dt.timedelta(days=3), HKT)
    for op in document["operations"]:
        start, end = dt.datetime.fromisoformat(op["start"]), dt.datetime.fromisoformat(op["end"])
        if op["fixed"]:
            continue
        assert any(w.start <= start and end <= w.end for w in windows), op
    assert {o["order"] for o in document["orders"]} == {"WO-1", "WO-2"}
    assert document["schedule"]["machines"][0]["name"] == fp.machines[0]


def test_a_step_longer_than_any_window_is_refused(factory: Factory, tmp_path: Path) -> None:
    from microfab.plan.factory import longest_window_problems

    fp = build_problem(
        factory, [OpenOrder("WO-BIG", "HSG-B", 5000, {"colour": "grey"})], start=MONDAY
    )
    assert longest_window_problems(fp) == [
        "WO-BIG step 10 (Mould): 5000 units take 10.3 h at best, longer than any working window "
        "of its machines (7.5 h); split the order"
    ]


def test_plan_schedule_and_release(plant: tuple[str, EventStore], tmp_path: Path) -> None:
    url, store = plant
    _start_step(store, "WO-2", 10, "yl/moulding/mc-1/imm/imm-2", MONDAY)
    plan = tmp_path / "plan.json"
    code, text = invoke(
        "schedule",
        "--db",
        url,
        "--start",
        "2026-11-23T08:00",
        "--time-limit",
        "3",
        "--out",
        str(plan),
    )
    assert code == 0, text
    assert "Plan from Mon 23 Nov 08:00" in text
    assert "4 orders, 11 operations" in text
    document = json.loads(plan.read_text())
    rows = {(op["order"], op["operation"]): op for op in document["operations"]}
    started = rows[("WO-2", 10)]
    assert started["fixed"] and started["machine"] == "yl/moulding/mc-1/imm/imm-2"
    assert started["start"] == "2026-11-23T07:00:00+08:00"
    assert started["units"] == 7900  # 8000 − 100 counted
    for (order, seq), op in rows.items():
        if not op["fixed"]:
            assert op["start"] >= "2026-11-23T08:00:00+08:00"
        if seq > 10:
            assert op["start"] >= rows[(order, seq - 10)]["end"]

    code, text = invoke("release", str(plan), "--machine", "imm-2")
    assert code == 0 and "yl/moulding/mc-1/imm/imm-2" in text and "WO-2 (started)" in text
    code, text = invoke("release", str(plan), "--json")
    lists = json.loads(text)["machines"]
    assert sum(len(rows) for rows in lists.values()) == 11
    for machine_rows in lists.values():
        starts = [row["start"] for row in machine_rows]
        assert starts == sorted(starts)
    assert invoke("release", str(tmp_path / "none.json"))[0] == 2


def test_replanning_after_a_breakdown(plant: tuple[str, EventStore], tmp_path: Path) -> None:
    url, _ = plant
    plan = tmp_path / "plan.json"
    common = ("--db", url, "--out", str(plan), "--time-limit", "2")
    assert invoke("schedule", "--start", "2026-11-23T08:00", *common)[0] == 0
    before = json.loads(plan.read_text())
    code, text = invoke(
        "schedule", "--start", "2026-11-23T09:00", "--down", "imm-1:3h", "--repair", *common
    )
    assert code == 0, text
    after = json.loads(plan.read_text())
    for op in after["operations"]:
        if op["machine"].endswith("imm-1") and not op["fixed"]:
            assert op["start"] >= "2026-11-23T12:00:00+08:00"
    # operations the first plan had started by 09:00 are where they were
    old = {(o["order"], o["operation"]): o for o in before["operations"]}
    for op in after["operations"]:
        first = old[(op["order"], op["operation"])]
        if first["start"] < "2026-11-23T09:00:00+08:00":
            assert (op["machine"], op["start"], op["end"]) == (
                first["machine"],
                first["start"],
                first["end"],
            )


def test_plan_schedule_inputs(plant: tuple[str, EventStore], tmp_path: Path) -> None:
    url, _ = plant
    out = ("--db", url, "--out", str(tmp_path / "p.json"), "--start", "2026-11-23T08:00")
    assert invoke("schedule", *out, "--down", "imm-9:1h") == (
        2,
        "--down: 'imm-9' is not a machine of this factory",
    )
    assert invoke("schedule", *out, "--down", "imm-1")[0] == 2
    assert invoke("schedule", *out, "--horizon", "soon")[0] == 2
    with pytest.raises(InputError):
        build_problem(parse_factory(FACTORY_FILE.read_text()), [], start=dt.datetime(2026, 1, 1))


def test_no_open_orders(tmp_path: Path, factory: Factory) -> None:
    url = f"sqlite:///{tmp_path}/empty.db"
    with open_store(url) as store:
        store.apply_factory(factory, "factory.yaml")
    code, text = invoke("schedule", "--db", url, "--out", str(tmp_path / "p.json"))
    assert (code, text) == (0, "no open orders to plan\n")
