"""Preventive maintenance plans and when they fall due, computed live from the read models.

A plan belongs to one machine and has a *basis*:

==========  ===============================================================================
basis       counts from the plan's start (or its newest finished job) …
==========  ===============================================================================
calendar    … calendar days: due ``interval`` days later
run_hours   … hours the machine spent ``running`` (the ``state_spans`` read model, wall time)
cycles      … units the machine counted, good + scrap (the ``production_hourly`` read model;
            its hours are site hours, so a plan counts from a whole hour)
condition   … nothing: due as soon as the newest reading of ``metric`` reaches ``limit``
==========  ===============================================================================

For run hours and cycles the due *time* is an estimate: what is left at the rate used since the
start (``left / (used / elapsed)``); with nothing used yet there is none. ``lead`` (in the
basis' unit: hours of calendar or run time, cycles) says how far ahead :func:`order_due_jobs`
creates the plan's work order.
"""

from __future__ import annotations

import datetime as dt
import enum
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from microfab.errors import InputError
from microfab.model.events import format_ts, parse_ts
from microfab.model.located_yaml import load_located_file
from microfab.store import maintenance as rows
from microfab.store.audit import append_audit
from microfab.store.event_store import EventStore
from microfab.store.production_views import count_totals, spans_between
from microfab.track.plant import Plant


class Basis(enum.StrEnum):
    CALENDAR = "calendar"
    RUN_HOURS = "run_hours"
    CYCLES = "cycles"
    CONDITION = "condition"


class PlanSpec(BaseModel):
    """One plan as written in a plans file or given on the command line."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    machine: str = Field(min_length=1, max_length=210)
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._-]*$")
    basis: Basis
    interval: float = Field(
        default=0.0,
        description="days (calendar), running hours (run_hours) or cycles (cycles)",
        allow_inf_nan=False,
    )
    lead: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    metric: str | None = Field(default=None, max_length=64)
    limit: float | None = Field(default=None, allow_inf_nan=False)
    duration_min: float = Field(default=60.0, gt=0, le=60 * 24 * 7, allow_inf_nan=False)
    since: dt.datetime | None = None

    @field_validator("since", mode="before")
    @classmethod
    def _since(cls, value: object) -> dt.datetime | None:
        return None if value is None else parse_ts(value)

    def problems(self) -> list[tuple[tuple[str | int, ...], str]]:
        found: list[tuple[tuple[str | int, ...], str]] = []
        if self.basis is Basis.CONDITION:
            if not self.metric:
                found.append((("metric",), "a condition plan needs 'metric' (a telemetry name)"))
            if self.limit is None:
                found.append((("limit",), "a condition plan needs 'limit'"))
        elif self.interval <= 0:
            found.append(
                (("interval",), f"{self.interval:g} is not a positive interval; give more than 0")
            )
        return found


class PlansFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    plans: list[PlanSpec] = Field(min_length=1)


def _file_problems(parsed: PlansFile) -> list[tuple[tuple[str | int, ...], str]]:
    found: list[tuple[tuple[str | int, ...], str]] = []
    for i, spec in enumerate(parsed.plans):
        found += [(("plans", i, *loc), message) for loc, message in spec.problems()]
    return found


def read_plans_file(path: Path) -> list[PlanSpec]:
    """Plans from a YAML file (``plans: [{machine, name, basis, interval, lead, …}]``); every
    fault located as ``file:line field: message``."""
    return load_located_file(
        path,
        PlansFile,
        what="maintenance plans",
        expected="'plans': a list of plans",
        check=_file_problems,
    ).plans


def add_plans(plant: Plant, specs: list[PlanSpec], actor: str) -> list[int]:
    """Store the plans in one transaction (all or none); their ids."""
    factory = plant.factory()
    resolved = []
    for i, spec in enumerate(specs):
        faults = spec.problems()
        if faults:
            raise InputError(
                f"plan {i + 1} ({spec.name}): "
                + "; ".join(f"{'.'.join(map(str, loc))}: {m}" for loc, m in faults)
            )
        ref = plant.machine(spec.machine, factory)
        resolved.append((spec, ref.path))
    since_default = plant.now()
    ids = []
    with plant.store.transaction() as conn:
        for spec, path in resolved:
            if rows.plan_exists(conn, path, spec.name):
                raise InputError(f"plan '{spec.name}' exists already for {path}")
            since = spec.since or since_default
            values: dict[str, Any] = {
                "machine": path,
                "name": spec.name,
                "basis": spec.basis.value,
                "interval": spec.interval,
                "lead": spec.lead,
                "metric": spec.metric,
                "limit": spec.limit,
                "duration_min": spec.duration_min,
                "since": since,
                "active": 1,
            }
            plan_id = rows.insert_plan(conn, values)
            after = {**values, "since": format_ts(since), "id": plan_id}
            append_audit(
                conn, actor=actor, action="maint.plan", target=f"maint-plan:{plan_id}", after=after
            )
            ids.append(plan_id)
    return ids


@dataclass(frozen=True, slots=True)
class Due:
    """When one plan falls due, as ``maintenance due --json`` lists it."""

    plan_id: int
    machine: str
    plan: str
    basis: str
    base: dt.datetime
    used: float | None
    interval: float
    due_at: dt.datetime | None
    due_in_hours: float | None
    due_in_cycles: float | None
    overdue: bool
    within_lead: bool
    duration_min: float
    left: float | None = None
    """What is left of the interval: days, running hours or cycles."""
    reading: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "machine": self.machine,
            "plan": self.plan,
            "basis": self.basis,
            "due_at": None if self.due_at is None else format_ts(self.due_at),
            "due_in_hours": None if self.due_in_hours is None else round(self.due_in_hours, 2),
            "due_in_cycles": None if self.due_in_cycles is None else round(self.due_in_cycles),
            "overdue": self.overdue,
            "plan_id": self.plan_id,
            "since": format_ts(self.base),
            "used": None if self.used is None else round(self.used, 2),
            "left": None if self.left is None else round(self.left, 2),
            "interval": self.interval,
            "within_lead": self.within_lead,
            "reading": self.reading,
        }


def running_hours(store: EventStore, machine: str, start: dt.datetime, end: dt.datetime) -> float:
    """Hours ``machine`` was ``running`` within ``[start, end)`` (state spans, wall time)."""
    total = 0.0
    for span in spans_between(store, [machine], start, end)[machine]:
        if span.state != "running":
            continue
        lo = max(span.start, start)
        hi = min(span.end or end, end)
        if hi > lo:
            total += (hi - lo).total_seconds()
    return total / 3600


def cycles(store: EventStore, machine: str, start: dt.datetime, end: dt.datetime) -> int:
    """Units ``machine`` counted (good + scrap, inside and outside working time) in the site
    hours that overlap ``[start, end)``."""
    return sum(
        t.good + t.scrap + t.outside_good + t.outside_scrap
        for t in count_totals(store, start, end, machines=[machine])
    )


def latest_reading(store: EventStore, machine: str, metric: str) -> float | None:
    return rows.latest_metric(store, machine, metric)


def due_of(store: EventStore, plan: dict[str, Any], now: dt.datetime) -> Due:
    """When ``plan`` (a stored plan row) falls due, as of ``now``."""
    base = max(plan["since"], plan["last_done"] or plan["since"])
    basis = Basis(plan["basis"])
    interval = float(plan["interval"])
    lead = float(plan["lead"])
    elapsed_h = max(0.0, (now - base).total_seconds() / 3600)
    used: float | None = None
    due_at: dt.datetime | None = None
    in_hours: float | None = None
    in_cycles: float | None = None
    reading = None
    left: float | None = None
    if basis is Basis.CALENDAR:
        due_at = base + dt.timedelta(days=interval)
        used = elapsed_h / 24
        left = interval - used
        overdue = due_at <= now
        within = (due_at - now).total_seconds() / 3600 <= lead
    elif basis is Basis.RUN_HOURS:
        used = running_hours(store, plan["machine"], base, now)
        left = interval - used
        if used > 0 and elapsed_h > 0:
            due_at = now + dt.timedelta(hours=left * elapsed_h / used)
        overdue = left <= 0
        within = left <= lead
    elif basis is Basis.CYCLES:
        used = float(cycles(store, plan["machine"], base, now))
        left = interval - used
        in_cycles = left
        if used > 0 and elapsed_h > 0:
            due_at = now + dt.timedelta(hours=left * elapsed_h / used)
        overdue = left <= 0
        within = left <= lead
    else:
        reading = latest_reading(store, plan["machine"], plan["metric"] or "")
        limit = plan["limit"]
        overdue = reading is not None and limit is not None and reading >= limit
        due_at = now if overdue else None
        within = overdue
    if due_at is not None:
        in_hours = (due_at - now).total_seconds() / 3600
    return Due(
        plan_id=int(plan["id"]),
        machine=plan["machine"],
        plan=plan["name"],
        basis=basis.value,
        base=base,
        used=used,
        interval=interval,
        due_at=due_at,
        due_in_hours=None if in_hours is None or math.isnan(in_hours) else in_hours,
        due_in_cycles=in_cycles,
        left=left,
        overdue=overdue,
        within_lead=within,
        duration_min=float(plan["duration_min"]),
        reading=reading,
    )


def due_list(store: EventStore, now: dt.datetime) -> list[Due]:
    """Every active plan's due, soonest first (overdue ones first)."""
    found = [due_of(store, plan, now) for plan in rows.list_plans(store)]
    far = dt.datetime.max.replace(tzinfo=dt.UTC)
    return sorted(found, key=lambda d: (not d.overdue, d.due_at or far, d.machine, d.plan))


