"""CP-SAT objective: the problem's criteria as linear expressions, combined by weight or in turn.

- makespan: the latest job end;
- weighted tardiness: ``Σ weight × max(0, end − due)`` over jobs with a due date;
- setup time: the setup times of the chosen circuit arcs (see :mod:`.constraints`).
"""

from __future__ import annotations

from ortools.sat.python import cp_model

from microfab.plan.problem import Criterion, Objective
from microfab.plan.solvers.cpsat.variables import SchedulingModel


def add_criteria(sm: SchedulingModel) -> dict[Criterion, cp_model.LinearExprT]:
    """Create one expression per criterion the objective uses."""
    model, problem = sm.model, sm.problem
    wanted = set(problem.objective.criteria)
    found: dict[Criterion, cp_model.LinearExprT] = {}
    if Criterion.MAKESPAN in wanted:
        floor = max((v.end.proto.domain[0] for v in sm.ops.values()), default=0)
        makespan = model.new_int_var(floor, max(floor, sm.horizon), "makespan")
        model.add_max_equality(makespan, sm.job_end)
        found[Criterion.MAKESPAN] = makespan
    if Criterion.WEIGHTED_TARDINESS in wanted:
        terms = []
        for j, job in enumerate(problem.jobs):
            if job.due is None or job.weight == 0:
                continue
            tardy = model.new_int_var(0, max(0, sm.horizon - job.due), "")
            model.add_max_equality(tardy, [0, sm.job_end[j] - job.due])
            terms.append(job.weight * tardy)
        found[Criterion.WEIGHTED_TARDINESS] = sum(terms) if terms else 0
    if Criterion.SETUP_TIME in wanted:
        found[Criterion.SETUP_TIME] = sum(
            setup * literal for arcs in sm.arcs.values() for _, _, literal, setup in arcs
        )
    sm.expressions = {c.value: e for c, e in found.items()}
    return found


def combined(
    objective: Objective, expressions: dict[Criterion, cp_model.LinearExprT], stage: int = 0
) -> cp_model.LinearExprT:
    """The expression to minimise: the weighted sum, or the ``stage``-th lexicographic criterion."""
    if objective.lexicographic:
        return expressions[objective.terms[stage][0]]
    return sum(weight * expressions[c] for c, weight in objective.terms if weight > 0)
