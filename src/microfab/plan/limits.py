"""How large a plan of the live factory may be, and how long and how much memory it may take.

A plan's cost grows with its horizon (every machine's working windows are laid out day by day)
and with operations × machines (every operation may run on each machine it names). Before any
work, :func:`check_plan_size` refuses a horizon longer than :data:`MAX_HORIZON` or a model with
more than :data:`MAX_MODEL_SIZE` operation × machine × day cells, with a
:class:`~microfab.errors.LimitError` naming the field (422 in the API, exit 2 in the CLI).
A plan that passes still runs in a worker process with a wall clock and a memory limit
(:mod:`microfab.plan.worker`; :data:`MEMORY_LIMIT_MB`, :func:`wall_clock_s`), and CP-SAT is
given the same memory limit (``max_memory_in_mb``).
"""

from __future__ import annotations

import datetime as dt
import math

from microfab.errors import LimitError

MAX_HORIZON = dt.timedelta(days=366)
"""The longest horizon a plan lays calendars out over."""
MAX_MODEL_SIZE = 4_000_000
"""Operations × machines × horizon days: e.g. 500 operations on 20 machines over 366 days (and
no more than that) fits; the solver's memory stays well within :data:`MEMORY_LIMIT_MB` there."""
MEMORY_LIMIT_MB = 2048
"""Address space a plan's worker process may use (and CP-SAT's own ``max_memory_in_mb``)."""
BUILD_ALLOWANCE_S = 30.0
"""Seconds a plan may take beyond the solver's time limit: reading the problem, building the
model, writing the plan document."""


def wall_clock_s(time_limit: float) -> float:
    """How long a plan with solver limit ``time_limit`` may take before its worker is stopped."""
    return time_limit * 1.5 + BUILD_ALLOWANCE_S


def check_horizon(horizon: dt.timedelta, field: str = "horizon") -> dt.timedelta:
    """``horizon`` when it is positive and at most :data:`MAX_HORIZON`, else a LimitError."""
    if horizon <= dt.timedelta(0):
        raise LimitError(f"{field}: the horizon must be longer than 0, e.g. 14d")
    if horizon > MAX_HORIZON:
        raise LimitError(
            f"{field}: {_days(horizon)} days is longer than the {MAX_HORIZON.days} days a plan "
            f"may cover; give {MAX_HORIZON.days}d or less"
        )
    return horizon


def check_plan_size(
    operations: int, machines: int, horizon: dt.timedelta, field: str = "horizon"
) -> None:
    """Refuse a plan of ``operations`` on ``machines`` over ``horizon`` that is too large."""
    check_horizon(horizon, field)
    days = max(1, math.ceil(horizon / dt.timedelta(days=1)))
    size = operations * max(1, machines) * days
    if size > MAX_MODEL_SIZE:
        fits = max(1, MAX_MODEL_SIZE // max(1, operations * max(1, machines)))
        raise LimitError(
            f"{field}: {operations} operations × {machines} machines × {days} days is "
            f"{size:,} cells, more than the {MAX_MODEL_SIZE:,} a plan may have; give a horizon "
            f"of {fits}d or less, or plan fewer orders"
        )


def _days(horizon: dt.timedelta) -> str:
    days = horizon / dt.timedelta(days=1)
    return f"{days:,.0f}" if days >= 10 else f"{days:g}"
