"""The scheduling problem as plain, validated, immutable data: a flexible job shop with setups.

A :class:`Problem` is a set of :class:`Job` s on a set of :class:`Machine` s. Each job is a chain
of :class:`Operation` s (its routing, in order); each operation runs on exactly one of its
eligible machines (a :class:`Mode`: machine and processing time there), without interruption.

Times are integers in the problem's own unit (seconds for a factory, the instance's unit for a
benchmark file), counted from 0 = the start of planning. On top of the classic flexible job shop:

- **setups**: ``setups[m][a][b]`` is the time machine ``m`` needs between an operation of setup
  class ``a`` and the next one, of class ``b`` (immediate successors on the machine). An operation
  without a class needs no setup either side. A machine may start in a class
  (``Machine.initial_setup_class``: the mould on it now). A setup may be done while the machine is
  otherwise unavailable (during a break, say); processing may not.
- **calendars**: ``Machine.unavailable`` lists windows ``[start, end)`` when the machine cannot
  process (no shift, breaks, planned maintenance, a breakdown). Operations are not pre-emptive:
  one must fit entirely between two such windows.
- **release, due, weight** per job; **earliest start** per operation; **fixed** operations (already
  started: their machine, start and end are given and stay as they are).
- **objective**: makespan, total weighted tardiness and total setup time, combined with weights or
  taken one after the other (lexicographic).

Faults in the data itself (a machine index out of range, a negative time) raise
:class:`~microfab.errors.InputError`. A well-formed problem that cannot be scheduled (an operation
no machine can run, a due date before the release) is not an error: :meth:`Problem.infeasibility`
names the reasons, and the solvers return the status ``infeasible`` with them.
"""

from __future__ import annotations

import enum
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from microfab.errors import InputError

#: No time in a problem may exceed this (CP-SAT works with 64-bit integers; sums must not overflow).
MAX_TIME = 2**40


class Criterion(enum.StrEnum):
    """What a schedule is judged by."""

    MAKESPAN = "makespan"
    WEIGHTED_TARDINESS = "weighted_tardiness"
    SETUP_TIME = "setup_time"


@dataclass(frozen=True, slots=True)
class Objective:
    """Criteria with integer weights; ``lexicographic`` = optimise them in the order given.

    Weighted: minimise ``Σ weight × criterion``. Lexicographic: minimise the first criterion, then
    the second without making the first worse, and so on (weights are then ignored).
    """

    terms: tuple[tuple[Criterion, int], ...] = ((Criterion.MAKESPAN, 1),)
    lexicographic: bool = False

    def __post_init__(self) -> None:
        if not self.terms:
            raise InputError("an objective needs at least one criterion")
        seen: set[Criterion] = set()
        for criterion, weight in self.terms:
            if criterion in seen:
                raise InputError(f"objective: criterion '{criterion}' is given twice")
            seen.add(criterion)
            if weight < 0:
                raise InputError(f"objective: weight of '{criterion}' must be ≥ 0, got {weight}")
        if all(weight == 0 for _, weight in self.terms) and not self.lexicographic:
            raise InputError("objective: at least one weight must be > 0")

    @property
    def criteria(self) -> tuple[Criterion, ...]:
        return tuple(c for c, w in self.terms if self.lexicographic or w > 0)

    @classmethod
    def parse(cls, text: str) -> Objective:
        """``makespan``, ``makespan,weighted_tardiness`` (lexicographic, in that order) or
        ``10*weighted_tardiness+1*setup_time`` (weighted)."""
        names = {c.value: c for c in Criterion}
        text = text.replace(" ", "")
        try:
            if "+" in text or "*" in text:
                terms: list[tuple[Criterion, int]] = []
                for part in text.split("+"):
                    weight, _, name = part.rpartition("*")
                    terms.append((names[name], int(weight) if weight else 1))
                return cls(tuple(terms), lexicographic=False)
            chosen = [names[name] for name in text.split(",")]
        except (KeyError, ValueError):
            raise InputError(
                f"objective '{text}': expected criteria from {', '.join(names)}, joined by ',' "
                "(lexicographic) or as weighted sums like 10*weighted_tardiness+makespan"
            ) from None
        return cls(tuple((c, 1) for c in chosen), lexicographic=len(chosen) > 1)

    def describe(self) -> str:
        if self.lexicographic:
            return " then ".join(c.value for c, _ in self.terms)
        return " + ".join(f"{w}×{c.value}" if w != 1 else c.value for c, w in self.terms if w > 0)


@dataclass(frozen=True, slots=True)
class Mode:
    """One way to run an operation: on ``machine`` (an index) for ``duration`` time units."""

    machine: int
    duration: int


