"""HACCP critical control points: critical limits per step, judged per batch from telemetry.

A HACCP plan file (YAML, :func:`load_haccp`) names each critical control point (CCP): the machine
and routing step (``operation``) where it is controlled, the critical limits on telemetry metrics
(``min`` and/or ``max``) and on the batch's time at the step (``time: {min_min, max_min}``).

A *batch* is one work order at that step: from the order's ``started`` to its ``completed``
event for the operation on that machine. Every telemetry reading taken in between while the
machine ran is judged against each limit; a metric with no reading at all is a deviation too
(no monitoring record). :func:`batch_records` returns one :class:`BatchRecord` per batch, with
the readings' summary per limit and its deviations; :func:`render_batch_record` prints them as a
standalone HTML page for inspectors (and for PDF). Deviations feed the ``ccp`` alert rule.
"""

from __future__ import annotations

import bisect
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from microfab.errors import NotFoundError
from microfab.model.events import format_ts
from microfab.model.factory import Factory
from microfab.model.located_yaml import Loc, load_located_file
from microfab.reports import render
from microfab.store.event_store import EventStore
from microfab.store.production import step_events

RUNNING_STATES = frozenset({"running", "setup", "micro_stop"})


class CriticalLimit(BaseModel):
    """A metric's acceptable range at a CCP."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: str
    min: float | None = None
    max: float | None = None
    unit: str = ""

    def text(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        if self.min is not None and self.max is not None:
            return f"{self.min:g} … {self.max:g}{unit}"
        if self.min is not None:
            return f"≥ {self.min:g}{unit}"
        return f"≤ {self.max:g}{unit}"


class TimeLimit(BaseModel):
    """The batch's time at the step, in minutes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_min: float | None = Field(None, gt=0)
    max_min: float | None = Field(None, gt=0)

    def text(self) -> str:
        if self.min_min is not None and self.max_min is not None:
            return f"{self.min_min:g} … {self.max_min:g} min"
        if self.min_min is not None:
            return f"≥ {self.min_min:g} min"
        return f"≤ {self.max_min:g} min"


class ControlPoint(BaseModel):
    """One critical control point."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
    name: str
    hazard: str = ""
    machine: str
    operation: int
    limits: list[CriticalLimit] = Field(default_factory=list)
    time: TimeLimit | None = None
    corrective_action: str = ""


class HaccpPlan(BaseModel):
    """A HACCP plan file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    plan: str = "HACCP plan"
    ccps: list[ControlPoint] = Field(min_length=1)


def _check(plan: HaccpPlan) -> list[tuple[Loc, str]]:
    faults: list[tuple[Loc, str]] = []
    seen: set[str] = set()
    for i, ccp in enumerate(plan.ccps):
        if ccp.id in seen:
            faults.append((("ccps", i, "id"), f"CCP id '{ccp.id}' is used twice"))
        seen.add(ccp.id)
        if not ccp.limits and ccp.time is None:
            faults.append((("ccps", i), "a CCP needs critical limits ('limits' or 'time')"))
        for j, limit in enumerate(ccp.limits):
            if limit.min is None and limit.max is None:
                faults.append((("ccps", i, "limits", j), "a limit needs 'min', 'max' or both"))
            elif limit.min is not None and limit.max is not None and limit.min > limit.max:
                faults.append((("ccps", i, "limits", j, "min"), "'min' is above 'max'"))
        if ccp.time is not None:
            t = ccp.time
            if t.min_min is None and t.max_min is None:
                faults.append((("ccps", i, "time"), "a time limit needs 'min_min' or 'max_min'"))
            elif t.min_min is not None and t.max_min is not None and t.min_min > t.max_min:
                faults.append((("ccps", i, "time", "min_min"), "'min_min' is above 'max_min'"))
    return faults


def load_haccp(path: Path) -> HaccpPlan:
    """Read a HACCP plan; LocatedFileError (exit 2) names the line of every fault."""
    return load_located_file(
        path, HaccpPlan, what="HACCP plan", expected="'ccps' (a list)", check=_check
    )


# ---------------------------------------------------------------------------- batches


@dataclass(frozen=True, slots=True)
class Deviation:
    """A critical limit a batch missed: which, when first, how far."""

    limit: str
    """``METRIC max``, ``METRIC min``, ``METRIC reading`` (none taken) or ``time max``/``min``."""
    ts: dt.datetime
    value: float | None
    message: str

    def to_json(self) -> dict[str, Any]:
        return {
            "limit": self.limit,
            "ts": format_ts(self.ts),
            "value": self.value,
            "message": self.message,
        }


