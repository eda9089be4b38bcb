"""Properties on random tiny problems: CP-SAT's optimum equals brute force's, and every schedule
any solver returns passes the independent check.

The brute force here shares no code with the solvers: it tries every machine assignment and every
order of the operations (respecting each job's routing), places each operation as early as its
job, its machine (with the setup) and the machine's unavailable windows allow, and keeps the best
objective. For these objectives (makespan, weighted tardiness, setup time) some such placement is
optimal, so the minimum it finds is the optimum.
"""

from __future__ import annotations

import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from microfab.plan.check import check_schedule
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
from microfab.plan.reschedule import freeze, reschedule
from microfab.plan.result import Schedule
from microfab.plan.solvers import cpsat, dispatch

OBJECTIVES = [
    Objective(),
    Objective(((Criterion.WEIGHTED_TARDINESS, 3), (Criterion.MAKESPAN, 1))),
    Objective(((Criterion.SETUP_TIME, 1), (Criterion.MAKESPAN, 1))),
    Objective(((Criterion.WEIGHTED_TARDINESS, 1), (Criterion.MAKESPAN, 1)), lexicographic=True),
]


@st.composite
def tiny_problems(draw: st.DrawFn, *, fixed: bool = False) -> Problem:
    n_jobs = draw(st.integers(1, 3))
    budget = 5
    jobs = []
    for _ in range(n_jobs):
        n_ops = draw(st.integers(1, min(2, budget - (n_jobs - len(jobs) - 1))))
        budget -= n_ops
        ops = []
        for _ in range(n_ops):
            machines = draw(st.sampled_from([(0,), (1,), (0, 1)]))
            modes = tuple(Mode(m, draw(st.integers(1, 6))) for m in machines)
            ops.append(Operation(modes, setup_class=draw(st.sampled_from([None, 0, 1]))))
        due = draw(st.one_of(st.none(), st.integers(3, 14)))
        release = draw(st.integers(0, 3))
        jobs.append(
            Job(
                tuple(ops),
                release=release,
                due=None if due is None else max(due, release),
                weight=draw(st.integers(1, 3)),
            )
        )
    if fixed and draw(st.booleans()):
        # the first operation of the first job has started on one of its machines at time 0
        op = jobs[0].operations[0]
        mode = op.modes[0]
        started = Operation(
            op.modes, op.setup_class, fixed=Fixed(mode.machine, 0, mode.duration + 1)
        )
        jobs[0] = Job((started, *jobs[0].operations[1:]), release=0, due=jobs[0].due)
    window = draw(st.one_of(st.none(), st.tuples(st.integers(0, 8), st.integers(1, 4))))
    machines = (
        Machine(unavailable=() if window is None else ((window[0], window[0] + window[1]),)),
        Machine(initial_setup_class=draw(st.sampled_from([None, 0, 1]))),
    )
    setup = draw(st.integers(0, 3))
    matrix = ((0, setup), (setup + 1, 0))
    return Problem(
        machines,
        tuple(jobs),
        setups=(None, matrix),
        objective=draw(st.sampled_from(OBJECTIVES)),
    )


def _values(problem: Problem, ends: dict[int, int], setup: int) -> dict[Criterion, int]:
    tardiness = sum(
        job.weight * max(0, ends[j] - job.due)
        for j, job in enumerate(problem.jobs)
        if job.due is not None
    )
    return {
        Criterion.MAKESPAN: max(ends.values()),
        Criterion.WEIGHTED_TARDINESS: tardiness,
        Criterion.SETUP_TIME: setup,
    }


def _score(problem: Problem, values: dict[Criterion, int]) -> tuple[int, ...]:
    objective = problem.objective
    if objective.lexicographic:
        return tuple(values[c] for c, _ in objective.terms)
    return (sum(w * values[c] for c, w in objective.terms),)


def brute_force(problem: Problem) -> tuple[int, ...]:
    ops = [(j, k) for j, job in enumerate(problem.jobs) for k in range(len(job.operations))]
    choices = [problem.jobs[j].operations[k].modes for j, k in ops]
    best: tuple[int, ...] | None = None
    for order in itertools.permutations(ops):
        if any(order.index((j, k - 1)) > order.index((j, k)) for j, k in order if k > 0):
            continue
        for assignment in itertools.product(*choices):
            mode_of = dict(zip(ops, assignment, strict=True))
            free = {m: 0 for m in range(len(problem.machines))}
            last = {m: problem.machines[m].initial_setup_class for m in free}
            ready = {j: job.release for j, job in enumerate(problem.jobs)}
            setup_total = 0
            ends: dict[int, int] = {}
            for j, k in order:
                op = problem.jobs[j].operations[k]
                mode = mode_of[(j, k)]
                m = mode.machine
                before, after = last[m], op.setup_class
                matrix = problem.setups[m]
                setup = 0
                if matrix is not None and before is not None and after is not None:
                    setup = matrix[before][after]
                start = max(ready[j], free[m] + setup)
                for lo, hi in sorted(problem.machines[m].unavailable):
                    if start < hi and lo < start + mode.duration:
                        start = hi
                end = start + mode.duration
                setup_total += setup
                free[m], last[m] = end, op.setup_class
                ready[j] = end
                ends[j] = end
            score = _score(problem, _values(problem, ends, setup_total))
            if best is None or score < best:
                best = score
    assert best is not None
    return best


@settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(tiny_problems())
def test_cpsat_finds_the_brute_force_optimum(problem: Problem) -> None:
    result = cpsat.solve(problem, cpsat.Settings(time_limit=10.0, workers=2))
    assert result.status.value == "optimal"
    assert result.schedule is not None
    assert check_schedule(problem, result.schedule.assignments) == []
    assert _score(problem, result.values) == brute_force(problem)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(tiny_problems(fixed=True))
def test_heuristics_and_repairs_are_feasible(problem: Problem) -> None:
    for rule in dispatch.RULES:
        schedule = dispatch.list_schedule(problem, rule)
        assert schedule is not None
        assert check_schedule(problem, schedule.assignments) == [], rule
    # an empty previous plan: every operation is dispatched afresh
    repaired = dispatch.repair(problem, Schedule(()))
    assert repaired is not None
    assert check_schedule(problem, repaired.assignments) == []


@settings(max_examples=15, deadline=None, derandomize=True)
@given(tiny_problems(), st.integers(0, 6))
def test_rescheduling_keeps_started_operations(problem: Problem, now: int) -> None:
    first = cpsat.solve(problem, cpsat.Settings(time_limit=5.0))
    assert first.schedule is not None
    result = reschedule(problem, first.schedule, now=now, time_limit=1.0)
    assert result.schedule is not None
    assert check_schedule(freeze(problem, first.schedule, now), result.schedule.assignments) == []
    new = result.schedule.index()
    for a in first.schedule.assignments:
        if a.start < now:
            assert new[(a.job, a.op)] == a
        else:
            assert new[(a.job, a.op)].start >= now
