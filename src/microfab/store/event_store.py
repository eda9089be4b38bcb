"""The event store: batched idempotent append, ordered reads, read models, factory versions.

One class serves SQLite and PostgreSQL through SQLAlchemy Core. An append is one transaction:
new events are inserted with ``ON CONFLICT (id) DO NOTHING``; ids that were already stored are
compared by content digest and counted as duplicates (same content) or rejected as ``id_conflict``
(different content); the read models are updated from the newly inserted events only. On SQLite,
appends from one process go through a single writer lock (WAL lets readers run alongside).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
import weakref
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import (
    DateTime,
    Engine,
    String,
    create_engine,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, OperationalError, StatementError

from microfab.errors import StoreError, StoreSchemaError, StoreUnavailableError
from microfab.model.dead_letter import DeadLetter
from microfab.model.events import (
    EVENT_ADAPTER,
    EVENT_SCHEMA_VERSION,
    EnergyReading,
    Event,
    OrderEvent,
    PartCount,
    StateChange,
    digest_of,
    event_to_dict,
    json_encoder,
    split_body,
)
from microfab.model.factory import Factory
from microfab.store import schema
from microfab.store.url import engine_url, mask_url, resolve_url

MIGRATIONS = Path(__file__).with_name("migrations")

_Pending = tuple[Event, str, dict[str, Any]]
"""An event to store, its digest and its export dict."""

_body_json = json_encoder()
"""``json.dumps``: the text SQLAlchemy's JSON type writes for the ``body`` column."""
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


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event as stored, with its ingest sequence number and ingest time."""

    seq: int
    ingest_ts: dt.datetime
    event: Event


@dataclass(frozen=True, slots=True)
class MachineStatus:
    """Read model row: where a machine is now, and its running totals."""

    machine: str
    state: str | None
    reason: str | None
    state_ts: dt.datetime | None
    good: int
    scrap: int
    kwh: float | None
    order: str | None
    last_ts: dt.datetime | None
    events: int


@dataclass(frozen=True, slots=True)
class OrderStatus:
    """Read model row: a work order's status as the shop floor reported it."""

    order: str
    product: str | None
    quantity: int | None
    status: str
    operation: int | None
    machine: str | None
    released_ts: dt.datetime | None
    completed_ts: dt.datetime | None
    good: int
    scrap: int


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_ORDER_RANK = {"created": 0, "released": 1, "in_progress": 2, "completed": 3, "cancelled": 4}


def _sqlite_time(value: dt.datetime) -> str:
    """A time as SQLAlchemy's SQLite DateTime stores it (its zone dropped, not converted; every
    stored time is UTC): ``YYYY-MM-DD HH:MM:SS.ffffff``."""
    return value.replace(tzinfo=None).isoformat(" ", "microseconds")


def _sqlite_value(value: Any) -> Any:
    """A value as SQLAlchemy binds it on SQLite (times as text, all else as it is)."""
    return _sqlite_time(value) if isinstance(value, dt.datetime) else value


def _pg_array_type(column: Any, dialect: Any) -> str:
    """The PostgreSQL array type that carries values of ``column`` (text for any string type:
    an explicit cast to varchar(n) would cut long values where the column refuses them)."""
    if isinstance(column.type, String):
        return "text[]"
    return f"{column.type.compile(dialect=dialect)}[]"


