"""The store's bulk write path against SQLAlchemy's: the same stored text, the same events read back.

``EventStore.append`` hands the driver plain values (SQLite: executemany; PostgreSQL: binary COPY
into a staging table, then INSERT … SELECT … ON CONFLICT DO NOTHING). These tests pin that what it
stores is exactly what SQLAlchemy Core stores for the same values (as the store wrote before), that
rows written either way read back the same, and its rarer branches: another writer storing the same
ids in between, a failed first append, a driver error outside SQLAlchemy.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, insert, select, text
from sqlalchemy import exc as sa_exc

from microfab.model.events import (
    EVENT_SCHEMA_VERSION,
    MAX_COUNT,
    Event,
    digest_of,
    event_to_dict,
    json_encoder,
    split_body,
)
from microfab.store import EventStore, open_store, schema
from microfab.store import writer as store_module
from microfab.store.schema import sqlite_time
from test_event_store import CNC1, METER1, at, count, energy, make, order, state
from test_ingest import refuse_in_database

COLUMNS = ("id", "ts", "ingest_ts", "machine", "stream", "schema_version", "body", "digest")


def variety(prefix: str) -> list[Event]:
    """Events of every stream, with the fields that are easy to store wrongly."""
    return [
        state(f"{prefix}-s", 0.001, "unplanned_stop", reason="UB-MÉCH 機"),
        count(f"{prefix}-c", 1, 12, 1, order="WO-1", operation=10),
        energy(f"{prefix}-e", 2.5, 1234.5678),
        make("telemetry", f"{prefix}-t", 3, metrics={"temp_c": 41.25, "溫度": -1e-7, "rpm": 1e15}),
        order(
            f"{prefix}-o",
            4,
            "WO-1",
            "released",
            product="BRKT-1",
            quantity=20,
            options={"finish": "anodised"},
            due="2026-11-30T18:00:00.123+08:00",
        ),
        make("energy", f"{prefix}-g", 5, METER1, carrier="towngas", quantity=3.5, unit="MJ"),
        make("material", f"{prefix}-x", 6, material="AL-6061", lot=None, qty=1.25, unit="kg"),
        state(f"{prefix}-old", -(10**6), "idle", machine=CNC1),  # about two years earlier
    ]


def insert_as_sqlalchemy(store: EventStore, events: list[Event], now: dt.datetime) -> None:
    """Store events the way the store did before its bulk path: SQLAlchemy Core, dict rows."""
    rows = []
    for ev in events:
        data = event_to_dict(ev)
        rows.append(
            {
                "id": ev.id,
                "ts": ev.ts,
                "ingest_ts": now,
                "machine": ev.machine,
                "stream": ev.stream,
                "schema_version": EVENT_SCHEMA_VERSION,
                "body": split_body(data),
                "digest": digest_of(data),
            }
        )
    with store.engine.begin() as conn:
        conn.execute(insert(schema.events), rows)


def raw_rows(store: EventStore, prefix: str) -> dict[str, tuple[Any, ...]]:
    """Each stored row of ``prefix`` as the database holds it (text), keyed by id less prefix."""
    cast = "{}" if store.dialect == "sqlite" else "{}::text"
    columns = ", ".join(cast.format(c) for c in COLUMNS)
    with store.engine.connect() as conn:
        rows = conn.execute(
            text(f"SELECT {columns} FROM events WHERE id LIKE :prefix ORDER BY id"),
            {"prefix": f"{prefix}-%"},
        ).all()
    return {row[0].removeprefix(prefix): tuple(row[1:]) for row in rows}


def test_bulk_rows_are_stored_exactly_as_sqlalchemy_stores_them(store: EventStore) -> None:
    now = dt.datetime.now(dt.UTC)
    insert_as_sqlalchemy(store, variety("core"), now)
    store.append(variety("bulk"))
    core, bulk = raw_rows(store, "core"), raw_rows(store, "bulk")
    assert core.keys() == bulk.keys() and len(core) == len(variety("x"))
    ts, ingest, digest, body = (COLUMNS.index(c) - 1 for c in ("ts", "ingest_ts", "digest", "body"))
    skipped = (ingest, digest, body)
    for key in core:  # the same text, but for the ingest time, the id's digest and the body
        assert [v for i, v in enumerate(core[key]) if i not in skipped] == [
            v for i, v in enumerate(bulk[key]) if i not in skipped
        ], key
        # the body: the same JSON value; the bulk path writes it compact (msgspec), SQLAlchemy
        # with json.dumps' spaces, and every read parses it
        assert json.loads(bulk[key][body]) == json.loads(core[key][body]), key
        assert ": " not in bulk[key][body] and ", " not in bulk[key][body], key
        if store.dialect == "sqlite":
            assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}", bulk[key][ingest])
    for prefix, rows in (("core", core), ("bulk", bulk)):
        for ev in variety(prefix):
            assert rows[ev.id.removeprefix(prefix)][digest] == digest_of(event_to_dict(ev))
    if store.dialect == "sqlite":  # SQLAlchemy's DateTime text, on both paths
        assert core["-s"][ts] == bulk["-s"][ts] == "2026-11-23 00:00:00.060000"


def test_rows_written_either_way_read_back_the_same(store: EventStore) -> None:
    now = dt.datetime.now(dt.UTC)
    insert_as_sqlalchemy(store, variety("core"), now)
    store.append(variety("bulk"))
    stored = {s.event.id: s for s in store.events()}
    for ev in variety("bulk"):
        core_id = ev.id.replace("bulk", "core", 1)
        assert stored[ev.id].event == ev
        assert event_to_dict(stored[core_id].event) == {**event_to_dict(ev), "id": core_id}
        assert stored[core_id].ingest_ts == now
        assert stored[ev.id].ingest_ts.utcoffset() == dt.timedelta(0)
    # Events stored by the old path are judged by the same digests: duplicates, not conflicts.
    result = store.append(variety("core"))
    assert (result.inserted, result.duplicates, result.conflicts) == (0, len(variety("x")), [])


def test_the_ingest_time_is_the_commit_batch_time(store: EventStore) -> None:
    before = dt.datetime.now(dt.UTC)
    store.append([count("c1", 1, 1), count("c2", 2, 1)])
    after = dt.datetime.now(dt.UTC)
    times = {s.ingest_ts for s in store.events()}
    assert len(times) == 1 and before <= times.pop() <= after


SQLITE = create_engine("sqlite://").dialect
BIND_TIME = schema.events.c.ts.type.dialect_impl(SQLITE).bind_processor(SQLITE)


@settings(max_examples=300, deadline=None)
@given(st.datetimes(timezones=st.just(dt.UTC) | st.none()))
def test_sqlite_time_text_is_sqlalchemys(value: dt.datetime) -> None:
    assert BIND_TIME is not None
    assert sqlite_time(value) == BIND_TIME(value)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text()
    | st.just("lone \ud800 surrogate"),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(), json_values))
def test_json_encoder_writes_what_json_dumps_writes(value: dict[str, Any]) -> None:
    canonical = json_encoder(sort_keys=True, separators=(",", ":"))
    assert canonical(value) == json.dumps(value, sort_keys=True, separators=(",", ":"))
    assert json_encoder()(value) == json.dumps(value)


# ------------------------------------------------------------------------------ rarer branches


def test_ids_another_writer_stored_after_the_look_up_are_judged_by_content(
    store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite looks ids up before inserting; another process may store some of them in between.
    ON CONFLICT skips those, and they are judged like any stored id (PostgreSQL always works so:
    it learns what it inserted from RETURNING)."""
    store.append([count("same", 1, 5), count("other", 2, 5)])
    monkeypatch.setattr(store_module, "_stored_digests", lambda conn, ids: {})
    result = store.append([count("same", 1, 5), count("other", 2, 7), count("new", 3, 1)])
    assert (result.inserted, result.inserted_ids, result.duplicates) == (1, ["new"], 1)
    assert [c.id for c in result.conflicts] == ["other"]
    assert store.count() == 3
    assert {m.machine: m.good for m in store.machine_status()} == {CNC1: 11}


