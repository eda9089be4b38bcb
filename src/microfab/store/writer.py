"""The single-writer batch append: new events inserted idempotently, in one transaction.

New events are inserted with ``ON CONFLICT (id) DO NOTHING``; ids that were already stored (or
repeat in the batch) are compared by content digest and counted as duplicates (same content) or
rejected as ``id_conflict`` (different content); the read models are updated from the newly
inserted events only, in the same transaction. :class:`EventWriter` does the work inside a
transaction that :meth:`EventStore.append` opens through the store's one writer.
"""

from __future__ import annotations

import datetime as dt
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import msgspec
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, StatementError

from microfab.model.events import (
    EVENT_SCHEMA_VERSION,
    Event,
    digest_of,
    event_to_dict,
    json_encoder,
    split_body,
)
from microfab.store.change_signal import notify_in_transaction
from microfab.store.read_models import update_machine_status, update_order_status
from microfab.store.schema import sqlite_time
from microfab.store.stock import update_stock

_Pending = tuple[Event, str, dict[str, Any]]
"""An event to store, its digest and its export dict."""

_json_text = json_encoder()
_msgspec_json = msgspec.json.Encoder()


def _body_json(body: dict[str, Any]) -> str:
    """The ``body`` column's JSON text: compact, UTF-8 (msgspec writes it several times faster
    than :mod:`json`); what it cannot write goes through ``json.dumps``, the text SQLAlchemy's
    JSON type writes. Either reads back as the same value, through SQLAlchemy's JSON type and
    the databases' JSON functions alike; the digest is computed apart (``digest_of``)."""
    try:
        return _msgspec_json.encode(body).decode("utf-8")
    except (TypeError, ValueError, OverflowError):
        return _json_text(body)


_EVENT_COLUMNS = "id, ts, ingest_ts, machine, stream, schema_version, body, digest"
_SQLITE_IDS = 500
"""Ids per ``IN (…)`` look-up on SQLite (well inside its limit on bound parameters)."""
_SQLITE_INSERT = (
    f"INSERT INTO events ({_EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (id) DO NOTHING"
)
_PG_STAGING = (
    "CREATE TEMPORARY TABLE IF NOT EXISTS microfab_events_in (n integer, id text, "
    "ts timestamptz, machine text, stream text, body text, digest text) ON COMMIT DELETE ROWS"
)
"""Session-private staging table for PostgreSQL appends; emptied by every commit."""
_PG_COPY = (
    "COPY microfab_events_in (n, id, ts, machine, stream, body, digest) FROM STDIN (FORMAT BINARY)"
)
_PG_COPY_TYPES = ["int4", "text", "timestamptz", "text", "text", "text", "text"]
_PG_APPEND_LOCK = 0x6D6963726F666162
"""The transaction-scoped advisory lock every PostgreSQL append takes before it inserts (the
bytes of ``microfab``): appends then draw their sequence numbers and commit one after another,
so a sequence number is never committed after a higher one. The production projector takes in
the events past its checkpoint; without this, an append that drew seq 5 but committed after
another's seq 6 had been taken in would be passed over (docs/production.md, "Several
writers")."""
_PG_INSERT = (
    f"INSERT INTO events ({_EVENT_COLUMNS}) "
    "SELECT id, ts, %(now)s, machine, stream, %(version)s, body::json, digest "
    "FROM microfab_events_in ORDER BY n ON CONFLICT (id) DO NOTHING RETURNING id"
)


@dataclass(frozen=True, slots=True)
class IdConflict:
    """An event whose id is already stored (or repeated in the batch) with different content."""

    id: str
    stored_digest: str
    offered_digest: str


@dataclass(slots=True)
class AppendResult:
    """What one append did: how many events were new, already stored, or rejected."""

    inserted: int = 0
    duplicates: int = 0
    conflicts: list[IdConflict] = field(default_factory=list)
    inserted_ids: list[str] = field(default_factory=list)

    def merge(self, other: AppendResult) -> None:
        self.inserted += other.inserted
        self.duplicates += other.duplicates
        self.conflicts.extend(other.conflicts)
        self.inserted_ids.extend(other.inserted_ids)


