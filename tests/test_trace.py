"""Genealogy (`microfab trace ORDER`): count batches along the route with their times, scrap and
material lots, from hand-built events with exact answers and from the simulator, on SQLite and
PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from typing import Any

import pytest

from conftest import DATA
from microfab.errors import NotFoundError
from microfab.model.events import MaterialConsumption, OrderEvent, PartCount
from microfab.model.factory import Factory
from microfab.model.factory_file import parse_factory
from microfab.model.orders import WorkOrderRequest
from microfab.sim.scenario import load_scenario
from microfab.store import EventStore
from microfab.track.genealogy import trace_order
from microfab.track.orders import create_order, list_orders, release_order
from test_orders import CNC1, CNC2, ROBOT1, at, event, flat, invoke, simulated

METER = "kt/plant/line1/utility/meter-1"


@pytest.fixture
def small(store: EventStore) -> tuple[EventStore, Factory]:
    factory = parse_factory((DATA / "factory-small.yaml").read_text())
    store.apply_factory(factory, "small.yaml")
    return store, factory


def material(name: str, ts: dt.datetime, machine: str, lot: str, qty: float, **more: Any) -> Any:
    fields = {"material": "STEEL-BAR", "lot": lot, "qty": qty, "unit": "kg", "order": "WO-T"}
    return event("material", name, ts, machine, **{**fields, **more})


def hand_built(store: EventStore, factory: Factory) -> None:
    request = WorkOrderRequest(order="WO-T", product="BRKT-1", quantity=6)
    create_order(store, factory, request, now=at("08:00"))
    release_order(store, factory, "WO-T", now=at("08:05"))
    store.append(
        [
            event("order", "s1", at("08:10"), CNC1, order="WO-T", event="started", operation=10),
            material("m1", at("08:10"), CNC1, "L1", 3.0),  # loaded as the step starts
            event("count", "c1", at("08:20"), CNC1, good=2, scrap=1, order="WO-T", operation=10),
            material("m2", at("08:25"), CNC1, "L2", 2.0),  # during the second batch
            event("count", "c2", at("08:30"), CNC1, good=3, order="WO-T", operation=10),
            # an operator moves one unit of c2 from good to scrap: a correction at c2's time
            event(
                "count",
                "c2-fix",
                at("08:30"),
                CNC1,
                good=-1,
                scrap=1,
                order="WO-T",
                operation=10,
                corrects="c2",
                by="operator-7",
            ),
            event("count", "x1", at("08:35"), CNC1, good=9, order="WO-OTHER", operation=10),
            material("x2", at("08:36"), CNC1, "LX", 9.0, order="WO-OTHER"),
            event("count", "c3", at("08:40"), CNC2, good=1, order="WO-T", operation=10),
            event("count", "r1", at("08:50"), ROBOT1, good=5, order="WO-T", operation=20),
            material("m3", at("09:00"), CNC1, "L3", 1.0),  # after the machine's last batch
            material("m4", at("09:01"), METER, "P1", 0.5, material="PAINT", unit="l"),
            event("order", "k1", at("09:10"), ROBOT1, order="WO-T", event="completed"),
            # a late report, after the order's completion
            event("count", "r2", at("09:30"), ROBOT1, good=0, scrap=1, order="WO-T", operation=20),
        ]
    )


def test_batches_times_corrections_and_lots_by_the_rules(
    small: tuple[EventStore, Factory],
) -> None:
    store, factory = small
    hand_built(store, factory)
    found = trace_order(store, factory, "WO-T")
    rows = [
        (b.operation, b.machine, b.start, b.end, b.good, b.scrap, [u.lot for u in b.lots])
        for b in found.batches
    ]
    assert rows == [
        (10, CNC1, at("08:10"), at("08:20"), 2, 1, ["L1"]),  # starts at the step's start
        (10, CNC1, at("08:20"), at("08:30"), 2, 1, ["L2", "L3"]),  # correction folded in
        (10, CNC2, at("08:10"), at("08:40"), 1, 0, []),  # no start on cnc-2: the step's first
        (20, ROBOT1, at("08:05"), at("08:50"), 5, 0, []),  # step never started: the release
        (20, ROBOT1, at("08:50"), at("09:30"), 0, 1, []),  # counted after completion: kept
    ]
    assert [b.operation_name for b in found.batches] == ["Machine"] * 3 + ["Unload"] * 2
    assert [(u.material, u.lot, u.machine) for u in found.unassigned] == [("PAINT", "P1", METER)]
    assert [(lot.material, lot.lot, lot.qty, lot.unit) for lot in found.lots()] == [
        ("PAINT", "P1", 0.5, "l"),
        ("STEEL-BAR", "L1", 3.0, "kg"),
        ("STEEL-BAR", "L2", 2.0, "kg"),
        ("STEEL-BAR", "L3", 1.0, "kg"),
    ]
    sources = [(s.lot, s.operation, s.machine) for s in found.lot_sources()]
    assert sources == [("L1", 10, CNC1), ("L2", 10, CNC1), ("L3", 10, CNC1), ("P1", None, METER)]
    steps = [
        (s.operation, s.machine, s.batches, s.start, s.end, s.good, s.scrap) for s in found.steps()
    ]
    assert steps == [
        (10, CNC1, 2, at("08:10"), at("08:30"), 4, 2),
        (10, CNC2, 1, at("08:10"), at("08:40"), 1, 0),
        (20, ROBOT1, 2, at("08:05"), at("09:30"), 5, 1),
    ]
    document = found.to_json()
    assert (document["order"], document["status"], document["good"], document["scrap"]) == (
        "WO-T",
        "completed",
        5,
        3,
    )
    assert document["batches"][0]["start"] == "2026-11-23T00:10:00.000Z"
    assert document["unassigned_lots"][0]["lot"] == "P1"


def test_unknown_order(small: tuple[EventStore, Factory]) -> None:
    store, factory = small
    with pytest.raises(NotFoundError, match=r"^order: 'WO-NONE' is not a known work order"):
        trace_order(store, factory, "WO-NONE")


def test_an_order_not_yet_started_has_no_batches(small: tuple[EventStore, Factory]) -> None:
    store, factory = small
    create_order(
        store,
        factory,
        WorkOrderRequest(order="WO-N", product="BRKT-1", quantity=2),
        now=at("08:00"),
    )
    found = trace_order(store, factory, "WO-N")
    assert (found.batches, found.unassigned, found.lots(), found.steps()) == ((), (), [], [])


@pytest.fixture
def food(store: EventStore) -> tuple[EventStore, Factory]:
    scenario = load_scenario("food-line")
    store.apply_factory(scenario.factory, scenario.factory_source)
    store.append(simulated())
    return store, scenario.factory


def test_a_simulated_order_traced_along_its_route(food: tuple[EventStore, Factory]) -> None:
    store, factory = food
    events = simulated()
    done = next(v for v in list_orders(store, factory) if v.status == "completed")
    found = trace_order(store, factory, done.order)
    # every count of the order is in exactly one batch, step by step
    counted: dict[int | None, list[int]] = defaultdict(lambda: [0, 0])
    for e in events:
        if isinstance(e, PartCount) and e.order == done.order:
            counted[e.operation][0] += e.good
            counted[e.operation][1] += e.scrap
    traced: dict[int | None, list[int]] = defaultdict(lambda: [0, 0])
    for b in found.batches:
        traced[b.operation][0] += b.good
        traced[b.operation][1] += b.scrap
        assert b.start is not None and b.start <= b.end
    assert traced == counted
    assert [b.operation for b in found.batches] == sorted(b.operation or 0 for b in found.batches)
    assert [s.operation for s in found.steps()] == [10, 20, 30, 40, 50, 60, 70]
    # the route: each step starts where the simulator said it started
    started = {
        e.operation: e.ts
        for e in events
        if isinstance(e, OrderEvent) and e.order == done.order and e.event.value == "started"
    }
    assert {s.operation: s.start for s in found.steps()} == started
    # the lots: what the simulator consumed for the order, all loaded at the first step
    consumed: dict[tuple[str, str | None], float] = defaultdict(float)
    for e in events:
        if isinstance(e, MaterialConsumption) and e.order == done.order:
            consumed[(e.material, e.lot)] += e.qty
    assert {(lot.material, lot.lot): lot.qty for lot in found.lots()} == pytest.approx(consumed)
    assert found.batches[0].lots and all(not b.lots for b in found.batches[1:])
    assert found.unassigned == ()


def test_trace_from_the_cli(food: tuple[EventStore, Factory]) -> None:
    store, factory = food
    done = next(v for v in list_orders(store, factory) if v.status == "completed")
    document = json.loads(invoke("trace", done.order, "--json", "--db", store.url))
    assert document["order"] == done.order
    assert sum(b["good"] for b in document["batches"] if b["operation"] == 70) == done.good
    lot = document["lots"][0]["lot"]
    table = flat(invoke("trace", done.order, "--db", store.url))
    assert f"Work order 工單 {done.order}" in table and "Genealogy 追溯" in table and lot in table
    steps = flat(invoke("trace", done.order, "--steps", "--db", store.url))
    assert "Inspect seal and label" in steps and "Lots 物料批次" in steps
