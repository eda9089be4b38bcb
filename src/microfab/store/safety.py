"""Stored safety: the incident and near-miss register, and the stored ``safety`` events.

Rows are written inside the caller's transaction (with their audit record); the workflow rules
live in :mod:`microfab.safety.register`. The table arrives with revision 0010.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection

from microfab.store import schema
from microfab.store.event_store import EventStore


def insert_incident(conn: Connection, values: dict[str, Any]) -> int:
    key = conn.execute(insert(schema.safety_incidents).values(**values)).inserted_primary_key
    assert key is not None
    return int(key[0])


def update_incident(conn: Connection, incident_id: int, values: dict[str, Any]) -> None:
    table = schema.safety_incidents
    conn.execute(update(table).where(table.c.id == incident_id).values(**values))


def incident_row(conn: Connection, incident_id: int) -> dict[str, Any] | None:
    table = schema.safety_incidents
    row = conn.execute(select(table).where(table.c.id == incident_id)).mappings().first()
    return None if row is None else dict(row)


def incident_for_event(conn: Connection, event_id: str) -> int | None:
    table = schema.safety_incidents
    found = conn.scalar(select(table.c.id).where(table.c.event_id == event_id))
    return None if found is None else int(found)


def list_incidents(
    store: EventStore, *, site: str | None = None, limit: int | None = None
) -> list[dict[str, Any]]:
    table = schema.safety_incidents
    stmt = select(table).order_by(table.c.occurred_at.desc(), table.c.id.desc())
    if site is not None:
        stmt = stmt.where(table.c.site == site)
    if limit is not None:
        stmt = stmt.limit(limit)
    with store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(stmt).mappings()]


def last_lost_time(store: EventStore) -> dict[str, dt.datetime]:
    """site → when its newest lost-time incident happened."""
    table = schema.safety_incidents
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(table.c.site, func.max(table.c.occurred_at))
            .where(table.c.lost_time == 1)
            .group_by(table.c.site)
        )
        return {r[0]: schema.as_utc(r[1]) for r in rows if r[1] is not None}


def safety_events(
    store: EventStore, *, since: dt.datetime | None = None, limit: int = 200
) -> list[dict[str, Any]]:
    """Stored ``safety`` events, newest first: id, ts, machine and the body."""
    table = schema.events
    stmt = (
        select(table.c.id, table.c.ts, table.c.machine, table.c.body)
        .where(table.c.stream == "safety")
        .order_by(table.c.ts.desc(), table.c.id.desc())
        .limit(limit)
    )
    if since is not None:
        stmt = stmt.where(table.c.ts >= since)
    with store.engine.connect() as conn:
        return [
            {"id": r[0], "ts": schema.as_utc(r[1]), "machine": r[2], **dict(r[3] or {})}
            for r in conn.execute(stmt)
        ]


def get_incident(store: EventStore, incident_id: int) -> dict[str, Any] | None:
    with store.engine.connect() as conn:
        return incident_row(conn, incident_id)


def has_incident_for(store: EventStore, event_id: str) -> bool:
    with store.engine.connect() as conn:
        return incident_for_event(conn, event_id) is not None
