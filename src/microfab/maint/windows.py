"""Maintenance windows and the planner: the machine is unavailable while a job is scheduled.

- :func:`maintenance_down` gives ``plan schedule``, the dashboard's re-plan and the Gantt chart
  every scheduled or running job's window, as the planner's ``down`` windows (machine path →
  [from, to)), so the CP-SAT model and the dispatch rules treat it like a break.
- :func:`check_plan` is the independent check: no operation of a plan document may overlap a
  window of its machine (``microfab plan check --plan plan.json`` runs it and exits 1).
- :func:`propose_window` answers "when should we service filler-1 this week?": every start in the
  range on a step (default 30 min) that fits inside the machine's working time, each tried by
  re-planning the open orders with that window blocked (the dispatch rules, quick and
  deterministic), and the one with the least weighted lateness wins (the earliest on a tie).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from microfab.errors import InputError
from microfab.model.calendar import working_windows
from microfab.model.events import format_ts
from microfab.store import maintenance as rows
from microfab.store.event_store import EventStore
from microfab.store.maintenance import maintenance_down
from microfab.track.plant import Plant

Windows = dict[str, list[tuple[dt.datetime, dt.datetime]]]


def merge_down(*parts: Mapping[str, Sequence[tuple[dt.datetime, dt.datetime]]]) -> Windows:
    out: Windows = {}
    for part in parts:
        for machine, spans in part.items():
            out.setdefault(machine, []).extend(spans)
    return out


@dataclass(frozen=True, slots=True)
class WindowViolation:
    machine: str
    order: str
    operation: Any
    start: str
    end: str
    job: int

    def message(self) -> str:
        return (
            f"maintenance: {self.order} step {self.operation} on {self.machine} "
            f"{self.start}–{self.end} overlaps maintenance work order {self.job}"
        )


def _utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(dt.UTC)


def check_plan(document: Mapping[str, Any], store: EventStore) -> list[WindowViolation]:
    """Operations of a plan document that overlap a maintenance window of their machine."""
    operations = document.get("operations")
    if not isinstance(operations, list):
        raise InputError("plan: no 'operations' list; give a plan file of 'microfab plan schedule'")
    spans = rows.windows(store)
    found = []
    for op in operations:
        try:
            machine, lo, hi = op["machine"], _utc(op["start"]), _utc(op["end"])
        except (KeyError, TypeError, ValueError):
            raise InputError(f"plan: operation {op!r} has no machine, start and end") from None
        for wm, ws, we, job in spans:
            if wm == machine and lo < we and ws < hi:
                found.append(
                    WindowViolation(
                        machine,
                        str(op.get("order")),
                        op.get("operation"),
                        op["start"],
                        op["end"],
                        job,
                    )
                )
    return found


@dataclass(frozen=True, slots=True)
class Proposal:
    machine: str
    start: dt.datetime
    end: dt.datetime
    weighted_lateness_s: int
    baseline_lateness_s: int
    tried: int

    def to_json(self) -> dict[str, Any]:
        return {
            "machine": self.machine,
            "start": format_ts(self.start),
            "end": format_ts(self.end),
            "weighted_lateness_s": self.weighted_lateness_s,
            "extra_lateness_s": self.weighted_lateness_s - self.baseline_lateness_s,
            "candidates": self.tried,
        }


def propose_window(
    plant: Plant,
    machine: str,
    *,
    start: dt.datetime,
    end: dt.datetime,
    duration: dt.timedelta,
    step: dt.timedelta = dt.timedelta(minutes=30),
) -> Proposal:
    """The window of ``duration`` for ``machine`` within [start, end) that costs the open orders
    the least weighted lateness (see the module docstring)."""
    from microfab.plan.factory import build_problem
    from microfab.plan.live import open_orders
    from microfab.plan.problem import Criterion
    from microfab.plan.result import criteria
    from microfab.plan.solvers.dispatch import list_schedule
    from microfab.track.orders import list_orders

    if end <= start:
        raise InputError("--within: the range ends at or before it starts")
    if duration <= dt.timedelta(0):
        raise InputError("--duration: must be more than 0")
    if duration > end - start:
        raise InputError("--duration: longer than the range given with --within")
    if step < dt.timedelta(minutes=1):
        raise InputError("--step: at least 1 minute")
    factory = plant.factory()
    ref = plant.machine(machine, factory)
    calendar = factory.calendar(ref.line.calendar)
    windows = [
        (w.start, w.end)
        for w in working_windows(calendar, start, end, ref.site.zone, ref.site.holidays)
    ]
    candidates: list[dt.datetime] = []
    for lo, hi in windows:
        t = max(lo, start)
        while t + duration <= min(hi, end):
            candidates.append(t)
            t += step
    if not candidates:
        raise InputError(
            f"no working window of {duration} for {ref.machine.id} between {format_ts(start)} "
            f"and {format_ts(end)}"
        )
    plan_start = plant.now()
    views = list_orders(plant.store, factory, now=plan_start)
    orders = open_orders(views)
    existing = maintenance_down(plant.store)
    horizon = max(end - plan_start, dt.timedelta(days=1)) + dt.timedelta(days=7)

    def lateness(extra: Windows) -> int:
        fp = build_problem(
            factory, orders, start=plan_start, horizon=horizon, down=merge_down(existing, extra)
        )
        if fp.problem.operation_count == 0:
            return 0
        best = None
        for rule in ("edd", "spt", "mwkr"):
            try:
                schedule = list_schedule(fp.problem, rule)
            except (KeyError, ValueError):
                continue
            if schedule is None:
                continue
            value = criteria(fp.problem, schedule)[Criterion.WEIGHTED_TARDINESS]
            best = value if best is None else min(best, value)
        return 0 if best is None else best

    baseline = lateness({})
    chosen: tuple[int, dt.datetime] | None = None
    for t in candidates:
        value = lateness({ref.path: [(t, t + duration)]})
        if chosen is None or value < chosen[0]:
            chosen = (value, t)
    assert chosen is not None
    return Proposal(ref.path, chosen[1], chosen[1] + duration, chosen[0], baseline, len(candidates))
