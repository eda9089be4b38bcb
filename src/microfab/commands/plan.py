"""``microfab plan …``: solve and check benchmark instances, plan the factory's open orders.

- ``plan solve INSTANCE``: solve a jssp / fjs / fjs-sdst file (one JSON object with ``--json``);
- ``plan check INSTANCE SCHEDULE.json``: the independent feasibility check (exit 1 on violations);
- ``plan schedule``: plan the open orders of the live factory, write the plan file;
- ``plan release``: the plan as one dispatch list per machine.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from microfab.commands.common import DbOption, JsonOption, err, out, print_json, stored_factory
from microfab.errors import InputError
from microfab.model.factory import Factory
from microfab.model.located_yaml import read_file
from microfab.plan.check import check_schedule, read_schedule
from microfab.plan.factory import (
    DEFAULT_OBJECTIVE,
    FactoryProblem,
    dispatch_lists,
)
from microfab.plan.formats import FORMATS, read_instance
from microfab.plan.live import down_windows, parse_duration
from microfab.plan.problem import Objective
from microfab.plan.result import Result

# The solvers (OR-Tools) are imported by the commands that use them: `microfab` starts faster.

plan_app = typer.Typer(
    help="Plan custom orders onto the machines: finite-capacity schedules with setups and "
    "calendars (CP-SAT), re-planning, dispatch lists, and benchmark instances.",
    no_args_is_help=True,
)

FormatOption = Annotated[
    str | None,
    typer.Option(
        "--format",
        help=f"Instance format: {', '.join(FORMATS)} \\[default: from the suffix: .fjs → fjs, "
        ".txt → jssp]",
        show_default=False,
    ),
]
TimeLimitOption = Annotated[
    float, typer.Option("--time-limit", min=0.1, help="Seconds the solver may take")
]
WorkersOption = Annotated[
    int, typer.Option("--workers", min=1, help="Solver threads (CPU cores to use)")
]
SeedOption = Annotated[int, typer.Option("--seed", help="Random seed of the search")]
ObjectiveOption = Annotated[
    str | None,
    typer.Option(
        "--objective",
        help="makespan, weighted_tardiness, setup_time: one, several joined by ',' (in turn) or "
        "a weighted sum like 10*weighted_tardiness+setup_time",
        show_default=False,
    ),
]
PlanFileOption = Annotated[
    Path, typer.Option("--out", help="Plan file to write (JSON)", show_default=True)
]


def _solve(problem: Any, solver: str, time_limit: float, workers: int, seed: int) -> Result:
    from microfab.plan.solvers import cpsat, dispatch

    if solver == "dispatch":
        return dispatch.solve(problem, time_limit=min(time_limit, 1.0), seed=seed)
    if solver == "cpsat":
        return cpsat.solve(
            problem, cpsat.Settings(time_limit=time_limit, workers=workers, seed=seed)
        )
    raise InputError(f"--solver: '{solver}' is not one of cpsat, dispatch")


@plan_app.command("solve")
def plan_solve(
    instance: Annotated[Path, typer.Argument(help="Instance file (jssp .txt, fjs .fjs)")],
    fmt: FormatOption = None,
    time_limit: TimeLimitOption = 10.0,
    workers: WorkersOption = 2,
    seed: SeedOption = 0,
    solver: Annotated[
        str, typer.Option("--solver", help="cpsat, or dispatch (the heuristic alone)")
    ] = "cpsat",
    objective: ObjectiveOption = None,
    as_json: JsonOption = False,
    save: Annotated[
        Path | None,
        typer.Option("--out", help="Also write the JSON result to this file", show_default=False),
    ] = None,
) -> None:
    """Solve a benchmark instance: makespan, status, lower bound and the schedule."""
    problem = read_instance(instance, fmt)
    if objective is not None:
        problem = dataclasses.replace(problem, objective=Objective.parse(objective))
    result = _solve(problem, solver, time_limit, workers, seed)
    document = result.to_json(problem)
    if save is not None:
        save.write_text(json.dumps(document) + "\n", encoding="utf-8")
    if as_json:
        print(json.dumps(document))
        return
    if result.schedule is None:
        out.print(f"{problem.name}: {result.status.value}")
        for reason in result.reasons:
            out.print(f"  {reason}")
        return
    bound = "" if result.lower_bound is None else f", lower bound {result.lower_bound}"
    out.print(
        f"{problem.name}: makespan {result.makespan} ({result.status.value}{bound}); "
        f"{problem.operation_count} operations on {len(problem.machines)} machines; "
        f"{result.runtime_s:.1f} s, {workers} worker(s)"
    )
    if objective is not None:
        out.print(f"objective {problem.objective.describe()}: {result.objective}")


@plan_app.command("check")
def plan_check(
    instance: Annotated[Path | None, typer.Argument(help="Instance file")] = None,
    schedule: Annotated[
        Path | None,
        typer.Argument(help="Schedule: the JSON of 'plan solve --json', or its assignments"),
    ] = None,
    fmt: FormatOption = None,
    plan: Annotated[
        Path | None,
        typer.Option(
            "--plan",
            help="Check a plan file of 'plan schedule' instead: against the stored maintenance "
            "windows and, with an item master, the materials (exit 1 on any violation)",
            show_default=False,
        ),
    ] = None,
    po_file: Annotated[
        Path | None,
        typer.Option(
            "--purchase-orders",
            help="With --plan: open purchase orders CSV (po,item,qty,unit,due)",
            show_default=False,
        ),
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Check a schedule against its instance; exit 0 when feasible, 1 with the violations.

    With --plan, check a factory plan file: no operation may overlap a scheduled maintenance
    window of its machine, and (when the factory has an item master) no step may start before
    its order's materials are at the line (as 'plan check-materials')."""
    if plan is not None:
        _check_plan_file(plan, db, as_json, po_file)
        return
    if instance is None or schedule is None:
        raise InputError("plan check: give INSTANCE and SCHEDULE, or --plan PLAN.json")
    problem = read_instance(instance, fmt)
    assignments, stated = read_schedule(schedule)
    violations = check_schedule(problem, assignments, stated_makespan=stated)
    makespan = max((a.end for a in assignments), default=0)
    if as_json:
        print_json(
            {
                "feasible": not violations,
                "makespan": makespan,
                "violations": [v.to_json() for v in violations],
            }
        )
    elif not violations:
        out.print(
            f"feasible: {len(assignments)} operations on {len(problem.machines)} machines, "
            f"makespan {makespan}"
        )
    else:
        for violation in violations:
            out.print(f"{violation.kind}: {violation.message}")
        kinds = Counter(v.kind for v in violations)
        summary = ", ".join(f"{kind} {n}" for kind, n in sorted(kinds.items()))
        out.print(f"infeasible: {len(violations)} violation(s) ({summary})")
    if violations:
        raise typer.Exit(1)


