"""Finite-capacity planning: problem data, solvers, the independent check, re-planning.

- :mod:`.problem` — the problem as validated data (:class:`~.problem.Problem`);
- :mod:`.formats` — benchmark instance files (jssp, fjs, fjs-sdst) → problems;
- :mod:`.result` — our :class:`~.result.Schedule` and :class:`~.result.Result`, and their JSON;
- :mod:`.solvers` — :mod:`.solvers.cpsat` (OR-Tools CP-SAT) and :mod:`.solvers.dispatch` (rules);
- :mod:`.check` — the feasibility check, independent of the solvers;
- :mod:`.reschedule` — repair a plan after a breakdown, a rush order or a late operation;
- :mod:`.factory` — the live factory's open orders → a problem, and the plan back in its terms;
- :mod:`.live` — plan the open orders; :mod:`.plan_file` — the app's plan file and its re-plans.

Importing this package does not import OR-Tools; the solver modules do.
"""

from microfab.plan.check import Violation, check_schedule
from microfab.plan.formats import parse_instance, read_instance
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
from microfab.plan.result import Assignment, Result, Schedule, Status

__all__ = [
    "Assignment",
    "Criterion",
    "Fixed",
    "Job",
    "Machine",
    "Mode",
    "Objective",
    "Operation",
    "Problem",
    "Result",
    "Schedule",
    "Status",
    "Violation",
    "check_schedule",
    "parse_instance",
    "read_instance",
]
