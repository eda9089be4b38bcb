"""The event store on SQLite and PostgreSQL: idempotent append, ordered reads, read models."""

from __future__ import annotations

import datetime as dt
import itertools
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from microfab.errors import StoreUnavailableError
from microfab.model.events import (
    Event,
    MachineState,
    event_digest,
    event_from_dict,
    event_to_dict,
)
from microfab.model.factory_file import parse_factory
from microfab.store import EventStore, IdConflict, open_store

CNC1 = "kt/plant/line1/machining/cnc-1"
ROBOT1 = "kt/plant/line1/machining/robot-1"
METER1 = "kt/plant/line1/utility/meter-1"
T0 = dt.datetime(2026, 11, 23, 0, 0, tzinfo=dt.UTC)
READ_MODEL_TABLES = ("events", "machine_status", "order_status", "factory_versions")


def at(minutes: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def make(stream: str, id: str, minutes: float, machine: str = CNC1, **fields: Any) -> Event:
    """An event of ``stream`` at ``minutes`` after T0 (validated like any incoming event)."""
    return event_from_dict(
        {"id": id, "ts": at(minutes), "machine": machine, "stream": stream, **fields}
    )


def state(
    id: str, minutes: float, value: str, machine: str = CNC1, reason: str | None = None
) -> Event:
    return make("state", id, minutes, machine, state=value, reason=reason)


def count(
    id: str, minutes: float, good: int, scrap: int = 0, machine: str = CNC1, **kw: Any
) -> Event:
    return make("count", id, minutes, machine, good=good, scrap=scrap, **kw)


def energy(id: str, minutes: float, kwh: float, machine: str = METER1) -> Event:
    return make("energy", id, minutes, machine, kwh=kwh)


def order(
    id: str, minutes: float, order_id: str, kind: str, machine: str = CNC1, **kw: Any
) -> Event:
    return make("order", id, minutes, machine, order=order_id, event=kind, **kw)


def exported(store: EventStore) -> list[dict[str, Any]]:
    return [event_to_dict(stored.event) for stored in store.events()]


def machine_row(store: EventStore, machine: str) -> Any:
    rows = {row.machine: row for row in store.machine_status()}
    return rows[machine]


def order_row(store: EventStore, order_id: str) -> Any:
    rows = {row.order: row for row in store.order_status()}
    return rows[order_id]


# ------------------------------------------------------------------------------ append


def test_empty_store(store: EventStore) -> None:
    assert store.count() == 0
    assert store.last_seq() == 0
    assert list(store.events()) == []
    assert store.machine_status() == []
    assert store.order_status() == []
    assert store.factory() is None
    result = store.append([])
    assert (result.inserted, result.duplicates, result.conflicts) == (0, 0, [])


def test_append_and_count(store: EventStore) -> None:
    batch = [state("s1", 0, "running"), count("c1", 1, 5), energy("e1", 2, 10.0)]
    result = store.append(batch)
    assert result.inserted == 3
    assert result.duplicates == 0
    assert result.conflicts == []
    assert result.inserted_ids == ["s1", "c1", "e1"]
    assert store.count() == 3
    result = store.append([count("c2", 3, 1)])
    assert (result.inserted, result.inserted_ids) == (1, ["c2"])
    assert store.count() == 4
    assert store.last_seq() >= 4


def test_duplicate_with_same_content_is_ignored(store: EventStore) -> None:
    first = count("c1", 1, 5, order="WO-1", operation=10)
    store.append([first])
    # The same content, spelt differently (other key order, time in HKT), is the same event.
    again = event_from_dict(
        {
            "operation": 10,
            "order": "WO-1",
            "scrap": 0,
            "good": 5,
            "stream": "count",
            "machine": CNC1,
            "ts": "2026-11-23T08:01:00+08:00",
            "id": "c1",
        }
    )
    assert again == first
    result = store.append([again, count("c2", 2, 1)])
    assert result.inserted == 1
    assert result.inserted_ids == ["c2"]
    assert result.duplicates == 1
    assert result.conflicts == []
    assert store.count() == 2
    assert machine_row(store, CNC1).good == 6, "a duplicate must not be counted twice"


def test_duplicate_within_one_batch(store: EventStore) -> None:
    ev = count("c1", 1, 5)
    result = store.append([ev, count("c2", 2, 1), ev, ev])
    assert result.inserted == 2
    assert result.duplicates == 2
    assert result.conflicts == []
    assert store.count() == 2
    assert machine_row(store, CNC1).good == 6


def test_conflicting_content_is_rejected(store: EventStore) -> None:
    original = count("c1", 1, 5)
    store.append([original])
    changed = count("c1", 1, 7)
    result = store.append([changed, count("c2", 2, 1)])
    assert result.inserted == 1
    assert result.duplicates == 0
    assert result.conflicts == [
        IdConflict(
            id="c1", stored_digest=event_digest(original), offered_digest=event_digest(changed)
        )
    ]
    stored = {s.event.id: s.event for s in store.events()}
    assert stored["c1"] == original, "the first stored content must be kept"
    assert machine_row(store, CNC1).good == 6


def test_conflict_within_one_batch_keeps_the_first(store: EventStore) -> None:
    first, second = state("s1", 0, "running"), state("s1", 0, "idle")
    result = store.append([first, second, first])
    assert result.inserted == 1
    assert result.duplicates == 1
    assert result.conflicts == [IdConflict("s1", event_digest(first), event_digest(second))]
    assert [s.event for s in store.events()] == [first]
    assert machine_row(store, CNC1).state == "running"


# ------------------------------------------------------------------------------ reads


def test_events_are_ordered_by_ts_then_id_and_round_trip(store: EventStore) -> None:
    batch = [
        count("b", 5, 1, order="WO-1", operation=10),
        state("z", 1, "unplanned_stop", reason="UB-MECH"),
        state("a", 5, "running"),
        energy("m", 0.001, 12.5),
        make("telemetry", "t", 3, metrics={"spindle_rpm": 12000.0, "temp_c": 41.25}),
        order(
            "o",
            3,
            "WO-1",
            "released",
            product="BRKT-1",
            quantity=20,
            options={"finish": "anodised"},
            due="2026-11-30T18:00:00+08:00",
        ),
        make("energy", "g", 4, METER1, carrier="towngas", quantity=3.5, unit="MJ"),
        make("material", "x", 4, material="AL-6061", lot="L1", qty=1.25, unit="kg", order="WO-1"),
    ]
    store.append(batch)
    stored = list(store.events())
    expected = sorted(batch, key=lambda e: (e.ts, e.id))
    assert [s.event.id for s in stored] == ["m", "z", "o", "t", "g", "x", "a", "b"]
    assert [s.event for s in stored] == expected
    assert [event_to_dict(s.event) for s in stored] == [event_to_dict(e) for e in expected]
    assert all(s.event.ts.utcoffset() == dt.timedelta(0) for s in stored)
    assert all(s.ingest_ts.tzinfo is not None for s in stored)
    assert len({s.seq for s in stored}) == len(batch)
    assert list(store.events(limit=3)) == stored[:3]


def test_ties_on_ts_are_ordered_by_id_code_points(store: EventStore) -> None:
    ids = ["a_3", "a-2", "A0", "B", "Z9", "b", "~x", "0"]
    store.append([state(i, 1, "idle") for i in ids])
    assert [s.event.id for s in store.events()] == sorted(ids)


def test_tailing_by_seq(store: EventStore) -> None:
    first = [count("c1", 10, 1), count("c2", 0, 1)]
    store.append(first)
    mark = store.last_seq()
    second = [state("s2", 20, "idle"), state("s1", 5, "running"), count("c3", 1, 2)]
    result = store.append([*second, first[0]])
    assert result.duplicates == 1
    tail = list(store.events(by="seq", after_seq=mark))
    assert [s.event.id for s in tail] == ["s2", "s1", "c3"], "tail is in ingest order"
    assert all(s.seq > mark for s in tail)
    assert [s.seq for s in tail] == sorted(s.seq for s in tail)
    assert tail[-1].seq == store.last_seq()
    assert list(store.events(by="seq", after_seq=store.last_seq())) == []
    everything = list(store.events(by="seq"))
    assert [s.event.id for s in everything] == ["c1", "c2", "s2", "s1", "c3"]
    assert [s.seq for s in store.events(by="seq", after_seq=mark, limit=2)] == [
        s.seq for s in tail[:2]
    ]


# ------------------------------------------------------------------------------ machine status


@pytest.mark.parametrize("reverse", [False, True], ids=["in-order", "reversed"])
def test_machine_status_latest_state(store: EventStore, reverse: bool) -> None:
    events = [
        state("s-1", 0, "running"),
        state("s-2", 10, "unplanned_stop", reason="UB-MECH"),
        state("s-0", 20, "idle"),  # latest by ts, smallest id
        state("r-b", 5, "running", ROBOT1),
        state("r-a", 5, "setup", ROBOT1),  # same ts: the larger id (r-b) wins
    ]
    for ev in reversed(events) if reverse else events:
        store.append([ev])  # one append per event: arrival order matters to a naive model
    cnc = machine_row(store, CNC1)
    assert (cnc.state, cnc.reason, cnc.state_ts) == ("idle", None, at(20))
    robot = machine_row(store, ROBOT1)
    assert (robot.state, robot.state_ts) == ("running", at(5))
    assert cnc.events == 3 and robot.events == 2
    assert cnc.last_ts == at(20)


def test_machine_status_reason_of_latest_state(store: EventStore) -> None:
    store.append([state("s2", 10, "unplanned_stop", reason="UB-MECH")])
    store.append([state("s1", 5, "planned_stop", reason="PB")])
    row = machine_row(store, CNC1)
    assert (row.state, row.reason) == ("unplanned_stop", "UB-MECH")


def test_machine_status_counts_and_energy(store: EventStore) -> None:
    store.append([count("c1", 1, 10, 1), count("c2", 2, 5, 0), energy("k2", 30, 150.0)])
    store.append([count("c3", 3, 7, 2), energy("k1", 10, 100.0), energy("k3", 20, 120.0)])
    store.append([count("c1", 1, 10, 1)])  # a duplicate adds nothing
    cnc = machine_row(store, CNC1)
    assert (cnc.good, cnc.scrap) == (22, 3)
    assert cnc.kwh is None
    meter = machine_row(store, METER1)
    assert meter.kwh == 150.0, "the reading with the latest ts wins, not the last to arrive"
    assert (meter.good, meter.scrap, meter.events) == (0, 0, 3)
    assert meter.last_ts == at(30)


def test_machine_status_current_order(store: EventStore) -> None:
    store.append([count("c2", 20, 1, order="WO-2"), count("c1", 10, 1, order="WO-1")])
    assert machine_row(store, CNC1).order == "WO-2"


# ------------------------------------------------------------------------------ order status


def test_order_lifecycle(store: EventStore) -> None:
    store.append([order("o1", 0, "WO-1", "released", product="BRKT-1", quantity=20)])
    row = order_row(store, "WO-1")
    assert (row.status, row.product, row.quantity) == ("released", "BRKT-1", 20)
    assert (row.released_ts, row.completed_ts) == (at(0), None)

    store.append([order("o2", 1, "WO-1", "started", operation=10)])
    row = order_row(store, "WO-1")
    assert row.status == "in_progress"
    assert (row.operation, row.machine) == (10, CNC1)

    store.append([count("c1", 2, 12, 1, order="WO-1", operation=10)])
    store.append([order("o3", 3, "WO-1", "completed", operation=10)])
    row = order_row(store, "WO-1")
    assert row.status == "in_progress", "completing one operation does not complete the order"
    assert row.completed_ts is None
    assert (row.good, row.scrap) == (12, 1)

    store.append([order("o4", 4, "WO-1", "started", ROBOT1, operation=20)])
    row = order_row(store, "WO-1")
    assert (row.operation, row.machine) == (20, ROBOT1)

    store.append([order("o5", 5, "WO-1", "completed", ROBOT1)])
    row = order_row(store, "WO-1")
    assert row.status == "completed"
    assert row.completed_ts == at(5)
    assert (row.product, row.quantity) == ("BRKT-1", 20), "product and quantity come from release"
    assert row.released_ts == at(0)

    # A late count from the shop floor does not reopen a completed order.
    store.append([count("c2", 6, 1, order="WO-1")])
    row = order_row(store, "WO-1")
    assert (row.status, row.good) == ("completed", 13)


def test_order_created_then_released_then_cancelled(store: EventStore) -> None:
    store.append([order("o1", 0, "WO-2", "created", product="BRKT-1", quantity=5, priority=2)])
    row = order_row(store, "WO-2")
    assert (row.status, row.product, row.quantity, row.released_ts) == (
        "created",
        "BRKT-1",
        5,
        None,
    )
    store.append([order("o2", 1, "WO-2", "released", product="BRKT-1", quantity=6)])
    row = order_row(store, "WO-2")
    assert (row.status, row.quantity, row.released_ts) == ("released", 6, at(1))
    store.append([order("o3", 2, "WO-2", "cancelled")])
    assert order_row(store, "WO-2").status == "cancelled"
    # a late count does not bring a cancelled order back
    store.append([count("c1", 3, 1, order="WO-2")])
    assert order_row(store, "WO-2").status == "cancelled"


def test_order_status_out_of_order_release(store: EventStore) -> None:
    store.append([count("c1", 5, 3, order="WO-9", operation=10)])
    row = order_row(store, "WO-9")
    assert (row.status, row.product, row.released_ts) == ("in_progress", None, None)
    store.append([order("o1", 0, "WO-9", "released", product="BRKT-1", quantity=4)])
    row = order_row(store, "WO-9")
    assert (row.status, row.product, row.quantity, row.released_ts) == (
        "in_progress",
        "BRKT-1",
        4,
        at(0),
    )
    assert [r.order for r in store.order_status()] == ["WO-9"]


def test_order_current_operation_does_not_depend_on_arrival(store: EventStore) -> None:
    """The order's current operation is its latest operation event, whatever arrived first.

    Regression: ``update_order_status`` once compared an operation event's ts with ``last_ts``,
    which a later count event had already raised, so an operation event arriving after a later
    count was dropped.
    """
    store.append([count("c1", 2, 1, order="WO-1")])
    store.append([order("o1", 1, "WO-1", "started", operation=10)])
    row = order_row(store, "WO-1")
    assert (row.operation, row.machine) == (10, CNC1), (
        "BUG: order_status.operation ignores an operation event that arrives after a later "
        f"count event of the same order (got operation={row.operation}, machine={row.machine})"
    )


@pytest.mark.parametrize("second", ["amended", "original"], ids=["amended-last", "original-last"])
def test_order_release_does_not_depend_on_arrival(store: EventStore, second: str) -> None:
    """An order released twice (amended) shows the same product and quantity whatever arrived last.

    Regression: ``update_order_status`` once took ``product``/``quantity`` from whichever
    release event was appended last, so the read model depended on arrival order.
    """
    original = order("o1", 0, "WO-1", "released", product="BRKT-1", quantity=20)
    amended = order("o2", 3, "WO-1", "released", product="BRKT-2", quantity=25)
    first, last = (original, amended) if second == "amended" else (amended, original)
    store.append([first])
    store.append([last])
    row = order_row(store, "WO-1")
    assert row.released_ts == at(0)
    assert (row.product, row.quantity) == ("BRKT-2", 25), (
        "BUG: product/quantity of a re-released order come from the release that arrived last, "
        f"not from the latest release (got {row.product}, {row.quantity} with the {second} "
        "release appended last)"
    )


# ------------------------------------------------------------------------------ factory versions


def test_apply_factory_versions(store: EventStore, small_factory_text: str) -> None:
    factory = parse_factory(small_factory_text)
    assert store.factory() is None
    assert store.apply_factory(factory, "factory-small.yaml") == (1, True)
    assert store.apply_factory(factory, "again.yaml") == (1, False)
    assert store.factory() == (1, factory)

    changed = parse_factory(
        small_factory_text.replace("name: Kwun Tong Test Works Ltd", "name: Kwun Tong Works Ltd")
    )
    assert changed != factory
    assert store.apply_factory(changed, "factory-small.yaml") == (2, True)
    assert store.factory() == (2, changed)
    assert store.factory(1) == (1, factory)
    assert store.apply_factory(factory, "old.yaml") == (1, False)
    assert store.factory() == (2, changed), "the newest version is returned"
    assert store.factory(3) is None


# ------------------------------------------------------------------------------ opening


def test_reopen_keeps_data(db_url: str) -> None:
    with open_store(db_url) as first:
        first.append([count("c1", 1, 5)])
    with open_store(db_url) as second:
        assert second.count() == 1
        assert machine_row(second, CNC1).good == 5


def test_unreachable_postgresql_masks_password() -> None:
    with pytest.raises(StoreUnavailableError) as caught:
        open_store("postgresql://nobody:secret@127.0.0.1:1/none")
    message = str(caught.value)
    assert "***" in message
    assert "secret" not in message
    assert "127.0.0.1" in message


def test_sqlite_in_missing_folder(tmp_path: Path) -> None:
    folder = tmp_path / "no" / "such"
    with pytest.raises(StoreUnavailableError) as caught:
        open_store(f"sqlite:///{folder}/store.db")
    assert str(folder.resolve()) in str(caught.value)
    assert not folder.exists()


# ------------------------------------------------------------------------------ property


ORDERS = ("WO-1", "WO-2")
OPERATIONS = (None, 10, 20)


@st.composite
def event_fields(draw: st.DrawFn, machines: list[str]) -> dict[str, Any]:
    """The fields of one valid event (no id) on one of ``machines``."""
    fields: dict[str, Any] = {
        "ts": at(draw(st.integers(0, 12)) + draw(st.sampled_from((0, 0.5)))),
        "machine": draw(st.sampled_from(machines)),
    }
    stream = draw(st.sampled_from(("state", "count", "energy", "order")))
    fields["stream"] = stream
    if stream == "state":
        fields["state"] = draw(st.sampled_from(list(MachineState))).value
        fields["reason"] = draw(st.sampled_from((None, "PB", "UB-MECH")))
    elif stream == "count":
        fields["good"] = draw(st.integers(0, 20))
        fields["scrap"] = draw(st.integers(0, 3))
        fields["order"] = draw(st.sampled_from((None, *ORDERS)))
        fields["operation"] = draw(st.sampled_from(OPERATIONS))
    elif stream == "energy":
        fields["kwh"] = float(draw(st.integers(0, 2000))) / 4
    else:
        kind = draw(st.sampled_from(("released", "started", "completed")))
        fields.update(order=draw(st.sampled_from(ORDERS)), event=kind)
        fields["operation"] = None if kind == "released" else draw(st.sampled_from(OPERATIONS))
        if kind == "released":
            fields["product"] = draw(st.sampled_from(("BRKT-1", "BRKT-2")))
            fields["quantity"] = draw(st.integers(1, 50))
    return fields


@st.composite
def batches(draw: st.DrawFn) -> list[Event]:
    """A batch of valid events with unique ids over 2-3 machines."""
    machines = draw(st.sampled_from(([CNC1, ROBOT1], [CNC1, ROBOT1, METER1])))
    fields = draw(st.lists(event_fields(machines), min_size=3, max_size=14))
    numbers = draw(st.permutations(range(len(fields))))
    return [
        event_from_dict({"id": f"ev-{n:02d}", **f}) for n, f in zip(numbers, fields, strict=True)
    ]


@st.composite
def deliveries(draw: st.DrawFn, batch: list[Event]) -> list[list[Event]]:
    """``batch`` with exact duplicates added, shuffled, split into one or more appends."""
    extra = draw(st.lists(st.sampled_from(batch), max_size=len(batch)))
    copies = [event_from_dict(event_to_dict(ev)) for ev in extra]  # equal content, new objects
    shuffled = draw(st.permutations([*batch, *copies]))
    cuts = sorted(set(draw(st.lists(st.integers(1, len(shuffled)), max_size=3))))
    bounds = [0, *cuts, len(shuffled)]
    return [shuffled[a:b] for a, b in itertools.pairwise(bounds) if a < b]


def snapshot(store: EventStore) -> tuple[Any, ...]:
    return (exported(store), store.machine_status(), store.order_status())


def test_append_is_order_and_duplicate_independent(
    db_url: str, store: EventStore, tmp_path: Path
) -> None:
    """Any delivery of the same events (any order, repeated, in any batches) gives one store."""
    sqlite = db_url.startswith("sqlite")
    template = tmp_path / "template.db"
    if sqlite:
        open_store(f"sqlite:///{template}").close()  # migrated once, copied per example

    @contextmanager
    def fresh() -> Iterator[EventStore]:
        if sqlite:
            path = tmp_path / f"hyp-{uuid.uuid4().hex}.db"
            shutil.copyfile(template, path)
            with open_store(f"sqlite:///{path}") as new:
                yield new
            return
        with store.engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {', '.join(READ_MODEL_TABLES)} RESTART IDENTITY"))
        yield store

    @settings(max_examples=25 if sqlite else 15, deadline=None, database=None)
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        batch = data.draw(batches(), label="batch")
        parts = data.draw(deliveries(batch), label="appends")
        with fresh() as reference:
            reference.append(batch)
            expected = snapshot(reference)
        assert expected[0] == [event_to_dict(e) for e in sorted(batch, key=lambda e: (e.ts, e.id))]
        with fresh() as target:
            inserted = duplicates = 0
            for part in parts:
                result = target.append(part)
                assert result.conflicts == []
                inserted += result.inserted
                duplicates += result.duplicates
            got = snapshot(target)
        assert (inserted, duplicates) == (len(batch), sum(map(len, parts)) - len(batch))
        assert got[0] == expected[0], "exported events differ"
        assert got[1] == expected[1], "BUG: machine_status depends on arrival order or batching"
        assert got[2] == expected[2], "BUG: order_status depends on arrival order or batching"

    check()
