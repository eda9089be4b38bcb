"""Stored events by machine, stream and time range, a page at a time; look-ups by id.

``EventStore.events`` reads by sequence or by (ts, id) without a time range; the API needs ranges,
exact machine sets and keyset pagination, so it reads the ``events`` table here (SQLAlchemy Core,
the same on SQLite and PostgreSQL). Pages are ordered by (ts, id), the total order of events; the
cursor is the (ts, id) of the last event of the page, so a page never shifts when events arrive.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, or_, select

from microfab.errors import InputError
from microfab.model.events import EVENT_ADAPTER, format_ts, parse_ts
from microfab.store import EventStore, schema
from microfab.store.event_store import StoredEvent


def _utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _decode(row: Any) -> StoredEvent:
    body = row["body"] if isinstance(row["body"], dict) else json.loads(row["body"])
    data = {
        "id": row["id"],
        "ts": _utc(row["ts"]),
        "machine": row["machine"],
        "stream": row["stream"],
        **body,
    }
    return StoredEvent(
        seq=int(row["seq"]),
        ingest_ts=_utc(row["ingest_ts"]),
        event=EVENT_ADAPTER.validate_python(data),
    )


def encode_cursor(ts: dt.datetime, event_id: str) -> str:
    raw = json.dumps([format_ts(ts), event_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[dt.datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        ts_text, event_id = json.loads(raw)
        return parse_ts(ts_text), str(event_id)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise InputError(
            f"cursor '{cursor[:40]}' is not one this API gave out; start again without it"
        ) from None


def page(
    store: EventStore,
    *,
    machines: Sequence[str] | None = None,
    stream: str | None = None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    cursor: str | None = None,
    limit: int = 100,
    newest_first: bool = False,
) -> tuple[list[StoredEvent], str | None]:
    """Up to ``limit`` events in (ts, id) order (or reversed), and the cursor of the next page."""
    table = schema.events
    stmt = select(table)
    if machines is not None:
        stmt = stmt.where(table.c.machine.in_(list(machines)))
    if stream is not None:
        stmt = stmt.where(table.c.stream == stream)
    if start is not None:
        stmt = stmt.where(table.c.ts >= start.astimezone(dt.UTC))
    if end is not None:
        stmt = stmt.where(table.c.ts < end.astimezone(dt.UTC))
    if cursor:
        ts, event_id = decode_cursor(cursor)
        if newest_first:
            stmt = stmt.where(or_(table.c.ts < ts, and_(table.c.ts == ts, table.c.id < event_id)))
        else:
            stmt = stmt.where(or_(table.c.ts > ts, and_(table.c.ts == ts, table.c.id > event_id)))
    order = [table.c.ts, table.c.id]
    stmt = stmt.order_by(*[c.desc() for c in order] if newest_first else order).limit(limit + 1)
    with store.engine.connect() as conn:
        rows = [_decode(row) for row in conn.execute(stmt).mappings()]
    more = len(rows) > limit
    rows = rows[:limit]
    following = encode_cursor(rows[-1].event.ts, rows[-1].event.id) if more and rows else None
    return rows, following


def by_id(store: EventStore, event_id: str) -> StoredEvent | None:
    table = schema.events
    with store.engine.connect() as conn:
        row = conn.execute(select(table).where(table.c.id == event_id)).mappings().first()
    return None if row is None else _decode(row)


def corrections(store: EventStore, targets: Sequence[StoredEvent]) -> dict[str, list[StoredEvent]]:
    """Events that correct (or restate) one of ``targets``, by the id they correct, oldest first.

    A correction has its target's machine, stream and time stamp, so the look-up is an index range
    scan over the targets' time span."""
    if not targets:
        return {}
    table = schema.events
    corrects = table.c.body["corrects"].as_string()
    ids = [t.event.id for t in targets]
    stmt = (
        select(table)
        .where(
            table.c.machine.in_(sorted({t.event.machine for t in targets})),
            table.c.stream.in_(sorted({t.event.stream for t in targets})),
            table.c.ts >= min(t.event.ts for t in targets),
            table.c.ts <= max(t.event.ts for t in targets),
            corrects.in_(ids),
        )
        .order_by(table.c.ts, table.c.id)
    )
    found: dict[str, list[StoredEvent]] = {}
    with store.engine.connect() as conn:
        for row in conn.execute(stmt).mappings():
            stored = _decode(row)
            target = getattr(stored.event, "corrects", None)
            if target is not None:
                found.setdefault(target, []).append(stored)
    return found


def operator_entries(
    store: EventStore,
    *,
    machines: Sequence[str] | None = None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    limit: int = 50,
) -> list[StoredEvent]:
    """Events entered by a person (``by`` set), newest first."""
    table = schema.events
    by = table.c.body["by"].as_string()
    stmt = select(table).where(by.is_not(None), table.c.stream.in_(("state", "count")))
    if machines is not None:
        stmt = stmt.where(table.c.machine.in_(list(machines)))
    if start is not None:
        stmt = stmt.where(table.c.ts >= start.astimezone(dt.UTC))
    if end is not None:
        stmt = stmt.where(table.c.ts < end.astimezone(dt.UTC))
    stmt = stmt.order_by(table.c.seq.desc()).limit(limit)
    with store.engine.connect() as conn:
        return [_decode(row) for row in conn.execute(stmt).mappings()]
