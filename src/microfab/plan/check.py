"""The independent feasibility check of a schedule against its problem.

Written apart from the solvers on purpose: it reads only the problem's data and the assignments,
and shares no code with the CP-SAT model, the dispatching heuristic or the result helpers, so a
fault in those cannot hide itself here. Every rule of :mod:`microfab.plan.problem` is checked:

========== ===============================================================================
kind       the rule
========== ===============================================================================
unknown    the assignment names a job or operation the problem does not have
duplicate  an operation is assigned more than once
missing    an operation of the problem is not assigned
machine    the machine is not one the operation may run on
duration   end − start differs from the operation's processing time on that machine
precedence an operation starts before the previous one of its job ends
release    an operation starts before its job's release or its own earliest start
overlap    two operations on one machine overlap in time
setup      the gap between consecutive operations on a machine is shorter than the setup
calendar   an operation overlaps a window in which its machine is unavailable
fixed      an operation that had started is not where and when it was fixed
makespan   the makespan a schedule document states is not its latest end
========== ===============================================================================

Operations fixed by the problem (already started) are facts: only the ``fixed`` rule applies to
them, and the rules between two fixed operations (precedence, overlap, setup) are not checked.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from microfab.errors import InputError
from microfab.model.located_yaml import read_file
from microfab.plan.problem import Problem
from microfab.plan.result import Assignment

KINDS = (
    "unknown",
    "duplicate",
    "missing",
    "machine",
    "duration",
    "precedence",
    "release",
    "overlap",
    "setup",
    "calendar",
    "fixed",
    "makespan",
)


@dataclass(frozen=True, slots=True)
class Violation:
    kind: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "message": self.message}


def check_schedule(
    problem: Problem, assignments: Iterable[Assignment], *, stated_makespan: int | None = None
) -> list[Violation]:
    """Every rule a schedule breaks; empty when it is feasible."""
    found: list[Violation] = []

    def add(kind: str, message: str) -> None:
        found.append(Violation(kind, message))

    placed: dict[tuple[int, int], Assignment] = {}
    for a in assignments:
        name = f"job {a.job} op {a.op}"
        if not (0 <= a.job < len(problem.jobs) and 0 <= a.op < len(problem.jobs[a.job].operations)):
            add("unknown", f"{name}: the problem has no such operation")
            continue
        if (a.job, a.op) in placed:
            add("duplicate", f"{name}: assigned more than once")
            continue
        placed[(a.job, a.op)] = a

    for j, job in enumerate(problem.jobs):
        for k, op in enumerate(job.operations):
            found_a = placed.get((j, k))
            name = f"job {j} op {k}"
            if found_a is None:
                add("missing", f"{name}: not in the schedule")
                continue
            a = found_a
            if op.fixed is not None:
                f = op.fixed
                if (a.machine, a.start, a.end) != (f.machine, f.start, f.end):
                    add(
                        "fixed",
                        f"{name}: started on machine {f.machine} at {f.start} (to end at {f.end}), "
                        f"but scheduled on machine {a.machine} from {a.start} to {a.end}",
                    )
                continue
            times = {mode.machine: mode.duration for mode in op.modes}
            if a.machine not in times:
                eligible = ", ".join(str(m) for m in sorted(times)) or "none"
                add("machine", f"{name}: machine {a.machine} cannot run it (eligible: {eligible})")
            elif a.end - a.start != times[a.machine]:
                add(
                    "duration",
                    f"{name}: runs {a.end - a.start} on machine {a.machine} "
                    f"({a.start}–{a.end}), its processing time there is {times[a.machine]}",
                )
            earliest = max(op.earliest, job.release if k == 0 else 0)
            if a.start < earliest:
                add("release", f"{name}: starts at {a.start}, before its earliest start {earliest}")
            blocked = (
                problem.machines[a.machine].unavailable
                if 0 <= a.machine < len(problem.machines)
                else ()
            )
            for lo, hi in blocked:
                if a.start < hi and lo < a.end:
                    add(
                        "calendar",
                        f"{name}: runs {a.start}–{a.end} on machine {a.machine}, which is "
                        f"unavailable {lo}–{hi}",
                    )

    for j, job in enumerate(problem.jobs):
        for k in range(1, len(job.operations)):
            before, after = placed.get((j, k - 1)), placed.get((j, k))
            both_fixed = (
                job.operations[k - 1].fixed is not None and job.operations[k].fixed is not None
            )
            if before and after and not both_fixed and after.start < before.end:
                add(
                    "precedence",
                    f"job {j} op {k}: starts at {after.start}, before op {k - 1} of its job "
                    f"ends at {before.end}",
                )

    lanes: dict[int, list[Assignment]] = {}
    for a in placed.values():
        lanes.setdefault(a.machine, []).append(a)
    for machine, lane in sorted(lanes.items()):
        lane.sort(key=lambda a: (a.start, a.end, a.job, a.op))
        matrix = problem.setups[machine] if 0 <= machine < len(problem.setups) else None

        def is_fixed(a: Assignment) -> bool:
            return problem.jobs[a.job].operations[a.op].fixed is not None

        def setup_class(a: Assignment) -> int | None:
            return problem.jobs[a.job].operations[a.op].setup_class

        for i, first in enumerate(lane):
            for second in lane[i + 1 :]:
                if second.start >= first.end:
                    break
                if is_fixed(first) and is_fixed(second):
                    continue
                if first.start < second.end and second.start < first.end:
                    add(
                        "overlap",
                        f"machine {machine}: job {first.job} op {first.op} ({first.start}–"
                        f"{first.end}) overlaps job {second.job} op {second.op} "
                        f"({second.start}–{second.end})",
                    )
        if matrix is None:
            continue
        initial = (
            problem.machines[machine].initial_setup_class
            if 0 <= machine < len(problem.machines)
            else None
        )
        if lane and initial is not None and not is_fixed(lane[0]):
            cls = setup_class(lane[0])
            need = 0 if cls is None else matrix[initial][cls]
            if lane[0].start < need:
                add(
                    "setup",
                    f"machine {machine}: job {lane[0].job} op {lane[0].op} starts at "
                    f"{lane[0].start}, but the change-over from the machine's initial setup "
                    f"takes {need}",
                )
        for first, second in itertools.pairwise(lane):
            if is_fixed(first) and is_fixed(second):
                continue
            a_cls, b_cls = setup_class(first), setup_class(second)
            need = 0 if a_cls is None or b_cls is None else matrix[a_cls][b_cls]
            if second.start >= first.end and second.start - first.end < need:
                add(
                    "setup",
                    f"machine {machine}: job {second.job} op {second.op} starts at "
                    f"{second.start}, {second.start - first.end} after job {first.job} op "
                    f"{first.op} ends, but the setup between them takes {need}",
                )

    if stated_makespan is not None:
        latest = max((a.end for a in placed.values()), default=0)
        if stated_makespan != latest:
            add(
                "makespan",
                f"the schedule states makespan {stated_makespan}, its latest end is {latest}",
            )
    return found


def read_schedule(path: Path) -> tuple[list[Assignment], int | None]:
    """Assignments (and the stated makespan, if any) of a schedule file.

    The file is the JSON that ``microfab plan solve --json`` prints (an object with
    ``assignments``) or just the list of assignments.
    """
    text = read_file(path, "schedule file")
    try:
        document: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{path}:{exc.lineno}: not JSON ({exc.msg} at column {exc.colno})"
        ) from None
    stated = None
    if isinstance(document, dict):
        if "assignments" not in document:
            raise InputError(f"{path}: expected an object with 'assignments' (or a list of them)")
        makespan = document.get("makespan")
        if makespan is not None and (isinstance(makespan, bool) or not isinstance(makespan, int)):
            raise InputError(f"{path}: 'makespan' must be an integer or null")
        stated = makespan
        document = document["assignments"]
    if not isinstance(document, list):
        raise InputError(f"{path}: expected a list of assignments")
    assignments = []
    for i, item in enumerate(document):
        if not isinstance(item, dict):
            raise InputError(f"{path}: assignments[{i}]: expected an object")
        values = []
        for key in ("job", "op", "machine", "start", "end"):
            value = item.get(key)
            if isinstance(value, bool) or not isinstance(value, int):
                raise InputError(
                    f"{path}: assignments[{i}].{key}: expected an integer, found {value!r}"
                )
            values.append(value)
        assignments.append(Assignment(*values))
    return assignments, stated
