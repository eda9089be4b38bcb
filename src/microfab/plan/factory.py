"""The live factory's open orders as a scheduling :class:`Problem`, and the plan back in its terms.

Pure: the caller reads the factory model and the open orders (``microfab plan schedule`` does it
with :func:`microfab.track.orders.list_orders`) and hands them over as :class:`OpenOrder` s.

**Jobs.** One job per open order (created, released or in progress), one operation per routing
step still to do. Time is seconds from the plan's origin; an operation on a machine takes
``units × seconds per unit there × the order's option time factors``, rounded up. Units: the
step's planned units less those already processed (good + scrap).

**Started steps.** A step running now is *fixed*: on the machine running it, from when it started
until now + the time its remaining units need there. Steps done are left out.

**Due dates and priorities.** Due = the order's due time (an overdue order: due now); weight =
``10 − priority`` (priority 1, the most urgent, weighs 9; the default 5 weighs 5).

**Setups.** Every setup family named by a routing or a setup matrix is a setup class; a machine
with a ``setup_matrix`` gets that matrix (seconds, missing entries 0). ``mounted`` tells which
family each machine was last set up for (its first change-over then counts).

**Calendars.** A machine works in its line's working windows (shifts less breaks, public
holidays and closures: :func:`microfab.model.calendar.working_windows`), from the plan start to
``horizon`` later; outside them it is unavailable, and after the horizon it is unavailable for a
year, so work that does not fit shows up as ending far out (and is reported). ``down`` adds
breakdowns or maintenance: machine id → (from, to). ``since`` moves the origin back (to cover the
operations an earlier plan started before ``start``, when re-planning from it).

**The plan.** :func:`plan_document` turns a :class:`~microfab.plan.result.Result` into JSON in the
factory's words (order ids, machine paths, ISO times, setups), with the raw schedule kept for
re-planning; :func:`dispatch_lists` reads such a document back as one work list per machine.
"""

from __future__ import annotations

import datetime as dt
import math
import zoneinfo
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from microfab.errors import InputError
from microfab.model.calendar import working_windows
from microfab.model.factory import Factory, MachineRef
from microfab.model.orders import time_factor
from microfab.plan.problem import (
    Criterion,
    Fixed,
    Job,
    Machine,
    Mode,
    Objective,
    Operation,
    Problem,
)
from microfab.plan.result import Assignment, Result, Schedule, schedule_document

#: The default objective of a factory plan: lateness first (weighted by priority), then setups and
#: the makespan, second for second.
DEFAULT_OBJECTIVE = Objective(
    (
        (Criterion.WEIGHTED_TARDINESS, 10),
        (Criterion.SETUP_TIME, 1),
        (Criterion.MAKESPAN, 1),
    )
)
DEFAULT_HORIZON = dt.timedelta(days=14)
_BEYOND = dt.timedelta(days=365)


@dataclass(frozen=True, slots=True)
class StepState:
    """What the shop floor says about one routing step of an open order."""

    seq: int
    status: str  # waiting, running, done or skipped
    planned: int | None = None  # units expected at the step (None: the order quantity)
    processed: int = 0  # good + scrap so far
    machine: str | None = None  # path of the machine running it
    started: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class OpenOrder:
    """An order still to make, as the planner needs it."""

    order: str
    product: str
    quantity: int
    options: Mapping[str, str] = field(default_factory=dict)
    due: dt.datetime | None = None
    priority: int = 5
    status: str = "created"
    steps: tuple[StepState, ...] = ()
    materials_at: dt.datetime | None = None
    """When the order's materials are at its line (materials-aware planning); none = now."""


@dataclass(frozen=True, slots=True)
class PlannedStep:
    """Which order and routing step a problem operation is."""

    order: str
    product: str
    seq: int
    name: str
    units: int
    family: str | None


@dataclass(frozen=True)
class FactoryProblem:
    """A problem built from the factory, with what maps it back to orders, machines and time."""

    problem: Problem
    origin: dt.datetime  # time 0 of the problem (UTC)
    start: dt.datetime  # nothing new starts before this (UTC)
    horizon_end: dt.datetime
    zone: zoneinfo.ZoneInfo
    machines: tuple[str, ...]  # machine path per problem machine
    orders: tuple[OpenOrder, ...]  # per job
    steps: dict[tuple[int, int], PlannedStep]
    families: tuple[str, ...]
    skipped: tuple[str, ...]  # orders left out, with why

    def seconds(self, instant: dt.datetime) -> int:
        return math.floor((instant - self.origin).total_seconds())

    def instant(self, seconds: int) -> dt.datetime:
        return self.origin + dt.timedelta(seconds=seconds)