def _stored_time(value: Any) -> dt.datetime | None:
    """A time column's value as read without SQLAlchemy: SQLite hands back the text SQLAlchemy
    wrote (parsed here as SQLAlchemy parses it), PostgreSQL a datetime."""
    return dt.datetime.fromisoformat(value) if isinstance(value, str) else value


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


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    """SQLite hands datetimes back naive; every stored time is UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _later(a_ts: dt.datetime | None, a_id: str | None, b_ts: dt.datetime, b_id: str) -> bool:
    """True when (b_ts, b_id) comes after (a_ts, a_id): the total order of events."""
    if a_ts is None:
        return True
    return (b_ts, b_id) > (a_ts, a_id or "")


class EventStore:
    """Append-only event log with read models, on SQLite or PostgreSQL."""

    def __init__(self, engine: Engine, url: str) -> None:
        self.engine = engine
        self.url = url
        self.dialect = engine.dialect.name
        self._write_lock = threading.Lock()
        self._pg_staging_ready: weakref.WeakSet[Any] = weakref.WeakSet()
        """Driver connections known to have the staging table (see _insert_postgresql)."""

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ append

    def append(self, events: Iterable[Event]) -> AppendResult:
        """Store a batch idempotently, in one transaction; see the module docstring."""
        batch = list(events)
        result = AppendResult()
        if not batch:
            return result
        now = dt.datetime.now(dt.UTC)
        # Duplicates inside the batch: keep the first of each id, judge the rest by content. Each
        # event is serialised once: its export dict gives both the digest and the stored body.
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
        items = list(unique.values())
        try:
            with self._write_lock, self._begin() as conn:
                if self.dialect == "postgresql":
                    inserted, stored = self._insert_postgresql(conn, items, now)
                else:
                    inserted, stored = self._insert_sqlite(conn, items, now)
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
                self._update_machine_status(conn, new)
                self._update_order_status(conn, new)
        except BaseException:
            self._pg_staging_ready.clear()  # a rolled-back transaction may have created it
            raise
        if result.inserted:
            from microfab.store.production_views import catch_up  # imports this module

            catch_up(self)  # the production read models follow the log (checkpointed)
        return result

    # The insert bypasses SQLAlchemy's per-row parameter processing (the bulk of an append's
    # cost) and hands the driver plain values in the very form SQLAlchemy stores them: the body
    # as ``json.dumps`` text (what its JSON type writes on both back ends) and, on SQLite, times
    # as its DateTime text (``YYYY-MM-DD HH:MM:SS.ffffff``). Reads go through SQLAlchemy as ever,
    # so rows written either way read back the same.

    def _insert_sqlite(
        self, conn: Connection, items: list[_Pending], now: dt.datetime
    ) -> tuple[set[str], dict[str, str]]:
        """Insert the events whose ids are not stored yet; returns (ids inserted, stored digests
        of the other ids)."""
        stored = self._stored_digests(conn, [ev.id for ev, _, _ in items])
        now_text = _sqlite_time(now)
        fresh = [
            (
                ev.id,
                _sqlite_time(ev.ts),
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
        except self.engine.dialect.loaded_dbapi.Error as exc:
            raise _driver_error(conn, exc, _PG_COPY) from exc
        inserted = set(
            conn.exec_driver_sql(
                _PG_INSERT, {"now": now, "version": EVENT_SCHEMA_VERSION}
            ).scalars()
        )
        stored: dict[str, str] = {}
        rest = [ev.id for ev, _, _ in items if ev.id not in inserted]
        if rest:
            rows = conn.exec_driver_sql(
                "SELECT id, digest FROM events WHERE id = ANY(%(ids)s)", {"ids": rest}
            )
            stored.update((id_, digest) for id_, digest in rows)
        return inserted, stored

    def _stored_digests(self, conn: Connection, ids: list[str]) -> dict[str, str]:
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

    def _insert(self, table: Any) -> Any:
        if self.dialect == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    # ------------------------------------------------------------------ read models

    def _locked_rows(
        self, conn: Connection, table: Any, key: str, keys: list[str], blank: dict[str, Any]
    ) -> dict[str, dict[str, Any]]:
        """Create missing rows, then read them locked (PostgreSQL) in key order; times come back
        as aware UTC datetimes.

        Read models are read and written with plain SQL: SQLAlchemy cannot cache an ON CONFLICT
        insert (it compiles it anew each time), and its statement building and row processing
        cost more than the statements themselves for these few rows per append.
        """
        sqlite = self.dialect == "sqlite"
        defaults = tuple(self._sql_value(v) for v in blank.values())
        insert = f"INSERT INTO {table.name} ({', '.join([key, *blank])}) "
        if sqlite:
            marks = ", ".join("?" * (1 + len(blank)))
            conn.exec_driver_sql(
                f"{insert}VALUES ({marks}) ON CONFLICT ({key}) DO NOTHING",
                [(k, *defaults) for k in keys],
            )
        else:  # one statement, not an executemany (a pipeline of them): fewer round trips
            marks = "".join(", %s" for _ in blank)
            conn.exec_driver_sql(
                f"{insert}SELECT k{marks} FROM unnest(%s::text[]) AS k "
                f"ON CONFLICT ({key}) DO NOTHING",
                (*defaults, keys),
            )
        columns = [column.name for column in table.columns]
        times = [column.name for column in table.columns if isinstance(column.type, DateTime)]
        query = f"SELECT {', '.join(columns)} FROM {table.name} WHERE {key} "
        found: list[Any] = []
        if sqlite:
            for start in range(0, len(keys), _SQLITE_IDS):
                part = tuple(keys[start : start + _SQLITE_IDS])
                found += conn.exec_driver_sql(f"{query}IN ({', '.join('?' * len(part))})", part)
        else:
            found += conn.exec_driver_sql(f"{query}= ANY(%s) ORDER BY {key} FOR UPDATE", (keys,))
        rows: dict[str, dict[str, Any]] = {}
        at = columns.index(key)
        for values in sorted(found, key=lambda values: values[at]) if sqlite else found:
            row = dict(zip(columns, values, strict=True))
            for name in times:
                row[name] = _utc(_stored_time(row[name]))
            rows[row[key]] = row
        return rows

    def _update_rows(
        self, conn: Connection, table: Any, key: str, rows: dict[str, dict[str, Any]]
    ) -> None:
        """Write read-model rows (keyed by ``key``) back with one executemany."""
        if not rows:
            return
        columns = [name for name in next(iter(rows.values())) if name != key]
        if self.dialect == "sqlite":
            conn.exec_driver_sql(
                f"UPDATE {table.name} SET {', '.join(f'{name} = ?' for name in columns)} "
                f"WHERE {key} = ?",
                [(*(_sqlite_value(row[name]) for name in columns), k) for k, row in rows.items()],
            )
            return
        # PostgreSQL: one statement over arrays, one per column, not an executemany
        arrays = ", ".join(
            f"%s::{_pg_array_type(table.c[name], conn.dialect)}" for name in [key, *columns]
        )
        conn.exec_driver_sql(
            f"UPDATE {table.name} AS t SET {', '.join(f'{name} = v.{name}' for name in columns)} "
            f"FROM unnest({arrays}) AS v({', '.join([key, *columns])}) WHERE t.{key} = v.{key}",
            (list(rows), *([row[name] for row in rows.values()] for name in columns)),
        )

    def _sql_value(self, value: Any) -> Any:
        """A value as the driver takes it for a column SQLAlchemy would have bound it to."""
        return _sqlite_value(value) if self.dialect == "sqlite" else value

    def _update_machine_status(self, conn: Connection, new: Sequence[Event]) -> None:
        if not new:
            return
        table = schema.machine_status
        keys = sorted({ev.machine for ev in new})
        rows = self._locked_rows(conn, table, "machine", keys, {"good": 0, "scrap": 0, "events": 0})
        for ev in new:
            row = rows[ev.machine]
            row["events"] += 1
            if row["last_ts"] is None or ev.ts > row["last_ts"]:
                row["last_ts"] = ev.ts
            if isinstance(ev, StateChange):
                if _later(row["state_ts"], row["state_event"], ev.ts, ev.id):
                    row.update(
                        state=ev.state.value, reason=ev.reason, state_ts=ev.ts, state_event=ev.id
                    )
            elif isinstance(ev, PartCount):
                row["good"] += ev.good
                row["scrap"] += ev.scrap
            elif (
                isinstance(ev, EnergyReading)
                and ev.kwh is not None
                and (row["kwh_ts"] is None or (ev.ts, ev.kwh) > (row["kwh_ts"], row["kwh"]))
            ):
                row.update(kwh=ev.kwh, kwh_ts=ev.ts)
            if (
                isinstance(ev, PartCount | OrderEvent)
                and ev.order is not None
                and (
                    row["order_ts"] is None
                    or (ev.ts, ev.order) > (row["order_ts"], row["order_id"])
                )
            ):
                row.update(order_id=ev.order, order_ts=ev.ts)
        self._update_rows(conn, table, "machine", rows)

    def _update_order_status(self, conn: Connection, new: Sequence[Event]) -> None:
        relevant = [
            ev for ev in new if isinstance(ev, PartCount | OrderEvent) and ev.order is not None
        ]
        if not relevant:
            return
        table = schema.order_status
        keys = sorted({ev.order for ev in relevant if ev.order is not None})
        epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
        rows = self._locked_rows(
            conn,
            table,
            "order_id",
            keys,
            {"status": "created", "last_ts": epoch, "good": 0, "scrap": 0},
        )
        for ev in relevant:
            assert ev.order is not None
            row = rows[ev.order]
            rank = _ORDER_RANK["in_progress"]
            if isinstance(ev, PartCount):
                row["good"] += ev.good
                row["scrap"] += ev.scrap
            else:
                if ev.event.value in ("created", "released"):
                    rank = _ORDER_RANK[ev.event.value]
                    if ev.event.value == "released" and (
                        row["released_ts"] is None or ev.ts < row["released_ts"]
                    ):
                        row["released_ts"] = ev.ts
                    if _later(row["release_ts"], row["release_event"], ev.ts, ev.id):
                        # a re-release (changed quantity, say) wins by event time, then id
                        row.update(
                            product=ev.product,
                            quantity=ev.quantity,
                            release_ts=ev.ts,
                            release_event=ev.id,
                        )
                elif ev.event.value == "cancelled":
                    rank = _ORDER_RANK["cancelled"]
                elif ev.event.value == "completed" and ev.operation is None:
                    rank = _ORDER_RANK["completed"]
                    if row["completed_ts"] is None or ev.ts > row["completed_ts"]:
                        row["completed_ts"] = ev.ts
                if ev.operation is not None and (
                    row["operation_ts"] is None
                    or (ev.ts, ev.operation, ev.machine)
                    > (row["operation_ts"], row["operation"], row["machine"])
                ):
                    row.update(operation=ev.operation, machine=ev.machine, operation_ts=ev.ts)
            if rank > _ORDER_RANK[row["status"]]:
                row["status"] = next(k for k, v in _ORDER_RANK.items() if v == rank)
            if ev.ts > row["last_ts"]:
                row["last_ts"] = ev.ts
        self._update_rows(conn, table, "order_id", rows)

    def machine_status(self) -> list[MachineStatus]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(schema.machine_status).order_by("machine")).mappings().all()
        return [
            MachineStatus(
                machine=r["machine"],
                state=r["state"],
                reason=r["reason"],
                state_ts=_utc(r["state_ts"]),
                good=r["good"],
                scrap=r["scrap"],
                kwh=r["kwh"],
                order=r["order_id"],
                last_ts=_utc(r["last_ts"]),
                events=r["events"],
            )
            for r in rows
        ]

    def order_status(self) -> list[OrderStatus]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(schema.order_status).order_by("order_id")).mappings().all()
        return [
            OrderStatus(
                order=r["order_id"],
                product=r["product"],
                quantity=r["quantity"],
                status=r["status"],
                operation=r["operation"],
                machine=r["machine"],
                released_ts=_utc(r["released_ts"]),
                completed_ts=_utc(r["completed_ts"]),
                good=r["good"],
                scrap=r["scrap"],
            )
            for r in rows
        ]

    # ------------------------------------------------------------------ reads

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.scalar(select(func.count()).select_from(schema.events)) or 0)

    def last_seq(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.scalar(select(func.max(schema.events.c.seq))) or 0)

    def events(
        self,
        *,
        by: str = "ts",
        after_seq: int = 0,
        limit: int | None = None,
        machine_prefix: str | None = None,
        stream: str | None = None,
        newest_first: bool = False,
    ) -> Iterator[StoredEvent]:
        """Stored events ordered by (ts, id) (``by="ts"``) or by ingest sequence (``by="seq"``)."""
        table = schema.events
        stmt = select(table).where(table.c.seq > after_seq)
        if machine_prefix:
            stmt = stmt.where(table.c.machine.startswith(machine_prefix, autoescape=True))
        if stream:
            stmt = stmt.where(table.c.stream == stream)
        order = [table.c.ts, table.c.id] if by == "ts" else [table.c.seq]
        stmt = stmt.order_by(*[col.desc() for col in order] if newest_first else order)
        if limit is not None:
            stmt = stmt.limit(limit)
        with self.engine.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=2000).execute(stmt)
            for row in result.mappings():
                yield _stored(row)

    # ------------------------------------------------------------------ dead letters

    def append_dead_letters(self, letters: Iterable[DeadLetter]) -> int:
        """Store rejected messages idempotently (by content key); returns how many were new."""
        rows = [
            {
                "key": letter.key,
                "received_at": letter.received_at,
                "source": letter.source,
                "topic": letter.topic,
                "payload": letter.payload,
                "reason": letter.reason,
            }
            for letter in letters
        ]
        if not rows:
            return 0
        table = schema.dead_letters
        stmt = self._insert(table).on_conflict_do_nothing(index_elements=["key"])
        with self._write_lock, self._begin() as conn:
            return len(conn.scalars(stmt.returning(table.c.seq), rows).all())

    def dead_letters(
        self, *, limit: int | None = None, newest_first: bool = False
    ) -> list[DeadLetter]:
        table = schema.dead_letters
        stmt = select(table).order_by(table.c.seq.desc() if newest_first else table.c.seq)
        if limit is not None:
            stmt = stmt.limit(limit)
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).mappings().all()
        return [
            DeadLetter(
                r["source"], r["topic"], r["payload"], r["reason"], _utc(r["received_at"]) or _EPOCH
            )
            for r in rows
        ]

    def dead_letter_count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.scalar(select(func.count()).select_from(schema.dead_letters)) or 0)

    def flag_unknown_machines(self, seen: dict[str, tuple[dt.datetime, dt.datetime, int]]) -> None:
        """Record machines that sent events but are not in the factory model (path -> first, last, n)."""
        if not seen:
            return
        table = schema.unknown_machines
        with self._write_lock, self._begin() as conn:
            rows = self._locked_rows(
                conn,
                table,
                "machine",
                sorted(seen),
                {"first_ts": _EPOCH, "last_ts": _EPOCH, "events": 0},
            )
            for machine, (first, last, n) in seen.items():
                row = rows[machine]
                stored_first = _utc(row["first_ts"]) or _EPOCH
                new_first = first if stored_first == _EPOCH else min(first, stored_first)
                conn.execute(
                    update(table)
                    .where(table.c.machine == machine)
                    .values(
                        first_ts=new_first,
                        last_ts=max(last, _utc(row["last_ts"]) or last),
                        events=row["events"] + n,
                    )
                )

    def unknown_machines(self) -> list[tuple[str, dt.datetime, dt.datetime, int]]:
        table = schema.unknown_machines
        with self.engine.connect() as conn:
            rows = conn.execute(select(table).order_by(table.c.machine)).all()
        return [(r[0], _utc(r[1]) or _EPOCH, _utc(r[2]) or _EPOCH, int(r[3])) for r in rows]

    @property
    def display_url(self) -> str:
        """The store's URL with any password masked."""
        return mask_url(self.url)

    # ------------------------------------------------------------------ factory versions

    def apply_factory(self, factory: Factory, source_name: str) -> tuple[int, bool]:
        """Store a validated factory model as a new version; returns (version, created)."""
        document = factory.model_dump(mode="json")
        digest = _digest_json(document)
        table = schema.factory_versions
        with self._write_lock, self._begin() as conn:
            found = conn.scalar(select(table.c.version).where(table.c.digest == digest))
            if found is not None:
                return int(found), False
            version = int(conn.scalar(select(func.coalesce(func.max(table.c.version), 0))) or 0) + 1
            conn.execute(
                insert(table).values(
                    version=version,
                    applied_at=dt.datetime.now(dt.UTC),
                    digest=digest,
                    company=factory.company.name,
                    source_name=source_name,
                    document=document,
                )
            )
        return version, True

    def factory(self, version: int | None = None) -> tuple[int, Factory] | None:
        """The newest applied factory model (or a given version), or None when none was applied."""
        table = schema.factory_versions
        stmt = select(table.c.version, table.c.document)
        stmt = (
            stmt.where(table.c.version == version)
            if version
            else stmt.order_by(table.c.version.desc())
        )
        with self.engine.connect() as conn:
            row = conn.execute(stmt.limit(1)).first()
        if row is None:
            return None
        document = row[1] if isinstance(row[1], dict) else json.loads(row[1])
        return int(row[0]), Factory.model_validate(document)

    # ------------------------------------------------------------------ plumbing

    @contextmanager
    def _begin(self) -> Iterator[Connection]:
        """A transaction; losing the database (at connect or mid-transaction) becomes
        :class:`StoreUnavailableError`, which callers such as the ingest worker retry."""
        try:
            with self.engine.begin() as conn:
                yield conn
        except OperationalError as exc:
            raise _unavailable(self.url, exc) from exc
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise _unavailable(self.url, exc) from exc
            raise


