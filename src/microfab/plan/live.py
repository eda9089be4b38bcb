"""Plan the open orders of the live factory: the one function the dashboard's re-plan button and
``microfab plan schedule`` can share.

Pure, like the rest of ``plan/``: the caller reads the store (the order views of
:func:`microfab.track.orders.list_orders`) and the earlier plan document (the plan file).
:func:`open_orders` and :func:`mounted_families` turn the views into what the planner needs;
:func:`plan_open_orders` builds the problem (:func:`microfab.plan.factory.build_problem`), then
either solves it afresh with CP-SAT (the earlier plan, if any, as the hint) or, with ``repair``,
repairs the earlier plan with started work fixed (:func:`microfab.plan.reschedule.reschedule`),
and returns the plan document (:func:`microfab.plan.factory.plan_document`).
:func:`parse_duration` and :func:`down_windows` read ``2h`` and ``MACHINE:DURATION`` as the
command's ``--horizon`` and ``--down`` take them.

OR-Tools is imported when a plan is made, not when this module is.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from microfab.errors import InputError, LimitError
from microfab.model.factory import Factory
from microfab.plan.factory import (
    DEFAULT_HORIZON,
    DEFAULT_OBJECTIVE,
    FactoryProblem,
    OpenOrder,
    StepState,
    build_problem,
    longest_window_problems,
    plan_document,
    previous_schedule,
)
from microfab.plan.limits import MAX_HORIZON, MEMORY_LIMIT_MB, check_plan_size
from microfab.plan.problem import Objective
from microfab.plan.result import Result
from microfab.track.orders import OPEN, WorkOrderView

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(s|m|min|h|d)$")


def parse_duration(text: str, field: str = "duration") -> dt.timedelta:
    """``90m``, ``2h``, ``1.5h``, ``3d`` … as a timedelta; an InputError naming ``field``."""
    found = _DURATION.match(text.strip())
    if not found:
        raise InputError(f"{field}: '{text}' is not a duration like 90m, 2h, 1.5h or 3d")
    value, unit = float(found.group(1)), found.group(2)
    seconds = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}[unit] * value
    if seconds > MAX_HORIZON.total_seconds():
        raise LimitError(
            f"{field}: '{text}' is longer than the {MAX_HORIZON.days} days a plan may cover; "
            f"give {MAX_HORIZON.days}d or less"
        )
    return dt.timedelta(seconds=seconds)


def down_windows(
    values: Sequence[str], start: dt.datetime, field: str = "down"
) -> dict[str, list[tuple[dt.datetime, dt.datetime]]]:
    """``MACHINE:DURATION`` texts (a machine out from ``start`` for that long) as windows."""
    found: dict[str, list[tuple[dt.datetime, dt.datetime]]] = {}
    for value in values:
        machine, sep, length = value.partition(":")
        if not sep or not machine:
            raise InputError(f"{field}: '{value}': expected MACHINE:DURATION, e.g. imm-1:2h")
        begin = start.astimezone(dt.UTC)
        found.setdefault(machine, []).append((begin, begin + parse_duration(length, field)))
    return found


def open_orders(views: Iterable[WorkOrderView]) -> list[OpenOrder]:
    """The open orders (created, released, in progress) among ``views``, as the planner needs
    them."""
    found = []
    for view in views:
        if view.status not in OPEN or view.product is None or not view.quantity:
            continue
        steps = tuple(
            StepState(
                seq=op.seq,
                status=op.status,
                planned=op.planned,
                processed=op.good + op.scrap,
                machine=op.wip_machine,
                started=op.started,
            )
            for op in view.operations
            if op.seq is not None and op.status != "unplanned"
        )
        found.append(
            OpenOrder(
                order=view.order,
                product=view.product,
                quantity=view.quantity,
                options=dict(view.options),
                due=view.due,
                priority=view.priority,
                status=view.status,
                steps=steps,
            )
        )
    return found


def mounted_families(factory: Factory, views: Iterable[WorkOrderView]) -> dict[str, str]:
    """The setup family each machine (path) last ran, from the latest step start or completion
    among ``views``."""
    products = {p.sku: p for p in factory.products}
    latest: dict[str, tuple[dt.datetime, str]] = {}
    for view in views:
        product = products.get(view.product or "")
        if product is None:
            continue
        families = {op.seq: op.setup_family for op in product.routing}
        for op in view.operations:
            family = families.get(op.seq or -1)
            when = op.completed or op.started
            if family is None or when is None:
                continue
            machines = [count.machine for count in op.machines]
            if op.wip_machine:
                machines.append(op.wip_machine)
            for machine in machines:
                if machine not in latest or latest[machine][0] < when:
                    latest[machine] = (when, family)
    return {machine: family for machine, (_, family) in latest.items()}


@dataclass(frozen=True)
class LivePlan:
    """A plan of the stored factory's open orders: the problem, the solver's result and the
    plan document (what the plan file holds)."""

    problem: FactoryProblem
    result: Result
    document: dict[str, Any]

    @property
    def has_schedule(self) -> bool:
        return self.result.schedule is not None


def plan_open_orders(
    factory: Factory,
    views: Sequence[WorkOrderView],
    *,
    start: dt.datetime,
    horizon: dt.timedelta = DEFAULT_HORIZON,
    objective: Objective = DEFAULT_OBJECTIVE,
    down: Mapping[str, Sequence[tuple[dt.datetime, dt.datetime]]] | None = None,
    earlier: Mapping[str, Any] | None = None,
    repair: bool = False,
    time_limit: float = 10.0,
    workers: int = 2,
    materials: Mapping[str, dt.datetime | None] | None = None,
) -> LivePlan:
    """Plan the open orders among ``views`` (the orders as of ``start``) from ``start``.

    ``earlier`` is the plan document being followed (the plan file), or None: with ``repair`` it
    is repaired (what it had started by now stays), otherwise it is the solver's hint. A plan
    that cannot be made (a step longer than every working window) is an InputError, one larger
    than :mod:`microfab.plan.limits` allows a LimitError, both before any work; an infeasible
    problem is a result with status ``infeasible`` and its reasons. ``materials`` (order → when
    its materials are at the line, None: not within sight) holds each order's steps back until
    then (:mod:`microfab.stock.material_plan`); an order with no date waits to the horizon."""
    from microfab.plan.reschedule import freeze, reschedule
    from microfab.plan.solvers import cpsat

    begin = start
    orders = open_orders(views)
    if materials:
        orders = [
            dataclasses.replace(
                order,
                materials_at=materials[order.order]
                if materials[order.order] is not None
                else start + horizon,
            )
            if order.order in materials
            else order
            for order in orders
        ]
    steps = {p.sku: len(p.routing) for p in factory.products}
    check_plan_size(
        sum(steps.get(order.product, 0) for order in orders), len(factory.machines()), horizon
    )
    mounted = mounted_families(factory, views)
    since = None
    if repair and earlier is not None:
        starts = [
            dt.datetime.fromisoformat(op["start"])
            for op in earlier.get("operations", [])
            if isinstance(op, dict) and "start" in op
        ]
        since = min(starts, default=None)
    fp = build_problem(
        factory,
        orders,
        start=begin,
        horizon=horizon,
        objective=objective,
        down=down,
        mounted=mounted,
        since=since,
    )
    too_long = longest_window_problems(fp)
    if too_long:
        raise InputError("cannot plan: " + "; ".join(too_long))
    previous = None
    if earlier is not None:
        try:
            previous = previous_schedule(fp, earlier)
        except (ValueError, KeyError, TypeError):
            previous = None
    if repair and previous is not None and previous.assignments:
        fp = dataclasses.replace(fp, problem=freeze(fp.problem, previous, fp.seconds(fp.start)))
        result = reschedule(fp.problem, previous, time_limit=time_limit, workers=workers)
    else:
        settings = cpsat.Settings(time_limit=time_limit, workers=workers)
        memory = (("max_memory_in_mb", MEMORY_LIMIT_MB // 2),)
        settings = dataclasses.replace(
            settings,
            parameters=settings.parameters + memory,
            lns_parameters=settings.lns_parameters + memory,
        )
        result = cpsat.solve(fp.problem, settings, hint=previous)
    return LivePlan(fp, result, plan_document(fp, result))
