"""Solving with CP-SAT: a dispatching start, the full model, and a large-neighbourhood search.

With two or more workers the full model runs in one thread (``workers − 1`` CP-SAT workers: it
finds solutions and proves the lower bound) while this module's own large-neighbourhood search
(LNS) runs in another: it takes the best schedule so far, frees a neighbourhood of operations
(:mod:`.neighbourhoods`), keeps every other operation's machine and machine order, and re-solves
that much smaller model for a fraction of a second with "no worse than now" as a constraint.
The neighbourhood size adapts: it grows when sub-models are solved to optimality and shrinks when
they time out. Everything any thread finds goes to one incumbent; the search stops at the time
limit or as soon as the incumbent meets the proven bound.

A lexicographic objective is solved criterion by criterion, each stage capping the ones before.
"""

from __future__ import annotations

import itertools
import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ortools.sat.python import cp_model

from microfab.plan.check import check_schedule
from microfab.plan.problem import Criterion, OperationRef, Problem
from microfab.plan.result import (
    Assignment,
    Result,
    Schedule,
    Status,
    criteria,
    rank,
    scalar,
)
from microfab.plan.solvers import dispatch
from microfab.plan.solvers.cpsat import constraints, neighbourhoods

# KEEP_SIGINT: every CP-SAT solve here runs with ``catch_sigint_signal`` off. With it on, CP-SAT
# installs its own C handler for SIGINT while it solves and afterwards sets SIGINT to the default
# action, not back to Python's handler: the next Ctrl-C then ends the whole process on the spot,
# with no KeyboardInterrupt, no clean-up and no message (a demo lost its totals that way). Ctrl-C
# during a solve reaches Python when the solve returns (within its time limit).
from microfab.plan.solvers.cpsat.objective import add_criteria, combined
from microfab.plan.solvers.cpsat.variables import Restriction, SchedulingModel, add_variables


@dataclass(frozen=True)
class Settings:
    """How to solve. Every switch is here so that the benchmark can measure what each one buys."""

    time_limit: float = 10.0
    workers: int = 2
    seed: int = 0
    #: start from the dispatching heuristic (its schedule is the first incumbent and the hint)
    dispatch_start: bool = True
    #: add the redundant cumulative constraint
    redundant: bool = True
    #: minimising makespan only: the best schedule so far bounds every time (a smaller model).
    #: Off: on the median of 3 seeds it did not help (docs/benchmarks.md, the ablation)
    tight_horizon: bool = False
    #: run our large-neighbourhood search beside the full model
    lns: bool = True
    #: share of the time the full model runs beside the neighbourhood search (then its threads
    #: join the neighbourhood search); the full model proves bounds, the search finds schedules
    full_share: float = 0.3
    #: seconds per LNS sub-model (at most)
    lns_step_s: float = 0.2
    #: extra CP-SAT parameters for the LNS sub-models
    lns_parameters: tuple[tuple[str, Any], ...] = ()
    #: LNS objective: also minimise the sum of end times (a gradient on plateaus of the makespan)
    lns_sum_of_ends: bool = True
    #: LNS: every other sub-model must improve the objective strictly
    lns_strict: bool = True
    #: LNS: every fourth sub-model may return another schedule of the same objective (a random
    #: walk along plateaus of the makespan)
    lns_walk: bool = True
    #: LNS: choose the next neighbourhood kind by how often each has improved the incumbent
    #: lately (a bandit over ``neighbourhoods.KINDS``), rather than in turn
    lns_adaptive: bool = True
    #: CP-SAT parameters for the full model: no LP relaxation (measured: it proves ft10 optimal
    #: in seconds instead of minutes, and scheduling bounds come from the constraints anyway)
    parameters: tuple[tuple[str, Any], ...] = (("linearization_level", 0),)
    log: bool = False


