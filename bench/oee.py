"""Benchmark: OEE over 30 days × 21 machines of simulated events, and over 365 days × 100 machines.

Run with ``microfab bench oee [--db URL] [--repeat N]``.

Data: the food-line scenario copied into three lines (7 producing machines each, 21 in all; orders
arrive three times as often), simulated for 30 days at full speed (``--speed max``) into the store
(a temporary SQLite file unless ``--db``). Telemetry and meter readings are thinned out (one an
hour): OEE reads only state changes and counts, and the other streams only make the build slower.

Timed, median of ``repeat`` runs, all in one session:

- ``oee --by machine`` for all lines over the whole 30 days (the goal: ≤ 0.1 s);
- ``oee --by shift --level line`` and the downtime Pareto;
- the rebuild of the production read model from the log (``microfab db rebuild-views``);
- baseline, measured in the same run: the raw-event path's reads — the same state changes and
  count events read from the log and nothing else (what OEE cost before the hourly read model; it
  re-read the JSON of every count);
- a year: 365 days × 100 machines (10 lines of 10 steps, one count an hour per machine with its
  order and step, six state changes a day), stored as events, its views rebuilt, then
  ``oee --by machine`` and the downtime Pareto over the whole year (the goal: ≤ 1 s).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

NAME = "oee"
TITLE = "OEE over 30 days × 21 machines"
DAYS = 30
LINES = 3
START = "2026-11-02T00:00:00+08:00"


def _scenario(folder: Path) -> Path:
    from microfab.sim.scenario import SCENARIO_DIR

    source = SCENARIO_DIR / "food-line"
    factory = yaml.safe_load((source / "factory.yaml").read_text(encoding="utf-8"))
    behaviour = yaml.safe_load((source / "behaviour.yaml").read_text(encoding="utf-8"))
    area = factory["sites"][0]["areas"][0]
    (template,) = area["lines"]

    def renamed(machine_id: str, k: int) -> str:
        return f"{machine_id.rsplit('-', 1)[0]}-{k}"

    lines = []
    for k in range(1, LINES + 1):
        line = yaml.safe_load(yaml.safe_dump(template))
        line["id"] = f"meal-{k}"
        for cell in line["cells"]:
            for machine in cell["machines"]:
                machine["id"] = renamed(machine["id"], k)
        lines.append(line)
    area["lines"] = lines
    for product in factory["products"]:
        for op in product["routing"]:
            op["machines"] = {
                renamed(m, k): seconds
                for m, seconds in op["machines"].items()
                for k in range(1, LINES + 1)
            }
    behaviour["machines"] = {
        renamed(m, k): spec
        for m, spec in behaviour["machines"].items()
        for k in range(1, LINES + 1)
    }
    behaviour["facility"] = {
        renamed(m, k): spec
        for m, spec in behaviour.get("facility", {}).items()
        for k in range(1, LINES + 1)
    }
    if "mean_interarrival_min" in behaviour["orders"]:  # a demand model (target_load) scales
        behaviour["orders"]["mean_interarrival_min"] /= LINES
    behaviour["orders"]["initial"] *= LINES
    behaviour["telemetry_every_s"] = 3600
    behaviour["meter_every_s"] = 3600
    (folder / "factory.yaml").write_text(yaml.safe_dump(factory, allow_unicode=True))
    (folder / "behaviour.yaml").write_text(yaml.safe_dump(behaviour, allow_unicode=True))
    return folder


def _build(db: str, folder: Path) -> tuple[float, int]:
    from microfab.sim.engine import FactorySimulation
    from microfab.sim.scenario import load_scenario
    from microfab.store import open_store
    from microfab.store.sink import StoreSink

    scenario = load_scenario(str(_scenario(folder)))
    with open_store(db) as store:
        store.apply_factory(scenario.factory, "bench-oee")
        sink = StoreSink(store, batch_size=5000)
        start = time.perf_counter()
        sim = FactorySimulation(scenario, sink, seed=1, start=dt.datetime.fromisoformat(START))
        seconds = DAYS * 86400
        while sim.env.now < seconds:
            sim.run_until(min(seconds, sim.env.now + 6 * 3600))
            sink.flush()
        return time.perf_counter() - start, store.count()


def _median(repeat: int, work: Callable[[], object]) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def run(repeat: int = 5, db: str | None = None) -> dict[str, Any]:
    from microfab.store import open_store
    from microfab.store.production import part_counts, state_transitions
    from microfab.store.production_views import rebuild
    from microfab.track.oee import downtime_pareto, oee_rows, select_lines

    folder = Path(tempfile.mkdtemp(prefix="microfab-bench-oee-"))
    database = db or f"sqlite:///{folder}/oee.db"
    load = os.getloadavg()[0]
    try:
        build_s, events = _build(database, folder)
        with open_store(database) as store:
            found = store.factory()
            assert found is not None
            factory = found[1]
            machines = [r.path for refs in select_lines(factory, None) for r in refs]
            start = dt.datetime.fromisoformat(START)
            end = start + dt.timedelta(days=DAYS)

            def reads() -> int:
                states = state_transitions(store, machines, start, end)
                counts = part_counts(store, machines, start, end)
                return sum(len(changes) for _, changes in states.values()) + len(counts)

            rebuild_s, _ = _median(1, lambda: rebuild(store))
            baseline_s, rows_read = _median(repeat, reads)
            by_machine_s, rows = _median(
                repeat, lambda: oee_rows(store, factory, start=start, end=end)
            )
            by_shift_s, shift_rows = _median(
                repeat,
                lambda: oee_rows(store, factory, start=start, end=end, by="shift", level="line"),
            )
            pareto_s, _ = _median(
                repeat, lambda: downtime_pareto(store, factory, start=start, end=end)
            )
        assert isinstance(rows, list) and isinstance(shift_rows, list)
        year = _year(folder, repeat) if db is None else {}
        return {
            "days": DAYS,
            "machines": len(machines),
            "events": events,
            "state_and_count_rows": rows_read,
            "build_s": round(build_s, 1),
            "db": "temporary SQLite file" if db is None else _mask(db),
            "repeat": repeat,
            "oee_by_machine_s": round(by_machine_s, 3),
            "oee_by_shift_line_s": round(by_shift_s, 3),
            "downtime_pareto_s": round(pareto_s, 3),
            "baseline_reads_s": round(baseline_s, 3),
            "ratio": round(by_machine_s / baseline_s, 2),
            "mean_oee": round(
                statistics.fmean(r.figures.oee for r in rows if r.figures.oee is not None), 4
            ),
            "shift_rows": len(shift_rows),
            "rebuild_s": round(rebuild_s, 1),
            "load_average": round(load, 1),
            **year,
        }
    finally:
        shutil.rmtree(folder, ignore_errors=True)


YEAR_LINES, YEAR_STEPS, YEAR_DAYS = 10, 10, 365


def _year_factory() -> Any:
    from microfab.model.factory_file import parse_factory

    lines = [
        {
            "id": f"line-{k}",
            "calendar": "day-shift",
            "cells": [
                {
                    "id": f"step-{j}",
                    "machines": [{"id": f"m-{k}-{j}", "kind": "cnc", "ideal_cycle_s": 30.0}],
                }
                for j in range(1, YEAR_STEPS + 1)
            ],
        }
        for k in range(1, YEAR_LINES + 1)
    ]
    document = {
        "schema_version": 1,
        "company": {"name": "Bench Works Ltd"},
        "sites": [
            {
                "id": "s",
                "name": "Bench site",
                "timezone": "Asia/Hong_Kong",
                "areas": [{"id": "a", "lines": lines}],
            }
        ],
        "calendars": [
            {
                "id": "day-shift",
                "shifts": [
                    {
                        "name": "day",
                        "start": "08:00",
                        "end": "17:00",
                        "days": ["mon", "tue", "wed", "thu", "fri", "sat"],
                        "breaks": [{"name": "lunch", "start": "12:30", "end": "13:30"}],
                    }
                ],
            }
        ],
        "downtime_reasons": {
            "planned": [{"code": "PB", "name": "Break"}],
            "unplanned": [{"code": "UB", "name": "Breakdown"}],
        },
        "products": [
            {
                "sku": f"P-{k}",
                "name": f"Part {k}",
                "unit_mass_kg": 0.1,
                "unit_price_hkd": 5.0,
                "routing": [
                    {"seq": 10 * j, "name": f"Step {j}", "machines": {f"m-{k}-{j}": 30.0}}
                    for j in range(1, YEAR_STEPS + 1)
                ],
            }
            for k in range(1, YEAR_LINES + 1)
        ],
    }
    return parse_factory(yaml.safe_dump(document))


def _year_events(day: int) -> list[Any]:
    """One day of the year's events: per line one order; per machine six state changes and one
    count an hour from 08:00 to 18:00 (the last outside working time)."""
    from microfab.model.events import OrderEvent, PartCount, StateChange

    date = dt.date(2025, 1, 1) + dt.timedelta(days=day)
    zone = dt.timezone(dt.timedelta(hours=8))

    def at(hour: int, minute: int = 0) -> dt.datetime:
        return dt.datetime.combine(date, dt.time(hour, minute), zone)

    events: list[Any] = []
    states = [
        (at(8), "running", None),
        (at(10, 0), "unplanned_stop", "UB"),
        (at(10, 20), "running", None),
        (at(12, 30), "planned_stop", "PB"),
        (at(13, 30), "running", None),
        (at(17, 30), "idle", None),
    ]
    for k in range(1, YEAR_LINES + 1):
        order = f"WO-{day}-{k}"
        events.append(
            OrderEvent(
                id=f"o-{order}",
                ts=at(7, 50),
                machine=f"s/a/line-{k}/step-1/m-{k}-1",
                order=order,
                event="released",
                product=f"P-{k}",
                quantity=1000,
            )
        )
        for j in range(1, YEAR_STEPS + 1):
            machine = f"s/a/line-{k}/step-{j}/m-{k}-{j}"
            for n, (ts, state, reason) in enumerate(states):
                events.append(
                    StateChange(
                        id=f"s-{day}-{k}-{j}-{n}",
                        ts=ts,
                        machine=machine,
                        state=state,
                        reason=reason,
                    )
                )
            for hour in range(9, 19):
                events.append(
                    PartCount(
                        id=f"c-{day}-{k}-{j}-{hour}",
                        ts=at(hour, 5),
                        machine=machine,
                        good=100,
                        scrap=1,
                        order=order,
                        operation=10 * j,
                    )
                )
    return events


def _year(folder: Path, repeat: int) -> dict[str, Any]:
    from microfab.store import open_store
    from microfab.store.production_views import rebuild
    from microfab.track.oee import downtime_pareto, oee_rows

    factory = _year_factory()
    start = dt.datetime(2025, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    end = start + dt.timedelta(days=YEAR_DAYS)
    with open_store(f"sqlite:///{folder}/year.db") as store:
        store.apply_factory(factory, "bench-year")
        began = time.perf_counter()
        events = 0
        for day in range(YEAR_DAYS):
            batch = _year_events(day)
            store.append(batch)
            events += len(batch)
        build_s = time.perf_counter() - began
        rebuild_s, _ = _median(1, lambda: rebuild(store))
        by_machine_s, rows = _median(repeat, lambda: oee_rows(store, factory, start=start, end=end))
        pareto_s, _ = _median(repeat, lambda: downtime_pareto(store, factory, start=start, end=end))
    assert isinstance(rows, list) and len(rows) == YEAR_LINES * YEAR_STEPS
    return {
        "year_events": events,
        "year_build_s": round(build_s, 1),
        "year_rebuild_s": round(rebuild_s, 1),
        "year_oee_by_machine_s": round(by_machine_s, 3),
        "year_downtime_pareto_s": round(pareto_s, 3),
    }


def _mask(url: str) -> str:
    from microfab.store.url import mask_url

    return mask_url(url)


def markdown(result: dict[str, Any]) -> str:
    r = result
    lines = [
        f"{r['days']} days × {r['machines']} producing machines (food-line scenario copied into "
        f"three lines, `--speed max`), {r['events']:,} events of which "
        f"{r['state_and_count_rows']:,} state changes and counts; store: {r['db']}; "
        f"built in {r['build_s']} s. Medians of {r['repeat']} runs in one session; load average "
        f"when it began: {r.get('load_average', '?')} (other work shared the cores).",
        "",
        "| measure | seconds |",
        "|---|---:|",
        f"| baseline: the raw-event path's reads (state changes and count events, nothing else) "
        f"| {r['baseline_reads_s']} |",
        f"| `oee --by machine`, 30 days, all machines (goal ≤ 0.1 s) | {r['oee_by_machine_s']} |",
        f"| `oee --by shift --level line` ({r['shift_rows']} rows) | {r['oee_by_shift_line_s']} |",
        f"| downtime Pareto | {r['downtime_pareto_s']} |",
        f"| ratio OEE by machine / baseline reads | {r['ratio']} |",
        f"| `microfab db rebuild-views` (the production read model from the whole log) "
        f"| {r['rebuild_s']} |",
    ]
    if "year_events" in r:
        lines += [
            f"| a year: 365 days × 100 machines, {r['year_events']:,} events stored in "
            f"{r['year_build_s']} s, views rebuilt in {r['year_rebuild_s']} s: "
            f"`oee --by machine` (goal ≤ 1 s) | {r['year_oee_by_machine_s']} |",
            f"| a year: downtime Pareto | {r['year_downtime_pareto_s']} |",
        ]
    return "\n".join(lines)