def test_a_failed_first_append_leaves_the_store_usable(db_url: str) -> None:
    """On PostgreSQL the first append of a connection creates the staging table; when that
    transaction rolls back, the table goes with it and the next append must create it again."""
    with open_store(db_url) as store:
        refuse_in_database(store, "bad")
        with pytest.raises(sa_exc.DBAPIError, match="refused by a site rule"):
            store.append([count("ok-1", 1, 1), count("bad", 2, 1)])
        assert store.append([count("ok-1", 1, 1), count("ok-2", 2, 1)]).inserted == 2
        assert store.append([count("ok-3", 3, 1)]).inserted == 1
        assert [m.good for m in store.machine_status()] == [3]


@pytest.mark.postgres
def test_a_driver_error_during_copy_is_wrapped_like_any_other(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from conftest import pg_create_database, pg_drop_database

    url = pg_create_database()
    try:
        with open_store(url) as store:
            monkeypatch.setattr(store_module, "_PG_COPY", "COPY no_such_table FROM STDIN")
            with pytest.raises(sa_exc.ProgrammingError, match="no_such_table"):
                store.append([count("c1", 1, 1)])
            monkeypatch.undo()
            assert store.append([count("c1", 1, 1)]).inserted == 1
    finally:
        pg_drop_database(url)


@pytest.mark.postgres
def test_a_connection_lost_outside_sqlalchemy_is_store_unavailable() -> None:
    from conftest import pg_create_database, pg_drop_database

    url = pg_create_database()
    try:
        with open_store(url) as store:
            with store.engine.connect() as conn:
                dbapi = conn.connection.driver_connection
                assert isinstance(dbapi, psycopg.Connection)
                with psycopg.connect(url) as other:
                    other.execute("SELECT pg_terminate_backend(%s)", [dbapi.info.backend_pid])
                with pytest.raises(psycopg.OperationalError) as caught:
                    dbapi.execute("SELECT 1")
                error = store_module._driver_error(conn, caught.value, "SELECT 1")
                # what EventStore._begin turns into StoreUnavailableError, which ingest retries
                assert isinstance(error, sa_exc.OperationalError)
                assert error.connection_invalidated and conn.invalidated
            assert store.append([count("c1", 1, 1)]).inserted == 1  # on a new connection
    finally:
        pg_drop_database(url)


def test_reading_back_selects_every_column(store: EventStore) -> None:
    store.append([state("s1", 0, "running")])
    with store.engine.connect() as conn:
        row = conn.execute(select(schema.events)).mappings().one()
    assert row["schema_version"] == EVENT_SCHEMA_VERSION
    assert row["digest"] == digest_of(event_to_dict(state("s1", 0, "running")))


def test_read_model_rows_keep_every_value_type(store: EventStore) -> None:
    """Read-model rows are written back as plain SQL (PostgreSQL: one UPDATE over arrays): big
    totals stay BIGINT, NULLs stay NULL, text is not cut, times stay UTC instants."""
    big = MAX_COUNT  # the largest count one event may carry; enough of them pass 32 bits
    many = 2**31 // big + 1
    long_order = "WO-" + "長" * 61
    store.append(
        [count(f"c{i}", 1, big, big, order=long_order) for i in range(many)]
        + [state("s1", 2, "setup")]
    )
    store.append([count("c-last", 3, big, 1), energy("k1", 4, 0.1 + 0.2)])
    cnc = {m.machine: m for m in store.machine_status()}[CNC1]
    assert (cnc.good, cnc.scrap, cnc.events) == ((many + 1) * big, many * big + 1, many + 2)
    assert cnc.good > 2**31
    assert (cnc.state, cnc.reason, cnc.kwh) == ("setup", None, None)
    assert cnc.order == long_order
    assert cnc.last_ts == at(3) and cnc.state_ts == at(2)
    meter = {m.machine: m for m in store.machine_status()}[METER1]
    assert (meter.kwh, meter.state, meter.good) == (0.1 + 0.2, None, 0)
    (wo,) = store.order_status()
    assert (wo.good, wo.scrap, wo.status, wo.product, wo.released_ts) == (
        many * big,
        many * big,
        "in_progress",
        None,
        None,
    )