@dataclass(frozen=True, slots=True)
class LimitSummary:
    """The readings of one metric in a batch against its critical limit."""

    limit: CriticalLimit
    readings: int
    low: float | None
    high: float | None
    mean: float | None
    outside: int

    def to_json(self) -> dict[str, Any]:
        return {
            "metric": self.limit.metric,
            "limit": self.limit.text(),
            "min": self.limit.min,
            "max": self.limit.max,
            "readings": self.readings,
            "low": self.low,
            "high": self.high,
            "mean": None if self.mean is None else round(self.mean, 3),
            "outside": self.outside,
        }


@dataclass(slots=True)
class BatchRecord:
    """One work order at one CCP: its limits, readings and deviations."""

    ccp: str
    ccp_name: str
    machine: str
    operation: int
    order: str
    product: str | None
    quantity: int | None
    start: dt.datetime
    end: dt.datetime | None
    limits: list[LimitSummary] = field(default_factory=list)
    time_limit: str | None = None
    deviations: list[Deviation] = field(default_factory=list)

    @property
    def minutes(self) -> float | None:
        return None if self.end is None else (self.end - self.start).total_seconds() / 60

    @property
    def status(self) -> str:
        if self.deviations:
            return "deviation"
        return "in progress" if self.end is None else "pass"

    def to_json(self) -> dict[str, Any]:
        return {
            "ccp": self.ccp,
            "ccp_name": self.ccp_name,
            "machine": self.machine,
            "operation": self.operation,
            "order": self.order,
            "product": self.product,
            "quantity": self.quantity,
            "start": format_ts(self.start),
            "end": None if self.end is None else format_ts(self.end),
            "minutes": None if self.minutes is None else round(self.minutes, 1),
            "status": self.status,
            "time_limit": self.time_limit,
            "limits": [s.to_json() for s in self.limits],
            "deviations": [d.to_json() for d in self.deviations],
        }


def _batches(
    store: EventStore, machine: str, operation: int
) -> list[tuple[str, dt.datetime, dt.datetime | None]]:
    """(order, started, completed or None) of every order at this machine and operation."""
    started: dict[str, dt.datetime] = {}
    done: dict[str, dt.datetime] = {}
    for ts, order, kind in step_events(store, machine, operation):
        if kind == "started" and order not in started:
            started[order] = ts
        elif kind == "completed" and order in started:
            done[order] = ts
    return sorted(
        ((order, ts, done.get(order)) for order, ts in started.items()), key=lambda b: b[1]
    )


def _orders(store: EventStore) -> dict[str, tuple[str | None, int | None]]:
    return {o.order: (o.product, o.quantity) for o in store.order_status()}


def _judge(
    record: BatchRecord, ccp: ControlPoint, readings: list[tuple[dt.datetime, dict[str, float]]]
) -> None:
    for limit in ccp.limits:
        values = [(ts, m[limit.metric]) for ts, m in readings if limit.metric in m]
        outside = [
            (ts, v)
            for ts, v in values
            if (limit.min is not None and v < limit.min)
            or (limit.max is not None and v > limit.max)
        ]
        nums = [v for _, v in values]
        record.limits.append(
            LimitSummary(
                limit,
                len(values),
                min(nums) if nums else None,
                max(nums) if nums else None,
                sum(nums) / len(nums) if nums else None,
                len(outside),
            )
        )
        if not values and record.end is not None:
            record.deviations.append(
                Deviation(
                    f"{limit.metric} reading",
                    record.start,
                    None,
                    f"no {limit.metric} reading while the batch was at the step "
                    "(no monitoring record)",
                )
            )
        for side in ("max", "min"):
            bound = limit.max if side == "max" else limit.min
            if bound is None:
                continue
            beyond = [(ts, v) for ts, v in outside if (v > bound if side == "max" else v < bound)]
            if beyond:
                worst = max(v for _, v in beyond) if side == "max" else min(v for _, v in beyond)
                record.deviations.append(
                    Deviation(
                        f"{limit.metric} {side}",
                        beyond[0][0],
                        worst,
                        f"{limit.metric} {'above' if side == 'max' else 'below'} "
                        f"{bound:g}{' ' + limit.unit if limit.unit else ''}: {worst:g} "
                        f"({len(beyond)} of {len(values)} readings)",
                    )
                )
    if ccp.time is not None:
        record.time_limit = ccp.time.text()
        minutes = record.minutes
        t = ccp.time
        if t.max_min is not None and minutes is not None and minutes > t.max_min:
            record.deviations.append(
                Deviation(
                    "time max",
                    record.start + dt.timedelta(minutes=t.max_min),
                    round(minutes, 1),
                    f"{minutes:.0f} min at the step, more than {t.max_min:g} min",
                )
            )
        if t.min_min is not None and minutes is not None and minutes < t.min_min:
            assert record.end is not None
            record.deviations.append(
                Deviation(
                    "time min",
                    record.end,
                    round(minutes, 1),
                    f"{minutes:.1f} min at the step, less than {t.min_min:g} min",
                )
            )


