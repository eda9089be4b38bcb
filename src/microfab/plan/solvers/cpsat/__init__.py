"""The OR-Tools CP-SAT adapter: variables, constraints and objective as separate small units
(:mod:`.variables`, :mod:`.constraints`, :mod:`.objective`), the search in :mod:`.search`.

No OR-Tools type leaves this package: :func:`solve` takes a :class:`~microfab.plan.problem.Problem`
and returns a :class:`~microfab.plan.result.Result`.
"""

from microfab.plan.solvers.cpsat.search import Settings, build, solve

__all__ = ["Settings", "build", "solve"]