def _check_plan_file(path: Path, db: str | None, as_json: bool, po_file: Path | None) -> None:
    from microfab.maint.windows import check_plan
    from microfab.plan.plan_file import read_plan_file
    from microfab.stock.material_plan import material_violations
    from microfab.store import open_store
    from microfab.track.orders import list_orders, plant_clock

    document = read_plan_file(path)
    if document is None:
        raise InputError(f"--plan: {path} is not a plan file of 'microfab plan schedule'")
    with open_store(db) as store:
        found = check_plan(document, store)
        factory = stored_factory(store)
        materials = None
        if factory.items:
            begin = dt.datetime.fromisoformat(document["plan"]["start"])
            views = list_orders(store, factory, now=max(begin, plant_clock(store)))
            materials = _materials(store, factory, views, begin, po_file)
    short = [] if materials is None else material_violations(document, materials.ready)
    zone = factory.sites[0].zone
    shortages = [] if materials is None else [s.to_json(zone) for s in materials.shortages]
    operations = len(document.get("operations", []))
    if as_json:
        print_json(
            {
                "feasible": not found and not short,
                "operations": operations,
                "violations": [{"kind": "maintenance", "message": v.message()} for v in found]
                + [{"kind": "materials", "message": v} for v in short],
                "shortages": shortages,
            }
        )
    else:
        for shortage in shortages:
            out.print(f"shortage: {shortage['order']}: {shortage['message']}", highlight=False)
        for violation in found:
            out.print(violation.message())
        for message in short:
            out.print(f"materials: {message}", highlight=False)
        if not found and not short:
            checked = "none inside a maintenance window"
            if materials is not None:
                checked += ", every step after its materials are at the line"
            out.print(f"feasible: {operations} operations, {checked}")
        else:
            out.print(
                f"infeasible: {len(found) + len(short)} violation(s) "
                f"(maintenance {len(found)}, materials {len(short)})"
            )
    if found or short:
        raise typer.Exit(1)


