"""Dispatching rules: a fast list scheduler with setup awareness (first solution and fallback).

The scheduler takes operations one at a time, among those whose job predecessor is placed, and
puts each on the eligible machine where it would *finish earliest* — counting the setup from the
operation before it on that machine and skipping the machine's unavailable windows — at the
earliest gap that holds it (insertion, so a short operation can fill a hole left earlier).
Which operation goes next is the rule:

- ``edd``: earliest due date of its job (operations of jobs without a due date last), then
  earliest finish;
- ``spt``: shortest processing time on its best machine, then earliest finish;
- ``mwkr``: most work remaining in its job (counting each operation at its shortest time);
- ``ect``: earliest finish time, then most work remaining.

:func:`solve` runs every rule (and, with time to spare, randomised variants of them) and keeps
the best schedule for the problem's objective. :func:`repair` keeps an earlier schedule's machines
and order and only shifts operations as late as the changes force (a right-shift repair).
"""

from __future__ import annotations

import bisect
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from microfab.plan.check import check_schedule
from microfab.plan.problem import MAX_TIME, Fixed, OperationRef, Problem
from microfab.plan.result import (
    Assignment,
    Result,
    Schedule,
    Status,
    criteria,
    rank,
    scalar,
)

RULES = ("edd", "spt", "mwkr", "ect")


@dataclass(slots=True)
class _Block:
    start: int
    end: int
    setup_class: int | None


class _Timeline:
    """One machine's placed operations (sorted) and its unavailable windows."""

    def __init__(self, problem: Problem, machine: int) -> None:
        self.problem = problem
        self.machine = machine
        self.blocks: list[_Block] = []
        self.starts: list[int] = []
        self.windows = sorted(problem.machines[machine].unavailable)
        self.initial = problem.machines[machine].initial_setup_class

    def add(self, start: int, end: int, setup_class: int | None) -> None:
        i = bisect.bisect_right(self.starts, start)
        self.starts.insert(i, start)
        self.blocks.insert(i, _Block(start, end, setup_class))

    def _past_windows(self, start: int, duration: int) -> int:
        """The earliest start ≥ ``start`` at which the operation overlaps no unavailable window."""
        for lo, hi in self.windows:
            if hi <= start:
                continue
            if lo >= start + duration:
                break
            start = hi
        return start

    def earliest(
        self, ready: int, duration: int, setup_class: int | None, *, insertion: bool
    ) -> int:
        """Earliest start ≥ ``ready`` in a gap (or after the last block) that holds the operation."""
        setup = self.problem.setup_time
        first = 0 if insertion else len(self.blocks)
        for i in range(first, len(self.blocks) + 1):
            before = self.blocks[i - 1] if i > 0 else None
            after = self.blocks[i] if i < len(self.blocks) else None
            if before is None:
                gap_start = setup(self.machine, self.initial, setup_class)
            else:
                gap_start = before.end + setup(self.machine, before.setup_class, setup_class)
            start = self._past_windows(max(ready, gap_start), duration)
            if after is None:
                return start
            limit = after.start - setup(self.machine, setup_class, after.setup_class)
            if start + duration <= limit:
                return start
        raise AssertionError("unreachable: the last gap is open")  # pragma: no cover


def _work_left(problem: Problem) -> dict[OperationRef, int]:
    left: dict[OperationRef, int] = {}
    for j, job in enumerate(problem.jobs):
        remaining = 0
        for k in range(len(job.operations) - 1, -1, -1):
            op = job.operations[k]
            remaining += min((m.duration for m in op.modes), default=0)
            left[OperationRef(j, k)] = remaining
    return left