def build(
    problem: Problem,
    *,
    restriction: Restriction | None = None,
    redundant: bool = True,
    horizon: int | None = None,
) -> tuple[SchedulingModel, dict[Criterion, cp_model.LinearExprT]]:
    """The CP-SAT model of ``problem``: variables, constraints and criterion expressions."""
    model = cp_model.CpModel()
    sm = add_variables(problem, model, horizon or problem.horizon(), restriction)
    constraints.add_precedences(sm)
    constraints.add_machines(sm)
    constraints.add_setups(sm)
    constraints.add_restriction(sm, restriction)
    if redundant:
        constraints.add_redundant(sm)
    return sm, add_criteria(sm)


def extract(sm: SchedulingModel, value: Callable[[Any], int]) -> Schedule:
    """The schedule in a solution (``value`` reads a variable's value in it)."""
    placed = []
    for ref, v in sm.ops.items():
        machine = next(m for m, lit in v.presence.items() if lit is True or value(lit))
        placed.append(Assignment(ref.job, ref.op, machine, value(v.start), value(v.end)))
    return Schedule(tuple(placed))


def add_hint(sm: SchedulingModel, schedule: Schedule) -> None:
    """Hint every start, end, machine choice and circuit arc of ``schedule``."""
    model = sm.model
    index = schedule.index()
    for ref, v in sm.ops.items():
        a = index.get((ref.job, ref.op))
        if a is None or v.fixed:
            continue
        model.add_hint(v.start, a.start)
        model.add_hint(v.end, a.end)
        if not isinstance(v.duration, int):
            model.add_hint(v.duration, a.end - a.start)
        for machine, literal in v.presence.items():
            if not isinstance(literal, bool):
                model.add_hint(literal, machine == a.machine)
    if sm.arcs:
        follows: set[tuple[OperationRef | None, OperationRef | None]] = set()
        for lane in schedule.by_machine().values():
            refs: list[OperationRef | None] = [OperationRef(a.job, a.op) for a in lane]
            chain = [None, *refs, None]
            follows |= set(itertools.pairwise(chain))
        for arcs in sm.arcs.values():
            for before, after, literal, _ in arcs:
                model.add_hint(literal, (before, after) in follows)


