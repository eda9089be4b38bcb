"""Maintenance work orders, plans, spare parts and the planner's maintenance windows, through the
services and the command line, over the small test plant (tests/webapp.py)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from microfab.cli import app
from microfab.errors import InputError, LocatedFileError, NotFoundError
from microfab.maint import workorders as wo
from microfab.maint.parts import define_part, ledger_for, parts_json
from microfab.maint.plans import PlanSpec, add_plans, read_plans_file
from microfab.store import EventStore, open_store
from microfab.store.audit import audit_records, verify_audit
from microfab.store.maintenance import issues_of, list_orders, list_plans
from microfab.track.oee import downtime_pareto
from microfab.track.plant import Plant
from webapp import CNC1, CNC2, fill, utc

runner = CliRunner()


def test_a_work_order_goes_from_request_to_done_and_every_change_is_audited(
    store: EventStore,
) -> None:
    plant = Plant(fill(store))
    window = (utc("08:00", "2026-11-24"), utc("10:00", "2026-11-24"))
    order_id = wo.create_order(
        plant, wo.NewOrder("cnc-1", wo.Kind.PREVENTIVE, "replace spindle belt"), "user:lee"
    )
    assert wo.get(store, order_id)["state"] == "requested"
    wo.schedule_order(plant, order_id, *window, "user:lee", technician="chan")
    started = wo.start_order(plant, order_id, "user:chan", at=utc("16:10"))
    assert started["state"] == "in_progress" and started["technician"] == "chan"
    define_part(
        store,
        "user:lee",
        part="BELT-8M",
        name="Spindle belt",
        on_hand=3,
        min_stock=2,
        critical=True,
        unit_cost=420.0,
    )
    ledger_for(store).issue(order_id, [("BELT-8M", 2)], "user:chan")
    done = wo.finish_order(
        plant,
        order_id,
        "user:chan",
        result="belt replaced, tension set",
        actions="replaced belt",
        cause_code="WEAR",
        at=utc("16:40"),
        rate=300.0,
    )
    assert done["state"] == "done" and done["labour_min"] == 30.0 and done["labour_cost"] == 150.0
    shown = wo.get(store, order_id)
    assert shown["parts"] == [{"part": "BELT-8M", "qty": 2.0, "unit_cost": 420.0}]
    assert shown["parts_cost"] == 840.0
    low = {p["part"]: p for p in parts_json(store)}["BELT-8M"]
    assert low["on_hand"] == 1.0 and low["low"] is True  # critical and under its minimum

    actions = [r.action for r in audit_records(store, target=f"maint:{order_id}")]
    assert actions == [
        "maint.create",
        "maint.schedule",
        "maint.start",
        "maint.parts",
        "maint.finish",
    ]
    assert verify_audit(store).ok
    # the job was downtime: a planned stop, reason PM, from start to finish (docs/oee.md)
    states = [
        (e.event.state.value, e.event.reason)
        for e in store.events(stream="state")
        if e.event.id.startswith(f"maint-{order_id}-")
    ]
    assert states == [("planned_stop", "PM"), ("idle", None)]


def test_a_corrective_job_is_unplanned_downtime_reason_cm(tmp_path: Path) -> None:
    with open_store(f"sqlite:///{tmp_path}/s.db") as store:
        plant = Plant(fill(store))
        order_id = wo.create_order(
            plant, wo.NewOrder(CNC2, wo.Kind.CORRECTIVE, "spindle noise"), "user:lee"
        )
        wo.start_order(plant, order_id, "user:chan", at=utc("15:00"))
        wo.finish_order(plant, order_id, "user:chan", result="bearing replaced", at=utc("15:30"))
        rows = downtime_pareto(store, plant.factory(), start=utc("08:00"), end=utc("16:00"))
        cm = [r for r in rows if r.reason == "CM"]
        assert len(cm) == 1 and cm[0].state == "unplanned_stop" and cm[0].category == "unplanned"
        assert round(cm[0].seconds) == 1800


def test_bad_input_is_refused_with_nothing_written(tmp_path: Path) -> None:
    with open_store(f"sqlite:///{tmp_path}/s.db") as store:
        plant = Plant(fill(store))
        before = len(audit_records(store))
        with pytest.raises(NotFoundError, match="no machine 'press-9'"):
            wo.create_order(plant, wo.NewOrder("press-9", wo.Kind.CORRECTIVE, "x"), "user:a")
        order_id = wo.create_order(plant, wo.NewOrder(CNC1, wo.Kind.CORRECTIVE, "x"), "user:a")
        with pytest.raises(InputError, match="is requested: cannot finish it \\(start it first\\)"):
            wo.finish_order(plant, order_id, "user:a", result="done")
        define_part(store, "user:a", part="F-1", name="Filter", on_hand=1)
        with pytest.raises(InputError, match="part F-1: 5 pc asked for, 1 in stock"):
            ledger_for(store).issue(order_id, [("F-1", 1), ("F-1", 4)], "user:a")
        with pytest.raises(NotFoundError, match="part NOPE: not in the parts list"):
            ledger_for(store).issue(order_id, [("F-1", 1), ("NOPE", 1)], "user:a")
        assert issues_of(store) == [] and parts_json(store)[0]["on_hand"] == 1.0
        with pytest.raises(InputError, match="window: ends"):
            wo.schedule_order(plant, order_id, utc("10:00"), utc("09:00"), "user:a")
        assert wo.get(store, order_id)["state"] == "requested"
        assert len(list_orders(store)) == 1
        # a create, a part defined: nothing else reached the audit log
        assert [r.action for r in audit_records(store)][before:] == ["maint.create", "maint.part"]

        plans = tmp_path / "plans.yaml"
        plans.write_text(
            "plans:\n"
            "  - {machine: cnc-1, name: belt, basis: run_hours, interval: 40}\n"
            "  - {machine: cnc-1, name: oil, basis: calendar, interval: 0}\n"
            "  - {machine: cnc-2, name: coolant, basis: cycles, interval: -5}\n",
            encoding="utf-8",
        )
        with pytest.raises(LocatedFileError) as caught:
            read_plans_file(plans)
        assert caught.value.problems == [
            f"{plans}:3 plans[1].interval: 0 is not a positive interval; give more than 0",
            f"{plans}:4 plans[2].interval: -5 is not a positive interval; give more than 0",
        ]
        good = PlanSpec(machine="cnc-1", name="belt", basis="run_hours", interval=40)
        unknown = PlanSpec(machine="lathe-7", name="oil", basis="calendar", interval=30)
        with pytest.raises(NotFoundError):
            add_plans(plant, [good, unknown], "user:a")
        assert list_plans(store) == []  # all or none
        result = runner.invoke(
            app, ["maintenance", "plans", "add", str(plans), "--db", f"sqlite:///{tmp_path}/s.db"]
        )
        assert isinstance(result.exception, LocatedFileError)  # cli.main prints it, exit 2
        assert result.exception.exit_code == 2


def test_the_planner_never_places_an_operation_inside_a_maintenance_window(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/plan.db"
    with open_store(url) as store:
        plant = Plant(fill(store))
        tuesday = "2026-11-24"
        for machine, lo, hi in ((CNC1, "08:00", "11:00"), (CNC2, "08:00", "16:00")):
            wo.create_order(
                plant,
                wo.NewOrder(
                    machine,
                    wo.Kind.PREVENTIVE,
                    "service",
                    window=(utc(lo, tuesday), utc(hi, tuesday)),
                ),
                "user:lee",
            )
    out = tmp_path / "plan.json"
    made = runner.invoke(
        app, ["plan", "schedule", "--db", url, "--out", str(out), "--time-limit", "2", "--json"]
    )
    assert made.exit_code == 0, made.output
    document = json.loads(out.read_text())
    on_cnc = [op for op in document["operations"] if op["machine"] in (CNC1, CNC2)]
    assert on_cnc, "the plan has work for the machines under maintenance"
    checked = runner.invoke(app, ["plan", "check", "--plan", str(out), "--db", url])
    assert checked.exit_code == 0, checked.output
    assert "none inside a maintenance window" in checked.output

    # an operation moved into cnc-1's window: plan check fails and names it
    moved = dict(
        on_cnc[0], machine=CNC1, start="2026-11-24T01:00:00+00:00", end="2026-11-24T01:30:00+00:00"
    )
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**document, "operations": [moved]}))
    failed = runner.invoke(app, ["plan", "check", "--plan", str(bad), "--db", url, "--json"])
    assert failed.exit_code == 1
    answer = json.loads(failed.output)
    assert answer["feasible"] is False
    assert "overlaps maintenance work order 1" in answer["violations"][0]["message"]


def test_the_window_proposed_costs_the_least_lateness(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/w.db"
    with open_store(url) as store:
        fill(store)
    result = runner.invoke(
        app,
        [
            "maintenance",
            "propose-window",
            "cnc-1",
            "--within",
            "2026-11-24T08:00..2026-11-24T16:00",
            "--duration",
            "2h",
            "--step",
            "1h",
            "--db",
            url,
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    found = json.loads(result.output)
    assert found["machine"] == CNC1 and found["candidates"] >= 5
    # cnc-2 can take WO-3 meanwhile: no window costs lateness, so the earliest one wins
    assert found["extra_lateness_s"] == 0
    assert (
        found["start"] == "2026-11-24T00:00:00.000Z" and found["end"] == "2026-11-24T02:00:00.000Z"
    )


def test_plans_order_their_work_ahead_by_their_lead_once(tmp_path: Path) -> None:
    from microfab.maint.plans import due_list, order_due_jobs
    from microfab.model.events import TelemetrySample

    with open_store(f"sqlite:///{tmp_path}/p.db") as store:
        plant = Plant(fill(store))
        monday = utc("08:00")
        add_plans(
            plant,
            [
                PlanSpec(
                    machine="cnc-1", name="oil", basis="calendar", interval=2, lead=24, since=monday
                ),
                PlanSpec(
                    machine="cnc-2",
                    name="belt",
                    basis="calendar",
                    interval=30,
                    lead=24,
                    since=monday,
                ),
                PlanSpec(
                    machine="cnc-1",
                    name="spindle-temp",
                    basis="condition",
                    metric="spindle_c",
                    limit=70,
                ),
            ],
            "user:lee",
        )
        tuesday = utc("09:00", "2026-11-24")
        due = {d.plan: d for d in due_list(store, tuesday)}
        assert due["oil"].due_at == utc("08:00", "2026-11-25")
        assert due["oil"].due_in_hours == 23.0 and due["oil"].within_lead
        assert not due["oil"].overdue and not due["belt"].within_lead
        assert due["spindle-temp"].due_at is None  # no reading yet
        store.append(
            [TelemetrySample(id="t-1", ts=utc("15:00"), machine=CNC1, metrics={"spindle_c": 72.5})]
        )
        made = order_due_jobs(plant, "user:lee", tuesday)
        assert len(made) == 2
        kinds = {wo.get(store, i)["kind"]: wo.get(store, i) for i in made}
        assert kinds["preventive"]["plan_id"] is not None
        assert kinds["predictive"]["evidence"]["reading"] == 72.5
        assert order_due_jobs(plant, "user:lee", tuesday) == made  # one open job per plan
        assert len(list_orders(store)) == 2


def test_work_orders_from_a_breakdown_and_from_the_health_index(tmp_path: Path) -> None:
    with open_store(f"sqlite:///{tmp_path}/h.db") as store:
        plant = Plant(fill(store))
        assert wo.from_machine_down(plant, "cnc-1", "user:a") is None  # running
        from webapp import event

        store.append(
            [
                event(
                    "s-down",
                    "2026-11-23T15:59:40+08:00",
                    CNC1,
                    "state",
                    state="unplanned_stop",
                    reason="UB-MECH",
                )
            ]
        )
        down = wo.from_machine_down(plant, "cnc-1", "user:a")
        assert down is not None and wo.from_machine_down(plant, "cnc-1", "user:a") == down
        shown = wo.get(store, down)
        assert (shown["kind"], shown["source"], shown["priority"]) == (
            "corrective",
            "machine_down",
            2,
        )
        assert "UB-MECH" in shown["problem"]
        report = {
            "machines": [
                {
                    "machine": CNC2,
                    "health": 0.31,
                    "rul_h": 12.5,
                    "recommendation": "check spindle",
                    "evidence": [{"metric": "vib_rms", "shift_sd": 4.1}],
                },
                {"machine": CNC1, "health": 0.9, "rul_h": None, "recommendation": "ok"},
            ]
        }
        made = wo.from_health(plant, "user:a", report=report)
        assert len(made) == 1
        predicted = wo.get(store, made[0])
        assert predicted["kind"] == "predictive" and predicted["machine"] == CNC2
        assert predicted["evidence"]["evidence"][0]["metric"] == "vib_rms"
        assert predicted["problem"] == "predicted failure: health 0.31; check spindle"
        assert predicted["priority"] == 2  # a short remaining life makes it urgent


def test_the_gantt_chart_draws_maintenance_windows(tmp_path: Path) -> None:
    from microfab.track.gantt import gantt

    with open_store(f"sqlite:///{tmp_path}/g.db") as store:
        plant = Plant(fill(store))
        order_id = wo.create_order(
            plant,
            wo.NewOrder(CNC1, wo.Kind.PREVENTIVE, "service", window=(utc("14:00"), utc("15:00"))),
            "user:lee",
        )
        chart = gantt(plant, None)
        lane = next(m for m in chart["machines"] if m["machine"] == CNC1)
        assert lane["maintenance"] == [
            {
                "order": order_id,
                "start": "2026-11-23T06:00:00.000Z",
                "end": "2026-11-23T07:00:00.000Z",
            }
        ]


def test_the_proposed_window_keeps_a_tight_order_on_time(tmp_path: Path) -> None:
    from microfab.maint.windows import propose_window
    from microfab.model.orders import WorkOrderRequest
    from microfab.track.orders import create_order

    with open_store(f"sqlite:///{tmp_path}/t.db") as store:
        plant = Plant(fill(store))
        tuesday = "2026-11-24"
        # cnc-2 is out all Tuesday, so WO-9 (due 10:00) can only run on cnc-1, 08:00–08:54
        wo.create_order(
            plant,
            wo.NewOrder(
                CNC2,
                wo.Kind.PREVENTIVE,
                "overhaul",
                window=(utc("08:00", tuesday), utc("16:00", tuesday)),
            ),
            "user:lee",
        )
        request = WorkOrderRequest(
            order="WO-9", product="BRKT-1", quantity=100, priority=1, due=utc("10:00", tuesday)
        )
        create_order(store, plant.factory(), request, release=True, now=utc("15:59"))
        found = propose_window(
            plant,
            "cnc-1",
            start=utc("08:00", tuesday),
            end=utc("16:00", tuesday),
            duration=dt.timedelta(hours=2),
            step=dt.timedelta(hours=1),
        )
        # 08:00 would hold WO-9 past its due time; 09:00 is the first start that costs nothing
        assert found.start == utc("09:00", tuesday) and found.end == utc("11:00", tuesday)
        assert found.weighted_lateness_s == found.baseline_lateness_s


def test_a_photo_is_kept_and_goes_into_backups(tmp_path: Path) -> None:
    import base64

    from microfab.store.backup import restore_backup, write_backup
    from microfab.store.maintenance import photo

    png = base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAQAAAAECAIAAAAmkwkpAAAAEUlEQVR4nGP4z8AARAwMDAwAQHYF+1Xs5HEAAAAASUVORK5CYII="
    )
    first, second = f"sqlite:///{tmp_path}/a.db", f"sqlite:///{tmp_path}/b.db"
    with open_store(first) as store:
        plant = Plant(fill(store))
        order_id = wo.create_order(plant, wo.NewOrder(CNC1, wo.Kind.CORRECTIVE, "leak"), "user:a")
        with pytest.raises(InputError, match="not a JPEG, PNG or WebP"):
            wo.add_photo(plant, order_id, b"GIF89a", "image/gif", "user:a")
        with pytest.raises(InputError, match="content is not image/png"):
            wo.add_photo(plant, order_id, b"<svg/>", "image/png", "user:a")
        shown = wo.add_photo(plant, order_id, png, "image/png", "user:a")
        assert len(shown["photos"]) == 1
    write_backup(first, tmp_path / "backup.zip")
    restore_backup(tmp_path / "backup.zip", second)
    with open_store(second) as store:
        assert photo(store, order_id, shown["photos"][0]) == ("image/png", png)


def test_the_command_line_shows_work_order_times_in_the_site_time(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/times.db"
    with open_store(url) as store:
        fill(store)
    window = ["--start", "2026-11-24T08:00", "--end", "2026-11-24T11:00"]  # site time (HKT)
    made = runner.invoke(
        app, ["maintenance", "request", CNC1, "--problem", "service", *window, "--db", url]
    )
    assert made.exit_code == 0, made.output
    assert "window start: 2026-11-24 08:00+08:00" in made.output
    assert "window end: 2026-11-24 11:00+08:00" in made.output
    listed = runner.invoke(app, ["maintenance", "list", "--db", url], env={"COLUMNS": "200"})
    assert "2026-11-24 08:00+08:00 – 2026-11-24 11:00+08:00" in listed.output
    as_json = runner.invoke(app, ["maintenance", "list", "--db", url, "--json"])
    assert json.loads(as_json.output)[0]["window_start"] == "2026-11-24T00:00:00.000Z"
