"""The worked example of docs/maintenance.md: due by run hours and by cycles, from a simulated
week of the moulding-cell-wear scenario (seed 1), recomputed here by hand from the simulator's
own events and compared with ``microfab maintenance due --json`` and with the doc."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

from typer.testing import CliRunner

from microfab.cli import app
from microfab.connect.publisher import Publisher
from microfab.model.events import Event, PartCount, StateChange
from microfab.sim.engine import DEFAULT_START, FactorySimulation
from microfab.sim.scenario import load_scenario
from microfab.store import open_store

DOC = Path(__file__).resolve().parents[1] / "docs" / "maintenance.md"
IMM1 = "yl/moulding/mc-1/imm/imm-1"
WEEK = 7 * 86400


class Keep(Publisher):
    """Keeps imm-1's state changes and counts (all the due dates need)."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def publish(self, event: Event) -> None:
        if event.machine == IMM1 and event.stream in ("state", "count"):
            self.events.append(event)

    def flush(self) -> None:
        return None


def by_hand(events: list[Event], start: dt.datetime, end: dt.datetime) -> tuple[float, int]:
    """Running hours (state changes in time order, each state lasting to the next) and units
    counted (good + scrap) in [start, end)."""
    states = sorted((e for e in events if isinstance(e, StateChange)), key=lambda e: (e.ts, e.id))
    running = 0.0
    for this, after in zip(states, [*states[1:], None], strict=True):
        if this.state.value != "running":
            continue
        lo, hi = max(this.ts, start), min(after.ts if after else end, end)
        running += max(0.0, (hi - lo).total_seconds())
    units = sum(
        e.good + e.scrap for e in events if isinstance(e, PartCount) and start <= e.ts < end
    )
    return running / 3600, units


def test_due_by_run_hours_and_cycles_from_a_simulated_week(tmp_path: Path) -> None:
    scenario = load_scenario("moulding-cell-wear")
    keep = Keep()
    FactorySimulation(scenario, keep, seed=1).run_until(WEEK)
    start = DEFAULT_START.astimezone(dt.UTC)
    end = start + dt.timedelta(seconds=WEEK)
    hours, units = by_hand(keep.events, start, end)

    url = f"sqlite:///{tmp_path}/week.db"
    with open_store(url) as store:
        store.apply_factory(scenario.factory, "moulding-cell-wear")
        assert store.append(keep.events).inserted == len(keep.events)
    plans = tmp_path / "plans.yaml"
    plans.write_text(
        "plans:\n"
        "  - {machine: imm-1, name: screw-and-barrel, basis: run_hours, interval: 80, lead: 8,"
        ' duration_min: 120, since: "2026-11-23T08:00:00+08:00"}\n'
        "  - {machine: imm-1, name: ejector-pins, basis: cycles, interval: 40000, lead: 2000,"
        ' duration_min: 60, since: "2026-11-23T08:00:00+08:00"}\n',
        encoding="utf-8",
    )
    runner = CliRunner()
    added = runner.invoke(app, ["maintenance", "plans", "add", str(plans), "--db", url])
    assert added.exit_code == 0, added.output
    at = "2026-11-30T08:00:00+08:00"
    result = runner.invoke(app, ["maintenance", "due", "--json", "--at", at, "--db", url])
    assert result.exit_code == 0, result.output
    due = {d["plan"]: d for d in json.loads(result.output)}

    run = due["screw-and-barrel"]
    assert run["basis"] == "run_hours" and run["machine"] == IMM1
    assert run["used"] == round(hours, 2)
    assert run["left"] == round(80 - hours, 2)
    elapsed = WEEK / 3600
    expected_at = end + dt.timedelta(hours=(80 - hours) * elapsed / hours)
    assert run["due_at"] == expected_at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    assert run["due_in_hours"] == round((80 - hours) * elapsed / hours, 2)
    assert run["overdue"] is False and run["due_in_cycles"] is None

    cyc = due["ejector-pins"]
    assert cyc["basis"] == "cycles"
    assert cyc["used"] == units
    assert cyc["due_in_cycles"] == 40000 - units
    assert cyc["due_in_hours"] == round((40000 - units) * elapsed / units, 2)
    assert cyc["overdue"] is False

    # the doc's worked example shows these very figures
    doc = DOC.read_text(encoding="utf-8")
    block = re.search(r"<!-- worked-example -->\n```json\n(.*?)```", doc, re.DOTALL)
    assert block, "docs/maintenance.md lost its worked example block"
    shown = {d["plan"]: d for d in json.loads(block[1])}
    assert shown == due
    assert f"{hours:.2f} running hours" in doc and f"{units:,} units" in doc
