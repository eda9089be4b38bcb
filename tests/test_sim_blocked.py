"""BLOCKED idle: a machine whose next step's buffers are full holds its finished step, idle with
reason BLOCKED (the simulator's ``buffer`` per machine), and OEE counts it as unplanned idle."""

from __future__ import annotations

from pathlib import Path

from microfab.connect.publisher import ListPublisher
from microfab.model.events import StateChange
from microfab.sim.engine import BLOCKED, FactorySimulation
from microfab.sim.scenario import load_scenario
from microfab.store import open_store
from microfab.store.sink import StoreSink
from microfab.track.oee import downtime_pareto


def test_a_full_buffer_blocks_the_machine_before_it() -> None:
    scenario = load_scenario("food-line")  # one trolley bay in front of the blast chiller
    assert scenario.behaviour.machines["chiller-1"].buffer == 1
    sim = FactorySimulation(scenario, ListPublisher(), seed=1)
    limits = {m.id: m.behaviour.buffer for m in sim.machines.values()}
    fullest: dict[str, int] = {}
    for minute in range(1, 30 * 60):  # 30 h, looked at every simulated minute
        sim.run_until(minute * 60.0)
        for m in sim.machines.values():
            fullest[m.id] = max(fullest.get(m.id, 0), m.buffered())
            limit = limits[m.id]
            assert limit is None or m.buffered() <= limit, (m.id, m.buffered(), limit)
            if m.state == "idle" and m.reason == BLOCKED:
                # every machine of its next step has a full buffer
                job_order = next(o for o in sim.open_orders.values() if o.at == m.id)
                nxt = job_order.product.routing[job_order.step + 1]
                assert all(not sim.machines[n].has_room() for n in nxt.machines), m.id
    assert fullest["chiller-1"] == 1
    publisher = sim.publisher
    assert isinstance(publisher, ListPublisher)
    blocked = {
        e.machine.rsplit("/", 1)[-1]
        for e in publisher.events
        if isinstance(e, StateChange) and e.reason == BLOCKED
    }
    assert "filler-1" in blocked  # the filler waits for the chiller's trolley bay
    assert blocked <= {"robot-1", "agv-1", "filler-1", "chiller-1", "hpp-1", "packer-1"}


def test_blocked_time_is_an_unplanned_idle_loss(tmp_path: Path) -> None:
    scenario = load_scenario("food-line")
    with open_store(f"sqlite:///{tmp_path / 'plant.db'}") as store:
        store.apply_factory(scenario.factory, scenario.factory_source)
        sink = StoreSink(store)
        FactorySimulation(scenario, sink, seed=1).run_until(30 * 3600)
        sink.flush()
        pareto = downtime_pareto(store, scenario.factory)
    rows = {(r.state, r.reason): r for r in pareto}
    assert ("idle", BLOCKED) in rows
    assert rows[("idle", BLOCKED)].category == "unplanned"
    assert ("idle", None) not in rows  # no idle without a reason