def _seconds(value: float) -> int:
    return max(1, math.ceil(value - 1e-9))


def _zone(factory: Factory) -> zoneinfo.ZoneInfo:
    return factory.sites[0].zone


def build_problem(
    factory: Factory,
    orders: Sequence[OpenOrder],
    *,
    start: dt.datetime,
    horizon: dt.timedelta = DEFAULT_HORIZON,
    objective: Objective = DEFAULT_OBJECTIVE,
    down: Mapping[str, Sequence[tuple[dt.datetime, dt.datetime]]] | None = None,
    mounted: Mapping[str, str] | None = None,
    since: dt.datetime | None = None,
) -> FactoryProblem:
    """The scheduling problem of ``orders`` in ``factory`` from ``start`` (see the module doc)."""
    if start.tzinfo is None:
        raise InputError("the plan start needs a time zone (UTC offset)")
    start = start.astimezone(dt.UTC).replace(microsecond=0)
    refs = {ref.machine.id: ref for ref in factory.machines()}
    path_to_id = {ref.path: ref.machine.id for ref in refs.values()}
    down = dict(down or {})
    for machine in down:
        if machine not in refs and machine not in path_to_id:
            raise InputError(f"--down: '{machine}' is not a machine of this factory")

    products = {p.sku: p for p in factory.products}
    kept: list[OpenOrder] = []
    skipped: list[str] = []
    for order in orders:
        product = products.get(order.product)
        if product is None:
            skipped.append(f"{order.order}: product '{order.product}' is not in the factory model")
            continue
        if all(s.status in ("done", "skipped") for s in order.steps) and order.steps:
            skipped.append(f"{order.order}: every step is done")
            continue
        kept.append(order)

    # Machines: every one a kept order's routing names, in factory order.
    used: set[str] = set()
    for order in kept:
        for op in products[order.product].routing:
            used |= set(op.machines)
    machine_refs = [ref for ref in refs.values() if ref.machine.id in used]
    index = {ref.machine.id: i for i, ref in enumerate(machine_refs)}
    paths = tuple(ref.path for ref in machine_refs)

    origin = start if since is None else min(start, since.astimezone(dt.UTC).replace(microsecond=0))
    for order in kept:
        for step in order.steps:
            if step.status == "running" and step.started is not None:
                origin = min(origin, step.started.astimezone(dt.UTC).replace(microsecond=0))
    horizon_end = start + horizon

    def offset(instant: dt.datetime) -> int:
        return math.floor((instant - origin).total_seconds())

    families = sorted(
        {
            family
            for matrix in factory.setup_matrices.values()
            for before, row in matrix.items()
            for family in (before, *row)
        }
        | {
            op.setup_family
            for p in factory.products
            for op in p.routing
            if op.setup_family is not None
        }
    )
    family_index = {f: i for i, f in enumerate(families)}

    machines: list[Machine] = []
    setups: list[tuple[tuple[int, ...], ...] | None] = []
    for ref in machine_refs:
        blocked = _blocked(factory, ref, origin, start, horizon_end)
        for key in (ref.machine.id, ref.path):
            for lo, hi in down.get(key, ()):
                blocked.append((max(0, offset(lo)), max(1, offset(hi))))
        matrix = None
        if ref.machine.setup_matrix is not None:
            matrix = tuple(
                tuple(math.ceil(factory.setup_seconds(ref.machine, a, b) - 1e-9) for b in families)
                for a in families
            )
        family = (mounted or {}).get(ref.path) or (mounted or {}).get(ref.machine.id)
        machines.append(
            Machine(
                name=ref.path,
                unavailable=tuple(_merge(blocked)),
                initial_setup_class=(
                    family_index.get(family) if family is not None and matrix is not None else None
                ),
            )
        )
        setups.append(matrix)

    jobs: list[Job] = []
    steps: dict[tuple[int, int], PlannedStep] = {}
    now = offset(start)
    for order in kept:
        product = products[order.product]
        factor = time_factor(product, dict(order.options))
        ready = now
        if order.materials_at is not None:
            ready = max(now, math.ceil((order.materials_at - origin).total_seconds()))
        states = {s.seq: s for s in order.steps}
        operations: list[Operation] = []
        for op in product.routing:
            state = states.get(op.seq)
            if state is not None and state.status in ("done", "skipped"):
                continue
            planned = state.planned if state is not None and state.planned else order.quantity
            units = max(0, planned - (state.processed if state is not None else 0))
            modes = tuple(
                Mode(index[m], _seconds(max(units, 1) * seconds * factor))
                for m, seconds in op.machines.items()
                if m in index
            )
            fixed = None
            if state is not None and state.status == "running" and state.started is not None:
                machine_id = path_to_id.get(state.machine or "", state.machine or "")
                if machine_id in index and machine_id in op.machines:
                    left = _seconds(max(units, 1) * op.machines[machine_id] * factor)
                    began = offset(state.started.astimezone(dt.UTC))
                    fixed = Fixed(index[machine_id], max(0, began), max(began, now) + left)
            steps[(len(jobs), len(operations))] = PlannedStep(
                order.order, product.sku, op.seq, op.name, units, op.setup_family
            )
            operations.append(
                Operation(
                    modes=modes,
                    setup_class=family_index.get(op.setup_family or ""),
                    earliest=0 if fixed is not None else ready,
                    fixed=fixed,
                    name=f"{op.seq} {op.name}",
                )
            )
        due = None
        if order.due is not None:
            due = max(0, offset(order.due.astimezone(dt.UTC)))
        jobs.append(
            Job(
                operations=tuple(operations),
                name=order.order,
                due=due,
                weight=max(1, 10 - order.priority),
            )
        )
    problem = Problem(
        machines=tuple(machines),
        jobs=tuple(jobs),
        setups=tuple(setups),
        objective=objective,
        name=factory.company.name,
        time_unit="s",
    )
    return FactoryProblem(
        problem=problem,
        origin=origin,
        start=start,
        horizon_end=horizon_end,
        zone=_zone(factory),
        machines=paths,
        orders=tuple(kept),
        steps=steps,
        families=tuple(families),
        skipped=tuple(skipped),
    )


