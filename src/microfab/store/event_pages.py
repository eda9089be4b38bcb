"""Stored events by machine set, stream and time range, a keyset page at a time; look-ups by id.

:meth:`EventStore.events` reads by sequence or by (ts, id) without a time range; the REST API needs
ranges, exact machine sets and keyset pagination, which these reads give (SQLAlchemy Core, the
same on SQLite and PostgreSQL). Pages are ordered by (ts, id), the total order of events; a page
starts after the (ts, id) of the last event of the one before, so it never shifts when events
arrive.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, or_, select

from microfab.store import schema
from microfab.store.event_store import EventStore
from microfab.store.reads import StoredEvent, stored_event


def _in_range(stmt: Any, start: dt.datetime | None, end: dt.datetime | None) -> Any:
    table = schema.events
    if start is not None:
        stmt = stmt.where(table.c.ts >= start)
    if end is not None:
        stmt = stmt.where(table.c.ts < end)
    return stmt


def events_page(
    store: EventStore,
    *,
    machines: Sequence[str] | None = None,
    stream: str | None = None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    after: tuple[dt.datetime, str] | None = None,
    limit: int = 100,
    newest_first: bool = False,
) -> list[StoredEvent]:
    """Up to ``limit`` events of ``machines`` and ``stream`` in ``[start, end)``, in (ts, id)
    order (or reversed), starting after the event at ``after`` = (ts, id)."""
    table = schema.events
    stmt = select(table)
    if machines is not None:
        stmt = stmt.where(table.c.machine.in_(list(machines)))
    if stream is not None:
        stmt = stmt.where(table.c.stream == stream)
    stmt = _in_range(stmt, start, end)
    if after is not None:
        ts, event_id = after
        if newest_first:
            stmt = stmt.where(or_(table.c.ts < ts, and_(table.c.ts == ts, table.c.id < event_id)))
        else:
            stmt = stmt.where(or_(table.c.ts > ts, and_(table.c.ts == ts, table.c.id > event_id)))
    order = [table.c.ts, table.c.id]
    stmt = stmt.order_by(*[c.desc() for c in order] if newest_first else order).limit(limit)
    with store.engine.connect() as conn:
        return [stored_event(row) for row in conn.execute(stmt).mappings()]


def event_by_id(store: EventStore, event_id: str) -> StoredEvent | None:
    """The stored event with this id, or None."""
    table = schema.events
    with store.engine.connect() as conn:
        row = conn.execute(select(table).where(table.c.id == event_id)).mappings().first()
    return None if row is None else stored_event(row)


def correcting_events(store: EventStore, targets: Sequence[StoredEvent]) -> list[StoredEvent]:
    """Events whose ``corrects`` names one of ``targets``, in (ts, id) order.

    A correction has its target's machine, stream and time stamp, so the look-up is an index range
    scan over the targets' time span."""
    if not targets:
        return []
    table = schema.events
    corrects = table.c.body["corrects"].as_string()
    stmt = (
        select(table)
        .where(
            table.c.machine.in_(sorted({t.event.machine for t in targets})),
            table.c.stream.in_(sorted({t.event.stream for t in targets})),
            table.c.ts >= min(t.event.ts for t in targets),
            table.c.ts <= max(t.event.ts for t in targets),
            corrects.in_([t.event.id for t in targets]),
        )
        .order_by(table.c.ts, table.c.id)
    )
    with store.engine.connect() as conn:
        return [stored_event(row) for row in conn.execute(stmt).mappings()]


def entered_events(
    store: EventStore,
    *,
    machines: Sequence[str] | None = None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    limit: int = 50,
) -> list[StoredEvent]:
    """State and count events entered by a person (``by`` set), newest stored first."""
    table = schema.events
    by = table.c.body["by"].as_string()
    stmt = select(table).where(by.is_not(None), table.c.stream.in_(("state", "count")))
    if machines is not None:
        stmt = stmt.where(table.c.machine.in_(list(machines)))
    stmt = _in_range(stmt, start, end).order_by(table.c.seq.desc()).limit(limit)
    with store.engine.connect() as conn:
        return [stored_event(row) for row in conn.execute(stmt).mappings()]
