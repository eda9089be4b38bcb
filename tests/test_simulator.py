"""The simulator: reproducible runs, complete and consistent event streams, calendars, setups."""

from __future__ import annotations

import datetime as dt
import itertools
from collections import defaultdict
from collections.abc import Sequence
from functools import cache
from typing import TypeVar

import pytest

from microfab.connect.publisher import ListPublisher
from microfab.errors import InputError, UnknownScenarioError
from microfab.model.events import (
    EnergyReading,
    Event,
    MachineState,
    OrderEvent,
    OrderEventKind,
    PartCount,
    StateChange,
    event_to_dict,
)
from microfab.model.factory import MachineKind
from microfab.sim.engine import DEFAULT_START, FactorySimulation, parse_duration
from microfab.sim.scenario import MachineBehaviour, Scenario, load_scenario, scenario_names

HK = dt.timezone(dt.timedelta(hours=8))
HOUR = 3600.0
SCENARIOS = ("food-line", "moulding-cell")


def simulate(
    name: str, hours: float, *, seed: int = 1, start: dt.datetime = DEFAULT_START
) -> list[Event]:
    """Every event of one run, in emission order."""
    publisher = ListPublisher()
    sim = FactorySimulation(load_scenario(name), publisher, seed=seed, start=start)
    sim.run_until(hours * HOUR)
    publisher.flush()
    return list(publisher.events)


@cache
def shift_run(name: str, seed: int = 1) -> tuple[Event, ...]:
    """An 8 h run from the default start (Monday 08:00 HKT), shared by the tests below."""
    return tuple(simulate(name, 8, seed=seed))


def producing_paths(scenario: Scenario) -> set[str]:
    """Machines that make countable units in the simulation (not utilities, not meters)."""
    return {
        ref.path
        for ref in scenario.factory.machines()
        if ref.machine.produces
        and not scenario.behaviour.machines.get(ref.machine.id, MachineBehaviour()).utility
    }


T = TypeVar("T")


def of_type(events: Sequence[Event], kind: type[T]) -> list[T]:
    return [e for e in events if isinstance(e, kind)]


def hkt(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=HK)


# ------------------------------------------------------------------------------ reproducibility


def test_same_seed_gives_identical_events() -> None:
    scenario = load_scenario("food-line")
    runs = []
    for _ in range(2):
        publisher = ListPublisher()
        FactorySimulation(scenario, publisher, seed=1).run_until(8 * HOUR)
        runs.append([event_to_dict(e) for e in publisher.events])
    assert runs[0], "an 8 h run must produce events"
    assert runs[0] == runs[1]


def test_other_seed_gives_other_events() -> None:
    one = [event_to_dict(e) for e in shift_run("food-line", 1)]
    two = [event_to_dict(e) for e in shift_run("food-line", 2)]
    assert one != two
    # Not only the ids (which carry the seed) differ: the content does too.
    strip = [({k: v for k, v in e.items() if k != "id"}) for e in one]
    strip2 = [({k: v for k, v in e.items() if k != "id"}) for e in two]
    assert strip != strip2


# ------------------------------------------------------------------------------ completeness


@pytest.mark.parametrize("name", SCENARIOS)
def test_every_machine_reports_state(name: str) -> None:
    scenario = load_scenario(name)
    events = shift_run(name)
    with_state = {e.machine for e in of_type(events, StateChange)}
    missing = {ref.path for ref in scenario.factory.machines()} - with_state
    assert not missing, f"machines without any state event: {sorted(missing)}"


@pytest.mark.parametrize("name", SCENARIOS)
def test_every_producing_machine_counts(name: str) -> None:
    scenario = load_scenario(name)
    events = shift_run(name)
    counted = {e.machine for e in of_type(events, PartCount)}
    producing = producing_paths(scenario)
    assert producing, "the scenario must have producing machines"
    missing = producing - counted
    assert not missing, f"producing machines without count events in 8 h: {sorted(missing)}"
    assert counted <= producing, "only producing machines may report counts"


