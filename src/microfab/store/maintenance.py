"""Stored maintenance: work orders, preventive plans, spare parts and the parts issued to jobs.

Rows are read and written here only (all SQL lives in store/); the rules — which state may follow
which, what a plan's next due is — live in :mod:`microfab.maint`. The ``*_row`` writers take the
caller's connection so that a change and its audit record commit together. Tables arrive with
revision 0010.
"""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection

from microfab.store import schema
from microfab.store.event_store import EventStore

# ---------------------------------------------------------------------------- work orders


def insert_order(conn: Connection, values: dict[str, Any]) -> int:
    key = conn.execute(insert(schema.maint_orders).values(**values)).inserted_primary_key
    assert key is not None
    return int(key[0])


def update_order(conn: Connection, order_id: int, values: dict[str, Any]) -> None:
    table = schema.maint_orders
    conn.execute(update(table).where(table.c.id == order_id).values(**values))


def order_row(conn: Connection, order_id: int) -> dict[str, Any] | None:
    table = schema.maint_orders
    row = conn.execute(select(table).where(table.c.id == order_id)).mappings().first()
    return None if row is None else dict(row)


def get_order(store: EventStore, order_id: int) -> dict[str, Any] | None:
    with store.engine.connect() as conn:
        return order_row(conn, order_id)


