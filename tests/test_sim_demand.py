"""The demo plant's demand model, due dates and idle reasons: a plant a manager would believe."""

from __future__ import annotations

import dataclasses
from collections import Counter
from functools import cache

import pytest

from microfab.connect.publisher import ListPublisher
from microfab.model.events import Event, MachineState, OrderEvent, OrderEventKind, StateChange
from microfab.sim.demand import TARGET_BAND, demand_model, processing_seconds
from microfab.sim.engine import (
    CHANGEOVER,
    NO_ORDER,
    STARVED,
    WAITING_MATERIAL,
    FactorySimulation,
)
from microfab.sim.scenario import Scenario, load_scenario, scenario_names

DAY = 86400.0


@pytest.mark.parametrize("name", scenario_names())
def test_offered_load_is_in_the_target_band(name: str) -> None:
    scenario = load_scenario(name)
    model = demand_model(scenario.factory, scenario.behaviour)
    assert model is not None, f"{name} gives no target_load"
    low, high = TARGET_BAND
    assert low <= model.offered_load <= high
    # The bottleneck is the busiest group, and no other group is overloaded.
    assert all(model.load_of(g) <= model.offered_load for g in model.groups)


def test_the_bottleneck_is_the_slowest_step() -> None:
    food = load_scenario("food-line")
    moulding = load_scenario("moulding-cell")
    food_model = demand_model(food.factory, food.behaviour)
    moulding_model = demand_model(moulding.factory, moulding.behaviour)
    assert food_model is not None and moulding_model is not None
    assert food_model.bottleneck.machines == {"chiller-1"}
    assert moulding_model.bottleneck.machines == {"imm-1", "imm-2"}


def _released_work(sim: FactorySimulation, events: list[OrderEvent]) -> float:
    """Bottleneck seconds the released orders bring, from what the simulator released."""
    assert sim.demand is not None
    bottleneck = sim.demand.bottleneck.machines
    total = 0.0
    for e in events:
        assert e.product is not None and e.quantity is not None
        product = sim.factory.product(e.product)
        factor = 1.0
        for option in product.options:
            chosen = (e.options or {})[option.name]
            factor *= next(c.time_factor for c in option.choices if c.code == chosen)
        for op in product.routing:
            if frozenset(op.machines) == bottleneck:
                total += e.quantity * factor / sum(1 / s for s in op.machines.values())
    return total


@cache
def week(name: str) -> tuple[FactorySimulation, tuple[Event, ...]]:
    """A 7-day run of a scenario (seed 1) and its events, shared by the tests below."""
    publisher = ListPublisher()
    sim = FactorySimulation(load_scenario(name), publisher, seed=1)
    sim.run_until(7 * DAY)
    publisher.flush()
    return sim, tuple(publisher.events)


@pytest.mark.parametrize("name", ["food-line", "moulding-cell"])
def test_released_work_follows_the_model(name: str) -> None:
    """Over a simulated week the orders released fill the bottleneck's working time near the
    model's processing load (Poisson noise allowed), never beyond capacity."""
    sim, events = week(name)
    released = [
        e for e in events if isinstance(e, OrderEvent) and e.event is OrderEventKind.RELEASED
    ]
    assert sim.demand is not None
    clock = sim.machines[sorted(sim.demand.bottleneck.machines)[0]].worktime
    working = sum(
        min(end, 7 * DAY) - start
        for start, end in zip(clock.starts, clock.ends, strict=True)
        if start < 7 * DAY
    )
    initial = sim.behaviour.orders.initial  # the backlog at the start comes on top
    offered = _released_work(sim, released[initial:]) / working
    assert offered < 1.0, offered
    assert abs(offered - sim.demand.processing_load) < 0.25, offered


@pytest.mark.parametrize("name", ["food-line", "moulding-cell"])
def test_few_orders_are_late_over_a_week(name: str) -> None:
    sim, _ = week(name)
    assert sim.orders_completed >= 30
    assert sim.orders_late <= 0.1 * sim.orders_completed
    overdue = [o for o in sim.open_orders.values() if o.due_s < sim.env.now]
    assert len(overdue) <= 0.1 * sim.orders_completed


def undisturbed(scenario: Scenario) -> Scenario:
    """The scenario with no breakdowns, micro-stops, spread, scrap or late material."""
    machines = {
        mid: mb.model_copy(
            update={"mtbf_h": 1e9, "micro_stops_per_h": 0.0, "cycle_cv": 0.0, "scrap_rate": 0.0}
        )
        for mid, mb in scenario.behaviour.machines.items()
    }
    orders = scenario.behaviour.orders.model_copy(update={"material_wait": 0.0})
    behaviour = scenario.behaviour.model_copy(update={"machines": machines, "orders": orders})
    return dataclasses.replace(scenario, behaviour=behaviour)


@pytest.mark.parametrize("name", ["food-line", "moulding-cell"])
def test_no_order_is_promised_sooner_than_the_line_can_make_it(name: str) -> None:
    scenario = undisturbed(load_scenario(name))
    publisher = ListPublisher()
    sim = FactorySimulation(scenario, publisher, seed=2)
    sim.run_until(6 * DAY)
    publisher.flush()
    assert sim.demand is not None
    clock = sim.machines[sorted(sim.demand.bottleneck.machines)[0]].worktime
    released = [
        e
        for e in publisher.events
        if isinstance(e, OrderEvent) and e.event is OrderEventKind.RELEASED
    ]
    assert len(released) > 10
    for e in released:
        assert e.due is not None and e.product is not None and e.quantity is not None
        release_s = (e.ts - sim.start).total_seconds()
        due_s = (e.due - sim.start).total_seconds()
        fastest = processing_seconds(sim.factory.product(e.product), e.quantity, 1.0)
        assert clock.add_working(release_s, fastest) <= due_s + 1, e.order
    # Undisturbed, the line makes every order by its due date.
    assert sim.orders_completed > 10
    assert sim.orders_late == 0


@pytest.mark.parametrize("name", ["food-line", "moulding-cell"])
def test_idle_time_says_why(name: str) -> None:
    scenario = load_scenario(name)
    _, events = week(name)
    states = [e for e in events if isinstance(e, StateChange)]
    codes = set(scenario.factory.downtime_reasons.codes())
    reasons: Counter[tuple[MachineState, str | None]] = Counter((s.state, s.reason) for s in states)
    # Every stop has a reason code of the factory; idle is never left unexplained.
    for state, reason in reasons:
        if state is not MachineState.RUNNING:
            assert reason in codes, (state, reason)
    assert (MachineState.IDLE, None) not in reasons
    assert reasons[MachineState.PLANNED_STOP, NO_ORDER] > 0
    assert reasons[MachineState.IDLE, STARVED] > 0
    category = scenario.factory.downtime_reasons.category_of
    assert category(NO_ORDER) is not None and category(NO_ORDER).value == "planned"
    assert category(STARVED) is not None and category(STARVED).value == "unplanned"


def test_late_material_and_changeovers_have_their_codes() -> None:
    _, food = week("food-line")
    _, moulding = week("moulding-cell")
    food_reasons = {(e.state, e.reason) for e in food if isinstance(e, StateChange)}
    moulding_reasons = {(e.state, e.reason) for e in moulding if isinstance(e, StateChange)}
    assert (MachineState.IDLE, WAITING_MATERIAL) in food_reasons
    assert (MachineState.SETUP, CHANGEOVER) in moulding_reasons
    assert all(
        reason == CHANGEOVER for state, reason in moulding_reasons if state is MachineState.SETUP
    )
