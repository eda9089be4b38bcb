"""Times across the store boundary: UtcDateTime, newest_ts(), the plant clock, the write path.

Every test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from sqlalchemy import insert, select

from microfab.model.events import format_ts
from microfab.model.identity import Role
from microfab.store import EventStore, schema
from microfab.store.audit import audit_records
from microfab.store.identity import add_user, set_password
from test_event_store import CNC1, at, count, state

HK = zoneinfo.ZoneInfo("Asia/Hong_Kong")


def test_a_time_in_any_zone_is_stored_as_utc_and_read_back_aware(store: EventStore) -> None:
    """SQLite keeps no zone: without UtcDateTime an aware +08:00 time would be stored as its
    local wall time and read back eight hours off."""
    first = dt.datetime(2026, 11, 23, 9, 30, 0, 123456, tzinfo=HK)
    last = first + dt.timedelta(hours=2)
    store.flag_unknown_machines({"hk/a/l/c/ghost": (first, last, 3)})
    [(machine, stored_first, stored_last, n)] = store.unknown_machines()
    assert (machine, stored_first, stored_last, n) == ("hk/a/l/c/ghost", first, last, 3)
    assert stored_first.tzinfo is dt.UTC and stored_last.tzinfo is dt.UTC
    assert stored_first.hour == 1  # 09:30 HKT is 01:30 UTC


def test_a_naive_time_is_taken_as_utc(store: EventStore) -> None:
    naive = dt.datetime(2026, 11, 23, 1, 30)
    with store.transaction() as conn:
        conn.execute(
            insert(schema.dead_letters).values(
                key="k", received_at=naive, source="mqtt", topic="t", payload="p", reason="r"
            )
        )
        stored = conn.scalar(select(schema.dead_letters.c.received_at))
    assert stored == naive.replace(tzinfo=dt.UTC)
    assert store.dead_letters()[0].received_at == naive.replace(tzinfo=dt.UTC)


def test_a_range_bound_in_local_time_selects_by_instant(store: EventStore) -> None:
    store.append([count("c1", 10, 1), count("c2", 70, 1)])
    boundary = at(30).astimezone(HK)
    with store.engine.connect() as conn:
        ids = conn.scalars(select(schema.events.c.id).where(schema.events.c.ts >= boundary)).all()
    assert ids == ["c2"]


def test_newest_ts_is_the_latest_event_time_not_the_last_appended(store: EventStore) -> None:
    assert store.newest_ts() is None
    store.append([state("s1", 50, "running"), state("s2", 20, "idle")])
    store.append([count("c1", 5, 1)])  # appended last, happened first
    newest = store.newest_ts()
    assert newest == at(50)
    assert newest is not None and newest.tzinfo is dt.UTC


def test_the_plant_clock_follows_the_data_and_is_the_wall_clock_while_empty(
    store: EventStore,
) -> None:
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    empty = store.plant_clock()
    assert before <= empty <= dt.datetime.now(dt.UTC)
    assert empty.microsecond % 1000 == 0  # to the millisecond, like every event time
    store.append([state("s1", 50, "running", machine=CNC1)])
    assert store.plant_clock() == at(50)
    assert format_ts(store.plant_clock()) == format_ts(at(50))


def test_a_failed_transaction_writes_nothing_and_frees_the_writer(store: EventStore) -> None:
    with pytest.raises(RuntimeError, match="changed my mind"), store.transaction() as conn:
        conn.execute(
            insert(schema.dead_letters).values(
                key="gone", received_at=at(0), source="mqtt", topic="t", payload="p", reason="r"
            )
        )
        raise RuntimeError("changed my mind")
    assert store.dead_letter_count() == 0
    assert store.append([count("c1", 1, 1)]).inserted == 1  # the writer lock was released


def test_audit_records_show_times_as_format_ts(store: EventStore) -> None:
    when = dt.datetime(2026, 11, 23, 9, 30, 0, 123456, tzinfo=HK)
    add_user(store, "amy", Role.VIEWER, password="correct horse 1", actor="cli:root", now=when)
    set_password(store, "amy", "correct horse 2", actor="cli:root", now=when)
    changed = [r for r in audit_records(store) if r.action == "users.password"]
    assert changed and changed[-1].after is not None
    assert '"2026-11-23T01:30:00.123Z"' in changed[-1].after