def _blocked(
    factory: Factory, ref: MachineRef, origin: dt.datetime, start: dt.datetime, end: dt.datetime
) -> list[tuple[int, int]]:
    """The machine's non-working time from ``origin`` on, as [start, end) seconds."""
    calendar = factory.calendar(ref.line.calendar)
    windows = working_windows(calendar, start, end, ref.site.zone, ref.site.holidays)
    blocked: list[tuple[int, int]] = []

    def at(instant: dt.datetime) -> int:
        return math.floor((instant - origin).total_seconds())

    free_from = at(start)
    for window in windows:
        lo, hi = at(window.start), at(window.end)
        if lo > free_from:
            blocked.append((free_from, lo))
        free_from = max(free_from, hi)
    beyond = at(end + _BEYOND)
    if free_from < at(end):
        blocked.append((free_from, at(end)))
        free_from = at(end)
    blocked.append((free_from, beyond))
    return blocked


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(s for s in spans if s[1] > s[0]):
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


def longest_window_problems(fp: FactoryProblem) -> list[str]:
    """Orders with a step longer than every working window of its machines (cannot be planned
    without splitting the order)."""
    found = []
    problem = fp.problem
    for (j, k), step in fp.steps.items():
        op = problem.jobs[j].operations[k]
        if op.fixed is not None or not op.modes:
            continue
        fits = False
        longest = 0
        for mode in op.modes:
            gaps = _gaps(problem.machines[mode.machine].unavailable, fp.seconds(fp.horizon_end))
            widest = max((hi - lo for lo, hi in gaps), default=0)
            longest = max(longest, widest)
            fits = fits or mode.duration <= widest
        if not fits:
            need = min(m.duration for m in op.modes)
            found.append(
                f"{step.order} step {step.seq} ({step.name}): {step.units} units take "
                f"{_hours(need)} at best, longer than any working window of its machines "
                f"({_hours(longest)}); split the order"
            )
    return found


def _gaps(blocked: Sequence[tuple[int, int]], until: int) -> list[tuple[int, int]]:
    gaps = []
    free_from = 0
    for lo, hi in sorted(blocked):
        if lo > free_from:
            gaps.append((free_from, min(lo, until)))
        free_from = max(free_from, hi)
        if free_from >= until:
            break
    return [(lo, hi) for lo, hi in gaps if hi > lo]


def _hours(seconds: int) -> str:
    return f"{seconds / 3600:.1f} h"


def _iso(fp: FactoryProblem, seconds: int) -> str:
    return fp.instant(seconds).astimezone(fp.zone).isoformat(timespec="seconds")


