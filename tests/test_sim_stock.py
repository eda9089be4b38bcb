"""The simulator's materials: a simulated day of the food-line-stock scenario receives
deliveries, issues and backflushes as it produces, its AGV carries the kanban transfer tasks
(assigned → acknowledged → started → done, each with its ``stock`` transfer), on hand never goes
negative, and Monday's late chicken delivery makes the picking robot wait (idle
``WAITING_MATERIAL``). The events are stored and read back by the stock read model."""

from __future__ import annotations

import datetime as dt
import shutil
from collections import defaultdict
from functools import cache
from pathlib import Path

import pytest

from microfab.connect.publisher import ListPublisher
from microfab.errors import FactoryFileError
from microfab.model.events import (
    Event,
    MachineState,
    StateChange,
    StockKind,
    StockMove,
    TaskStatus,
    TransferTaskUpdate,
)
from microfab.sim.engine import FactorySimulation
from microfab.sim.scenario import SCENARIO_DIR, load_scenario
from microfab.stock.agv import task_board
from microfab.store import open_store
from microfab.store.stock import on_hand

SCENARIO = "food-line-stock"
HK = dt.timezone(dt.timedelta(hours=8))


@cache
def day(seed: int = 1) -> tuple[Event, ...]:
    publisher = ListPublisher()
    sim = FactorySimulation(load_scenario(SCENARIO), publisher, seed=seed)
    sim.run_until(86400)
    publisher.flush()
    return tuple(publisher.events)


def moves(events: tuple[Event, ...]) -> list[StockMove]:
    return [e for e in events if isinstance(e, StockMove)]


def test_a_day_receives_issues_and_backflushes() -> None:
    kinds: dict[StockKind, float] = defaultdict(float)
    for move in moves(day()):
        kinds[move.kind] += move.qty
    assert kinds[StockKind.RECEIPT] > 0
    assert kinds[StockKind.ISSUE] > 0
    assert kinds[StockKind.BACKFLUSH] > 0  # trays, from the good + scrap units picked
    issued = {m.order for m in moves(day()) if m.kind is StockKind.ISSUE}
    assert issued and None not in issued


def test_on_hand_never_goes_negative() -> None:
    balance: dict[tuple[str, str | None, str], float] = defaultdict(float)
    for move in moves(day()):
        if move.from_location is not None:
            key = (move.item, move.lot, move.from_location)
            balance[key] -= move.qty
            assert balance[key] >= -1e-6, f"{move.id} takes {key} below zero"
        if move.to_location is not None:
            balance[(move.item, move.lot, move.to_location)] += move.qty


def test_agv_tasks_run_their_course_with_a_transfer_each() -> None:
    events = day()
    statuses: dict[str, list[TaskStatus]] = defaultdict(list)
    for e in events:
        if isinstance(e, TransferTaskUpdate):
            statuses[e.task].append(e.status)
            assert e.machine.endswith("/agv-1")
    full = [TaskStatus.ASSIGNED, TaskStatus.ACKNOWLEDGED, TaskStatus.STARTED, TaskStatus.DONE]
    done = {task for task, seq in statuses.items() if seq == full}
    assert len(done) >= 5
    for seq in statuses.values():  # the rest are still on their way at the end of the day
        assert seq == full[: len(seq)]
    transfers = [m for m in moves(events) if m.kind is StockKind.TRANSFER]
    assert {m.ref for m in transfers} == done
    assert {m.by for m in transfers} == {"agv-1"}
    assert {m.to_location for m in transfers} == {"ls-meal-1"}
    assigned = {e.task: e for e in events if isinstance(e, TransferTaskUpdate) and e.item}
    for task in done:
        carried = sum(m.qty for m in transfers if m.ref == task)
        assert abs(carried - (assigned[task].qty or 0)) < 1e-6


def test_the_late_delivery_makes_the_line_wait_for_material() -> None:
    events = day()
    chicken = [
        m for m in moves(events) if m.kind is StockKind.RECEIPT and m.item == "CHICKEN-THIGH"
    ]
    late = [m for m in chicken if m.ref and m.ref.startswith("PO-")]
    stamps = [m.ts.astimezone(HK).strftime("%a %H:%M") for m in late]
    assert stamps == ["Mon 09:00", "Tue 07:00"]  # Monday's was due at 07:00, 2 h late
    waits = [
        e
        for e in events
        if isinstance(e, StateChange)
        and e.machine.endswith("/robot-1")
        and e.state is MachineState.IDLE
        and e.reason == "WAITING_MATERIAL"
    ]
    assert waits
    assert waits[0].ts < late[0].ts


def test_same_seed_same_stock_events() -> None:
    publisher = ListPublisher()
    sim = FactorySimulation(load_scenario(SCENARIO), publisher, seed=1)
    sim.run_until(86400)
    publisher.flush()
    assert moves(tuple(publisher.events)) == moves(day())


def test_the_store_reads_the_simulated_stock(tmp_path: Path) -> None:
    scenario = load_scenario(SCENARIO)
    events = [e for e in day() if isinstance(e, StockMove | TransferTaskUpdate)]
    with open_store(f"sqlite:///{tmp_path / 'sim.db'}") as store:
        store.apply_factory(scenario.factory, SCENARIO)
        assert store.append(events).inserted == len(events)
        rows = on_hand(store)
        assert rows and all(row.qty > 0 for row in rows)
        line_side = {row.item for row in rows if row.location == "ls-meal-1"}
        assert "CHICKEN-THIGH" in line_side
        board = task_board(store)
        assert {row.status for row in board} <= {"done", "started", "acknowledged"}
        assert sum(row.status == "done" for row in board) >= 5


def test_a_stock_section_naming_an_unknown_item_is_located(tmp_path: Path) -> None:
    folder = tmp_path / "kitchen"
    shutil.copytree(SCENARIO_DIR / SCENARIO, folder)
    behaviour = folder / "behaviour.yaml"
    text = behaviour.read_text(encoding="utf-8")
    behaviour.write_text(
        text.replace("{item: CHICKEN-THIGH, day: 1, hours: 2}", "{item: DUCK, day: 1, hours: 2}"),
        encoding="utf-8",
    )
    with pytest.raises(FactoryFileError) as caught:
        load_scenario(str(folder))
    line = text.splitlines().index("    - {item: CHICKEN-THIGH, day: 1, hours: 2}") + 1
    assert f"behaviour.yaml:{line}" in str(caught.value)
    assert "'DUCK' is not an item" in str(caught.value)
