"""CP-SAT constraints: routing precedence, one operation at a time per machine (with its
unavailable windows), sequence-dependent setups as a circuit per machine, and redundant ones.

Setups: on a machine whose setup matrix is not all zero, the operations that may run there form
a circuit through a depot node (first and last operation); choosing arc ``i → j`` (``j`` right
after ``i``) forces ``start_j ≥ end_i + setup(i, j)``; an operation not on the machine takes its
self-loop. Between two fixed (started) operations nothing is forced: they are facts.
"""

from __future__ import annotations

import itertools

from ortools.sat.python import cp_model

from microfab.plan.problem import OperationRef
from microfab.plan.solvers.cpsat.variables import Restriction, SchedulingModel


def add_precedences(sm: SchedulingModel) -> None:
    for j, job in enumerate(sm.problem.jobs):
        for k in range(1, len(job.operations)):
            before, after = sm.ops[OperationRef(j, k - 1)], sm.ops[OperationRef(j, k)]
            if before.fixed and after.fixed:
                continue
            sm.model.add(after.start >= before.end)


def add_machines(sm: SchedulingModel) -> None:
    """No two operations overlap on a machine, nor an operation and an unavailable window."""
    for m, entries in sm.on_machine.items():
        intervals = [interval for _, interval in entries] + sm.blocked[m]
        if len(intervals) > 1 and entries:
            sm.model.add_no_overlap(intervals)


def add_setups(sm: SchedulingModel) -> None:
    """A circuit per machine with a non-zero setup matrix; arcs carry the setup times."""
    problem = sm.problem
    for m, entries in sm.on_machine.items():
        matrix = problem.setups[m] if m < len(problem.setups) else None
        if matrix is None or not any(any(row) for row in matrix) or not entries:
            continue
        refs = [ref for ref, _ in entries]
        classes = [problem.operation(ref).setup_class for ref in refs]
        initial = problem.machines[m].initial_setup_class
        arcs: list[tuple[int, int, cp_model.LiteralT]] = []
        kept: list[tuple[OperationRef | None, OperationRef | None, cp_model.IntVar, int]] = []
        for i, ref in enumerate(refs, start=1):
            present = sm.ops[ref].presence[m]
            vars_i = sm.ops[ref]
            if not isinstance(present, bool):
                arcs.append((i, i, present.Not()))
            first = sm.model.new_bool_var("")
            last = sm.model.new_bool_var("")
            arcs += [(0, i, first), (i, 0, last)]
            need = 0 if vars_i.fixed else problem.setup_time(m, initial, classes[i - 1])
            if need:
                sm.model.add(vars_i.start >= need).only_enforce_if(first)
            kept += [(None, ref, first, need), (ref, None, last, 0)]
            for k, other in enumerate(refs, start=1):
                if k == i:
                    continue
                literal = sm.model.new_bool_var("")
                arcs.append((i, k, literal))
                vars_k = sm.ops[other]
                setup = 0
                if not (vars_i.fixed and vars_k.fixed):
                    setup = problem.setup_time(m, classes[i - 1], classes[k - 1])
                sm.model.add(vars_k.start >= vars_i.end + setup).only_enforce_if(literal)
                kept.append((ref, other, literal, setup))
        if all(not isinstance(sm.ops[ref].presence[m], bool) for ref in refs):
            arcs.append((0, 0, sm.model.new_bool_var("")))  # the machine may stay empty
        sm.model.add_circuit(arcs)
        sm.arcs[m] = kept


def add_restriction(sm: SchedulingModel, restriction: Restriction | None) -> None:
    """Keep the given chains of operations in order on their machines (neighbourhood search)."""
    if restriction is None:
        return
    for chain in restriction.order:
        for before, after in itertools.pairwise(chain):
            sm.model.add(sm.ops[after].start >= sm.ops[before].end)


def add_redundant(sm: SchedulingModel) -> None:
    """A cumulative over all operations (at most one per machine at a time), which strengthens
    the makespan's lower bound when machine choices are open."""
    flexible = [v for v in sm.ops.values() if len(v.presence) > 1]
    if not flexible:
        return
    machines = len(sm.problem.machines)
    intervals = [v.interval for v in sm.ops.values()]
    sm.model.add_cumulative(intervals, [1] * len(intervals), machines)
