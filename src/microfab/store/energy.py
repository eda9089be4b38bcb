"""Energy meter readings read from the event log, for carbon accounting.

For each meter (machine path and carrier) the readings inside a time range together with the last
reading at or before its start and the first one at or after its end, so that the intervals that
straddle the range's edges can be measured and clipped.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, select

from microfab.store import schema
from microfab.store.event_store import EventStore


@dataclass(frozen=True, slots=True)
class MeterReading:
    machine: str
    ts: dt.datetime
    carrier: str
    """``electricity`` or a fuel carrier (towngas, lpg, diesel)."""
    value: float
    """Cumulative reading in ``unit``."""
    unit: str


def meter_readings(
    store: EventStore, machines: Sequence[str], start: dt.datetime, end: dt.datetime
) -> list[MeterReading]:
    """Energy readings of ``machines`` in ``[start, end]`` plus the one just outside each edge.

    Ordered by machine, carrier, time and id."""
    table = schema.events
    body = table.c.body
    columns = (
        table.c.machine,
        table.c.ts,
        body["kwh"].as_float(),
        body["carrier"].as_string(),
        body["quantity"].as_float(),
        body["unit"].as_string(),
    )
    lo, hi = start.astimezone(dt.UTC), end.astimezone(dt.UTC)
    readings: list[MeterReading] = []
    with store.engine.connect() as conn:
        for machine in machines:
            base = and_(table.c.machine == machine, table.c.stream == "energy")
            inside = conn.execute(
                select(*columns)
                .where(base, table.c.ts >= lo, table.c.ts <= hi)
                .order_by(table.c.ts, table.c.id)
            ).all()
            before = conn.execute(
                select(*columns)
                .where(base, table.c.ts < lo)
                .order_by(table.c.ts.desc(), table.c.id.desc())
                .limit(20)  # the last reading of each carrier (a machine rarely has two)
            ).all()
            after = conn.execute(
                select(*columns)
                .where(base, table.c.ts > hi)
                .order_by(table.c.ts, table.c.id)
                .limit(20)
            ).all()
            rows: list[MeterReading] = []
            edge_before: dict[str, MeterReading] = {}
            edge_after: dict[str, MeterReading] = {}
            for group, target, keep_first in (
                (before, edge_before, True),
                (after, edge_after, True),
            ):
                for row in group:
                    reading = _reading(row)
                    if keep_first and reading.carrier not in target:
                        target[reading.carrier] = reading
            rows = [*edge_before.values(), *(_reading(row) for row in inside), *edge_after.values()]
            rows.sort(key=lambda r: (r.carrier, r.ts))
            readings += rows
    return readings


def _reading(row: Any) -> MeterReading:
    machine, ts, kwh, carrier, quantity, unit = row
    assert isinstance(machine, str) and isinstance(ts, dt.datetime)
    if carrier is None:
        return MeterReading(machine, ts, "electricity", float(kwh or 0.0), "kWh")
    return MeterReading(machine, ts, str(carrier), float(quantity or 0.0), str(unit))