def prepare(batch: Sequence[Event]) -> tuple[list[_Pending], AppendResult]:
    """The batch's events to store, each serialised once (its export dict gives both the digest
    and the stored body), and the result so far: duplicates inside the batch keep the first of
    each id and are judged by content."""
    result = AppendResult()
    unique: dict[str, _Pending] = {}
    for ev in batch:
        data = event_to_dict(ev)
        digest = digest_of(data)
        seen = unique.get(ev.id)
        if seen is None:
            unique[ev.id] = (ev, digest, data)
        elif seen[1] == digest:
            result.duplicates += 1
        else:
            result.conflicts.append(IdConflict(ev.id, seen[1], digest))
    return list(unique.values()), result


class EventWriter:
    """Inserts prepared events and updates the read models, inside the caller's transaction."""

    def __init__(self) -> None:
        self._pg_staging_ready: weakref.WeakSet[Any] = weakref.WeakSet()
        """Driver connections known to have the staging table (see _insert_postgresql)."""

    def write(
        self, conn: Connection, items: list[_Pending], result: AppendResult, now: dt.datetime
    ) -> AppendResult:
        """Insert ``items`` (from :func:`prepare`) with ingest time ``now``; counts what was new,
        already stored or in conflict into ``result``."""
        if conn.dialect.name == "postgresql":
            inserted, stored = self._insert_postgresql(conn, items, now)
        else:
            inserted, stored = _insert_sqlite(conn, items, now)
        new: list[Event] = []
        for ev, digest, _ in items:
            if ev.id in inserted:
                new.append(ev)
            elif stored.get(ev.id) == digest:
                result.duplicates += 1
            else:
                result.conflicts.append(IdConflict(ev.id, stored.get(ev.id, ""), digest))
        result.inserted = len(new)
        result.inserted_ids = [ev.id for ev in new]
        update_machine_status(conn, new)
        update_order_status(conn, new)
        if new:
            notify_in_transaction(conn)  # PostgreSQL: live views hear of it at commit
        update_stock(conn, new)
        return result

    def rolled_back(self) -> None:
        """Forget the staging tables: a rolled-back transaction may have created one."""
        self._pg_staging_ready.clear()

    # The insert bypasses SQLAlchemy's per-row parameter processing (the bulk of an append's
    # cost) and hands the driver plain values in the very form SQLAlchemy stores them: the body
    # as ``json.dumps`` text (what its JSON type writes on both back ends) and, on SQLite, times
    # as its DateTime text (``YYYY-MM-DD HH:MM:SS.ffffff``). Reads go through SQLAlchemy as ever,
    # so rows written either way read back the same.

    def _insert_postgresql(
        self, conn: Connection, items: list[_Pending], now: dt.datetime
    ) -> tuple[set[str], dict[str, str]]:
        """COPY the batch into a session-private staging table, then INSERT … SELECT … ON CONFLICT
        DO NOTHING RETURNING id: one round of statements whatever the batch size, and exactly the
        ids this transaction inserted; the stored digests of the rest are looked up."""
        dbapi = conn.connection.driver_connection
        assert dbapi is not None
        if dbapi not in self._pg_staging_ready:
            conn.exec_driver_sql(_PG_STAGING)
            self._pg_staging_ready.add(dbapi)
        try:
            with dbapi.cursor() as cursor, cursor.copy(_PG_COPY) as copy:
                copy.set_types(_PG_COPY_TYPES)
                for n, (ev, digest, data) in enumerate(items):
                    copy.write_row(
                        (
                            n,
                            ev.id,
                            ev.ts,
                            ev.machine,
                            ev.stream,
                            _body_json(split_body(data)),
                            digest,
                        )
                    )
        except conn.dialect.loaded_dbapi.Error as exc:
            raise _driver_error(conn, exc, _PG_COPY) from exc
        # held until commit: sequence numbers commit in the order they are drawn
        conn.exec_driver_sql("SELECT pg_advisory_xact_lock(%(key)s)", {"key": _PG_APPEND_LOCK})
        try:
            with dbapi.cursor() as cursor:  # the driver's own fetch: thousands of rows back
                cursor.execute(_PG_INSERT, {"now": now, "version": EVENT_SCHEMA_VERSION})
                inserted = {row[0] for row in cursor.fetchall()}
        except conn.dialect.loaded_dbapi.Error as exc:
            raise _driver_error(conn, exc, _PG_INSERT) from exc
        stored: dict[str, str] = {}
        rest = [ev.id for ev, _, _ in items if ev.id not in inserted]
        if rest:
            rows = conn.exec_driver_sql(
                "SELECT id, digest FROM events WHERE id = ANY(%(ids)s)", {"ids": rest}
            )
            stored.update((id_, digest) for id_, digest in rows)
        return inserted, stored


