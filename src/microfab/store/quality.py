"""Quality facts read from the event log: one telemetry metric over time, and scrap per count.

Compact reads for SPC, anomaly detection and maintenance: the values of one metric of one machine
(extracted in SQL from the event body), every telemetry sample of a set of machines, and the
machines' state changes. The same queries run on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from microfab.store import schema
from microfab.store.event_store import EventStore


@dataclass(frozen=True, slots=True)
class Sample:
    """One reading of one metric."""

    ts: dt.datetime
    value: float


@dataclass(frozen=True, slots=True)
class TelemetryRow:
    """One telemetry event: every metric it carried."""

    machine: str
    ts: dt.datetime
    metrics: dict[str, float]


def _range(stmt: Any, start: dt.datetime | None, end: dt.datetime | None) -> Any:
    table = schema.events
    if start is not None:
        stmt = stmt.where(table.c.ts >= start.astimezone(dt.UTC))
    if end is not None:
        stmt = stmt.where(table.c.ts < end.astimezone(dt.UTC))
    return stmt


def metric_samples(
    store: EventStore,
    machine: str,
    metric: str,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
) -> list[Sample]:
    """The values of ``metric`` reported by ``machine`` in ``[start, end)``, in event order."""
    table = schema.events
    value = table.c.body[("metrics", metric)].as_float()
    stmt = _range(
        select(table.c.ts, value).where(
            table.c.machine == machine, table.c.stream == "telemetry", value.is_not(None)
        ),
        start,
        end,
    ).order_by(table.c.ts, table.c.id)
    with store.engine.connect() as conn:
        return [Sample(ts, float(v)) for ts, v in conn.execute(stmt)]


def metric_names(store: EventStore, machine: str, limit: int = 200) -> list[str]:
    """Names of the metrics in the machine's latest telemetry events (for error messages)."""
    table = schema.events
    stmt = (
        select(table.c.body)
        .where(table.c.machine == machine, table.c.stream == "telemetry")
        .order_by(table.c.ts.desc())
        .limit(limit)
    )
    names: set[str] = set()
    with store.engine.connect() as conn:
        for (body,) in conn.execute(stmt):
            names.update(body.get("metrics", {}))
    return sorted(names)


def telemetry_rows(
    store: EventStore,
    machines: Sequence[str],
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
) -> list[TelemetryRow]:
    """Every telemetry event of these machines in ``[start, end)``, in event order."""
    table = schema.events
    stmt = _range(
        select(table.c.machine, table.c.ts, table.c.body).where(
            table.c.machine.in_(machines), table.c.stream == "telemetry"
        ),
        start,
        end,
    ).order_by(table.c.ts, table.c.id)
    with store.engine.connect() as conn:
        return [
            TelemetryRow(machine, ts, {k: float(v) for k, v in body["metrics"].items()})
            for machine, ts, body in conn.execute(stmt)
        ]


def state_changes(
    store: EventStore,
    machines: Sequence[str],
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
) -> list[tuple[str, dt.datetime, str, str | None]]:
    """(machine, ts, state, reason) of every state change in ``[start, end)``, in event order."""
    table = schema.events
    stmt = _range(
        select(
            table.c.machine,
            table.c.ts,
            table.c.body["state"].as_string(),
            table.c.body["reason"].as_string(),
        ).where(table.c.machine.in_(machines), table.c.stream == "state"),
        start,
        end,
    ).order_by(table.c.ts, table.c.id)
    with store.engine.connect() as conn:
        return [(m, ts, s, r) for m, ts, s, r in conn.execute(stmt)]


def stream_span(
    store: EventStore, machine: str, stream: str
) -> tuple[dt.datetime, dt.datetime] | None:
    """First and last event time of one machine's stream, or None when it has none."""
    table = schema.events
    stmt = select(func.min(table.c.ts), func.max(table.c.ts)).where(
        table.c.machine == machine, table.c.stream == stream
    )
    with store.engine.connect() as conn:
        first, last = conn.execute(stmt).one()
    if first is None or last is None:
        return None
    return first, last


@dataclass(frozen=True, slots=True)
class InspectionRow:
    """One inspection result, with the product of its order when the event names none."""

    machine: str
    ts: dt.datetime
    passed: bool
    defect: str | None
    order: str | None
    product: str | None


def inspection_rows(
    store: EventStore, start: dt.datetime | None = None, end: dt.datetime | None = None
) -> list[InspectionRow]:
    """Every ``inspection`` event in ``[start, end)``, in event order."""
    table = schema.events
    body = table.c.body
    stmt = _range(
        select(
            table.c.machine,
            table.c.ts,
            body["result"].as_string(),
            body["defect"].as_string(),
            body["order"].as_string(),
            body["product"].as_string(),
        ).where(table.c.stream == "inspection"),
        start,
        end,
    ).order_by(table.c.ts, table.c.id)
    products = {o.order: o.product for o in store.order_status()}
    with store.engine.connect() as conn:
        return [
            InspectionRow(
                machine,
                ts,
                result == "pass",
                defect,
                order,
                product or (products.get(order) if order else None),
            )
            for machine, ts, result, defect, order, product in conn.execute(stmt)
        ]