@dataclass(frozen=True, slots=True)
class Fixed:
    """Where and when an operation that has already started runs (or ran)."""

    machine: int
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Operation:
    """One step of a job: its eligible machines with their times, setup class, earliest start."""

    modes: tuple[Mode, ...]
    setup_class: int | None = None
    earliest: int = 0
    fixed: Fixed | None = None
    name: str = ""

    def duration_on(self, machine: int) -> int | None:
        for mode in self.modes:
            if mode.machine == machine:
                return mode.duration
        return None

    @property
    def machines(self) -> tuple[int, ...]:
        return tuple(m.machine for m in self.modes)


@dataclass(frozen=True, slots=True)
class Job:
    """An order's routing: operations in the order they must be done."""

    operations: tuple[Operation, ...]
    name: str = ""
    release: int = 0
    due: int | None = None
    weight: int = 1


@dataclass(frozen=True, slots=True)
class Machine:
    """A machine: its name, the windows when it cannot process, the setup class it starts in."""

    name: str = ""
    unavailable: tuple[tuple[int, int], ...] = ()
    initial_setup_class: int | None = None


SetupMatrix = tuple[tuple[int, ...], ...]


@dataclass(frozen=True, slots=True)
class OperationRef:
    """Job index, operation index within the job (both 0-based)."""

    job: int
    op: int

    def __str__(self) -> str:
        return f"job {self.job} op {self.op}"


@dataclass(frozen=True)
class Problem:
    """A flexible job-shop scheduling problem; see the module docstring."""

    machines: tuple[Machine, ...]
    jobs: tuple[Job, ...]
    setups: tuple[SetupMatrix | None, ...] = ()
    objective: Objective = field(default_factory=Objective)
    name: str = ""
    time_unit: str = ""

    def __post_init__(self) -> None:
        _validate(self)

    # ------------------------------------------------------------------ look-ups

    def operations(self) -> Iterator[tuple[OperationRef, Operation]]:
        for j, job in enumerate(self.jobs):
            for k, op in enumerate(job.operations):
                yield OperationRef(j, k), op

    def operation(self, ref: OperationRef) -> Operation:
        return self.jobs[ref.job].operations[ref.op]

    @property
    def operation_count(self) -> int:
        return sum(len(job.operations) for job in self.jobs)

    def setup_time(self, machine: int, before: int | None, after: int | None) -> int:
        """Setup time on ``machine`` between setup classes ``before`` and ``after`` (None: none)."""
        if before is None or after is None or machine >= len(self.setups):
            return 0
        matrix = self.setups[machine]
        return 0 if matrix is None else matrix[before][after]

    @property
    def has_setups(self) -> bool:
        return any(matrix is not None and any(any(row) for row in matrix) for matrix in self.setups)

    @property
    def has_calendars(self) -> bool:
        return any(machine.unavailable for machine in self.machines)

    def earliest_start(self, ref: OperationRef) -> int:
        """Release of the job and the operation's own earliest start, whichever is later."""
        op = self.operation(ref)
        if ref.op == 0:
            return max(op.earliest, self.jobs[ref.job].release)
        return op.earliest

    def horizon(self) -> int:
        """A time by which some schedule surely ends: everything in a row after every fixed
        operation, release and blocked window (generous; solvers only use it as a bound)."""
        latest = 0
        for machine in self.machines:
            for _, end in machine.unavailable:
                latest = max(latest, end)
        for ref, op in self.operations():
            latest = max(latest, self.earliest_start(ref))
            if op.fixed is not None:
                latest = max(latest, op.fixed.end)
        total = 0
        longest_setup = max(
            (max(max(row) for row in m) for m in self.setups if m is not None and m), default=0
        )
        for _, op in self.operations():
            if op.modes:
                total += max(mode.duration for mode in op.modes) + longest_setup
        return min(MAX_TIME, latest + total)

    def infeasibility(self) -> list[str]:
        """Why no schedule can exist, one sentence per reason (empty: none found)."""
        reasons: list[str] = []
        for j, job in enumerate(self.jobs):
            label = _job_label(j, job)
            if job.due is not None and job.due < job.release:
                reasons.append(f"{label}: due date {job.due} is before its release {job.release}")
            for k, op in enumerate(job.operations):
                where = f"{label} operation {k}{f' ({op.name})' if op.name else ''}"
                if op.fixed is None and not op.modes:
                    reasons.append(f"{where}: no machine can run it")
                    continue
                if op.fixed is None and not any(
                    _fits_somewhere(self.machines[mode.machine], mode.duration) for mode in op.modes
                ):
                    reasons.append(
                        f"{where}: longer than every working window of its machines "
                        f"({', '.join(self.machine_label(m.machine) for m in op.modes)})"
                    )
        fixed = sorted(
            (op.fixed.machine, op.fixed.start, op.fixed.end, ref)
            for ref, op in self.operations()
            if op.fixed is not None and op.fixed.end > op.fixed.start
        )
        for (m1, _, e1, r1), (m2, s2, _, r2) in itertools.pairwise(fixed):
            if m1 == m2 and s2 < e1:
                reasons.append(
                    f"fixed (started) operations {r1} and {r2} overlap on {self.machine_label(m1)}"
                )
        return reasons

    def machine_label(self, machine: int) -> str:
        name = self.machines[machine].name
        return name if name else f"machine {machine}"


