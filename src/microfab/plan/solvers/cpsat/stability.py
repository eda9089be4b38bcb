"""CP-SAT for re-planning: the fewest changes to an earlier plan at no worse an objective."""

from __future__ import annotations

from ortools.sat.python import cp_model

from microfab.plan.problem import Criterion, Problem
from microfab.plan.result import Schedule, scalar
from microfab.plan.solvers.cpsat.objective import combined
from microfab.plan.solvers.cpsat.search import add_hint, build, extract


def fewest_changes(
    problem: Problem,
    previous: Schedule,
    start: Schedule,
    values: dict[Criterion, int],
    *,
    time_limit: float,
    workers: int = 2,
    seed: int = 0,
    machine_move: int | None = None,
) -> Schedule | None:
    """A schedule as close to ``previous`` as possible whose objective is no worse than
    ``values`` (those of ``start``, a feasible schedule used as the hint).

    Changes: each operation on another machine than before counts ``machine_move`` time units
    (default: the mean processing time), plus the total shift of start times. None when no
    schedule is found in ``time_limit``."""
    if time_limit <= 0.05:
        return None
    sm, expressions = build(problem, redundant=False)
    objective = problem.objective
    if objective.lexicographic:
        for criterion, _ in objective.terms:
            sm.model.add(expressions[criterion] <= values[criterion])
    else:
        sm.model.add(combined(objective, expressions) <= scalar(objective, values))
    if machine_move is None:
        durations = [m.duration for _, op in problem.operations() for m in op.modes]
        machine_move = max(1, sum(durations) // max(1, len(durations)))
    old = previous.index()
    terms: list[cp_model.LinearExprT] = []
    for ref, v in sm.ops.items():
        before = old.get((ref.job, ref.op))
        if before is None or v.fixed:
            continue
        shift = sm.model.new_int_var(0, sm.horizon, "")
        sm.model.add_abs_equality(shift, v.start - before.start)
        terms.append(shift)
        literal = v.presence.get(before.machine)
        if literal is None:
            terms.append(machine_move)  # cannot stay: its old machine is not eligible now
        elif not isinstance(literal, bool):
            terms.append(machine_move * (1 - literal))
    sm.model.minimize(cp_model.LinearExpr.sum(terms))
    add_hint(sm, start)
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = workers
    solver.parameters.catch_sigint_signal = False  # KEEP_SIGINT in search.py
    solver.parameters.random_seed = seed
    solver.parameters.max_time_in_seconds = time_limit
    code = solver.solve(sm.model)
    if code not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    return extract(sm, solver.value)
