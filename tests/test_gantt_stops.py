"""The plan chart's actual bars stop at planned stops: over a simulated night and a lunch break,
no actual bar of the Gantt data overlaps a planned stop of its machine, and cutting keeps every
unit counted."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from microfab.model.events import parse_ts
from microfab.sim.engine import FactorySimulation
from microfab.sim.scenario import load_scenario
from microfab.store import open_store
from microfab.store.sink import StoreSink
from microfab.track.gantt import gantt
from microfab.track.plant import Plant


def test_actual_bars_stop_at_planned_stops(tmp_path: Path) -> None:
    scenario = load_scenario("food-line")  # day shift 08:00-17:00, lunch 12:30-13:30
    with open_store(f"sqlite:///{tmp_path / 'plant.db'}") as store:
        store.apply_factory(scenario.factory, scenario.factory_source)
        sink = StoreSink(store)
        sim = FactorySimulation(scenario, sink, seed=1)
        sim.run_until(26 * 3600)  # Monday 08:00 to Tuesday 10:00
        sink.flush()
        plant = Plant(store, clock=lambda: sim.now)
        start = parse_ts("2026-11-23T00:00:00Z")
        data = gantt(plant, None, start=start, end=sim.now)
        crossed = 0
        for lane in data["machines"]:
            stops = [
                (parse_ts(s["start"]), parse_ts(s["end"]))
                for s in lane["stops"]
                if s["state"] == "planned_stop"
            ]
            for bar in lane["actual"]:
                begin, end = parse_ts(bar["start"]), parse_ts(bar["end"])
                for s_begin, s_end in stops:
                    overlap = min(end, s_end) - max(begin, s_begin)
                    assert overlap <= dt.timedelta(0), (lane["machine"], bar, s_begin, s_end)
            pieces: dict[tuple[str, int], list[dict]] = {}  # type: ignore[type-arg]
            for bar in lane["actual"]:
                pieces.setdefault((bar["order"], bar["operation"]), []).append(bar)
            crossed += sum(1 for bars in pieces.values() if len(bars) > 1)
        assert crossed > 0  # some order step did run across a break or the night: it was cut
        # the pieces together hold every unit the machine counted for the orders
        counted = sum(
            bar["good"] + bar["scrap"] for lane in data["machines"] for bar in lane["actual"]
        )
        made = sum(
            row["good"] + row["scrap"]
            for row in store_counts(
                plant, [lane["machine"] for lane in data["machines"]], start, sim.now
            )
        )
        assert counted == made


def store_counts(
    plant: Plant, machines: list[str], start: dt.datetime, end: dt.datetime
) -> list[dict[str, int]]:
    from microfab.store.production import part_counts

    return [
        {"good": row.good, "scrap": row.scrap}
        for row in part_counts(plant.store, machines, start, end + dt.timedelta(milliseconds=1))
        if row.order is not None
    ]
