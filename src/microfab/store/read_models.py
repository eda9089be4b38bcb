"""The read models, updated in each append's transaction and read back as rows.

``machine_status`` (where each machine is now, its running totals) and ``order_status`` (each work
order as the shop floor reported it) are updated from the newly inserted events of an append, so
they never disagree with the log; ``unknown_machines`` records machines that sent events but are
not in the factory model.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, String, select, update
from sqlalchemy.engine import Connection

from microfab.model.events import EnergyReading, Event, OrderEvent, PartCount, StateChange
from microfab.store import schema
from microfab.store.schema import UtcDateTime, sqlite_time, stored_time

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_ORDER_RANK = {"created": 0, "released": 1, "in_progress": 2, "completed": 3, "cancelled": 4}
_SQLITE_KEYS = 500
"""Keys per ``IN (…)`` look-up on SQLite (well inside its limit on bound parameters)."""


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


def _sqlite_value(value: Any) -> Any:
    """A value as SQLAlchemy binds it on SQLite (times as text, all else as it is)."""
    return sqlite_time(value) if isinstance(value, dt.datetime) else value


def _pg_array_type(column: Any, dialect: Any) -> str:
    """The PostgreSQL array type that carries values of ``column`` (text for any string type:
    an explicit cast to varchar(n) would cut long values where the column refuses them)."""
    if isinstance(column.type, String):
        return "text[]"
    return f"{column.type.compile(dialect=dialect)}[]"


def _later(a_ts: dt.datetime | None, a_id: str | None, b_ts: dt.datetime, b_id: str) -> bool:
    """True when (b_ts, b_id) comes after (a_ts, a_id): the total order of events."""
    if a_ts is None:
        return True
    return (b_ts, b_id) > (a_ts, a_id or "")


def locked_rows(
    conn: Connection, table: Any, key: str, keys: list[str], blank: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """Create missing rows, then read them locked (PostgreSQL) in key order; times come back
    as aware UTC datetimes.

    Read models are read and written with plain SQL: SQLAlchemy cannot cache an ON CONFLICT
    insert (it compiles it anew each time), and its statement building and row processing
    cost more than the statements themselves for these few rows per append.
    """
    sqlite = conn.dialect.name == "sqlite"
    defaults = tuple(_sqlite_value(v) if sqlite else v for v in blank.values())
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
            f"{insert}SELECT k{marks} FROM unnest(%s::text[]) AS k ON CONFLICT ({key}) DO NOTHING",
            (*defaults, keys),
        )
    columns = [column.name for column in table.columns]
    times = [column.name for column in table.columns if isinstance(column.type, UtcDateTime)]
    query = f"SELECT {', '.join(columns)} FROM {table.name} WHERE {key} "
    found: list[Any] = []
    if sqlite:
        for start in range(0, len(keys), _SQLITE_KEYS):
            part = tuple(keys[start : start + _SQLITE_KEYS])
            found += conn.exec_driver_sql(f"{query}IN ({', '.join('?' * len(part))})", part)
    else:
        found += conn.exec_driver_sql(f"{query}= ANY(%s) ORDER BY {key} FOR UPDATE", (keys,))
    rows: dict[str, dict[str, Any]] = {}
    at = columns.index(key)
    for values in sorted(found, key=lambda values: values[at]) if sqlite else found:
        row = dict(zip(columns, values, strict=True))
        for name in times:
            row[name] = stored_time(row[name])
        rows[row[key]] = row
    return rows


def _update_rows(conn: Connection, table: Any, key: str, rows: dict[str, dict[str, Any]]) -> None:
    """Write read-model rows (keyed by ``key``) back with one executemany."""
    if not rows:
        return
    columns = [name for name in next(iter(rows.values())) if name != key]
    if conn.dialect.name == "sqlite":
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


def update_machine_status(conn: Connection, new: Sequence[Event]) -> None:
    """Fold newly inserted events into their machines' rows (state, counts, energy, order)."""
    if not new:
        return
    table = schema.machine_status
    keys = sorted({ev.machine for ev in new})
    rows = locked_rows(conn, table, "machine", keys, {"good": 0, "scrap": 0, "events": 0})
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
            and (row["order_ts"] is None or (ev.ts, ev.order) > (row["order_ts"], row["order_id"]))
        ):
            row.update(order_id=ev.order, order_ts=ev.ts)
    _update_rows(conn, table, "machine", rows)


def update_order_status(conn: Connection, new: Sequence[Event]) -> None:
    """Fold newly inserted order and count events into their orders' rows."""
    relevant = [ev for ev in new if isinstance(ev, PartCount | OrderEvent) and ev.order is not None]
    if not relevant:
        return
    table = schema.order_status
    keys = sorted({ev.order for ev in relevant if ev.order is not None})
    rows = locked_rows(
        conn,
        table,
        "order_id",
        keys,
        {"status": "created", "last_ts": EPOCH, "good": 0, "scrap": 0},
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
    _update_rows(conn, table, "order_id", rows)


def machine_status(engine: Engine) -> list[MachineStatus]:
    """Every machine's row of the machine_status read model, by path."""
    with engine.connect() as conn:
        rows = conn.execute(select(schema.machine_status).order_by("machine")).mappings().all()
    return [
        MachineStatus(
            machine=r["machine"],
            state=r["state"],
            reason=r["reason"],
            state_ts=r["state_ts"],
            good=r["good"],
            scrap=r["scrap"],
            kwh=r["kwh"],
            order=r["order_id"],
            last_ts=r["last_ts"],
            events=r["events"],
        )
        for r in rows
    ]


def order_status(engine: Engine) -> list[OrderStatus]:
    """Every order's row of the order_status read model, by order id."""
    with engine.connect() as conn:
        rows = conn.execute(select(schema.order_status).order_by("order_id")).mappings().all()
    return [
        OrderStatus(
            order=r["order_id"],
            product=r["product"],
            quantity=r["quantity"],
            status=r["status"],
            operation=r["operation"],
            machine=r["machine"],
            released_ts=r["released_ts"],
            completed_ts=r["completed_ts"],
            good=r["good"],
            scrap=r["scrap"],
        )
        for r in rows
    ]


def flag_unknown_machines(
    conn: Connection, seen: dict[str, tuple[dt.datetime, dt.datetime, int]]
) -> None:
    """Record machines that sent events but are not in the factory model (path -> first, last, n)."""
    if not seen:
        return
    table = schema.unknown_machines
    rows = locked_rows(
        conn,
        table,
        "machine",
        sorted(seen),
        {"first_ts": EPOCH, "last_ts": EPOCH, "events": 0},
    )
    for machine, (first, last, n) in seen.items():
        row = rows[machine]
        stored_first = row["first_ts"] or EPOCH
        new_first = first if stored_first == EPOCH else min(first, stored_first)
        conn.execute(
            update(table)
            .where(table.c.machine == machine)
            .values(
                first_ts=new_first,
                last_ts=max(last, row["last_ts"] or last),
                events=row["events"] + n,
            )
        )


def unknown_machines(engine: Engine) -> list[tuple[str, dt.datetime, dt.datetime, int]]:
    """Machines that sent events but are not in the factory model: (path, first, last, n)."""
    table = schema.unknown_machines
    with engine.connect() as conn:
        rows = conn.execute(select(table).order_by(table.c.machine)).all()
    return [(r[0], r[1] or EPOCH, r[2] or EPOCH, int(r[3])) for r in rows]
