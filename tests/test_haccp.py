"""HACCP: critical limits judged per batch from stored telemetry, batch records, CCP alerts."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from microfab.cli import app
from microfab.errors import LocatedFileError, NotFoundError
from microfab.model.events import Event, OrderEvent, StateChange, TelemetrySample
from microfab.model.factory import Factory
from microfab.model.factory_file import parse_factory
from microfab.quality.alerts import load_alert_rules, run_alert_rules
from microfab.quality.haccp import batch_records, load_haccp, render_batch_record
from microfab.store import open_store
from microfab.store.event_store import EventStore

DATA = Path(__file__).parent / "data"
CNC = "kt/plant/line1/machining/cnc-1"
T0 = dt.datetime(2026, 11, 23, 0, 0, tzinfo=dt.UTC)
ROOT = Path(__file__).resolve().parents[1]

PLAN = """
plan: Test plan
ccps:
  - id: CCP-1
    name: Cooking
    machine: cnc-1
    operation: 10
    limits:
      - {metric: temp_c, min: 70, max: 80, unit: °C}
    time: {max_min: 30}
    corrective_action: hold and re-cook
"""


def at(minutes: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def order(name: str, event: str, minute: float, n: int) -> OrderEvent:
    return OrderEvent(
        id=f"o-{n}", ts=at(minute), machine=CNC, order=name, event=event, operation=10
    )


def line(store: EventStore) -> Factory:
    """Four batches at the CCP: one good, one too hot, one too long, one in progress."""
    factory = parse_factory((DATA / "factory-small.yaml").read_text(encoding="utf-8"))
    store.apply_factory(factory, "factory-small.yaml")
    temps = {m: 75.0 for m in range(0, 120)}
    temps[25] = 83.5  # WO-2 too hot (a running reading)
    temps[47] = 95.0  # while the machine stood: not judged
    events: list[Event] = [
        StateChange(id="s-0", ts=at(0), machine=CNC, state="running"),
        StateChange(id="s-1", ts=at(46.5), machine=CNC, state="idle"),
        StateChange(id="s-2", ts=at(48.5), machine=CNC, state="running"),
        *(
            TelemetrySample(id=f"t-{m}", ts=at(m), machine=CNC, metrics={"temp_c": v})
            for m, v in temps.items()
        ),
        order("WO-1", "started", 0.5, 1),
        order("WO-1", "completed", 20.5, 2),
        order("WO-2", "started", 20.5, 3),
        order("WO-2", "completed", 40.5, 4),
        order("WO-3", "started", 40.5, 5),
        order("WO-3", "completed", 80.5, 6),
        order("WO-4", "started", 100.5, 7),
        # another operation of the same order at the machine is not a batch at this CCP
        OrderEvent(id="o-9", ts=at(90), machine=CNC, order="WO-9", event="started", operation=20),
    ]
    store.append(events)
    return factory


def plan_file(tmp_path: Path, text: str = PLAN) -> Path:
    path = tmp_path / "haccp.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_each_batch_is_judged_against_the_critical_limits(
    store: EventStore, tmp_path: Path
) -> None:
    factory = line(store)
    plan = load_haccp(plan_file(tmp_path))
    records = {r.order: r for r in batch_records(store, factory, plan)}
    assert list(records) == ["WO-1", "WO-2", "WO-3", "WO-4"]
    assert {o: r.status for o, r in records.items()} == {
        "WO-1": "pass",
        "WO-2": "deviation",
        "WO-3": "deviation",
        "WO-4": "in progress",
    }
    (hot,) = records["WO-2"].deviations
    assert (hot.limit, hot.ts, hot.value) == ("temp_c max", at(25), 83.5)
    assert hot.message == "temp_c above 80 °C: 83.5 (1 of 20 readings)"
    (slow,) = records["WO-3"].deviations  # the reading at 47 min, while idle, is not judged
    assert (slow.limit, slow.ts) == ("time max", at(40.5 + 30))
    assert slow.message == "40 min at the step, more than 30 min"
    summary = records["WO-3"].limits[0]
    assert (summary.readings, summary.high, summary.outside) == (38, 75.0, 0)
    assert records["WO-4"].end is None and records["WO-4"].limits[0].readings == 19
    with pytest.raises(NotFoundError, match="WO-9"):
        batch_records(store, factory, plan, order="WO-9")


def test_a_batch_without_a_monitoring_reading_is_a_deviation(
    store: EventStore, tmp_path: Path
) -> None:
    factory = line(store)
    plan = load_haccp(plan_file(tmp_path, PLAN.replace("temp_c, min", "core_temp_c, min")))
    (record,) = batch_records(store, factory, plan, order="WO-1")
    assert [d.limit for d in record.deviations] == ["core_temp_c reading"]


def test_the_batch_record_prints_for_inspectors(store: EventStore, tmp_path: Path) -> None:
    factory = line(store)
    plan = load_haccp(plan_file(tmp_path))
    records = batch_records(store, factory, plan, order="WO-2")
    page = render_batch_record(factory, plan, "WO-2", records)
    assert "<b>WO-2</b>" in page and "DEVIATION" in page
    assert "temp_c above 80 °C: 83.5" in page and "hold and re-cook" in page
    assert "2026-11-23 08:25" in page  # site time (Hong Kong)


def test_ccp_deviations_raise_one_critical_alert_per_batch_and_limit(
    store: EventStore, tmp_path: Path
) -> None:
    factory = line(store)
    plan_file(tmp_path)
    rules_path = tmp_path / "alerts.yaml"
    rules_path.write_text("rules:\n  - {id: ccp, kind: ccp, haccp: haccp.yaml}\n", encoding="utf-8")
    run = run_alert_rules(store, factory, load_alert_rules(rules_path))
    assert [(a.cause, a.severity, a.machine) for a in run.raised] == [
        ("WO-2 temp_c max", "critical", CNC),
        ("WO-3 time max", "critical", CNC),
    ]
    assert run.raised[0].details["order"] == "WO-2"
    assert run_alert_rules(store, factory, load_alert_rules(rules_path)).raised == []


def test_a_plan_with_faults_names_each_line(tmp_path: Path) -> None:
    path = plan_file(
        tmp_path,
        "ccps:\n"
        "  - id: A\n"
        "    name: Chill\n"
        "    machine: chiller-1\n"
        "    operation: 40\n"
        "    limits:\n"
        "      - {metric: core_temp_c}\n"
        "      - {metric: air_temp_c, min: 5, max: 1}\n"
        "    time: {max_min: -5}\n",
    )
    with pytest.raises(LocatedFileError) as caught:
        load_haccp(path)
    assert caught.value.problems == [
        f"{path}:9 ccps[0].time.max_min: Input should be greater than 0"
    ]
    path.write_text(
        path.read_text(encoding="utf-8").replace("max_min: -5", "max_min: 5"), encoding="utf-8"
    )
    with pytest.raises(LocatedFileError) as caught:
        load_haccp(path)
    assert caught.value.problems == [
        f"{path}:7 ccps[0].limits[0]: a limit needs 'min', 'max' or both",
        f"{path}:8 ccps[0].limits[1].min: 'min' is above 'max'",
    ]


def test_the_haccp_commands(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/plant.db"
    with open_store(db) as store:
        line(store)
    plan = str(plan_file(tmp_path))
    runner = CliRunner()
    result = runner.invoke(app, ["haccp", "batches", "--plan", plan, "--db", db, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert (report["batches_with_deviations"], len(report["batches"])) == (2, 4)
    html = tmp_path / "wo-2.html"
    pdf = tmp_path / "wo-2.pdf"
    args = ["haccp", "record", "WO-2", "--plan", plan, "--db", db, "-o", str(html)]
    result = runner.invoke(app, [*args, "--pdf", str(pdf)])
    assert result.exit_code == 0, result.output
    assert "WO-2" in html.read_text(encoding="utf-8")
    assert pdf.read_bytes().startswith(b"%PDF")


def test_the_shipped_food_line_plan_and_rules_load() -> None:
    plan = load_haccp(ROOT / "docs" / "examples" / "haccp-food-line.yaml")
    assert [c.machine for c in plan.ccps] == ["chiller-1", "hpp-1"]
    rules = load_alert_rules(ROOT / "docs" / "examples" / "alerts-food-line.yaml")
    assert rules.rules[0].kind == "ccp"
    assert load_alert_rules(ROOT / "docs" / "examples" / "alerts.yaml").hold_off_min == 60