def list_orders(
    store: EventStore,
    *,
    machine: str | None = None,
    states: tuple[str, ...] | None = None,
    technician: str | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Work orders, newest first."""
    table = schema.maint_orders
    stmt = select(table).order_by(table.c.id.desc())
    if machine is not None:
        stmt = stmt.where(table.c.machine == machine)
    if states:
        stmt = stmt.where(table.c.state.in_(states))
    if technician is not None:
        stmt = stmt.where(table.c.technician == technician)
    if limit is not None:
        stmt = stmt.limit(limit)
    with store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(stmt).mappings()]


def open_order_for(
    conn: Connection, *, source: str, source_ref: str, states: tuple[str, ...]
) -> int | None:
    """The id of a work order from this source still in one of ``states`` (to create it once)."""
    table = schema.maint_orders
    found = conn.scalar(
        select(table.c.id)
        .where(
            table.c.source == source,
            table.c.source_ref == source_ref,
            table.c.state.in_(states),
        )
        .limit(1)
    )
    return None if found is None else int(found)


def last_done(conn: Connection, plan_id: int) -> dt.datetime | None:
    """When the newest finished job of a plan finished."""
    table = schema.maint_orders
    return conn.scalar(  # type: ignore[no-any-return]
        select(func.max(table.c.finished_at)).where(
            table.c.plan_id == plan_id, table.c.state == "done"
        )
    )


def windows(
    store: EventStore, start: dt.datetime | None = None, end: dt.datetime | None = None
) -> list[tuple[str, dt.datetime, dt.datetime, int]]:
    """(machine, from, to, order id) of every scheduled or running job with a window that
    overlaps [start, end)."""
    table = schema.maint_orders
    stmt = select(table.c.machine, table.c.window_start, table.c.window_end, table.c.id).where(
        table.c.state.in_(("scheduled", "in_progress")),
        table.c.window_start.is_not(None),
        table.c.window_end.is_not(None),
    )
    if start is not None:
        stmt = stmt.where(table.c.window_end > start)
    if end is not None:
        stmt = stmt.where(table.c.window_start < end)
    with store.engine.connect() as conn:
        return [(r[0], r[1], r[2], int(r[3])) for r in conn.execute(stmt.order_by(table.c.id))]


# ---------------------------------------------------------------------------- plans


def insert_plan(conn: Connection, values: dict[str, Any]) -> int:
    key = conn.execute(insert(schema.maint_plans).values(**values)).inserted_primary_key
    assert key is not None
    return int(key[0])


def plan_exists(conn: Connection, machine: str, name: str) -> bool:
    table = schema.maint_plans
    return (
        conn.scalar(select(table.c.id).where(table.c.machine == machine, table.c.name == name))
        is not None
    )


def list_plans(store: EventStore, *, active_only: bool = True) -> list[dict[str, Any]]:
    table = schema.maint_plans
    stmt = select(table).order_by(table.c.machine, table.c.name)
    if active_only:
        stmt = stmt.where(table.c.active == 1)
    with store.engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(stmt).mappings()]
        for row in rows:
            row["last_done"] = last_done(conn, int(row["id"]))
        return rows


# ---------------------------------------------------------------------------- spare parts


def part_row(conn: Connection, part: str) -> dict[str, Any] | None:
    table = schema.spare_parts
    row = conn.execute(select(table).where(table.c.part == part)).mappings().first()
    return None if row is None else dict(row)


def upsert_part(conn: Connection, values: dict[str, Any]) -> None:
    table = schema.spare_parts
    if part_row(conn, values["part"]) is None:
        conn.execute(insert(table).values(**values))
    else:
        conn.execute(update(table).where(table.c.part == values["part"]).values(**values))


def change_on_hand(conn: Connection, part: str, delta: float) -> None:
    table = schema.spare_parts
    conn.execute(update(table).where(table.c.part == part).values(on_hand=table.c.on_hand + delta))


def list_parts(store: EventStore) -> list[dict[str, Any]]:
    table = schema.spare_parts
    with store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(table).order_by(table.c.part)).mappings()]


def insert_issue(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(insert(schema.part_issues).values(**values))


def issues_of(store: EventStore, order_ids: list[int] | None = None) -> list[dict[str, Any]]:
    """Parts issued, oldest first; only to ``order_ids`` when given."""
    table = schema.part_issues
    stmt = select(table).order_by(table.c.id)
    if order_ids is not None:
        stmt = stmt.where(table.c.order_id.in_(order_ids))
    with store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(stmt).mappings()]


def latest_metric(store: EventStore, machine: str, metric: str) -> float | None:
    """The newest reading of telemetry ``metric`` from ``machine`` (condition plans)."""
    table = schema.events
    value = table.c.body[("metrics", metric)].as_float()
    stmt = (
        select(value)
        .where(table.c.machine == machine, table.c.stream == "telemetry", value.is_not(None))
        .order_by(table.c.ts.desc(), table.c.id.desc())
        .limit(1)
    )
    with store.engine.connect() as conn:
        found = conn.scalar(stmt)
    return None if found is None else float(found)


def gantt_windows(
    store: EventStore, start: dt.datetime, end: dt.datetime
) -> dict[str, list[dict[str, Any]]]:
    """Per machine, its maintenance windows in [start, end) as the Gantt chart draws them."""
    from microfab.model.events import format_ts

    out: dict[str, list[dict[str, Any]]] = {}
    for machine, lo, hi, order_id in windows(store, start, end):
        out.setdefault(machine, []).append(
            {"order": order_id, "start": format_ts(lo), "end": format_ts(hi)}
        )
    return out


def insert_photo(conn: Connection, values: dict[str, Any]) -> int:
    """Store a photo (``data``: its bytes, kept as base64 text so that backups carry it)."""
    row = {**values, "data": base64.b64encode(values["data"]).decode("ascii")}
    key = conn.execute(insert(schema.maint_photos).values(**row)).inserted_primary_key
    assert key is not None
    return int(key[0])


def photo(store: EventStore, order_id: int, photo_id: int) -> tuple[str, bytes] | None:
    """(content type, bytes) of one photo of a work order."""
    table = schema.maint_photos
    with store.engine.connect() as conn:
        row = conn.execute(
            select(table.c.content_type, table.c.data).where(
                table.c.id == photo_id, table.c.order_id == order_id
            )
        ).first()
    return None if row is None else (str(row[0]), base64.b64decode(row[1]))


def get_part(store: EventStore, part: str) -> dict[str, Any] | None:
    with store.engine.connect() as conn:
        return part_row(conn, part)


def maintenance_down(
    store: EventStore, start: dt.datetime | None = None, end: dt.datetime | None = None
) -> dict[str, list[tuple[dt.datetime, dt.datetime]]]:
    """Machine path → the windows of its scheduled and running jobs overlapping [start, end):
    the planner's ``down`` windows."""
    found: dict[str, list[tuple[dt.datetime, dt.datetime]]] = {}
    for machine, lo, hi, _ in windows(store, start, end):
        found.setdefault(machine, []).append((lo, hi))
    return found