def _insert_sqlite(
    conn: Connection, items: list[_Pending], now: dt.datetime
) -> tuple[set[str], dict[str, str]]:
    """Insert the events whose ids are not stored yet; returns (ids inserted, stored digests
    of the other ids)."""
    stored = _stored_digests(conn, [ev.id for ev, _, _ in items])
    now_text = sqlite_time(now)
    fresh = [
        (
            ev.id,
            sqlite_time(ev.ts),
            now_text,
            ev.machine,
            ev.stream,
            EVENT_SCHEMA_VERSION,
            _body_json(split_body(data)),
            digest,
        )
        for ev, digest, data in items
        if ev.id not in stored
    ]
    inserted = {row[0] for row in fresh}
    if not fresh:
        return inserted, stored
    count = conn.exec_driver_sql(_SQLITE_INSERT, fresh).rowcount
    if count != len(fresh):
        # Another process stored some of these ids between the look-up and the insert (ON
        # CONFLICT skipped them): ours are the rows with this append's ingest time and digest.
        offered = {row[0]: row[7] for row in fresh}
        mine: set[str] = set()
        for start in range(0, len(fresh), _SQLITE_IDS):
            ids = [row[0] for row in fresh[start : start + _SQLITE_IDS]]
            marks = ", ".join("?" * len(ids))
            for id_, digest, ingest in conn.exec_driver_sql(
                f"SELECT id, digest, ingest_ts FROM events WHERE id IN ({marks})", tuple(ids)
            ):
                if ingest == now_text and digest == offered[id_]:
                    mine.add(id_)
                else:
                    stored[id_] = digest
        inserted = mine
    return inserted, stored


def _stored_digests(conn: Connection, ids: list[str]) -> dict[str, str]:
    """Digests of those of ``ids`` already stored (SQLite)."""
    found: dict[str, str] = {}
    for start in range(0, len(ids), _SQLITE_IDS):
        part = ids[start : start + _SQLITE_IDS]
        marks = ", ".join("?" * len(part))
        rows = conn.exec_driver_sql(
            f"SELECT id, digest FROM events WHERE id IN ({marks})", tuple(part)
        )
        found.update((id_, digest) for id_, digest in rows)
    return found


def _driver_error(conn: Connection, exc: Exception, statement: str) -> StatementError:
    """A driver exception raised outside SQLAlchemy, wrapped as SQLAlchemy would have wrapped it
    (and the connection invalidated when it is lost), so callers see one kind of error."""
    dialect = conn.dialect
    lost = dialect.is_disconnect(cast(Any, exc), conn.connection.dbapi_connection, None)
    if lost:
        conn.invalidate(exc)
    return DBAPIError.instance(
        statement,
        None,
        exc,
        dialect.loaded_dbapi.Error,
        connection_invalidated=lost,
        dialect=dialect,
    )
