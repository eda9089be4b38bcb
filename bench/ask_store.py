"""The fixed simulated store the assistant's evaluation set is computed from (bench/ask.py,
tests/test_assist_eval.py): the food-line scenario, seed 19, Friday 2026-11-20 00:00 to Tuesday
2026-11-24 12:00 site time, meters every 5 minutes, telemetry every 30 minutes."""

from __future__ import annotations

import dataclasses
import datetime as dt

START = "2026-11-20T00:00:00+08:00"
HOURS = 108
SEED = 19


def build_store(db: str) -> None:
    """Simulate the evaluation plant into the (empty) database ``db``."""
    from microfab.sim.engine import FactorySimulation
    from microfab.sim.scenario import load_scenario
    from microfab.store import open_store
    from microfab.store.sink import StoreSink

    scenario = load_scenario("food-line")
    behaviour = scenario.behaviour.model_copy(
        update={"telemetry_every_s": 1800.0, "meter_every_s": 300.0}
    )
    scenario = dataclasses.replace(scenario, behaviour=behaviour)
    with open_store(db) as store:
        store.apply_factory(scenario.factory, "ask-eval")
        sink = StoreSink(store, batch_size=5000)
        sim = FactorySimulation(scenario, sink, seed=SEED, start=dt.datetime.fromisoformat(START))
        sim.run_until(HOURS * 3600)
        sink.flush()