def plan_document(fp: FactoryProblem, result: Result) -> dict[str, Any]:
    """The plan as JSON, in the factory's words (see the module docstring)."""
    problem = fp.problem
    schedule = result.schedule
    operations: list[dict[str, Any]] = []
    orders: list[dict[str, Any]] = []
    warnings = list(fp.skipped)
    horizon = fp.seconds(fp.horizon_end)
    if schedule is not None:
        setup_before = _setups(fp, schedule)
        for a in sorted(schedule.assignments, key=lambda a: (a.start, a.machine)):
            step = fp.steps[(a.job, a.op)]
            operations.append(
                {
                    "order": step.order,
                    "product": step.product,
                    "operation": step.seq,
                    "name": step.name,
                    "units": step.units,
                    "machine": fp.machines[a.machine],
                    "start": _iso(fp, a.start),
                    "end": _iso(fp, a.end),
                    "setup_s": setup_before[(a.job, a.op)][0],
                    "setup_from": setup_before[(a.job, a.op)][1],
                    "setup_family": step.family,
                    "fixed": problem.jobs[a.job].operations[a.op].fixed is not None,
                }
            )
        ends: dict[int, int] = {}
        firsts: dict[int, int] = {}
        for a in schedule.assignments:
            ends[a.job] = max(ends.get(a.job, 0), a.end)
            firsts[a.job] = min(firsts.get(a.job, a.start), a.start)
        for j, order in enumerate(fp.orders):
            job = problem.jobs[j]
            end = ends.get(j)
            late_s = None
            if order.due is not None and end is not None:
                late_s = max(0, math.ceil((fp.instant(end) - order.due).total_seconds()))
            orders.append(
                {
                    "order": order.order,
                    "product": order.product,
                    "quantity": order.quantity,
                    "priority": order.priority,
                    "status": order.status,
                    "due": None if order.due is None else order.due.astimezone(fp.zone).isoformat(),
                    "planned_start": None if j not in firsts else _iso(fp, firsts[j]),
                    "planned_end": None if end is None else _iso(fp, end),
                    "late_s": late_s,
                    "late": bool(late_s),
                    "weight": job.weight,
                }
            )
            if end is not None and end > horizon:
                warnings.append(
                    f"{order.order}: does not fit in the calendar horizon (ends "
                    f"{_iso(fp, end)}); plan with a longer --horizon or add shifts"
                )
    return {
        "plan": {
            "factory": problem.name,
            "start": fp.start.astimezone(fp.zone).isoformat(),
            "origin": fp.origin.isoformat(),
            "horizon_end": fp.horizon_end.astimezone(fp.zone).isoformat(),
            "objective": problem.objective.describe(),
            "status": result.status.value,
            "objective_value": result.objective,
            "lower_bound": result.lower_bound,
            "criteria": {c.value: v for c, v in result.values.items()},
            "runtime_s": round(result.runtime_s, 3),
            "reasons": list(result.reasons),
            "changes": result.stats.get("changes"),
        },
        "orders": orders,
        "operations": operations,
        "warnings": warnings,
        "schedule": schedule_document(problem, result),
    }


def _setups(
    fp: FactoryProblem, schedule: Schedule
) -> dict[tuple[int, int], tuple[int, str | None]]:
    problem = fp.problem
    found: dict[tuple[int, int], tuple[int, str | None]] = {}
    for machine, lane in schedule.by_machine().items():
        before = problem.machines[machine].initial_setup_class
        for a in lane:
            after = problem.jobs[a.job].operations[a.op].setup_class
            seconds = problem.setup_time(machine, before, after)
            found[(a.job, a.op)] = (
                seconds,
                fp.families[before] if seconds and before is not None else None,
            )
            before = after
    return found


def previous_schedule(fp: FactoryProblem, document: Mapping[str, Any]) -> Schedule:
    """The operations of an earlier plan document that this problem still has, on its time axis
    (for re-planning with few changes)."""
    where = {(step.order, step.seq): key for key, step in fp.steps.items()}
    machines = {path: i for i, path in enumerate(fp.machines)}
    placed = []
    for row in document.get("operations", []):
        key = where.get((row.get("order"), row.get("operation")))
        machine = machines.get(row.get("machine", ""))
        if key is None or machine is None:
            continue
        start = fp.seconds(dt.datetime.fromisoformat(row["start"]))
        end = fp.seconds(dt.datetime.fromisoformat(row["end"]))
        placed.append(Assignment(key[0], key[1], machine, start, end))
    return Schedule(tuple(placed))


def dispatch_lists(
    document: Mapping[str, Any], *, machine: str | None = None, until: dt.datetime | None = None
) -> dict[str, list[dict[str, Any]]]:
    """One work list per machine, in start order, from a plan document."""
    lists: dict[str, list[dict[str, Any]]] = {}
    for row in document.get("operations", []):
        path = row["machine"]
        if machine is not None and path != machine and not path.endswith("/" + machine):
            continue
        if until is not None and dt.datetime.fromisoformat(row["start"]) >= until:
            continue
        lists.setdefault(path, []).append(row)
    for rows in lists.values():
        rows.sort(key=lambda r: r["start"])
    return dict(sorted(lists.items()))
