"""Retention of raw telemetry: old telemetry events become hourly aggregates, then are deleted.

Telemetry (temperatures, pressures, speeds …) is the bulk of the log and is read in detail only
while it is recent. :func:`apply_telemetry_retention` deletes ``telemetry`` events older than a
cut-off and, in the same transaction, adds exactly the deleted samples into ``telemetry_hourly``
(per machine, metric and UTC hour: samples, total, minimum, maximum — so means stay exact and
aggregates from several runs merge). Other streams (state, count, energy, order, material) are the
evidence OEE, orders and carbon are computed from, and are never touched. The read models keep
their totals. A deleted event that is delivered again later is stored again as new.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, insert, select, update

from microfab.errors import InputError
from microfab.store import schema
from microfab.store.event_store import EventStore

_Key = tuple[str, str, dt.datetime]
"""(machine, metric, hour)."""


@dataclass(frozen=True, slots=True)
class RetentionResult:
    """What a retention run deleted (or would delete, on a dry run)."""

    cutoff: dt.datetime
    events: int
    hours: int
    """Aggregate rows (machine × metric × hour) written or merged."""
    dry_run: bool


@dataclass(frozen=True, slots=True)
class TelemetryHour:
    """One hourly aggregate of one metric of one machine."""

    machine: str
    metric: str
    hour: dt.datetime
    samples: int
    total: float
    minimum: float
    maximum: float

    @property
    def mean(self) -> float:
        return self.total / self.samples


def _hour(ts: dt.datetime) -> dt.datetime:
    return ts.replace(minute=0, second=0, microsecond=0)


def apply_telemetry_retention(
    store: EventStore, *, keep_days: int, now: dt.datetime | None = None, dry_run: bool = False
) -> RetentionResult:
    """Aggregate and delete telemetry events older than ``keep_days`` days before ``now``."""
    if keep_days < 1:
        raise InputError(f"--telemetry-days {keep_days} keeps nothing; expected 1 or more days")
    cutoff = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC) - dt.timedelta(days=keep_days)
    events = schema.events
    old = (events.c.stream == "telemetry") & (events.c.ts < cutoff)
    if dry_run:
        with store.engine.connect() as conn:
            rows = conn.execute(select(events.c.machine, events.c.ts, events.c.body).where(old))
            preview = _aggregate(rows.all())
            count = int(conn.scalar(select(func.count()).select_from(events).where(old)) or 0)
        return RetentionResult(cutoff, count, len(preview), True)
    with store.transaction() as conn:
        deleted = conn.execute(
            delete(events).where(old).returning(events.c.machine, events.c.ts, events.c.body)
        ).all()
        sums = _aggregate(deleted)
        _merge(conn, sums)
    return RetentionResult(cutoff, len(deleted), len(sums), False)


def _aggregate(rows: Any) -> dict[_Key, list[float]]:
    """Samples, total, minimum and maximum per (machine, metric, hour) of telemetry rows."""
    sums: dict[_Key, list[float]] = {}
    for machine, ts, body in rows:
        document = body if isinstance(body, dict) else json.loads(body)
        hour = _hour(ts)
        for metric, value in (document.get("metrics") or {}).items():
            entry = sums.get((machine, metric, hour))
            number = float(value)
            if entry is None:
                sums[(machine, metric, hour)] = [1, number, number, number]
            else:
                entry[0] += 1
                entry[1] += number
                entry[2] = min(entry[2], number)
                entry[3] = max(entry[3], number)
    return sums


def _merge(conn: Any, sums: dict[_Key, list[float]]) -> None:
    table = schema.telemetry_hourly
    locking = conn.dialect.name == "postgresql"
    for (machine, metric, hour), (samples, total, low, high) in sorted(sums.items()):
        key = (table.c.machine == machine) & (table.c.metric == metric) & (table.c.hour == hour)
        stmt = select(table.c.samples, table.c.total, table.c.minimum, table.c.maximum).where(key)
        row = conn.execute(stmt.with_for_update() if locking else stmt).first()
        if row is None:
            conn.execute(
                insert(table).values(
                    machine=machine,
                    metric=metric,
                    hour=hour,
                    samples=int(samples),
                    total=total,
                    minimum=low,
                    maximum=high,
                )
            )
        else:
            conn.execute(
                update(table)
                .where(key)
                .values(
                    samples=int(row[0] + samples),
                    total=row[1] + total,
                    minimum=min(row[2], low),
                    maximum=max(row[3], high),
                )
            )


def telemetry_hours(store: EventStore, *, machine: str | None = None) -> list[TelemetryHour]:
    """The stored hourly aggregates, by machine, metric and hour."""
    table = schema.telemetry_hourly
    stmt = select(table).order_by(table.c.machine, table.c.metric, table.c.hour)
    if machine is not None:
        stmt = stmt.where(table.c.machine == machine)
    with store.engine.connect() as conn:
        rows = conn.execute(stmt).mappings().all()
    return [
        TelemetryHour(
            r["machine"],
            r["metric"],
            r["hour"],
            int(r["samples"]),
            float(r["total"]),
            float(r["minimum"]),
            float(r["maximum"]),
        )
        for r in rows
    ]