def batch_records(
    store: EventStore,
    factory: Factory,
    plan: HaccpPlan,
    *,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    order: str | None = None,
) -> list[BatchRecord]:
    """Every batch at every CCP that started in ``[start, end)`` (or only ``order``'s)."""
    from microfab.quality.spc import find_machine
    from microfab.store.quality import state_changes, telemetry_rows

    orders = _orders(store)
    records: list[BatchRecord] = []
    for ccp in plan.ccps:
        path = find_machine(factory, ccp.machine).path
        batches = [
            b
            for b in _batches(store, path, ccp.operation)
            if (order is None or b[0] == order)
            and (start is None or b[1] >= start)
            and (end is None or b[1] < end)
        ]
        if not batches:
            continue
        first = batches[0][1]
        last: dt.datetime | None = None
        if all(b[2] is not None for b in batches):
            last = max(b[2] or b[1] for b in batches) + dt.timedelta(seconds=1)
        rows = telemetry_rows(store, [path], first, last)
        changes = state_changes(store, [path], None, last)
        change_times = [ts for _, ts, _, _ in changes]
        running = []
        for row in rows:
            i = bisect.bisect_right(change_times, row.ts) - 1
            if i >= 0 and changes[i][2] in RUNNING_STATES:
                running.append((row.ts, row.metrics))
        times = [ts for ts, _ in running]
        for name, began, finished in batches:
            lo = bisect.bisect_left(times, began)
            hi = len(times) if finished is None else bisect.bisect_right(times, finished)
            product, quantity = orders.get(name, (None, None))
            record = BatchRecord(
                ccp.id, ccp.name, path, ccp.operation, name, product, quantity, began, finished
            )
            _judge(record, ccp, running[lo:hi])
            records.append(record)
    if order is not None and not records:
        raise NotFoundError(
            f"order '{order}' has no batch at a critical control point of the HACCP plan"
        )
    records.sort(key=lambda r: (r.start, r.ccp))
    return records


def haccp_report(
    store: EventStore,
    factory: Factory,
    plan: HaccpPlan,
    *,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    order: str | None = None,
) -> dict[str, Any]:
    """The JSON of ``microfab haccp batches --json``: every batch record and a count of each."""
    records = batch_records(store, factory, plan, start=start, end=end, order=order)
    return {
        "plan": plan.plan,
        "batches": [r.to_json() for r in records],
        "deviations": sum(len(r.deviations) for r in records),
        "batches_with_deviations": sum(1 for r in records if r.deviations),
    }


# ---------------------------------------------------------------------------- the record


def render_batch_record(
    factory: Factory, plan: HaccpPlan, order: str, records: list[BatchRecord]
) -> str:
    """A standalone, printable HTML batch record of one order at every CCP it passed
    (the reports layer's ``haccp_batch.html``)."""
    zone = factory.sites[0].zone

    def local(value: dt.datetime | None) -> str:
        return "—" if value is None else f"{value.astimezone(zone):%Y-%m-%d %H:%M}"

    def num(value: float | None) -> str:
        return "—" if value is None else f"{value:g}"

    ccps = {c.id: c for c in plan.ccps}
    return render(
        "haccp_batch.html",
        company=factory.company.name,
        plan=plan.plan,
        order=order,
        first=records[0],
        zone=str(zone),
        records=[
            (r, ccps[r.ccp], sum(1 for d in r.deviations if d.limit.startswith("time")))
            for r in records
        ],
        generated=local(dt.datetime.now(dt.UTC)),
        local=local,
        num=num,
    )