class _Incumbent:
    """The best schedule found by any thread (thread-safe)."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        self.lock = threading.Lock()
        self.schedule: Schedule | None = None
        self.rank: tuple[int, ...] | None = None
        self.values: dict[Criterion, int] = {}
        self.source = ""
        self.improvements: list[tuple[float, int, str]] = []
        self.began = time.perf_counter()

    def offer(self, schedule: Schedule, source: str, *, lateral: bool = False) -> bool:
        """Keep ``schedule`` if it is better: by the objective, then by the sum of end times
        (a tie-break that rewards left-shifted schedules and guides the neighbourhood search).
        ``lateral``: also keep it when its objective is merely equal (a step along a plateau)."""
        values = criteria(self.problem, schedule)
        r = (*rank(self.problem.objective, values), sum(a.end for a in schedule.assignments))
        with self.lock:
            if self.rank is not None and r >= self.rank:
                if not (lateral and r[:-1] == self.rank[:-1] and schedule != self.schedule):
                    return False
                self.schedule, self.rank, self.values = schedule, r, values
                return False
            self.schedule, self.rank, self.values, self.source = schedule, r, values, source
            self.improvements.append(
                (time.perf_counter() - self.began, scalar(self.problem.objective, values), source)
            )
            return True

    def get(self) -> tuple[Schedule | None, dict[Criterion, int]]:
        with self.lock:
            return self.schedule, dict(self.values)


class _Collector(cp_model.CpSolverSolutionCallback):
    def __init__(
        self,
        sm: SchedulingModel,
        incumbent: _Incumbent,
        source: str,
        on_bound: Callable[[float], None],
    ) -> None:
        super().__init__()
        self.sm = sm
        self.incumbent = incumbent
        self.source = source
        self.on_bound = on_bound

    def on_solution_callback(self) -> None:
        self.incumbent.offer(extract(self.sm, self.value), self.source)
        self.on_bound(self.best_objective_bound)


@dataclass
class _Stage:
    optimal: bool = False
    infeasible: bool = False
    bound: int | None = None
    lns_calls: int = 0
    lns_improvements: int = 0


def _apply_caps(
    sm: SchedulingModel,
    expressions: dict[Criterion, cp_model.LinearExprT],
    caps: dict[Criterion, int],
) -> None:
    for criterion, cap in caps.items():
        sm.model.add(expressions[criterion] <= cap)


def _stage_value(problem: Problem, values: dict[Criterion, int], stage: int) -> int:
    objective = problem.objective
    if objective.lexicographic:
        return values[objective.terms[stage][0]]
    return scalar(objective, values)


def _makespan_only(problem: Problem) -> bool:
    return problem.objective.criteria == (Criterion.MAKESPAN,)


class _Search:
    """One stage: the full model in one thread, neighbourhood-search threads beside it."""

    def __init__(
        self,
        problem: Problem,
        settings: Settings,
        stage: int,
        caps: dict[Criterion, int],
        incumbent: _Incumbent,
        deadline: float,
    ) -> None:
        self.problem, self.settings, self.stage = problem, settings, stage
        self.caps, self.incumbent, self.deadline = caps, incumbent, deadline
        self.stop = threading.Event()
        self.bound: int | None = None
        self.full_status: Any = None
        self.lock = threading.Lock()
        self.calls = self.better = 0
        self.statuses: dict[str, int] = {}

    # -------------------------------------------------------------- the full model

    def full(self, time_limit: float, workers: int, hint: Schedule | None) -> None:
        problem, settings = self.problem, self.settings
        current, _ = self.incumbent.get()
        horizon = None
        if settings.tight_horizon and current is not None and _makespan_only(problem):
            horizon = current.makespan
        sm, expressions = build(problem, redundant=settings.redundant, horizon=horizon)
        _apply_caps(sm, expressions, self.caps)
        sm.model.minimize(combined(problem.objective, expressions, self.stage))
        start_from = current if current is not None else hint
        if start_from is not None:
            add_hint(sm, start_from)
        solver = cp_model.CpSolver()
        params = solver.parameters
        params.num_workers = workers
        params.catch_sigint_signal = False  # KEEP_SIGINT above
        params.random_seed = settings.seed
        params.log_search_progress = settings.log
        params.max_time_in_seconds = max(0.01, time_limit)
        for name, value in settings.parameters:
            setattr(params, name, value)
        collector = _Collector(sm, self.incumbent, "cp-sat", self._raise_bound)
        watcher = threading.Thread(target=self._watch, args=(solver,), daemon=True)
        watcher.start()
        code = solver.solve(sm.model, collector)
        self.full_status = code
        if code in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            self._raise_bound(solver.best_objective_bound)
        if code in (cp_model.OPTIMAL, cp_model.INFEASIBLE):
            self.stop.set()
        self.full_done = True

    def _watch(self, solver: cp_model.CpSolver) -> None:
        """Stop the full model when the search is stopped (the bound is met elsewhere)."""
        while self.full_status is None:
            if self.stop.wait(0.05):
                solver.stop_search()
                return

    def _raise_bound(self, value: float) -> None:
        bound = math.ceil(value - 1e-6)
        with self.lock:
            if self.bound is None or bound > self.bound:
                self.bound = bound

    def bound_met(self) -> bool:
        _, values = self.incumbent.get()
        with self.lock:
            bound = self.bound
        return (
            bool(values)
            and bound is not None
            and (_stage_value(self.problem, values, self.stage) <= bound)
        )

    # -------------------------------------------------------------- neighbourhood search

    def lns(self, seed: int) -> None:
        problem, settings = self.problem, self.settings
        rng = random.Random(seed)
        movable = sum(1 for _, op in problem.operations() if op.fixed is None)
        size = max(4.0, min(30.0, 0.2 * movable))
        calls = 0
        chooser = neighbourhoods.Chooser(rng)
        while not self.stop.is_set():
            left = self.deadline - time.perf_counter()
            if left < 0.05:
                break
            if self.bound_met():
                self.stop.set()
                break
            current, values = self.incumbent.get()
            if current is None:
                break
            if settings.lns_adaptive:
                kind = chooser.pick()
            else:
                kind = neighbourhoods.KINDS[(calls + seed) % len(neighbourhoods.KINDS)]
            calls += 1
            relaxed = neighbourhoods.choose(kind, problem, current, rng, int(size))
            restriction = neighbourhoods.restriction(problem, current, relaxed)
            horizon = current.makespan + 1 if _makespan_only(problem) else None
            sm, expressions = build(
                problem, restriction=restriction, redundant=False, horizon=horizon
            )
            _apply_caps(sm, expressions, self.caps)
            target = combined(problem.objective, expressions, self.stage)
            value = _stage_value(problem, values, self.stage)
            # Every other call asks for a strictly better objective (a small neighbourhood is
            # then quickly proved unable to, and grows); the others accept equal objectives
            # with a smaller sum of end times, which moves the search along plateaus.
            strict = settings.lns_strict and calls % 2 == 0
            walk = settings.lns_walk and not strict and calls % 4 == 1
            sm.model.add(target <= value - 1 if strict else target <= value)
            if settings.lns_sum_of_ends and not strict:
                ends = [v.end for v in sm.ops.values() if not v.fixed]
                # a walk weighs the end times at random: another schedule of the same objective
                weights = [rng.randint(0, 2) if walk else 1 for _ in ends]
                scale = len(ends) * sm.horizon * 2 + 1
                sm.model.minimize(
                    cp_model.LinearExpr.weighted_sum([target, *ends], [scale, *weights])
                )
            else:
                sm.model.minimize(target)
            add_hint(sm, current)
            solver = cp_model.CpSolver()
            solver.parameters.num_workers = 1
            solver.parameters.catch_sigint_signal = False  # KEEP_SIGINT above
            solver.parameters.random_seed = rng.randrange(1 << 30)
            solver.parameters.max_time_in_seconds = min(settings.lns_step_s, left)
            for name, value in settings.lns_parameters:
                setattr(solver.parameters, name, value)
            code = solver.solve(sm.model)
            improved = False
            if code in (cp_model.OPTIMAL, cp_model.FEASIBLE):
                improved = self.incumbent.offer(
                    extract(sm, solver.value), f"lns-{kind}", lateral=walk
                )
            if settings.lns_adaptive:
                chooser.reward(kind, improved)
            with self.lock:
                self.calls += 1
                self.better += improved
                name = solver.status_name(code)
                self.statuses[name] = self.statuses.get(name, 0) + 1
            if code in (cp_model.OPTIMAL, cp_model.INFEASIBLE):
                size = min(float(movable), size * 1.15)
            else:
                size = max(4.0, size * 0.9)

    # -------------------------------------------------------------- the stage

    def run(self, hint: Schedule | None) -> _Stage:
        settings = self.settings
        self.full_done = False
        budget = self.deadline - time.perf_counter()
        use_lns = settings.lns and self.incumbent.schedule is not None
        if not use_lns:
            self.full(budget, settings.workers, hint)
        elif settings.workers == 1:
            self.full(budget * settings.full_share, 1, hint)
            if not self.stop.is_set():
                self.lns(settings.seed)
        else:
            full_workers = max(1, settings.workers // 2)
            lns_threads = max(1, settings.workers - full_workers)
            threads = [
                threading.Thread(target=self.lns, args=(settings.seed + 101 * i,))
                for i in range(lns_threads)
            ]
            for thread in threads:
                thread.start()
            self.full(budget * settings.full_share, full_workers, hint)
            # The full model's time is up: its threads join the neighbourhood search.
            more = [
                threading.Thread(target=self.lns, args=(settings.seed + 101 * i,))
                for i in range(lns_threads, lns_threads + full_workers)
            ]
            if not self.stop.is_set() and settings.workers > 1:
                for thread in more:
                    thread.start()
                threads += more
            for thread in threads:
                thread.join()
        self.stop.set()
        outcome = _Stage(
            optimal=self.full_status == cp_model.OPTIMAL or self.bound_met(),
            infeasible=self.full_status == cp_model.INFEASIBLE,
            bound=self.bound,
            lns_calls=self.calls,
            lns_improvements=self.better,
        )
        if settings.log and use_lns:
            print(f"lns: {self.calls} calls, {self.better} better, {self.statuses}")
        return outcome


def solve(
    problem: Problem,
    settings: Settings | None = None,
    *,
    hint: Schedule | None = None,
    start: Schedule | None = None,
) -> Result:
    """Solve ``problem``.

    ``hint``: a schedule to guide CP-SAT (a previous plan, say; it need not be feasible now).
    ``start``: a schedule to improve on; used as the first incumbent when the independent check
    (:mod:`microfab.plan.check`) finds it feasible.
    """
    settings = settings or Settings()
    began = time.perf_counter()
    deadline = began + settings.time_limit
    reasons = problem.infeasibility()
    if reasons:
        return Result(Status.INFEASIBLE, None, None, None, 0.0, "cp-sat", tuple(reasons))
    if problem.operation_count == 0:
        return Result(Status.OPTIMAL, Schedule(()), 0, 0, time.perf_counter() - began, "cp-sat")
    incumbent = _Incumbent(problem)
    if start is not None and not check_schedule(problem, start.assignments):
        incumbent.offer(start, "start")
    if settings.dispatch_start:
        first = dispatch.solve(problem, time_limit=min(0.3, 0.01 * settings.time_limit))
        # (checked: with operations fixed in the middle of a job the rules can miss a precedence)
        if first.schedule is not None and not check_schedule(problem, first.schedule.assignments):
            incumbent.offer(first.schedule, "dispatch")
    stages = len(problem.objective.terms) if problem.objective.lexicographic else 1
    caps: dict[Criterion, int] = {}
    optimal = True
    lower_bound: int | None = None
    details: list[_Stage] = []
    for stage in range(stages):
        now = time.perf_counter()
        stage_deadline = now + (deadline - now) / (stages - stage)
        outcome = _Search(problem, settings, stage, caps, incumbent, stage_deadline).run(hint)
        details.append(outcome)
        if stage == 0:
            lower_bound = outcome.bound
        schedule, values = incumbent.get()
        if outcome.infeasible and schedule is None:
            return Result(
                Status.INFEASIBLE,
                None,
                None,
                None,
                time.perf_counter() - began,
                "cp-sat",
                ("CP-SAT proved that no schedule meets every constraint",),
            )
        if schedule is None:
            break
        optimal = optimal and outcome.optimal
        if problem.objective.lexicographic:
            criterion = problem.objective.terms[stage][0]
            caps[criterion] = values[criterion]
    schedule, values = incumbent.get()
    runtime = time.perf_counter() - began
    if schedule is None:
        return Result(Status.UNKNOWN, None, None, lower_bound, runtime, "cp-sat")
    objective = scalar(problem.objective, values)
    status = Status.OPTIMAL if optimal else Status.FEASIBLE
    if status is Status.OPTIMAL and (lower_bound is None or lower_bound < objective):
        lower_bound = objective
    stats = {
        "found_by": incumbent.source,
        "improvements": [(round(t, 2), v, s) for t, v, s in incumbent.improvements],
        "lns_calls": sum(d.lns_calls for d in details),
        "lns_improvements": sum(d.lns_improvements for d in details),
    }
    return Result(
        status, schedule, objective, lower_bound, runtime, "cp-sat", values=values, stats=stats
    )
