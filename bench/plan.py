"""Benchmark: the CP-SAT planner on classic instances, against two baselines, and re-planning.

Run with ``microfab bench plan`` (or ``python bench/plan.py [--time-limit 60] [--quick]`` until
the ``bench`` command passes ``--time-limit``/``--quick``). Instances come from
``bench/data/benchmarks`` (sources and licences in ``bench/data/README.md``), or from another
folder of the same layout named by ``$MICROFAB_BENCHMARKS``:
Brandimarte Mk01–Mk10 (flexible job shop), ft10, la16–la20 and ta01–ta05 (job shop). Gaps are
against the best-known upper bound of that folder's ``bounds.csv``.

In the same session, with the same workers and time limit per instance:

- **ours**: :func:`microfab.plan.solvers.cpsat.solve` with its defaults;
- **plain CP-SAT**: the textbook model (one optional interval per eligible machine sharing the
  operation's start and end, exactly one chosen, no overlap per machine, routing precedences,
  makespan = max of job ends), default parameters, no hint — written here, apart from ours;
- **dispatching**: the rules of :mod:`microfab.plan.solvers.dispatch` alone (best of the four).

Every schedule is verified by the independent check (:mod:`microfab.plan.check`).

**Re-planning** on the 100-operation instances (Mk07, ft10, la16–la20): our plan, then at a
third of its makespan the busiest machine breaks down for a fifth of the makespan; the plan is
repaired (:func:`microfab.plan.reschedule.reschedule`, 2 s, started operations fixed) and, for
comparison, the same disrupted problem is solved afresh with the full time limit. ``repeat``
repairs per instance (the median time is reported). Solver runs are single runs (CP-SAT is not
deterministic with several workers).

``--quick``: a CI-size smoke (four small instances at 3 s, one re-planning).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

NAME = "plan"
TITLE = "Planning: CP-SAT planner vs plain CP-SAT and dispatching; re-planning"

FJSP = [f"Mk{i:02d}" for i in range(1, 11)]
JSSP = ["ft10", "la16", "la17", "la18", "la19", "la20", "ta01", "ta02", "ta03", "ta04", "ta05"]
QUICK = ["Mk01", "Mk04", "ft06", "la16"]
REPLAN = ["Mk07", "ft10", "la16", "la17", "la18", "la19", "la20"]
QUICK_REPLAN = ["la16"]


def benchmarks_folder() -> Path:
    given = os.environ.get("MICROFAB_BENCHMARKS")
    if given:
        return Path(given)
    return Path(__file__).resolve().parent / "data" / "benchmarks"


def _bounds(folder: Path) -> dict[str, tuple[int, int, str]]:
    found: dict[str, tuple[int, int, str]] = {}
    with (folder / "fjsp" / "bounds.csv").open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            found[row["instance"]] = (int(row["lb"]), int(row["ub"]), row["file"])
    with (folder / "jssp" / "bounds.csv").open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            found[row["instance"]] = (
                int(row["jsplib2026_lb"]),
                int(row["jsplib2026_ub"]),
                row["file"],
            )
    return found


def plain_cpsat(problem: Any, time_limit: float, workers: int, seed: int = 0) -> dict[str, Any]:
    """The textbook CP-SAT model with default parameters and no hint (the baseline)."""
    from ortools.sat.python import cp_model

    model = cp_model.CpModel()
    horizon = sum(max(m.duration for m in op.modes) for _, op in problem.operations())
    per_machine: list[list[Any]] = [[] for _ in problem.machines]
    chosen: dict[tuple[int, int], list[tuple[int, Any]]] = {}
    starts: dict[tuple[int, int], Any] = {}
    ends: dict[tuple[int, int], Any] = {}
    job_ends = []
    for j, job in enumerate(problem.jobs):
        previous = None
        for k, op in enumerate(job.operations):
            start = model.new_int_var(0, horizon, f"s{j}_{k}")
            end = model.new_int_var(0, horizon, f"e{j}_{k}")
            literals = []
            for mode in op.modes:
                literal = model.new_bool_var(f"x{j}_{k}_{mode.machine}")
                interval = model.new_optional_interval_var(start, mode.duration, end, literal, "")
                per_machine[mode.machine].append(interval)
                literals.append((mode.machine, literal))
            model.add_exactly_one(lit for _, lit in literals)
            if previous is not None:
                model.add(start >= previous)
            previous = end
            chosen[(j, k)], starts[(j, k)], ends[(j, k)] = literals, start, end
        job_ends.append(previous)
    for intervals in per_machine:
        model.add_no_overlap(intervals)
    makespan = model.new_int_var(0, horizon, "makespan")
    model.add_max_equality(makespan, job_ends)
    model.minimize(makespan)
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = time_limit
    solver.parameters.num_workers = workers
    solver.parameters.random_seed = seed
    began = time.perf_counter()
    code = solver.solve(model)
    runtime = time.perf_counter() - began
    if code not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return {"makespan": None, "status": "unknown", "runtime_s": runtime, "assignments": []}
    from microfab.plan.result import Assignment

    assignments = [
        Assignment(
            j,
            k,
            next(m for m, lit in chosen[(j, k)] if solver.boolean_value(lit)),
            solver.value(starts[(j, k)]),
            solver.value(ends[(j, k)]),
        )
        for (j, k) in starts
    ]
    return {
        "makespan": int(solver.objective_value),
        "lower_bound": int(solver.best_objective_bound),
        "status": "optimal" if code == cp_model.OPTIMAL else "feasible",
        "runtime_s": runtime,
        "assignments": assignments,
    }


def _gap(value: int | None, best: int) -> float | None:
    return None if value is None else round(100.0 * (value - best) / best, 2)


def _seeded(solve: Any, seeds: int, proved: Any) -> list[Any]:
    """Runs with seeds 0, 1, …: ``seeds`` of them, or fewer when one proves its schedule
    optimal (every other seed would reach the same makespan, only in another time)."""
    runs = []
    for seed in range(seeds):
        runs.append(solve(seed))
        if proved(runs[-1]):
            break
    return runs


def _median_run(runs: list[Any], makespan: Any) -> Any:
    """The run of median makespan (the lower middle one of an even count)."""
    ordered = sorted(runs, key=makespan)
    return ordered[(len(ordered) - 1) // 2]


def _solve_instance(
    name: str,
    folder: Path,
    bounds: dict[str, tuple[int, int, str]],
    time_limit: float,
    workers: int,
    seeds: int = 1,
) -> tuple[dict[str, Any], Any, Any]:
    from microfab.plan.check import check_schedule
    from microfab.plan.formats import read_instance
    from microfab.plan.solvers import cpsat, dispatch

    lb, ub, file = bounds[name]
    problem = read_instance(folder / file)
    ours_runs = _seeded(
        lambda seed: cpsat.solve(
            problem, cpsat.Settings(time_limit=time_limit, workers=workers, seed=seed)
        ),
        seeds,
        lambda r: r.status.value == "optimal",
    )
    plain_runs = _seeded(
        lambda seed: plain_cpsat(problem, time_limit, workers, seed),
        seeds,
        lambda r: r["status"] == "optimal",
    )
    ours = _median_run(ours_runs, lambda r: r.makespan)
    plain = _median_run(plain_runs, lambda r: r["makespan"] or 0)
    assert ours.schedule is not None
    began = time.perf_counter()
    rules = [dispatch.list_schedule(problem, rule) for rule in dispatch.RULES]
    heuristic = min((s for s in rules if s is not None), key=lambda s: s.makespan)
    dispatch_s = time.perf_counter() - began
    violations = (
        len(check_schedule(problem, ours.schedule.assignments))
        + len(check_schedule(problem, plain["assignments"]))
        + len(check_schedule(problem, heuristic.assignments))
    )
    row = {
        "instance": name,
        "size": f"{len(problem.jobs)}×{len(problem.machines)}",
        "operations": problem.operation_count,
        "best_lb": lb,
        "best_ub": ub,
        "ours": ours.makespan,
        "ours_runs": [r.makespan for r in ours_runs],
        "ours_status": "optimal"
        if any(r.status.value == "optimal" for r in ours_runs)
        else ours.status.value,
        "ours_lb": ours.lower_bound,
        "ours_s": round(statistics.median(r.runtime_s for r in ours_runs), 1),
        "ours_found_by": ours.stats.get("found_by"),
        "plain": plain["makespan"],
        "plain_runs": [r["makespan"] for r in plain_runs],
        "plain_status": plain["status"],
        "plain_s": round(statistics.median(r["runtime_s"] for r in plain_runs), 1),
        "dispatch": heuristic.makespan,
        "dispatch_s": round(dispatch_s, 3),
        "gap": _gap(ours.makespan, ub),
        "plain_gap": _gap(plain["makespan"], ub),
        "dispatch_gap": _gap(heuristic.makespan, ub),
        "violations": violations,
    }
    return row, problem, ours.schedule


def _replan(
    name: str, problem: Any, plan: Any, time_limit: float, workers: int, repeat: int
) -> dict[str, Any]:
    from microfab.plan.check import check_schedule
    from microfab.plan.reschedule import block_machine, freeze, reschedule
    from microfab.plan.solvers import cpsat

    now = plan.makespan // 3
    lanes = plan.by_machine()
    busiest = max(lanes, key=lambda m: sum(a.end - a.start for a in lanes[m]))
    broken = block_machine(problem, busiest, now, now + plan.makespan // 5)
    frozen = freeze(broken, plan, now)
    times, results = [], []
    for seed in range(repeat):
        result = reschedule(broken, plan, now=now, time_limit=2.0, workers=workers, seed=seed)
        assert result.schedule is not None
        assert not check_schedule(frozen, result.schedule.assignments)
        times.append(result.runtime_s)
        results.append(result)
    best = min(results, key=lambda r: r.makespan or 0)
    full = cpsat.solve(frozen, cpsat.Settings(time_limit=time_limit, workers=workers))
    assert full.schedule is not None and not check_schedule(frozen, full.schedule.assignments)
    changes = best.stats["changes"]
    kept = sum(1 for a in plan.assignments if a.start < now)
    return {
        "instance": name,
        "operations": problem.operation_count,
        "plan": plan.makespan,
        "now": now,
        "machine": busiest,
        "down": plan.makespan // 5,
        "started": kept,
        "repair_s": round(statistics.median(times), 2),
        "repair_max_s": round(max(times), 2),
        "repair": best.makespan,
        "repairs": [r.makespan for r in results],
        "full": full.makespan,
        "full_s": round(full.runtime_s, 1),
        "ratio": round((best.makespan or 0) / (full.makespan or 1), 4),
        "moved": changes["moved"],
        "shifted": changes["shifted"],
    }


def run(
    repeat: int = 3,
    time_limit: float = 60.0,
    quick: bool = False,
    workers: int = 2,
    seeds: int = 3,
    replan: bool = True,
    instances: list[str] | None = None,
) -> dict[str, Any]:
    folder = benchmarks_folder()
    if not folder.is_dir():
        raise SystemExit(f"no benchmark folder at {folder}; set MICROFAB_BENCHMARKS")
    bounds = _bounds(folder)
    if quick:
        time_limit = min(time_limit, 3.0)
    names = QUICK if quick else instances or FJSP + JSSP
    replan_names = (QUICK_REPLAN if quick else REPLAN) if replan else []
    rows, plans = [], {}
    for name in names:
        row, problem, schedule = _solve_instance(
            name, folder, bounds, time_limit, workers, 1 if quick else seeds
        )
        rows.append(row)
        plans[name] = (problem, schedule)
        print(
            f"{name}: ours {row['ours']} ({row['ours_status']}, {row['ours_s']} s), plain "
            f"{row['plain']}, dispatch {row['dispatch']}, best known {row['best_ub']}",
            file=sys.stderr,
            flush=True,
        )
    replans = []
    for name in replan_names:
        if name not in plans:
            row, problem, schedule = _solve_instance(name, folder, bounds, time_limit, workers)
            plans[name] = (problem, schedule)
        problem, schedule = plans[name]
        replans.append(_replan(name, problem, schedule, time_limit, workers, max(1, repeat)))
        print(f"re-plan {name}: {replans[-1]}", file=sys.stderr, flush=True)
    mk = [r for r in rows if r["instance"].startswith("Mk")]

    def mean(key: str, subset: list[dict[str, Any]]) -> float | None:
        values = [r[key] for r in subset if r[key] is not None]
        return round(statistics.fmean(values), 2) if values and len(values) == len(subset) else None

    return {
        "time_limit_s": time_limit,
        "workers": workers,
        "quick": quick,
        "repeat": repeat,
        "seeds": 1 if quick else seeds,
        "rows": rows,
        "replans": replans,
        "mean_gap_mk": mean("gap", mk) if mk else None,
        "mean_plain_gap_mk": mean("plain_gap", mk) if mk else None,
        "mean_dispatch_gap_mk": mean("dispatch_gap", mk) if mk else None,
        "mean_gap_all": mean("gap", rows),
        "mean_plain_gap_all": mean("plain_gap", rows),
        "worse_than_plain": [
            r["instance"]
            for r in rows
            if r["plain"] is not None and r["ours"] is not None and r["ours"] > r["plain"]
        ],
        "violations": sum(r["violations"] for r in rows),
    }


HURINK = ("hurink_edata", "hurink_rdata")


def hurink(time_limit: float = 60.0, workers: int = 2) -> dict[str, Any]:
    """Our solver once on every Hurink edata and rdata instance of the benchmarks folder (66
    each in the usual collection; ``$MICROFAB_BENCHMARKS`` names a folder that has them):
    makespan, gap to the best known upper bound, and the mean gap per set."""
    from microfab.plan.check import check_schedule
    from microfab.plan.formats import read_instance
    from microfab.plan.solvers import cpsat

    folder = benchmarks_folder()
    rows = []
    with (folder / "fjsp" / "bounds.csv").open(encoding="utf-8") as f:
        wanted = [row for row in csv.DictReader(f) if row["family"] in HURINK]
    for entry in wanted:
        if not (folder / entry["file"]).is_file():
            continue
        problem = read_instance(folder / entry["file"])
        found = cpsat.solve(problem, cpsat.Settings(time_limit=time_limit, workers=workers))
        assert found.schedule is not None
        ub = int(entry["ub"])
        rows.append(
            {
                "instance": entry["instance"],
                "family": entry["family"],
                "ub": ub,
                "ours": found.makespan,
                "status": found.status.value,
                "s": round(found.runtime_s, 1),
                "gap": _gap(found.makespan, ub),
                "violations": len(check_schedule(problem, found.schedule.assignments)),
            }
        )
        print(f"{entry['instance']}: {found.makespan} vs {ub}", file=sys.stderr, flush=True)
    families = {}
    for family in HURINK:
        mine = [r for r in rows if r["family"] == family]
        if mine:
            families[family] = {
                "instances": len(mine),
                "mean_gap": round(statistics.fmean(r["gap"] for r in mine), 2),
                "optimal": sum(r["status"] == "optimal" for r in mine),
                "at_best_known": sum(r["gap"] == 0 for r in mine),
                "worst": max(mine, key=lambda r: r["gap"]),
                "seconds": round(sum(r["s"] for r in mine)),
            }
    return {
        "time_limit_s": time_limit,
        "workers": workers,
        "rows": rows,
        "families": families,
        "violations": sum(r["violations"] for r in rows),
    }


def hurink_markdown(result: dict[str, Any]) -> str:
    lines = [
        f"Our solver (defaults) once on each Hurink instance, time limit "
        f"{result['time_limit_s']:g} s, {result['workers']} workers; gap to the best known upper "
        f"bound (JSPLib). Every schedule passed `plan check` ({result['violations']} violations).",
        "",
        "| set | instances | mean gap % | proved optimal | at best known | worst (gap %) | "
        "solver time s |",
        "|---|---:|---:|---:|---:|---|---:|",
    ]
    for family, f in result["families"].items():
        worst = f["worst"]
        lines.append(
            f"| {family.removeprefix('hurink_')} | {f['instances']} | **{f['mean_gap']}** | "
            f"{f['optimal']} | {f['at_best_known']} | {worst['instance']} ({worst['gap']}) | "
            f"{f['seconds']} |"
        )
    return "\n".join(lines)


ABLATION_INSTANCES = ["Mk02", "Mk06", "Mk07", "Mk10", "ft10"]
ABLATION = [
    ("ours (all defaults)", {}),
    ("no dispatching start (no first schedule, no hint)", {"dispatch_start": False}),
    ("no redundant cumulative", {"redundant": False}),
    ("no tight horizon", {"tight_horizon": False}),
    ("tight horizon", {"tight_horizon": True}),
    ("CP-SAT default parameters (LP relaxation on)", {"parameters": ()}),
    ("no LNS: the full model on every worker", {"lns": False}),
    ("LNS without the sum-of-ends tie-break", {"lns_sum_of_ends": False}),
    ("LNS without strict-improvement steps", {"lns_strict": False}),
    ("LNS without plateau walks", {"lns_walk": False}),
    ("LNS only (no full model)", {"full_share": 0.0}),
    ("LNS neighbourhoods in turn, not by recent success", {"lns_adaptive": False}),
]


def ablation(
    time_limit: float = 30.0,
    workers: int = 2,
    seeds: int = 3,
    variants: list[str] | None = None,
    raw: Path | None = None,
) -> dict[str, Any]:
    """Each technique switched off in turn, on a few hard instances: median and spread of
    ``seeds`` runs per cell (seeds 0 … seeds−1). ``variants`` keeps only the rows whose label
    contains one of the given strings; ``raw`` appends each run to that JSON-lines file as it ends.
    """
    from microfab.plan.formats import read_instance
    from microfab.plan.solvers import cpsat

    folder = benchmarks_folder()
    bounds = _bounds(folder)
    problems = {name: read_instance(folder / bounds[name][2]) for name in ABLATION_INSTANCES}
    chosen = [
        (label, change)
        for label, change in ABLATION
        if not variants or any(v in label for v in variants)
    ]
    rows = []
    for label, change in chosen:
        runs: dict[str, list[int]] = {}
        for name, problem in problems.items():
            found = []
            for seed in range(seeds):
                settings = cpsat.Settings(
                    time_limit=time_limit, workers=workers, seed=seed, **change
                )
                makespan = cpsat.solve(problem, settings).makespan
                if makespan is not None:
                    found.append(makespan)
                if raw is not None:
                    with raw.open("a", encoding="utf-8") as f:
                        record_ = {"variant": label, "instance": name, "seed": seed}
                        f.write(json.dumps(record_ | {"makespan": makespan}) + "\n")
            runs[name] = found
            print(f"{label} {name}: {found}", file=sys.stderr, flush=True)
        rows.append(_ablation_row(label, runs, bounds))
    return {"time_limit_s": time_limit, "workers": workers, "seeds": seeds, "rows": rows}


def ablation_from_raw(raw: Path, time_limit: float, workers: int) -> dict[str, Any]:
    """The ablation table from the runs a ``--raw`` file holds (several sessions' runs appended
    to one file make one table; rows in the order of :data:`ABLATION`, the latest run of each
    variant, instance and seed kept)."""
    bounds = _bounds(benchmarks_folder())
    found: dict[str, dict[str, dict[int, int]]] = {}
    for line in raw.read_text(encoding="utf-8").splitlines():
        run = json.loads(line)
        if run["makespan"] is not None:
            cell = found.setdefault(run["variant"], {}).setdefault(run["instance"], {})
            cell[run["seed"]] = run["makespan"]
    order = [label for label, _ in ABLATION if label in found]
    rows = [
        _ablation_row(
            label, {name: list(seeds.values()) for name, seeds in found[label].items()}, bounds
        )
        for label in order
    ]
    seeds = max((len(v) for row in rows for v in row["runs"].values()), default=0)
    return {"time_limit_s": time_limit, "workers": workers, "seeds": seeds, "rows": rows}


def _ablation_row(
    label: str, runs: dict[str, list[int]], bounds: dict[str, tuple[int, int, str]]
) -> dict[str, Any]:
    """One variant's row: per instance the median and range of its runs; the mean gap of the
    medians (the figure the defaults are chosen on) and of the worst runs."""
    medians = {n: statistics.median(v) for n, v in runs.items() if v}
    worst = {n: max(v) for n, v in runs.items() if v}

    def gap(values: dict[str, float]) -> float:
        return round(
            statistics.fmean(100.0 * (values[n] - bounds[n][1]) / bounds[n][1] for n in values), 2
        )

    return {
        "variant": label,
        "runs": runs,
        "median": medians,
        "mean_gap": gap(medians),
        "worst_gap": gap(worst),
    }


def ablation_markdown(result: dict[str, Any]) -> str:
    names = ABLATION_INSTANCES
    lines = [
        f"What each technique buys: makespans at {result['time_limit_s']:g} s, "
        f"{result['workers']} workers, {result['seeds']} runs per cell (seeds 0–"
        f"{result['seeds'] - 1}), each row with one switch of `cpsat.Settings` changed. A cell is "
        "the median, with the range of the runs in brackets when they differ; *mean gap* is the "
        "mean over the five instances of the median's gap to the best known, *worst* the same "
        "for each cell's worst run.",
        "",
        "| variant | " + " | ".join(names) + " | mean gap % | worst % |",
        "|---|" + "---:|" * (len(names) + 2),
    ]
    for row in result["rows"]:
        cells = []
        for n in names:
            values = row["runs"].get(n) or []
            if not values:
                cells.append("–")
                continue
            cell = f"{row['median'][n]:g}"
            if min(values) != max(values):
                cell += f" ({min(values)}–{max(values)})"
            cells.append(cell)
        lines.append(
            f"| {row['variant']} | {' | '.join(cells)} | {row['mean_gap']} | {row['worst_gap']} |"
        )
    return "\n".join(lines)


def _runs(seeds: int) -> str:
    if seeds == 1:
        return "once"
    return (
        f"with seeds 0–{seeds - 1} (the median shown, the range in brackets when the runs "
        "differ; an instance proved optimal is not run again)"
    )


def _spread(value: Any, runs: list[Any] | None) -> str:
    found = [v for v in runs or [] if v is not None]
    if len(found) > 1 and min(found) != max(found):
        return f"{_cell(value)} ({min(found)}–{max(found)})"
    return _cell(value)


def _cell(value: Any) -> str:
    return "–" if value is None else str(value)


def markdown(result: dict[str, Any]) -> str:
    r = result
    lines = [
        f"Every instance solved by each solver in one session, {_runs(r['seeds'])}: time "
        f"limit {r['time_limit_s']:g} s, {r['workers']} workers (CP-SAT threads) for ours and "
        "for the plain CP-SAT model; the dispatching rules take milliseconds. Gap = (makespan − "
        "best known upper bound) / best known, %. Every schedule passed `plan check` "
        f"({r['violations']} violations)."
        + (" **Quick smoke run** (`--quick`), not the benchmark." if r["quick"] else ""),
        "",
        "| instance | size | best known (LB/UB) | ours | status | gap % | plain CP-SAT | gap % "
        "| dispatching | gap % | ours s | plain s |",
        "|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in r["rows"]:
        known = (
            str(row["best_ub"])
            if row["best_lb"] == row["best_ub"]
            else f"{row['best_lb']}/{row['best_ub']}"
        )
        lines.append(
            f"| {row['instance']} | {row['size']} | {known} | "
            f"{_spread(row['ours'], row.get('ours_runs'))} | "
            f"{row['ours_status']} | {_cell(row['gap'])} | "
            f"{_spread(row['plain'], row.get('plain_runs'))} | "
            f"{_cell(row['plain_gap'])} | {row['dispatch']} | {_cell(row['dispatch_gap'])} | "
            f"{row['ours_s']} | {row['plain_s']} |"
        )
    lines.append("")
    if r["mean_gap_mk"] is not None:
        lines.append(
            f"Mean gap on Mk01–Mk10: ours **{r['mean_gap_mk']} %**, plain CP-SAT "
            f"{r['mean_plain_gap_mk']} %, dispatching {r['mean_dispatch_gap_mk']} %."
        )
    lines.append(
        f"Mean gap on all {len(r['rows'])}: ours {r['mean_gap_all']} %, plain CP-SAT "
        f"{r['mean_plain_gap_all']} %. Worse than plain CP-SAT on: "
        f"{', '.join(r['worse_than_plain']) or 'none'}."
    )
    return "\n".join(lines)


REPLAN_TITLE = "Planning: re-planning after a breakdown"


def sections(result: dict[str, Any]) -> list[tuple[str, str, str]]:
    """What ``microfab bench plan`` records: the solvers' table, and re-planning when it ran."""
    found = [(NAME, TITLE, markdown(result))]
    if result["replans"]:
        found.append(("plan_replan", REPLAN_TITLE, replan_markdown(result)))
    return found