def list_schedule(
    problem: Problem,
    rule: str = "ect",
    *,
    noise: float = 0.0,
    rng: random.Random | None = None,
    insertion: bool = True,
) -> Schedule | None:
    """One schedule by a dispatching rule; None when some operation has no machine."""
    work_left = _work_left(problem)
    lanes = [_Timeline(problem, m) for m in range(len(problem.machines))]
    placed: list[Assignment] = []
    ready_at = [problem.jobs[j].release for j in range(len(problem.jobs))]
    next_op = [0] * len(problem.jobs)
    for ref, op in problem.operations():
        if op.fixed is not None:
            lanes[op.fixed.machine].add(op.fixed.start, op.fixed.end, op.setup_class)
            placed.append(Assignment(ref.job, ref.op, *_fixed_tuple(op.fixed)))

    def advance(j: int) -> None:
        job = problem.jobs[j]
        while next_op[j] < len(job.operations) and job.operations[next_op[j]].fixed is not None:
            fixed = job.operations[next_op[j]].fixed
            assert fixed is not None
            ready_at[j] = max(ready_at[j], fixed.end)
            next_op[j] += 1

    for j in range(len(problem.jobs)):
        advance(j)
    cache: dict[tuple[int, int], tuple[int, int]] = {}  # (job, machine) -> (start, end)

    def option(j: int, machine: int, duration: int) -> tuple[int, int]:
        key = (j, machine)
        found = cache.get(key)
        if found is None:
            ref = OperationRef(j, next_op[j])
            op = problem.operation(ref)
            ready = max(ready_at[j], op.earliest)
            start = lanes[machine].earliest(ready, duration, op.setup_class, insertion=insertion)
            found = (start, start + duration)
            cache[key] = found
        return found

    jitter: dict[OperationRef, float] = {}
    if noise and rng is not None:
        jitter = {ref: 1.0 + rng.uniform(-noise, noise) for ref, _ in problem.operations()}
    remaining = sum(1 for _, op in problem.operations() if op.fixed is None)
    while remaining:
        best_key: tuple[float, ...] | None = None
        best: tuple[int, int, int, int] | None = None  # job, machine, start, end
        for j, job in enumerate(problem.jobs):
            if next_op[j] >= len(job.operations):
                continue
            ref = OperationRef(j, next_op[j])
            op = job.operations[ref.op]
            if not op.modes:
                return None
            choice = min(
                ((*option(j, mode.machine, mode.duration), mode.machine) for mode in op.modes),
                key=lambda c: (c[1], c[1] - c[0], c[2]),
            )
            start, end, machine = choice
            due = job.due if job.due is not None else MAX_TIME
            shortest = min(m.duration for m in op.modes)
            if rule == "edd":
                key: tuple[float, ...] = (due - work_left[ref], end)
            elif rule == "spt":
                key = (shortest, end)
            elif rule == "mwkr":
                key = (-work_left[ref], end)
            else:
                key = (end, -work_left[ref])
            if jitter:
                key = (key[0] * jitter[ref], *key[1:])
            key += (j,)
            if best_key is None or key < best_key:
                best_key, best = key, (j, machine, start, end)
        assert best is not None
        j, machine, start, end = best
        ref = OperationRef(j, next_op[j])
        lanes[machine].add(start, end, problem.operation(ref).setup_class)
        placed.append(Assignment(j, ref.op, machine, start, end))
        ready_at[j] = end
        next_op[j] += 1
        advance(j)
        remaining -= 1
        for key_j, key_m in list(cache):
            if key_m == machine or key_j == j:
                del cache[(key_j, key_m)]
    return Schedule(tuple(placed))


def _fixed_tuple(fixed: Fixed) -> tuple[int, int, int]:
    return fixed.machine, fixed.start, fixed.end


def repair(problem: Problem, previous: Schedule) -> Schedule | None:
    """Keep ``previous``'s machine and order per machine; shift operations as the problem now
    forces (fixed operations, new blocked windows, changed times). Operations the previous schedule
    does not have (a rush order) are then dispatched into the gaps. None if impossible."""
    index = previous.index()
    lanes = [_Timeline(problem, m) for m in range(len(problem.machines))]
    placed: dict[tuple[int, int], Assignment] = {}
    for ref, op in problem.operations():
        if op.fixed is not None:
            lanes[op.fixed.machine].add(op.fixed.start, op.fixed.end, op.setup_class)
            placed[(ref.job, ref.op)] = Assignment(ref.job, ref.op, *_fixed_tuple(op.fixed))
    order = sorted(
        (a.start, a.job, a.op)
        for a in previous.assignments
        if a.job < len(problem.jobs)
        and a.op < len(problem.jobs[a.job].operations)
        and problem.jobs[a.job].operations[a.op].fixed is None
    )
    pending = [(j, k) for _, j, k in order]
    # Place in previous start order; an operation waits until its job predecessor is placed.
    waiting: list[tuple[int, int]] = []
    for item in pending:
        waiting.append(item)
        progress = True
        while progress:
            progress = False
            for w in list(waiting):
                j, k = w
                if k > 0 and (j, k - 1) not in placed:
                    continue
                op = problem.jobs[j].operations[k]
                old = index[(j, k)]
                duration = op.duration_on(old.machine)
                machine = old.machine
                if duration is None:
                    if not op.modes:
                        return None
                    mode = min(op.modes, key=lambda m: m.duration)
                    machine, duration = mode.machine, mode.duration
                ready = max(
                    problem.earliest_start(OperationRef(j, k)),
                    placed[(j, k - 1)].end if k > 0 else 0,
                )
                start = lanes[machine].earliest(ready, duration, op.setup_class, insertion=False)
                lanes[machine].add(start, start + duration, op.setup_class)
                placed[(j, k)] = Assignment(j, k, machine, start, start + duration)
                waiting.remove(w)
                progress = True
    missing = [ref for ref, _ in problem.operations() if (ref.job, ref.op) not in placed]
    if missing:
        rest = _dispatch_rest(problem, lanes, placed)
        if rest is None:
            return None
    return Schedule(tuple(placed.values()))


