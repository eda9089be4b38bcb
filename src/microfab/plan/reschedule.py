"""Re-planning after a disruption: repair the plan in seconds, started work fixed, few changes.

After a breakdown (a new unavailable window), a rush order (a new job) or a late operation (a
started operation that now ends later), :func:`reschedule` takes the changed problem and the plan
that was being followed:

1. **freeze**: operations the plan had started before ``now`` stay exactly where they are
   (fixed); every other operation may start at ``now`` at the earliest;
2. **repair**: the old plan, right-shifted as far as the changes force (same machines, same
   order; new operations dispatched into the gaps), is the first schedule and the hint;
3. **optimise**: CP-SAT and the neighbourhood search improve the objective from there;
4. **stabilise**: with the objective held at what step 3 reached, CP-SAT minimises the changes
   to the old plan — operations moved to another machine (each counted as ``machine_move`` time
   units, by default the mean processing time) plus the total shift of start times. The repaired
   plan of step 2 is kept instead when it is as good and changes no more, so a re-plan with
   nothing changed returns the plan unchanged whatever the budget.

The default budget is 2 s (the goal: 2 s for 100 operations), split 70/30 between steps 3 and 4.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

from microfab.plan.problem import Fixed, Job, Problem
from microfab.plan.result import Result, Schedule, Status, criteria, rank, scalar
from microfab.plan.solvers import cpsat, dispatch
from microfab.plan.solvers.cpsat.stability import fewest_changes


def freeze(problem: Problem, previous: Schedule, now: int) -> Problem:
    """Fix the operations ``previous`` started before ``now``; hold the others to ``now``."""
    index = previous.index()
    jobs = []
    for j, job in enumerate(problem.jobs):
        operations = []
        for k, op in enumerate(job.operations):
            planned = index.get((j, k))
            if op.fixed is None and planned is not None and planned.start < now:
                op = dataclasses.replace(
                    op, fixed=Fixed(planned.machine, planned.start, planned.end)
                )
            elif op.fixed is None:
                op = dataclasses.replace(op, earliest=max(op.earliest, now))
            operations.append(op)
        jobs.append(dataclasses.replace(job, operations=tuple(operations)))
    return dataclasses.replace(problem, jobs=tuple(jobs))


@dataclass(frozen=True)
class Changes:
    """How a new schedule differs from the previous one (operations both have)."""

    moved: int  # operations on another machine
    shifted: int  # operations starting at another time
    total_shift: int  # sum of |new start − old start|

    def to_json(self) -> dict[str, int]:
        return {"moved": self.moved, "shifted": self.shifted, "total_shift": self.total_shift}


def changes(previous: Schedule, new: Schedule) -> Changes:
    old = previous.index()
    moved = shifted = total = 0
    for a in new.assignments:
        before = old.get((a.job, a.op))
        if before is None:
            continue
        moved += a.machine != before.machine
        shifted += a.start != before.start
        total += abs(a.start - before.start)
    return Changes(moved, shifted, total)


def reschedule(
    problem: Problem,
    previous: Schedule,
    *,
    now: int | None = None,
    time_limit: float = 2.0,
    workers: int = 2,
    seed: int = 0,
    stability: bool = True,
    machine_move: int | None = None,
) -> Result:
    """Repair ``previous`` for the changed ``problem`` (see the module docstring)."""
    began = time.perf_counter()
    frozen = freeze(problem, previous, now) if now is not None else problem
    reasons = frozen.infeasibility()
    if reasons:
        return Result(Status.INFEASIBLE, None, None, None, 0.0, "reschedule", tuple(reasons))
    repaired = dispatch.repair(frozen, previous)
    settings = cpsat.Settings(
        time_limit=time_limit * (0.7 if stability else 1.0),
        workers=workers,
        seed=seed,
        lns_step_s=0.1,
    )
    first = cpsat.solve(frozen, settings, hint=repaired, start=repaired)
    if first.schedule is None or not stability:
        return _finish(first, previous, began, first.stats)
    left = time_limit - (time.perf_counter() - began)
    stable = fewest_changes(
        frozen,
        previous,
        first.schedule,
        first.values,
        time_limit=left,
        workers=workers,
        seed=seed,
        machine_move=machine_move,
    )
    best = _steadier(frozen, previous, stable or first.schedule, repaired)
    values = criteria(frozen, best)
    result = dataclasses.replace(
        first,
        schedule=best,
        objective=scalar(frozen.objective, values),
        values=values,
    )
    return _finish(result, previous, began, {**first.stats, "stabilised": stable is not None})


def _steadier(
    problem: Problem, previous: Schedule, found: Schedule, repaired: Schedule | None
) -> Schedule:
    """``repaired`` (the old plan shifted only as far as the changes force) when it is at least as
    good as what the search found and changes no more: when nothing changed, nothing moves,
    however little time the search had."""
    if repaired is None:
        return found
    ours, theirs = (
        rank(problem.objective, criteria(problem, repaired)),
        rank(problem.objective, criteria(problem, found)),
    )
    if ours < theirs:
        return repaired
    kept, moved = changes(previous, repaired), changes(previous, found)
    if ours == theirs and (kept.moved, kept.total_shift) <= (moved.moved, moved.total_shift):
        return repaired
    return found


def _finish(result: Result, previous: Schedule, began: float, stats: dict[str, object]) -> Result:
    extra = dict(stats)
    if result.schedule is not None:
        extra["changes"] = changes(previous, result.schedule).to_json()
    return dataclasses.replace(
        result, runtime_s=time.perf_counter() - began, solver="reschedule", stats=extra
    )


def add_job(problem: Problem, job: Job) -> Problem:
    """``problem`` with one more job (a rush order)."""
    return dataclasses.replace(problem, jobs=(*problem.jobs, job))


def block_machine(problem: Problem, machine: int, start: int, end: int) -> Problem:
    """``problem`` with ``machine`` unavailable from ``start`` to ``end`` (a breakdown)."""
    machines = list(problem.machines)
    m = machines[machine]
    machines[machine] = dataclasses.replace(
        m, unavailable=tuple(sorted((*m.unavailable, (start, end))))
    )
    return dataclasses.replace(problem, machines=tuple(machines))
