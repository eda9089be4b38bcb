"""Production facts read from the event log for tracking: state changes, part counts, order steps.

Compact reads for OEE, downtime and HACCP batches: only the fields they need, extracted in SQL
from the event body, for a set of machines and a time range. The same queries run on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select

from microfab.model.oee import Transition
from microfab.store import schema
from microfab.store.event_store import EventStore


@dataclass(frozen=True, slots=True)
class CountRow:
    machine: str
    ts: dt.datetime
    good: int
    scrap: int
    order: str | None
    operation: int | None


def _bind(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC)


def time_span(store: EventStore, machines: Sequence[str]) -> tuple[dt.datetime, dt.datetime] | None:
    """First and last event time of these machines (state and count streams), or None."""
    table = schema.events
    stmt = select(func.min(table.c.ts), func.max(table.c.ts)).where(
        table.c.machine.in_(machines), table.c.stream.in_(("state", "count"))
    )
    with store.engine.connect() as conn:
        first, last = conn.execute(stmt).one()
    if first is None or last is None:
        return None
    return first, last


def state_transitions(
    store: EventStore, machines: Sequence[str], start: dt.datetime, end: dt.datetime
) -> dict[str, tuple[Transition | None, list[Transition]]]:
    """Per machine: the last state change before ``start`` (or None) and the changes in
    ``[start, end)``, in event order (time, then id)."""
    table = schema.events
    state = table.c.body["state"].as_string()
    reason = table.c.body["reason"].as_string()
    out: dict[str, tuple[Transition | None, list[Transition]]] = {}
    with store.engine.connect() as conn:
        for machine in machines:
            before = conn.execute(
                select(table.c.ts, state, reason)
                .where(
                    table.c.machine == machine,
                    table.c.stream == "state",
                    table.c.ts < _bind(start),
                )
                .order_by(table.c.ts.desc(), table.c.id.desc())
                .limit(1)
            ).first()
            rows = conn.execute(
                select(table.c.ts, state, reason)
                .where(
                    table.c.machine == machine,
                    table.c.stream == "state",
                    table.c.ts >= _bind(start),
                    table.c.ts < _bind(end),
                )
                .order_by(table.c.ts, table.c.id)
            ).all()
            initial = Transition(before[0], before[1], before[2]) if before else None
            out[machine] = (initial, [Transition(ts, s, r) for ts, s, r in rows])
    return out


def part_counts(
    store: EventStore, machines: Sequence[str], start: dt.datetime, end: dt.datetime
) -> list[CountRow]:
    """Count events of these machines in ``[start, end)``."""
    table = schema.events
    body = table.c.body
    stmt = (
        select(
            table.c.machine,
            table.c.ts,
            body["good"].as_integer(),
            body["scrap"].as_integer(),
            body["order"].as_string(),
            body["operation"].as_integer(),
        )
        .where(
            table.c.machine.in_(machines),
            table.c.stream == "count",
            table.c.ts >= _bind(start),
            table.c.ts < _bind(end),
        )
        .order_by(table.c.ts, table.c.id)
    )
    with store.engine.connect() as conn:
        return [
            CountRow(machine, ts, good or 0, scrap or 0, order, operation)
            for machine, ts, good, scrap, order, operation in conn.execute(stmt)
        ]


def step_events(
    store: EventStore, machine: str, operation: int
) -> list[tuple[dt.datetime, str, str]]:
    """(ts, order, event kind) of the order events of routing step ``operation`` on ``machine``
    (``started``, ``completed`` …), in (ts, id) order."""
    table = schema.events
    body = table.c.body
    stmt = (
        select(table.c.ts, body["order"].as_string(), body["event"].as_string())
        .where(
            table.c.machine == machine,
            table.c.stream == "order",
            body["operation"].as_integer() == operation,
        )
        .order_by(table.c.ts, table.c.id)
    )
    with store.engine.connect() as conn:
        return [(ts, str(order), str(kind)) for ts, order, kind in conn.execute(stmt)]