def _dispatch_rest(
    problem: Problem, lanes: list[_Timeline], placed: dict[tuple[int, int], Assignment]
) -> dict[tuple[int, int], Assignment] | None:
    """Insert the operations not yet placed, job by job in due-date order, earliest finish."""
    jobs = sorted(
        range(len(problem.jobs)),
        key=lambda j: (problem.jobs[j].due if problem.jobs[j].due is not None else MAX_TIME, j),
    )
    for j in jobs:
        for k, op in enumerate(problem.jobs[j].operations):
            if (j, k) in placed:
                continue
            if not op.modes:
                return None
            ready = max(
                problem.earliest_start(OperationRef(j, k)),
                placed[(j, k - 1)].end if k > 0 and (j, k - 1) in placed else 0,
            )
            best: tuple[int, int, int] | None = None
            for mode in op.modes:
                start = lanes[mode.machine].earliest(
                    ready, mode.duration, op.setup_class, insertion=True
                )
                if best is None or (start + mode.duration, mode.duration) < (
                    best[1] + best[2],
                    best[2],
                ):
                    best = (mode.machine, start, mode.duration)
            assert best is not None
            machine, start, duration = best
            lanes[machine].add(start, start + duration, op.setup_class)
            placed[(j, k)] = Assignment(j, k, machine, start, start + duration)
    return placed


def solve(
    problem: Problem,
    *,
    time_limit: float = 1.0,
    rules: Sequence[str] = RULES,
    seed: int = 0,
    stop: Callable[[], bool] | None = None,
) -> Result:
    """The best schedule of all ``rules``, then randomised variants until ``time_limit``."""
    began = time.perf_counter()
    reasons = problem.infeasibility()
    if reasons:
        return Result(
            Status.INFEASIBLE,
            None,
            None,
            None,
            time.perf_counter() - began,
            "dispatch",
            tuple(reasons),
        )
    if problem.operation_count == 0:
        return Result(Status.OPTIMAL, Schedule(()), 0, 0, time.perf_counter() - began, "dispatch")
    best: Schedule | None = None
    best_rank: tuple[int, ...] | None = None

    def consider(schedule: Schedule | None) -> None:
        nonlocal best, best_rank
        if schedule is None:
            return
        r = rank(problem.objective, criteria(problem, schedule))
        if best_rank is not None and r >= best_rank:
            return
        if check_schedule(problem, schedule.assignments):
            return  # a precedence into an operation fixed mid-job, which the rules cannot see
        best, best_rank = schedule, r

    for rule in rules:
        consider(list_schedule(problem, rule))
    rng = random.Random(seed)
    attempts = 0
    while time.perf_counter() - began < time_limit and not (stop and stop()):
        rule = rules[attempts % len(rules)]
        attempts += 1
        consider(list_schedule(problem, rule, noise=0.3, rng=rng))
    runtime = time.perf_counter() - began
    if best is None:
        return Result(
            Status.UNKNOWN,
            None,
            None,
            None,
            runtime,
            "dispatch",
            ("no rule placed every operation",),
        )
    values = criteria(problem, best)
    return Result(
        Status.FEASIBLE,
        best,
        scalar(problem.objective, values),
        None,
        runtime,
        "dispatch",
        values=values,
    )
