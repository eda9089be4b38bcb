"""Solvers: CP-SAT (:mod:`.cpsat`) and the dispatching heuristic (:mod:`.dispatch`)."""