def order_due_jobs(plant: Plant, actor: str, now: dt.datetime | None = None) -> list[int]:
    """Create the work order of every plan that is due within its lead (once per plan while one
    is open): ``preventive``, or ``predictive`` for a condition plan."""
    from microfab.maint.workorders import Kind, NewOrder, Source, create_order

    moment = now or plant.now()
    made = []
    for due in due_list(plant.store, moment):
        if not due.within_lead:
            continue
        kind = Kind.PREDICTIVE if due.basis == Basis.CONDITION.value else Kind.PREVENTIVE
        made.append(
            create_order(
                plant,
                NewOrder(
                    machine=due.machine,
                    kind=kind,
                    problem=f"preventive plan '{due.plan}' ({due.basis}) due",
                    source=Source.PLAN,
                    source_ref=str(due.plan_id),
                    priority=3 if due.overdue else 5,
                    evidence=due.to_json(),
                    plan_id=due.plan_id,
                ),
                actor,
                at=moment,
            )
        )
    return made


def plans_json(store: EventStore) -> list[dict[str, Any]]:
    out = []
    for plan in rows.list_plans(store):
        out.append(
            {
                "id": int(plan["id"]),
                "machine": plan["machine"],
                "name": plan["name"],
                "basis": plan["basis"],
                "interval": float(plan["interval"]),
                "lead": float(plan["lead"]),
                "metric": plan["metric"],
                "limit": plan["limit"],
                "duration_min": float(plan["duration_min"]),
                "since": format_ts(plan["since"]),
                "last_done": None if plan["last_done"] is None else format_ts(plan["last_done"]),
            }
        )
    return out
