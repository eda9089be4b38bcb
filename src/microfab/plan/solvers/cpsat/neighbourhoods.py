"""Neighbourhoods for the large-neighbourhood search: which operations to free up.

Given the incumbent schedule, each picks about ``size`` operations to *relax* (machine and time
free); the others keep their machine and their order on it, their times float. Kinds:

- ``window``: the operations running in a random time window;
- ``jobs``: every operation of a few random jobs;
- ``machines``: the operations of one or two random machines within a random time window;
- ``critical``: operations on a critical path of the incumbent (an operation whose start is held
  by its job or machine predecessor, back from the last end) and their machine neighbours;
- ``reassign``: a few critical operations and what runs near them on the machines they could
  move to.

:class:`Chooser` picks the next kind by each kind's recent success (``Settings.lns_adaptive``).
"""

from __future__ import annotations

import itertools
import random
from collections import defaultdict

from microfab.plan.problem import Fixed, OperationRef, Problem
from microfab.plan.result import Assignment, Schedule
from microfab.plan.solvers.cpsat.variables import Restriction

KINDS = ("critical", "window", "reassign", "machines", "jobs")


class Chooser:
    """Which neighbourhood kind to try next: each kind's recent success rate (improvements per
    call, an exponential average, so the choice follows the search as it goes from easy gains
    to hard ones), with every kind kept at a floor probability so none is written off."""

    DECAY = 0.9
    FLOOR = 0.05

    def __init__(self, rng: random.Random, kinds: tuple[str, ...] = KINDS) -> None:
        self.rng = rng
        self.kinds = kinds
        self.rate = dict.fromkeys(kinds, 0.5)  # optimistic: each is tried early on

    def pick(self) -> str:
        total = sum(self.rate.values())
        share = len(self.kinds) * self.FLOOR
        weights = [
            self.FLOOR + (1 - share) * (self.rate[k] / total if total else 1 / len(self.kinds))
            for k in self.kinds
        ]
        return self.rng.choices(self.kinds, weights)[0]

    def reward(self, kind: str, improved: bool) -> None:
        self.rate[kind] = self.DECAY * self.rate[kind] + (1 - self.DECAY) * float(improved)


def _movable(problem: Problem, schedule: Schedule) -> list[Assignment]:
    return [a for a in schedule.assignments if problem.jobs[a.job].operations[a.op].fixed is None]


def _window(rng: random.Random, pool: list[Assignment], size: int) -> set[OperationRef]:
    by_start = sorted(pool, key=lambda a: (a.start, a.job))
    first = rng.randrange(max(1, len(by_start) - size + 1))
    return {OperationRef(a.job, a.op) for a in by_start[first : first + size]}


def _jobs(rng: random.Random, pool: list[Assignment], size: int) -> set[OperationRef]:
    by_job: dict[int, list[Assignment]] = defaultdict(list)
    for a in pool:
        by_job[a.job].append(a)
    jobs = list(by_job)
    rng.shuffle(jobs)
    chosen: set[OperationRef] = set()
    for j in jobs:
        if len(chosen) >= size:
            break
        chosen |= {OperationRef(a.job, a.op) for a in by_job[j]}
    return chosen


def _machines(
    problem: Problem, rng: random.Random, pool: list[Assignment], size: int
) -> set[OperationRef]:
    machines = sorted({a.machine for a in pool})
    picked = set(rng.sample(machines, min(len(machines), rng.choice((1, 2)))))
    mine = sorted((a for a in pool if a.machine in picked), key=lambda a: a.start)
    if len(mine) > size:
        first = rng.randrange(len(mine) - size + 1)
        mine = mine[first : first + size]
    chosen = {OperationRef(a.job, a.op) for a in mine}
    # Also free the operations that could move onto those machines in the same time span.
    if mine:
        lo, hi = mine[0].start, mine[-1].end
        for a in pool:
            if len(chosen) >= size * 1.5:
                break
            op = problem.jobs[a.job].operations[a.op]
            if a.start < hi and lo < a.end and picked & set(op.machines):
                chosen.add(OperationRef(a.job, a.op))
    return chosen