# ---------------------------------------------------------------------------- the factory


def _start(text: str | None, factory: Factory, default: dt.datetime) -> dt.datetime:
    if text is None:
        return default
    from microfab.model.timerange import parse_time

    return parse_time(text, factory.sites[0].zone, field="--start")


def _local(text: str | None, zone: Any) -> str:
    if text is None:
        return ""
    return dt.datetime.fromisoformat(text).astimezone(zone).strftime("%a %d %b %H:%M")


@plan_app.command("schedule")
def plan_schedule(
    factory_file: Annotated[
        Path | None,
        typer.Option(
            "--factory",
            help="Factory file to plan with \\[default: the model stored in the database]",
            show_default=False,
        ),
    ] = None,
    start: Annotated[
        str | None,
        typer.Option(
            "--start",
            help="Plan from this time (site time or with an offset) \\[default: the plant clock, "
            "the newest stored event]",
            show_default=False,
        ),
    ] = None,
    horizon: Annotated[
        str,
        typer.Option("--horizon", help="How far ahead shift calendars are laid out (≤ 366d)"),
    ] = "14d",
    down: Annotated[
        list[str] | None,
        typer.Option(
            "--down",
            help="MACHINE:DURATION: the machine is unavailable from the start for that long "
            "(a breakdown, maintenance); repeatable",
            show_default=False,
        ),
    ] = None,
    repair: Annotated[
        bool,
        typer.Option(
            "--repair/--full",
            help="Re-plan from the existing plan file with few changes (2 s), or solve afresh",
        ),
    ] = False,
    time_limit: TimeLimitOption = 10.0,
    workers: WorkersOption = 2,
    objective: ObjectiveOption = None,
    plan_file: PlanFileOption = Path("plan.json"),
    po_file: Annotated[
        Path | None,
        typer.Option(
            "--purchase-orders",
            help="Open purchase orders CSV (po,item,qty,unit,due): deliveries the plan may wait for",
        ),
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Plan the open orders of the factory onto its machines and write the plan file.

    With an item master, an order's steps wait until its materials are at the line (on hand,
    or an open purchase order arriving, plus the transfer time) and each shortage is named.

    At most a 366-day horizon and 4,000,000 operation × machine × day cells; the solve runs in a
    worker process stopped after --time-limit × 1.5 + 30 s or 2 GB of memory."""
    from microfab.maint.windows import merge_down
    from microfab.model.factory_file import load_factory
    from microfab.plan.plan_file import read_plan_file, write_plan_file
    from microfab.store import open_store
    from microfab.store.maintenance import maintenance_down
    from microfab.track.orders import list_orders, plant_clock

    with open_store(db) as store:
        factory = load_factory(factory_file) if factory_file is not None else stored_factory(store)
        begin = _start(start, factory, plant_clock(store))
        views = list_orders(store, factory, now=begin)
        span = parse_duration(horizon, "--horizon")
        maintenance = maintenance_down(store, begin, begin + span)
        materials = _materials(store, factory, views, begin, po_file)
    earlier = read_plan_file(plan_file)
    if repair and earlier is None:
        err.print(f"no usable plan in {plan_file}: planning afresh")
    from microfab.plan.worker import plan_in_worker

    planned = plan_in_worker(
        factory=factory,
        views=views,
        start=begin,
        horizon=parse_duration(horizon, "--horizon"),
        objective=DEFAULT_OBJECTIVE if objective is None else Objective.parse(objective),
        down=merge_down(down_windows(down or [], begin, "--down"), maintenance),
        earlier=earlier,
        repair=repair,
        time_limit=time_limit,
        workers=workers,
        materials=None if materials is None else materials.ready,
    )
    fp, result, document = planned.problem, planned.result, planned.document
    if materials is not None:
        document["materials"] = {
            order: None if ready is None else ready.isoformat()
            for order, ready in materials.ready.items()
        }
        document["shortages"] = [s.to_json(fp.zone) for s in materials.shortages]
        for shortage in materials.shortages:
            err.print(f"shortage: {shortage.order}: {shortage.text(fp.zone)}", highlight=False)
    if result.schedule is not None:
        write_plan_file(plan_file, document)
    if as_json:
        print_json(document)
        return
    _print_plan(fp, document)
    if result.schedule is not None:
        err.print(f"plan written to {plan_file}")


@plan_app.command("check-materials")
def plan_check_materials(
    plan_file: Annotated[Path, typer.Option("--plan", help="Plan file to check")] = Path(
        "plan.json"
    ),
    po_file: Annotated[
        Path | None,
        typer.Option("--purchase-orders", help="Open purchase orders CSV (po,item,qty,unit,due)"),
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Check a plan's material feasibility against the stock now: no step starts before its
    order's materials are at the line; exit 0 when feasible, 1 with the violations."""
    from microfab.plan.plan_file import read_plan_file
    from microfab.stock.material_plan import material_violations
    from microfab.store import open_store
    from microfab.track.orders import list_orders, plant_clock

    document = read_plan_file(plan_file)
    if document is None:
        raise InputError(f"no plan in {plan_file}; make one with 'microfab plan schedule'")
    with open_store(db) as store:
        factory = stored_factory(store)
        begin = dt.datetime.fromisoformat(document["plan"]["start"])
        views = list_orders(store, factory, now=max(begin, plant_clock(store)))
        materials = _materials(store, factory, views, begin, po_file)
    zone = factory.sites[0].zone
    ready = {} if materials is None else materials.ready
    violations = material_violations(document, ready)
    shortages = [] if materials is None else [s.to_json(zone) for s in materials.shortages]
    if as_json:
        print_json({"feasible": not violations, "violations": violations, "shortages": shortages})
    else:
        for shortage in shortages:
            out.print(f"shortage: {shortage['order']}: {shortage['message']}", highlight=False)
        for violation in violations:
            out.print(f"materials: {violation}", highlight=False)
        out.print(
            "feasible: every step starts after its materials are at the line"
            if not violations
            else f"infeasible: {len(violations)} step(s) start before their materials",
            highlight=False,
        )
    if violations:
        raise typer.Exit(1)


def _materials(
    store: Any, factory: Factory, views: Any, begin: dt.datetime, po_file: Path | None
) -> Any:
    """When each open order's materials are at its line (None without an item master)."""
    if not factory.items:
        return None
    from microfab.plan.live import open_orders
    from microfab.stock.material_plan import OrderNeed, plan_materials
    from microfab.stock.reorder import read_purchase_orders

    orders = [
        OrderNeed(o.order, o.product, o.quantity, o.priority, o.due)
        for o in open_orders(views)
        if not any(s.status in ("running", "done") for s in o.steps)
    ]
    pos = read_purchase_orders(po_file, factory) if po_file is not None else []
    return plan_materials(store, factory, orders, now=begin, purchase_orders=pos)


def _print_plan(fp: FactoryProblem, document: dict[str, Any]) -> None:
    plan = document["plan"]
    if not document["orders"]:
        if plan["status"] == "infeasible":
            out.print("no plan: " + "; ".join(plan["reasons"]))
        else:
            out.print("no open orders to plan")
        for warning in document["warnings"]:
            out.print(f"warning: {warning}")
        return
    table = Table(title=f"Plan from {_local(plan['start'], fp.zone)} ({plan['status']})")
    for column in (
        "order",
        "product",
        "qty",
        "prio",
        "due",
        "planned start",
        "planned end",
        "late",
    ):
        table.add_column(
            column, justify="right" if column in ("qty", "prio") else "left", overflow="fold"
        )
    for row in document["orders"]:
        late = f"{row['late_s'] / 3600:.1f} h" if row["late"] else ""
        table.add_row(
            row["order"],
            row["product"],
            str(row["quantity"]),
            str(row["priority"]),
            _local(row["due"], fp.zone),
            _local(row["planned_start"], fp.zone),
            _local(row["planned_end"], fp.zone),
            late,
        )
    out.print(table)
    criteria = plan["criteria"]
    late_orders = sum(1 for row in document["orders"] if row["late"])
    setups = sum(1 for op in document["operations"] if op["setup_s"])
    out.print(
        f"{len(document['orders'])} orders, {len(document['operations'])} operations; "
        f"{late_orders} late (weighted tardiness {criteria.get('weighted_tardiness', 0) / 3600:.1f} h); "
        f"{setups} setups ({criteria.get('setup_time', 0) / 60:.0f} min); all done "
        f"{_local(max(op['end'] for op in document['operations']), fp.zone)}; "
        f"solved in {plan['runtime_s']:.1f} s"
    )
    changes = plan.get("changes")
    if changes:
        fixed = sum(1 for op in document["operations"] if op["fixed"])
        out.print(
            f"re-planned: {fixed} operations started and kept; of the others "
            f"{changes['moved']} moved to another machine, {changes['shifted']} start at another "
            "time"
        )
    for warning in document["warnings"]:
        out.print(f"warning: {warning}")


@plan_app.command("release")
def plan_release(
    plan_file: Annotated[Path, typer.Argument(help="Plan file written by 'plan schedule'")] = Path(
        "plan.json"
    ),
    machine: Annotated[
        str | None, typer.Option("--machine", help="Only this machine (id or path)")
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(
            "--until",
            help="Only operations starting before this time (with an offset, or site time)",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """The plan as a dispatch list per machine: what to run next, in order, with setups."""
    try:
        text = read_file(plan_file, "plan file")
    except InputError as exc:
        if plan_file.exists():
            raise
        raise InputError(f"{exc}; run 'microfab plan schedule' first") from None
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise InputError(f"{plan_file}: not a plan file ({exc})") from None
    if not isinstance(document, dict) or "operations" not in document or "plan" not in document:
        raise InputError(f"{plan_file}: not a plan file (no 'plan' and 'operations')")
    start = dt.datetime.fromisoformat(document["plan"]["start"])
    zone = start.tzinfo
    limit = None
    if until is not None:
        from zoneinfo import ZoneInfo

        from microfab.model.timerange import parse_time

        site = zone if isinstance(zone, ZoneInfo) else ZoneInfo("Asia/Hong_Kong")
        limit = parse_time(until, site, field="--until")
    lists = dispatch_lists(document, machine=machine, until=limit)
    if machine is not None and not lists:
        raise InputError(f"--machine: no operations planned on '{machine}'")
    if as_json:
        print_json({"plan_start": document["plan"]["start"], "machines": lists})
        return
    for path, rows in lists.items():
        table = Table(title=path, title_justify="left")
        for column in ("#", "start", "end", "order", "step", "units", "setup"):
            table.add_column(
                column, justify="right" if column in ("#", "units") else "left", overflow="fold"
            )
        for i, row in enumerate(rows, start=1):
            setup = ""
            if row["setup_s"]:
                setup = f"{row['setup_s'] // 60} min {row['setup_from']} → {row['setup_family']}"
            table.add_row(
                str(i),
                _clock(row["start"], zone),
                _clock(row["end"], zone),
                row["order"] + (" (started)" if row["fixed"] else ""),
                f"{row['operation']} {row['name']}",
                str(row["units"]),
                setup,
            )
        out.print(table)


def _clock(text: str, zone: Any) -> str:
    return dt.datetime.fromisoformat(text).astimezone(zone).strftime("%a %H:%M")