def _job_label(index: int, job: Job) -> str:
    return f"job {index}{f' ({job.name})' if job.name else ''}"


def _fits_somewhere(machine: Machine, duration: int) -> bool:
    """True if some gap between blocked windows (or after the last one) can hold ``duration``."""
    if not machine.unavailable:
        return True
    free_from = 0
    for start, end in sorted(machine.unavailable):
        if start - free_from >= duration:
            return True
        free_from = max(free_from, end)
    return free_from < MAX_TIME


def free_windows(machine: Machine) -> list[tuple[int, int]]:
    """The gaps between a machine's blocked windows, the last one open (``MAX_TIME``)."""
    gaps: list[tuple[int, int]] = []
    free_from = 0
    for start, end in sorted(machine.unavailable):
        if start > free_from:
            gaps.append((free_from, start))
        free_from = max(free_from, end)
    if free_from < MAX_TIME:
        gaps.append((free_from, MAX_TIME))
    return gaps


# ---------------------------------------------------------------------------- validation


def _check_time(value: int, what: str, *, allow_zero: bool = True) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"{what} must be an integer, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero) or value > MAX_TIME:
        raise InputError(f"{what} must be between {0 if allow_zero else 1} and {MAX_TIME}")


def _check_matrix(index: int, matrix: Sequence[Sequence[int]]) -> int:
    size = len(matrix)
    for row in matrix:
        if len(row) != size:
            raise InputError(f"setup matrix of machine {index} is not square ({size} rows)")
        for value in row:
            _check_time(value, f"setup time on machine {index}")
    return size


def _validate(problem: Problem) -> None:
    n_machines = len(problem.machines)
    if len(problem.setups) not in (0, n_machines):
        raise InputError(
            f"setups: give one matrix (or None) per machine: {n_machines}, "
            f"got {len(problem.setups)}"
        )
    sizes = [
        None if matrix is None else _check_matrix(m, matrix)
        for m, matrix in enumerate(problem.setups)
    ]
    for m, machine in enumerate(problem.machines):
        for start, end in machine.unavailable:
            _check_time(start, f"machine {m} unavailable window start")
            _check_time(end, f"machine {m} unavailable window end")
            if end <= start:
                raise InputError(f"machine {m}: unavailable window [{start}, {end}) is empty")
        cls = machine.initial_setup_class
        if cls is not None and (not sizes or sizes[m] is None or not 0 <= cls < (sizes[m] or 0)):
            raise InputError(f"machine {m}: initial setup class {cls} has no row in its matrix")
    for j, job in enumerate(problem.jobs):
        label = _job_label(j, job)
        _check_time(job.release, f"{label} release")
        if job.due is not None:
            _check_time(job.due, f"{label} due date")
        _check_time(job.weight, f"{label} weight")
        if not job.operations:
            raise InputError(f"{label} has no operations")
        for k, op in enumerate(job.operations):
            where = f"{label} operation {k}"
            _check_time(op.earliest, f"{where} earliest start")
            seen: set[int] = set()
            for mode in op.modes:
                if not 0 <= mode.machine < n_machines:
                    raise InputError(
                        f"{where}: machine {mode.machine} does not exist "
                        f"(there are {n_machines}, numbered from 0)"
                    )
                if mode.machine in seen:
                    raise InputError(f"{where}: machine {mode.machine} is listed twice")
                seen.add(mode.machine)
                _check_time(mode.duration, f"{where} processing time on machine {mode.machine}")
            if op.setup_class is not None:
                if op.setup_class < 0:
                    raise InputError(f"{where}: setup class must be ≥ 0")
                for mode in op.modes:
                    size = sizes[mode.machine] if sizes else None
                    if size is not None and op.setup_class >= size:
                        raise InputError(
                            f"{where}: setup class {op.setup_class} is outside the "
                            f"{size}×{size} setup matrix of machine {mode.machine}"
                        )
            if op.fixed is not None:
                fixed = op.fixed
                if not 0 <= fixed.machine < n_machines:
                    raise InputError(
                        f"{where}: fixed on machine {fixed.machine}, which does not exist"
                    )
                _check_time(fixed.start, f"{where} fixed start")
                _check_time(fixed.end, f"{where} fixed end")
                if fixed.end < fixed.start:
                    raise InputError(f"{where}: fixed end {fixed.end} is before its start")
