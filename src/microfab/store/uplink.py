"""The uplink's reads and its durable checkpoint (table ``uplink_checkpoints``, revision 0011).

``microfab uplink`` (:mod:`microfab.connect.uplink`) forwards a site's stored events to the HQ
broker in store order (ingest sequence). What the broker has acknowledged, with every event
before it, is kept here per uplink, so a restart (after a kill -9, a lost link, a broker
restart) resumes from there. The checkpoint only ever moves forward.

**Which events are safe to read.** On SQLite the store has one writer at a time, so sequence
numbers become visible in order. On PostgreSQL several processes may append at once and a
transaction holding a smaller sequence number may commit after one holding a larger: reading
``seq > checkpoint`` right away could pass the smaller one by for ever. :func:`pending` therefore
reads on PostgreSQL only events stored at least ``settle`` ago (default 2 s), longer than an
append transaction takes; events stored since wait for the next read.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from microfab.store import schema
from microfab.store.event_store import EventStore
from microfab.store.reads import StoredEvent, stored_event

SETTLE = dt.timedelta(seconds=2)
"""On PostgreSQL, how long an event must have been stored before the uplink reads it."""


@dataclass(frozen=True, slots=True)
class UplinkCheckpoint:
    """How far an uplink has been acknowledged."""

    uplink: str
    seq: int = 0
    event_ts: dt.datetime | None = None
    ingest_ts: dt.datetime | None = None
    acknowledged: int = 0
    updated_at: dt.datetime | None = None


def checkpoint(store: EventStore, uplink: str) -> UplinkCheckpoint:
    """The stored checkpoint of ``uplink`` (sequence 0 when it never ran)."""
    table = schema.uplink_checkpoints
    with store.engine.connect() as conn:
        row = conn.execute(select(table).where(table.c.uplink == uplink)).mappings().first()
    if row is None:
        return UplinkCheckpoint(uplink)
    return UplinkCheckpoint(
        uplink,
        int(row["seq"]),
        row["event_ts"],
        row["ingest_ts"],
        int(row["acknowledged"]),
        row["updated_at"],
    )


def checkpoints(store: EventStore) -> list[UplinkCheckpoint]:
    """Every uplink's checkpoint in this store."""
    table = schema.uplink_checkpoints
    with store.engine.connect() as conn:
        names = [str(r[0]) for r in conn.execute(select(table.c.uplink).order_by(table.c.uplink))]
    return [checkpoint(store, name) for name in names]


def advance(
    store: EventStore,
    uplink: str,
    seq: int,
    event_ts: dt.datetime | None,
    ingest_ts: dt.datetime | None,
    acknowledged: int,
) -> None:
    """Move ``uplink``'s checkpoint to ``seq`` (never backwards), adding ``acknowledged``."""
    table = schema.uplink_checkpoints
    now = dt.datetime.now(dt.UTC)
    insert = postgresql.insert if store.dialect == "postgresql" else sqlite.insert
    with store.transaction() as conn:
        conn.execute(
            insert(table)
            .values(uplink=uplink, seq=0, acknowledged=0, updated_at=now)
            .on_conflict_do_nothing(index_elements=["uplink"])
        )
        conn.execute(
            update(table)
            .where(table.c.uplink == uplink, table.c.seq < seq)
            .values(
                seq=seq,
                event_ts=event_ts,
                ingest_ts=ingest_ts,
                acknowledged=table.c.acknowledged + acknowledged,
                updated_at=now,
            )
        )


def pending(
    store: EventStore,
    *,
    after_seq: int,
    limit: int,
    site: str | None = None,
    settle: dt.timedelta = SETTLE,
) -> list[StoredEvent]:
    """Up to ``limit`` events stored after ``after_seq`` (of ``site``'s machines when given), in
    sequence order; on PostgreSQL only those stored ``settle`` ago or earlier (module docstring)."""
    table = schema.events
    stmt = select(table).where(table.c.seq > after_seq)
    if site:
        stmt = stmt.where(table.c.machine.startswith(f"{site}/", autoescape=True))
    if store.dialect == "postgresql":
        stmt = stmt.where(table.c.ingest_ts <= dt.datetime.now(dt.UTC) - settle)
    stmt = stmt.order_by(table.c.seq).limit(limit)
    with store.engine.connect() as conn:
        return [stored_event(row) for row in conn.execute(stmt).mappings()]


@dataclass(frozen=True, slots=True)
class Backlog:
    """Events of an uplink not yet acknowledged: how many, and when the oldest was stored."""

    events: int
    oldest_ingest_ts: dt.datetime | None
    newest_seq: int


def backlog(store: EventStore, *, after_seq: int, site: str | None = None) -> Backlog:
    """How many events after ``after_seq`` wait (of ``site``'s machines when given)."""
    table = schema.events
    where = [table.c.seq > after_seq]
    if site:
        where.append(table.c.machine.startswith(f"{site}/", autoescape=True))
    with store.engine.connect() as conn:
        n, newest = conn.execute(
            select(func.count(), func.max(table.c.seq)).select_from(table).where(*where)
        ).one()
        oldest = conn.scalar(select(table.c.ingest_ts).where(*where).order_by(table.c.seq).limit(1))
    return Backlog(int(n or 0), oldest, int(newest or after_seq))


class UplinkLog:
    """One uplink's view of the site store: what :class:`microfab.connect.uplink.Uplink` reads
    and the checkpoint it moves (keyed ``site@host:port`` of the HQ broker)."""

    def __init__(self, store: EventStore, key: str, site: str | None) -> None:
        self.store = store
        self.key = key
        self.site = site

    def acknowledged_seq(self) -> int:
        return checkpoint(self.store, self.key).seq

    def pending(self, after_seq: int, limit: int) -> list[StoredEvent]:
        return pending(self.store, after_seq=after_seq, limit=limit, site=self.site)

    def advance(
        self, seq: int, event_ts: dt.datetime, ingest_ts: dt.datetime, acknowledged: int
    ) -> None:
        advance(self.store, self.key, seq, event_ts, ingest_ts, acknowledged)

    def backlog(self, after_seq: int) -> Backlog:
        return backlog(self.store, after_seq=after_seq, site=self.site)


def rewind(store: EventStore, uplink: str, since: dt.datetime, site: str | None = None) -> int:
    """Move ``uplink``'s checkpoint back so that the events stored since ``since`` go again (the
    one way it moves backwards: after HQ lost what it had acknowledged, say a broker that crashed
    before saving its queue). Returns the new checkpoint; duplicates at HQ are harmless."""
    table = schema.events
    where = [table.c.ingest_ts < since]
    if site:
        where.append(table.c.machine.startswith(f"{site}/", autoescape=True))
    with store.engine.connect() as conn:
        before = int(conn.scalar(select(func.max(table.c.seq)).where(*where)) or 0)
    current = checkpoint(store, uplink)
    if current.seq <= before:
        return current.seq
    marks = schema.uplink_checkpoints
    with store.transaction() as conn:
        conn.execute(
            update(marks)
            .where(marks.c.uplink == uplink)
            .values(seq=before, updated_at=dt.datetime.now(dt.UTC))
        )
    return before