@pytest.mark.parametrize("name", SCENARIOS)
def test_every_metered_machine_reports_rising_energy(name: str) -> None:
    scenario = load_scenario(name)
    events = shift_run(name)
    readings: dict[str, list[float]] = defaultdict(list)
    for e in of_type(events, EnergyReading):
        assert e.kwh is not None
        readings[e.machine].append(e.kwh)
    metered = {ref.path for ref in scenario.factory.machines() if ref.machine.has_meter}
    assert metered, "the scenario must have metered machines"
    assert set(readings) == metered
    for machine, values in readings.items():
        assert len(values) > 1, machine
        drops = [(a, b) for a, b in itertools.pairwise(values) if b < a]
        assert not drops, f"{machine}: cumulative kWh went down: {drops[:3]}"
        assert values[-1] > values[0], f"{machine}: meter never advanced in 8 h"


@pytest.mark.parametrize("name", SCENARIOS)
def test_counts_ids_and_timestamps_are_well_formed(name: str) -> None:
    events = shift_run(name)
    for e in of_type(events, PartCount):
        assert e.good >= 0 and e.scrap >= 0, e
        assert e.good + e.scrap > 0, f"empty count event {e.id}"
    ids = [e.id for e in events]
    assert len(ids) == len(set(ids)), "event ids must be unique"
    assert max(len(i) for i in ids) <= 64
    stamps = [e.ts for e in events]
    late = [(a, b) for a, b in itertools.pairwise(stamps) if b < a]
    assert not late, f"ts went backwards in emission order: {late[:3]}"
    assert stamps[0] >= DEFAULT_START
    assert stamps[-1] <= DEFAULT_START + dt.timedelta(hours=8)


# ------------------------------------------------------------------------------ mould changes


def test_moulders_change_moulds_by_setup_family() -> None:
    scenario = load_scenario("moulding-cell")
    events = simulate("moulding-cell", 16, seed=1)
    moulders = {
        ref.path
        for ref in scenario.factory.machines()
        if ref.machine.kind is MachineKind.INJECTION_MOULDER
    }
    product_of = {
        e.order: e.product
        for e in of_type(events, OrderEvent)
        if e.event is OrderEventKind.RELEASED and e.product
    }

    def family(order: str, operation: int | None) -> str | None:
        product = scenario.factory.product(product_of[order])
        return next(op.setup_family for op in product.routing if op.seq == operation)

    setups = [
        e
        for e in of_type(events, StateChange)
        if e.state is MachineState.SETUP and e.machine in moulders
    ]
    assert setups, "16 h of the moulding cell (seed 1) must include a mould change"
    # Each setup on a moulder is a change of family: the operation started after it has another
    # setup family than the operation started before it on that machine.
    for machine in moulders:
        last_family: str | None = None
        pending_setup = False
        for e in events:
            if e.machine != machine:
                continue
            if isinstance(e, StateChange) and e.state is MachineState.SETUP:
                pending_setup = True
            elif isinstance(e, OrderEvent) and e.event is OrderEventKind.STARTED:
                fam = family(e.order, e.operation)
                if pending_setup:
                    assert last_family is not None and fam != last_family, (
                        f"{machine}: setup before {e.order} without a family change"
                    )
                else:
                    assert last_family in (None, fam), (
                        f"{machine}: family changed {last_family} -> {fam} without a setup"
                    )
                last_family, pending_setup = fam, False


# ------------------------------------------------------------------------------ calendar


def states_by_machine(events: Sequence[Event]) -> dict[str, list[StateChange]]:
    out: dict[str, list[StateChange]] = defaultdict(list)
    for e in of_type(events, StateChange):
        out[e.machine].append(e)
    return out


def test_lunch_break_is_planned_stop_pb() -> None:
    scenario = load_scenario("food-line")
    start = hkt("2026-11-23T12:25:00")
    events = simulate("food-line", 2, start=start)
    lunch, back = hkt("2026-11-23T12:30:00"), hkt("2026-11-23T13:30:00")
    states = states_by_machine(events)
    for machine in sorted(producing_paths(scenario)):
        in_break = [
            s
            for s in states[machine]
            if lunch <= s.ts < back and s.state is MachineState.PLANNED_STOP
        ]
        assert in_break, f"{machine} never went to planned_stop during lunch"
        assert {s.reason for s in in_break} == {"PB"}, (machine, in_break)
        # It comes back exactly when the break ends (to work, or to wait for it with a reason).
        assert any(s.ts == back and s.reason != "PB" for s in states[machine])


