"""The demo's plan: made from the stored open orders, again when orders arrive or a machine
breaks down."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

from microfab.plan.plan_file import PlanFile
from microfab.runtime.demo import DemoReplanner
from microfab.sim.engine import FactorySimulation
from microfab.sim.scenario import load_scenario
from microfab.store import open_store
from microfab.store.sink import StoreSink


def test_the_demo_plans_the_open_orders_and_again_when_they_change(tmp_path: Path) -> None:
    scenario = load_scenario("moulding-cell")
    with open_store(f"sqlite:///{tmp_path / 'demo.db'}") as store:
        store.apply_factory(scenario.factory, scenario.factory_source)
        sink = StoreSink(store)
        sim = FactorySimulation(scenario, sink, seed=1)
        sim.run_until(2 * 3600)
        sink.flush()
        plan_file = PlanFile(tmp_path / "plan.json")
        stored = [sim.orders_released]  # what the store holds (the demo's ingest lags a little)
        replanner = DemoReplanner(
            store, lambda: sim.now, plan_file, lambda: (stored[0],), every_s=0.05
        ).start()
        try:
            deadline = time.monotonic() + 60
            while replanner.plans < 1 and time.monotonic() < deadline:
                time.sleep(0.05)
            first = plan_file.require()
            planned = {op["order"] for op in first["operations"]}
            assert planned == set(sim.open_orders), replanner.error
            released = sim.orders_released
            while sim.orders_released == released:  # the next order arrives
                sim.run_until(sim.env.now + 600)
            sink.flush()
            stored[0] = sim.orders_released
            while replanner.plans < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            replanner.stop()
        assert replanner.plans == 2, replanner.error
        second = plan_file.require()
        assert dt.datetime.fromisoformat(second["plan"]["start"]) > dt.datetime.fromisoformat(
            first["plan"]["start"]
        )
        assert {op["order"] for op in second["operations"]} == set(sim.open_orders)
