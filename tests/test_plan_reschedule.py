"""Re-planning: started operations stay fixed, the rest is repaired quickly with few changes."""

from __future__ import annotations

import dataclasses
import time

import pytest

from conftest import BENCHMARKS
from microfab.plan.check import check_schedule
from microfab.plan.formats import read_instance
from microfab.plan.problem import Fixed, Job, Mode, Operation, Problem
from microfab.plan.reschedule import add_job, block_machine, changes, freeze, reschedule
from microfab.plan.result import Schedule
from microfab.plan.solvers import cpsat, dispatch


@pytest.fixture(scope="module")
def planned() -> tuple[Problem, Schedule]:
    problem = read_instance(BENCHMARKS / "fjsp" / "brandimarte" / "Mk07.fjs")  # 100 operations
    result = cpsat.solve(problem, cpsat.Settings(time_limit=2.0))
    assert result.schedule is not None
    return problem, result.schedule


def test_a_breakdown_is_repaired_with_started_operations_fixed(
    planned: tuple[Problem, Schedule],
) -> None:
    problem, plan = planned
    now = plan.makespan // 3
    busiest = max(range(len(problem.machines)), key=lambda m: len(plan.by_machine().get(m, [])))
    broken = block_machine(problem, busiest, now, now + plan.makespan // 5)
    began = time.perf_counter()
    result = reschedule(broken, plan, now=now, time_limit=2.0)
    elapsed = time.perf_counter() - began
    assert result.schedule is not None
    assert elapsed < 3.0  # the goal is 2 s for 100 operations; leave room for a busy CI machine
    frozen = freeze(broken, plan, now)
    assert check_schedule(frozen, result.schedule.assignments) == []
    new = result.schedule.index()
    started = [a for a in plan.assignments if a.start < now]
    assert started
    for a in started:
        assert new[(a.job, a.op)] == a  # same machine, start and end
    for a in plan.assignments:
        if a.start >= now:
            assert new[(a.job, a.op)].start >= now
    assert result.stats["changes"] == changes(plan, result.schedule).to_json()


def test_a_rush_order_is_added(planned: tuple[Problem, Schedule]) -> None:
    problem, plan = planned
    now = plan.makespan // 4
    rush = Job(
        tuple(Operation((Mode(m, 5), Mode((m + 1) % len(problem.machines), 7))) for m in (0, 2, 4)),
        name="rush",
        release=now,
    )
    bigger = add_job(problem, rush)
    result = reschedule(bigger, plan, now=now, time_limit=1.5)
    assert result.schedule is not None
    assert check_schedule(freeze(bigger, plan, now), result.schedule.assignments) == []
    assert len(result.schedule.assignments) == problem.operation_count + 3


def test_nothing_changed_means_nothing_moves(planned: tuple[Problem, Schedule]) -> None:
    problem, plan = planned
    result = reschedule(problem, plan, now=0, time_limit=1.5)
    assert result.schedule is not None
    assert result.makespan is not None and result.makespan <= plan.makespan
    if result.makespan == plan.makespan:
        assert result.stats["changes"]["moved"] == 0


def test_a_late_operation_pushes_its_successors() -> None:
    problem = read_instance(BENCHMARKS / "jssp" / "ft06.txt")
    plan = cpsat.solve(problem, cpsat.Settings(time_limit=5.0)).schedule
    assert plan is not None
    now = 10
    frozen = freeze(problem, plan, now)
    running = next(
        (ref, op) for ref, op in frozen.operations() if op.fixed is not None and op.fixed.end > now
    )
    ref, op = running
    assert op.fixed is not None
    late = Fixed(op.fixed.machine, op.fixed.start, op.fixed.end + 7)
    jobs = list(frozen.jobs)
    ops = list(jobs[ref.job].operations)
    ops[ref.op] = Operation(op.modes, op.setup_class, fixed=late)
    jobs[ref.job] = Job(tuple(ops), release=jobs[ref.job].release)
    delayed = dataclasses.replace(frozen, jobs=tuple(jobs))
    result = reschedule(delayed, plan, time_limit=1.0)
    assert result.schedule is not None
    assert check_schedule(delayed, result.schedule.assignments) == []
    assert result.schedule.index()[(ref.job, ref.op)].end == late.end


def test_repair_keeps_machines_and_order() -> None:
    problem = read_instance(BENCHMARKS / "jssp" / "la01.txt")
    plan = dispatch.list_schedule(problem, "mwkr")
    assert plan is not None
    broken = block_machine(problem, 0, 100, 180)
    repaired = dispatch.repair(freeze(broken, plan, 100), plan)
    assert repaired is not None
    assert check_schedule(freeze(broken, plan, 100), repaired.assignments) == []
    old, new = plan.by_machine(), repaired.by_machine()
    for machine, lane in old.items():
        assert [(a.job, a.op) for a in lane] == [(a.job, a.op) for a in new[machine]]