def _stored(row: Any) -> StoredEvent:
    body = row["body"] if isinstance(row["body"], dict) else json.loads(row["body"])
    data = {
        "id": row["id"],
        "ts": _utc(row["ts"]),
        "machine": row["machine"],
        "stream": row["stream"],
        **body,
    }
    ingest_ts = _utc(row["ingest_ts"])
    assert ingest_ts is not None
    return StoredEvent(
        seq=int(row["seq"]), ingest_ts=ingest_ts, event=EVENT_ADAPTER.validate_python(data)
    )


def _digest_json(document: Any) -> str:
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _unavailable(url: str, exc: Exception) -> StoreUnavailableError:
    reason = (
        str(getattr(exc, "orig", exc)).strip().splitlines()[0] if str(exc) else type(exc).__name__
    )
    return StoreUnavailableError(f"cannot open the database at {mask_url(url)}: {reason}")


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def open_store(url: str | None = None, *, upgrade: bool = True) -> EventStore:
    """Open (and by default create or upgrade) the store at ``url``; see :func:`resolve_url`."""
    url = resolve_url(url)
    target = engine_url(url)
    if target.get_backend_name() == "sqlite" and target.database not in (None, "", ":memory:"):
        parent = Path(str(target.database)).expanduser().resolve().parent
        if not parent.is_dir():
            raise StoreUnavailableError(
                f"cannot open the database at {mask_url(url)}: folder {parent} does not exist"
            )
    engine = create_engine(target, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    try:
        with engine.begin() as conn:
            _check_schema(conn, upgrade=upgrade)
    except (OperationalError, DBAPIError) as exc:
        engine.dispose()
        raise _unavailable(url, exc) from None
    except StoreError:
        engine.dispose()
        raise
    return EventStore(engine, url)


def _alembic_config(conn: Connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = conn
    return cfg


def _check_schema(conn: Connection, *, upgrade: bool) -> None:
    cfg = _alembic_config(conn)
    head = ScriptDirectory.from_config(cfg).get_current_head()
    current = MigrationContext.configure(conn).get_current_revision()
    if current == head:
        return
    known = {rev.revision for rev in ScriptDirectory.from_config(cfg).walk_revisions()}
    if current is not None and current not in known:
        raise StoreSchemaError(
            f"the database schema is at revision {current}, newer than this microfab knows "
            f"({head}); upgrade microfab"
        )
    if not upgrade:
        raise StoreSchemaError(
            f"the database schema is at revision {current or 'none'}, expected {head}; "
            "run 'microfab db upgrade'"
        )
    command.upgrade(cfg, "head")


def upgrade_store(url: str | None = None) -> tuple[str | None, str | None]:
    """Run the Alembic migrations up to head; returns (revision before, revision after)."""
    url = resolve_url(url)
    engine = create_engine(engine_url(url))
    try:
        with engine.begin() as conn:
            before = MigrationContext.configure(conn).get_current_revision()
            command.upgrade(_alembic_config(conn), "head")
            after = MigrationContext.configure(conn).get_current_revision()
    except (OperationalError, DBAPIError) as exc:
        raise _unavailable(url, exc) from None
    finally:
        engine.dispose()
    return before, after
