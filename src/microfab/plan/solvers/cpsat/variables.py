"""CP-SAT variables of a problem: one start, end and interval per operation, one optional interval
and presence literal per eligible machine, and the fixed intervals of unavailable windows.

A :class:`Restriction` narrows the model for a neighbourhood search: operations outside the
neighbourhood keep their machine (``machine``) and, per machine, their order (``order``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ortools.sat.python import cp_model

from microfab.plan.problem import Fixed, OperationRef, Problem


@dataclass(frozen=True)
class Restriction:
    """Keep these operations on these machines, and these chains of operations in this order."""

    machine: dict[OperationRef, int] = field(default_factory=dict)
    order: tuple[tuple[OperationRef, ...], ...] = ()
    #: operations held exactly where they are (well before the neighbourhood: they cannot help)
    pinned: dict[OperationRef, Fixed] = field(default_factory=dict)


@dataclass(slots=True)
class OperationVars:
    start: cp_model.IntVar
    end: cp_model.IntVar
    duration: cp_model.IntVar | int
    interval: cp_model.IntervalVar
    presence: dict[int, cp_model.IntVar | bool]  # machine -> literal (True: the only choice)
    fixed: bool


@dataclass(slots=True)
class SchedulingModel:
    """The CP-SAT model of one problem with handles to every variable the solver reads back."""

    problem: Problem
    model: cp_model.CpModel
    horizon: int
    ops: dict[OperationRef, OperationVars]
    on_machine: dict[int, list[tuple[OperationRef, cp_model.IntervalVar]]]
    blocked: dict[int, list[cp_model.IntervalVar]]
    job_end: list[cp_model.IntVar]
    #: machine -> circuit arcs (from, to, literal, setup time); None = the depot (first / last)
    arcs: dict[int, list[tuple[OperationRef | None, OperationRef | None, cp_model.IntVar, int]]] = (
        field(default_factory=dict)
    )
    #: criterion name -> linear expression (filled by :mod:`.objective`)
    expressions: dict[str, cp_model.LinearExprT] = field(default_factory=dict)


def add_variables(
    problem: Problem, model: cp_model.CpModel, horizon: int, restriction: Restriction | None
) -> SchedulingModel:
    ops: dict[OperationRef, OperationVars] = {}
    on_machine: dict[int, list[tuple[OperationRef, cp_model.IntervalVar]]] = {
        m: [] for m in range(len(problem.machines))
    }
    keep = restriction.machine if restriction is not None else {}
    pinned = restriction.pinned if restriction is not None else {}
    for ref, op in problem.operations():
        f = op.fixed or pinned.get(ref)
        if f is not None:
            start = model.new_constant(f.start)
            end = model.new_constant(f.end)
            interval = model.new_fixed_size_interval_var(f.start, f.end - f.start, "")
            ops[ref] = OperationVars(start, end, f.end - f.start, interval, {f.machine: True}, True)
            on_machine[f.machine].append((ref, interval))
            continue
        modes = op.modes
        if ref in keep:
            modes = tuple(m for m in modes if m.machine == keep[ref]) or modes
        earliest = problem.earliest_start(ref)
        shortest = min(m.duration for m in modes)
        longest = max(m.duration for m in modes)
        start = model.new_int_var(earliest, max(earliest, horizon - shortest), "")
        end = model.new_int_var(earliest + shortest, max(earliest + shortest, horizon), "")
        presence: dict[int, cp_model.IntVar | bool] = {}
        if len(modes) == 1:
            (mode,) = modes
            interval = model.new_interval_var(start, mode.duration, end, "")
            presence[mode.machine] = True
            on_machine[mode.machine].append((ref, interval))
            duration: cp_model.IntVar | int = mode.duration
        else:
            durations = sorted({m.duration for m in modes})
            duration = model.new_int_var_from_domain(cp_model.Domain.from_values(durations), "")
            if shortest == longest:
                duration = shortest
            interval = model.new_interval_var(start, duration, end, "")
            literals = []
            for mode in modes:
                literal = model.new_bool_var("")
                optional = model.new_optional_interval_var(start, mode.duration, end, literal, "")
                on_machine[mode.machine].append((ref, optional))
                presence[mode.machine] = literal
                literals.append(literal)
                if not isinstance(duration, int):
                    model.add(duration == mode.duration).only_enforce_if(literal)
            model.add_exactly_one(literals)
        ops[ref] = OperationVars(start, end, duration, interval, presence, False)
    blocked: dict[int, list[cp_model.IntervalVar]] = {}
    for m, machine in enumerate(problem.machines):
        blocked[m] = [
            model.new_fixed_size_interval_var(lo, hi - lo, "")
            for lo, hi in machine.unavailable
            if lo < horizon
        ]
    job_end = []
    for j, job in enumerate(problem.jobs):
        last = ops[OperationRef(j, len(job.operations) - 1)]
        job_end.append(last.end)
    return SchedulingModel(problem, model, horizon, ops, on_machine, blocked, job_end)