def critical_operations(problem: Problem, schedule: Schedule) -> list[Assignment]:
    """Operations on critical paths: walk back from the last end through predecessors (job or
    machine) that end exactly when (less setup) the operation starts."""
    index = schedule.index()
    lanes = schedule.by_machine()
    machine_before: dict[tuple[int, int], Assignment] = {}
    for lane in lanes.values():
        for first, second in itertools.pairwise(lane):
            machine_before[(second.job, second.op)] = first
    makespan = schedule.makespan
    stack = [a for a in schedule.assignments if a.end == makespan]
    seen: set[tuple[int, int]] = set()
    found: list[Assignment] = []
    while stack:
        a = stack.pop()
        if (a.job, a.op) in seen:
            continue
        seen.add((a.job, a.op))
        found.append(a)
        job_before = index.get((a.job, a.op - 1)) if a.op > 0 else None
        if job_before is not None and job_before.end == a.start:
            stack.append(job_before)
        m_before = machine_before.get((a.job, a.op))
        if m_before is not None:
            cls_a = problem.jobs[a.job].operations[a.op].setup_class
            cls_b = problem.jobs[m_before.job].operations[m_before.op].setup_class
            if m_before.end + problem.setup_time(a.machine, cls_b, cls_a) >= a.start:
                stack.append(m_before)
    return found


def _critical(
    problem: Problem, rng: random.Random, schedule: Schedule, pool: list[Assignment], size: int
) -> set[OperationRef]:
    movable = {(a.job, a.op) for a in pool}
    critical = [a for a in critical_operations(problem, schedule) if (a.job, a.op) in movable]
    if not critical:
        return _window(rng, pool, size)
    rng.shuffle(critical)
    centre = critical[: max(1, size // 3)]
    chosen = {OperationRef(a.job, a.op) for a in centre}
    # Add the operations running around them (any machine) until the size is reached.
    spans = sorted(pool, key=lambda a: a.start)
    for c in centre:
        near = sorted(spans, key=lambda a: abs(a.start - c.start))
        for a in near[: max(2, size // len(centre))]:
            chosen.add(OperationRef(a.job, a.op))
    return chosen


def _reassign(
    problem: Problem, rng: random.Random, schedule: Schedule, pool: list[Assignment], size: int
) -> set[OperationRef]:
    """A few critical operations and everything near them in time on the machines they could
    move to, so that the search can re-seat them elsewhere."""
    movable = {(a.job, a.op) for a in pool}
    critical = [a for a in critical_operations(problem, schedule) if (a.job, a.op) in movable]
    if not critical:
        return _window(rng, pool, size)
    rng.shuffle(critical)
    chosen: set[OperationRef] = set()
    lanes = schedule.by_machine()
    for c in critical:
        if len(chosen) >= size:
            break
        chosen.add(OperationRef(c.job, c.op))
        margin = max(1, (c.end - c.start))
        for machine in problem.jobs[c.job].operations[c.op].machines:
            for a in lanes.get(machine, []):
                if (
                    a.start < c.end + margin
                    and c.start - margin < a.end
                    and (a.job, a.op) in movable
                ):
                    chosen.add(OperationRef(a.job, a.op))
    return chosen


def choose(
    kind: str, problem: Problem, schedule: Schedule, rng: random.Random, size: int
) -> set[OperationRef]:
    pool = _movable(problem, schedule)
    size = max(2, min(size, len(pool)))
    if kind == "critical":
        return _critical(problem, rng, schedule, pool, size)
    if kind == "reassign":
        return _reassign(problem, rng, schedule, pool, size)
    if kind == "jobs":
        return _jobs(rng, pool, size)
    if kind == "machines":
        return _machines(problem, rng, pool, size)
    return _window(rng, pool, size)


def restriction(
    problem: Problem, schedule: Schedule, relaxed: set[OperationRef], *, pin: bool = True
) -> Restriction:
    """Operations not relaxed keep their machine and, per machine, their order; with ``pin``,
    those that end before the earliest relaxed operation starts stay exactly where they are."""
    machine: dict[OperationRef, int] = {}
    chains: list[tuple[OperationRef, ...]] = []
    pinned: dict[OperationRef, Fixed] = {}
    index = schedule.index()
    earliest = min(
        (index[(r.job, r.op)].start for r in relaxed if (r.job, r.op) in index), default=0
    )
    for _, lane in sorted(schedule.by_machine().items()):
        chain = []
        for a in lane:
            ref = OperationRef(a.job, a.op)
            if ref in relaxed or problem.operation(ref).fixed is not None:
                continue
            if pin and a.end <= earliest:
                pinned[ref] = Fixed(a.machine, a.start, a.end)
                continue
            machine[ref] = a.machine
            chain.append(ref)
        if len(chain) > 1:
            chains.append(tuple(chain))
    return Restriction(machine=machine, order=tuple(chains), pinned=pinned)