def replan_markdown(result: dict[str, Any]) -> str:
    """The re-planning table (its own section: ``--no-replan`` leaves the last one standing)."""
    r = result
    lines: list[str] = []
    if r["replans"]:
        lines += [
            "Re-planning after a breakdown (at a third of the plan's makespan the busiest machine "
            "stops for a fifth of it; operations started by then stay fixed). Repair: "
            f"`reschedule`, 2 s budget, median time of {r['repeat']} runs (best makespan shown); "
            f"full: the same disrupted problem solved afresh in {r['time_limit_s']:g} s.",
            "",
            "| instance | ops | plan | started | repair s | repair | full re-solve | repair / "
            "full | moved | shifted |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for p in r["replans"]:
            lines.append(
                f"| {p['instance']} | {p['operations']} | {p['plan']} | {p['started']} | "
                f"{p['repair_s']} | {p['repair']} | {p['full']} | {p['ratio']} | {p['moved']} | "
                f"{p['shifted']} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-limit", type=float, default=60.0)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--ablation", action="store_true", help="measure each technique instead")
    parser.add_argument(
        "--seeds", type=int, default=3, help="runs per instance and solver (per cell of --ablation)"
    )
    parser.add_argument(
        "--variants", nargs="*", help="--ablation: only the rows whose label contains one of these"
    )
    parser.add_argument(
        "--raw", type=Path, help="--ablation: append every run to this JSON-lines file"
    )
    parser.add_argument(
        "--instances", nargs="*", help="only these instances (e.g. Mk01 … Mk10), not all 21"
    )
    parser.add_argument(
        "--no-replan", action="store_true", help="leave out re-planning (its section stays)"
    )
    parser.add_argument(
        "--from-raw",
        type=Path,
        help="--ablation: make the table from the runs of this --raw file instead of running",
    )
    parser.add_argument(
        "--hurink", action="store_true", help="our solver on the Hurink edata and rdata sets"
    )
    args = parser.parse_args()
    if args.hurink:
        found = hurink(time_limit=args.time_limit, workers=args.workers)
        text = hurink_markdown(found)
        print(text)
        if not args.no_write:
            from microfab.benchmarks import record

            target = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
            record(target, "plan_hurink", "Planning: the Hurink edata and rdata sets", text)
        return
    if args.ablation:
        if args.from_raw:
            found = ablation_from_raw(args.from_raw, args.time_limit, args.workers)
        else:
            found = ablation(
                time_limit=args.time_limit,
                workers=args.workers,
                seeds=args.seeds,
                variants=args.variants,
                raw=args.raw,
            )
        text = ablation_markdown(found)
        print(text)
        if not args.no_write:
            from microfab.benchmarks import record

            target = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
            record(target, "plan_ablation", "Planning: what each technique buys", text)
        return
    result = run(
        repeat=args.repeat,
        time_limit=args.time_limit,
        quick=args.quick,
        workers=args.workers,
        seeds=args.seeds,
        replan=not args.no_replan,
        instances=args.instances,
    )
    text = markdown(result)
    print(text)
    if not args.no_write:
        from microfab.benchmarks import record

        docs = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
        target = record(docs, NAME, TITLE, text)
        if result["replans"]:
            record(docs, "plan_replan", REPLAN_TITLE, replan_markdown(result))
        print(f"recorded in {target}", file=sys.stderr)


if __name__ == "__main__":
    main()
