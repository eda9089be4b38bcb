"""Reads of the event log that prove smart-line criteria for a funding application (evidence).

Per machine and stream: how many events, first and last event time; the delay from event time to
ingest for the newest events; operator entries made through the dashboard. The same queries run on
SQLite and PostgreSQL. Nothing is written: the funding ledger is a file (see docs/funding.md).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select

from microfab.store import schema
from microfab.store.event_store import EventStore


@dataclass(frozen=True, slots=True)
class StreamActivity:
    machine: str
    stream: str
    events: int
    first_ts: dt.datetime
    last_ts: dt.datetime


@dataclass(frozen=True, slots=True)
class IngestDelay:
    machine: str
    seconds: float
    """Ingest time minus event time (negative when the device clock is ahead)."""


def stream_activity(store: EventStore) -> list[StreamActivity]:
    """Events per machine and stream, with the first and last event time."""
    t = schema.events
    stmt = (
        select(t.c.machine, t.c.stream, func.count(), func.min(t.c.ts), func.max(t.c.ts))
        .group_by(t.c.machine, t.c.stream)
        .order_by(t.c.machine, t.c.stream)
    )
    with store.engine.connect() as conn:
        rows = conn.execute(stmt).all()
    return [StreamActivity(m, s, int(n), a, b) for m, s, n, a, b in rows]


def ingest_delays(store: EventStore, *, newest: int = 10_000) -> list[IngestDelay]:
    """Ingest delay of the ``newest`` stored events (by ingest sequence)."""
    t = schema.events
    stmt = select(t.c.machine, t.c.ts, t.c.ingest_ts).order_by(t.c.seq.desc()).limit(newest)
    with store.engine.connect() as conn:
        rows = conn.execute(stmt).all()
    return [IngestDelay(m, (i - ts).total_seconds()) for m, ts, i in rows]


def operator_entries(store: EventStore) -> dict[str, int]:
    """Per machine: state changes and counts entered by a person (the event names who: ``by``)."""
    t = schema.events
    by = t.c.body["by"].as_string()
    stmt = (
        select(t.c.machine, func.count())
        .where(t.c.stream.in_(("state", "count")), by.is_not(None))
        .group_by(t.c.machine)
    )
    with store.engine.connect() as conn:
        return {m: int(n) for m, n in conn.execute(stmt).all()}
