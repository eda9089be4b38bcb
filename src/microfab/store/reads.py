"""Reading the event log: counts, the newest sequence number and event time, events in order."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, func, select

from microfab.model.clock_policy import clamp_time
from microfab.model.events import EVENT_ADAPTER, Event
from microfab.store import schema


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event as stored, with its ingest sequence number and ingest time."""

    seq: int
    ingest_ts: dt.datetime
    event: Event


def stored_event(row: Any) -> StoredEvent:
    """A row of the ``events`` table as a :class:`StoredEvent` (times aware UTC)."""
    body = row["body"] if isinstance(row["body"], dict) else json.loads(row["body"])
    data = {"id": row["id"], "ts": row["ts"], "machine": row["machine"], "stream": row["stream"]}
    return StoredEvent(
        seq=int(row["seq"]),
        ingest_ts=row["ingest_ts"],
        event=EVENT_ADAPTER.validate_python({**data, **body}),
    )


def count(engine: Engine) -> int:
    """How many events are stored."""
    with engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(schema.events)) or 0)


def last_seq(engine: Engine) -> int:
    """The newest ingest sequence number (0 while the store is empty)."""
    with engine.connect() as conn:
        return int(conn.scalar(select(func.max(schema.events.c.seq))) or 0)


def newest_ts(engine: Engine) -> dt.datetime | None:
    """The event time of the newest stored event (aware UTC), or None while the store is empty:
    one indexed look-up."""
    with engine.connect() as conn:
        newest: dt.datetime | None = conn.scalar(select(func.max(schema.events.c.ts)))
    return newest


def plant_clock(engine: Engine) -> dt.datetime:
    """The plant clock: what "now" means when reading stored data.

    It is the event time of the newest stored event (:func:`newest_ts`); while the store is
    empty it is the wall clock (UTC, cut to milliseconds like every event time). A live plant's
    events arrive as they happen, so the plant clock is the present; a simulation or a replayed
    import reads as it was, with "today" and "late" meaning what they meant then. It follows the
    data, not the wall clock, so it may lag the wall clock (a quiet plant, a replay) or run ahead
    of it (a simulation faster than real time). Pages, the REST API, order views, alert rules and
    the planner all take "now" from here (the demo app may pass its simulation's clock instead).
    Ingest's clock policy keeps events from the future out, so the clock cannot run ahead of the
    receiving clock on live data.
    """
    newest = newest_ts(engine)
    if newest is not None:  # an extreme time stored before the clock policy existed is clamped
        return clamp_time(newest)
    now = dt.datetime.now(dt.UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def events(
    engine: Engine,
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
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=2000).execute(stmt)
        try:
            for row in result.mappings():
                yield stored_event(row)
        finally:  # a reader that stops early must not leave PostgreSQL's server cursor open
            result.close()