def test_before_the_shift_is_planned_stop_ps() -> None:
    scenario = load_scenario("food-line")
    start = hkt("2026-11-23T06:00:00")
    shift_start = hkt("2026-11-23T08:00:00")
    events = simulate("food-line", 3, start=start)
    states = states_by_machine(events)
    for machine in sorted(producing_paths(scenario)):
        first = states[machine][0]
        assert first.ts == start
        assert (first.state, first.reason) == (MachineState.PLANNED_STOP, "PS"), first
        early = [s for s in states[machine] if s.ts < shift_start]
        assert all(s.state is MachineState.PLANNED_STOP for s in early), early
        woke = [s for s in states[machine] if s.ts >= shift_start]
        assert woke and woke[0].ts == shift_start
        assert woke[0].reason != "PS"
    assert all(e.ts >= shift_start for e in of_type(events, PartCount))


def test_no_counts_on_sunday() -> None:
    # 22 November 2026 is a Sunday; the food line works Monday to Saturday.
    start = hkt("2026-11-22T08:00:00")
    assert start.isoweekday() == 7
    events = simulate("food-line", 30, start=start)
    counts = of_type(events, PartCount)
    on_sunday = [c for c in counts if c.ts.astimezone(HK).date() == start.date()]
    assert not on_sunday, f"{len(on_sunday)} count events on Sunday, first {on_sunday[0]}"
    assert counts, "Monday morning must produce counts"
    assert min(c.ts for c in counts) >= hkt("2026-11-23T08:00:00")
    scenario = load_scenario("food-line")
    states = states_by_machine(events)
    for machine in producing_paths(scenario):
        first = states[machine][0]
        assert (first.state, first.reason) == (MachineState.PLANNED_STOP, "PS"), first


# ------------------------------------------------------------------------------ conservation


@pytest.mark.parametrize("name", SCENARIOS)
@pytest.mark.parametrize("seed", [1, 2])
def test_units_are_conserved_along_the_routing(name: str, seed: int) -> None:
    scenario = load_scenario(name)
    events = simulate(name, 16, seed=seed)
    good: dict[tuple[str, int], int] = defaultdict(int)
    made: dict[tuple[str, int], int] = defaultdict(int)
    for c in of_type(events, PartCount):
        assert c.order is not None and c.operation is not None, c
        good[c.order, c.operation] += c.good
        made[c.order, c.operation] += c.good + c.scrap
    released = {
        e.order: e for e in of_type(events, OrderEvent) if e.event is OrderEventKind.RELEASED
    }
    checked = 0
    for order, release in released.items():
        assert release.product is not None and release.quantity is not None
        ops = [op.seq for op in scenario.factory.product(release.product).routing]
        assert made[order, ops[0]] <= release.quantity
        for before, after in itertools.pairwise(ops):
            assert good[order, after] <= good[order, before], (order, before, after)
            assert made[order, after] <= good[order, before], (order, before, after)
            checked += good[order, after] > 0
    assert checked, "some orders must have reached a second operation"
    assert {o for o, _ in good} <= set(released), "counts for an order that was never released"


# ------------------------------------------------------------------------------ inputs


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30m", 1800), ("8h", 28800), ("2d", 172800), ("90s", 90), ("3600", 3600), (" 8H ", 28800)],
)
def test_parse_duration_accepts(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["abc", "-1h", "0", "", "h", "0s", "inf", "nan"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_unknown_scenario_lists_the_shipped_ones() -> None:
    assert {"food-line", "moulding-cell"} <= set(scenario_names())
    with pytest.raises(UnknownScenarioError) as caught:
        load_scenario("nope")
    assert isinstance(caught.value, InputError)
    assert caught.value.exit_code == 2
    message = str(caught.value)
    assert "nope" in message
    assert "food-line" in message and "moulding-cell" in message


def test_naive_start_is_refused() -> None:
    scenario = load_scenario("food-line")
    with pytest.raises(ValueError):
        FactorySimulation(scenario, ListPublisher(), start=dt.datetime(2026, 11, 23, 8))
