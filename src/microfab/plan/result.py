"""What a solver gives back: our own :class:`Schedule` and :class:`Result`, and their JSON form.

No solver type leaks past this: a schedule is a list of :class:`Assignment` s (job, operation,
machine, start, end; all 0-based integers in the problem's time unit), a result adds the status,
objective, lower bound and runtime. ``infeasible`` is a status with reasons, not an exception.
"""

from __future__ import annotations

import enum
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from microfab.plan.problem import Criterion, Objective, Problem


@dataclass(frozen=True, slots=True, order=True)
class Assignment:
    """Operation ``op`` of job ``job`` runs on ``machine`` from ``start`` to ``end``."""

    job: int
    op: int
    machine: int
    start: int
    end: int

    def to_json(self) -> dict[str, int]:
        return {
            "job": self.job,
            "op": self.op,
            "machine": self.machine,
            "start": self.start,
            "end": self.end,
        }


@dataclass(frozen=True)
class Schedule:
    """One assignment per operation, sorted by job and operation."""

    assignments: tuple[Assignment, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "assignments", tuple(sorted(self.assignments)))

    @property
    def makespan(self) -> int:
        return max((a.end for a in self.assignments), default=0)

    def get(self, job: int, op: int) -> Assignment | None:
        for a in self.assignments:
            if a.job == job and a.op == op:
                return a
        return None

    def index(self) -> dict[tuple[int, int], Assignment]:
        return {(a.job, a.op): a for a in self.assignments}

    def by_machine(self) -> dict[int, list[Assignment]]:
        """Each machine's assignments in start order (ties: shorter first, then job, op)."""
        lanes: dict[int, list[Assignment]] = defaultdict(list)
        for a in self.assignments:
            lanes[a.machine].append(a)
        for lane in lanes.values():
            lane.sort(key=lambda a: (a.start, a.end, a.job, a.op))
        return dict(lanes)

    def to_json(self) -> list[dict[str, int]]:
        return [a.to_json() for a in self.assignments]


def criteria(problem: Problem, schedule: Schedule) -> dict[Criterion, int]:
    """Makespan, total weighted tardiness and total setup time of a (complete) schedule."""
    ends: dict[int, int] = {}
    for a in schedule.assignments:
        ends[a.job] = max(ends.get(a.job, 0), a.end)
    tardiness = sum(
        job.weight * max(0, ends.get(j, 0) - job.due)
        for j, job in enumerate(problem.jobs)
        if job.due is not None
    )
    setup = 0
    for machine, lane in schedule.by_machine().items():
        before = problem.machines[machine].initial_setup_class
        for a in lane:
            after = problem.jobs[a.job].operations[a.op].setup_class
            setup += problem.setup_time(machine, before, after)
            before = after
    return {
        Criterion.MAKESPAN: schedule.makespan,
        Criterion.WEIGHTED_TARDINESS: tardiness,
        Criterion.SETUP_TIME: setup,
    }


def objective_value(problem: Problem, schedule: Schedule) -> int:
    """The weighted objective (for a lexicographic one: its first criterion)."""
    return scalar(problem.objective, criteria(problem, schedule))


def scalar(objective: Objective, values: dict[Criterion, int]) -> int:
    if objective.lexicographic:
        return values[objective.terms[0][0]]
    return sum(weight * values[criterion] for criterion, weight in objective.terms)


def rank(objective: Objective, values: dict[Criterion, int]) -> tuple[int, ...]:
    """Sort key: smaller is better (lexicographic: criterion by criterion)."""
    if objective.lexicographic:
        return tuple(values[c] for c, _ in objective.terms)
    return (scalar(objective, values),)


class Status(enum.StrEnum):
    OPTIMAL = "optimal"
    FEASIBLE = "feasible"
    INFEASIBLE = "infeasible"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Result:
    """A solver's answer. ``objective`` and ``lower_bound`` are in the objective's unit; for a
    lexicographic objective, of its first criterion."""

    status: Status
    schedule: Schedule | None
    objective: int | None
    lower_bound: int | None
    runtime_s: float
    solver: str
    reasons: tuple[str, ...] = ()
    values: dict[Criterion, int] = field(default_factory=dict)
    #: solver-specific figures (who found the schedule, search counters); not part of the JSON
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def makespan(self) -> int | None:
        return None if self.schedule is None else self.schedule.makespan

    def to_json(self, problem: Problem) -> dict[str, Any]:
        """The JSON document of ``microfab plan solve --json`` (and of the API)."""
        document: dict[str, Any] = {
            "instance": problem.name,
            "status": self.status.value,
            "makespan": self.makespan,
            "lower_bound": self.lower_bound,
            "objective": self.objective,
            "objective_criteria": problem.objective.describe(),
            "runtime_s": round(self.runtime_s, 3),
            "solver": self.solver,
        }
        if self.values:
            document["criteria"] = {c.value: v for c, v in self.values.items()}
        if self.reasons:
            document["reasons"] = list(self.reasons)
        document["assignments"] = [] if self.schedule is None else self.schedule.to_json()
        return document


def schedule_document(problem: Problem, result: Result) -> dict[str, Any]:
    """A self-describing JSON form of a planned schedule, for the dashboard's Gantt chart.

    Adds names to the bare :meth:`Result.to_json`: ``machines`` (index → name), ``jobs`` (name,
    release, due, weight, completion, tardiness) and, per assignment, the job's and operation's
    name and the setup time taken just before it on its machine.
    """
    document = result.to_json(problem)
    schedule = result.schedule
    ends: dict[int, int] = {}
    setup_before: dict[tuple[int, int], int] = {}
    if schedule is not None:
        for a in schedule.assignments:
            ends[a.job] = max(ends.get(a.job, 0), a.end)
        for machine, lane in schedule.by_machine().items():
            before = problem.machines[machine].initial_setup_class
            for a in lane:
                after = problem.jobs[a.job].operations[a.op].setup_class
                setup_before[(a.job, a.op)] = problem.setup_time(machine, before, after)
                before = after
    document["time_unit"] = problem.time_unit
    document["machines"] = [
        {"machine": m, "name": problem.machine_label(m)} for m in range(len(problem.machines))
    ]
    document["jobs"] = [
        {
            "job": j,
            "name": job.name,
            "release": job.release,
            "due": job.due,
            "weight": job.weight,
            "end": ends.get(j),
            "tardiness": (None if job.due is None or j not in ends else max(0, ends[j] - job.due)),
        }
        for j, job in enumerate(problem.jobs)
    ]
    document["assignments"] = [
        {
            **a.to_json(),
            "job_name": problem.jobs[a.job].name,
            "op_name": problem.jobs[a.job].operations[a.op].name,
            "setup_before": setup_before.get((a.job, a.op), 0),
        }
        for a in ([] if schedule is None else schedule.assignments)
    ]
    return document
