"""``microfab maintenance …``: work orders, preventive plans and when they fall due, spare parts,
maintenance windows for the planner, reliability figures (docs/maintenance.md)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from microfab.commands.common import DbOption, JsonOption, out, print_json
from microfab.commands.users import cli_actor
from microfab.errors import InputError
from microfab.track.plant import Plant

maintenance_app = typer.Typer(
    help="Maintenance: work orders, preventive plans (due by calendar, run hours, cycles or "
    "condition), spare parts, windows for the planner, MTBF/MTTR and cost 維修保養.",
    no_args_is_help=True,
)
parts_app = typer.Typer(
    help="Spare parts: the parts list, min stock, issue to a job.", no_args_is_help=True
)
plans_app = typer.Typer(help="Preventive maintenance plans.", no_args_is_help=True)
maintenance_app.add_typer(parts_app, name="parts")
maintenance_app.add_typer(plans_app, name="plans")

IdArg = Annotated[int, typer.Argument(min=1, help="Work order id")]
AtOption = Annotated[
    str | None,
    typer.Option(
        "--at", help="When (site time or with an offset) \\[default: now]", show_default=False
    ),
]


@contextmanager
def _plant(db: str | None) -> Iterator[Plant]:
    from microfab.store import open_store

    with open_store(db) as store:
        yield Plant(store)


def _time(plant: Plant, text: str | None, field: str) -> dt.datetime | None:
    if text is None:
        return None
    from microfab.model.timerange import parse_time

    return parse_time(text, plant.zone(), field=field)


def _local(text: str | None, zone: dt.tzinfo) -> str:
    """A stored UTC time (ISO text) as the site's clock shows it, e.g. ``2026-12-07
    16:00+08:00``; the JSON output keeps UTC."""
    if not text:
        return ""
    return dt.datetime.fromisoformat(text).astimezone(zone).isoformat(" ", "minutes")


def _print_order(order: dict[str, Any], zone: dt.tzinfo) -> None:
    out.print(
        f"work order {order['id']} · {order['machine']} · {order['kind']} · {order['state']}"
        f" · priority {order['priority']}"
    )
    out.print(f"  problem: {order['problem']}")
    for key in ("window_start", "window_end", "started_at", "finished_at"):
        if order.get(key):
            out.print(f"  {key.replace('_', ' ')}: {_local(order[key], zone)}")
    for key in ("technician", "result"):
        if order.get(key):
            out.print(f"  {key.replace('_', ' ')}: {order[key]}")
    if order.get("parts"):
        out.print("  parts: " + ", ".join(f"{p['part']} × {p['qty']:g}" for p in order["parts"]))


@maintenance_app.command("request")
def request(
    machine: Annotated[str, typer.Argument(help="Machine id or path")],
    problem: Annotated[str, typer.Option("--problem", help="What is wrong or to be done")],
    kind: Annotated[
        str, typer.Option("--kind", help="corrective, predictive or preventive")
    ] = "corrective",
    priority: Annotated[int, typer.Option("--priority", help="1 (most urgent) to 9")] = 5,
    start: Annotated[
        str | None, typer.Option("--start", help="Scheduled window start", show_default=False)
    ] = None,
    end: Annotated[
        str | None, typer.Option("--end", help="Scheduled window end", show_default=False)
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Request a work order by hand (scheduled at once with --start and --end)."""
    from microfab.maint.workorders import Kind, NewOrder, create_order, get

    try:
        chosen = Kind(kind)
    except ValueError:
        raise InputError(
            f"--kind: '{kind}' is not one of corrective, predictive, preventive"
        ) from None
    with _plant(db) as plant:
        zone = plant.zone()
        lo, hi = _time(plant, start, "--start"), _time(plant, end, "--end")
        if (lo is None) != (hi is None):
            raise InputError("--start and --end go together")
        window = (lo, hi) if lo is not None and hi is not None else None
        order_id = create_order(
            plant, NewOrder(machine, chosen, problem, priority=priority, window=window), cli_actor()
        )
        order = get(plant.store, order_id)
    print_json(order) if as_json else _print_order(order, zone)


@maintenance_app.command("from-alert")
def from_alert_command(
    alert_id: Annotated[int, typer.Argument(min=1, help="Alert id (microfab alerts list)")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """A work order for an alert (corrective; predictive for an anomaly or health alert)."""
    from microfab.maint.workorders import from_alert, get

    with _plant(db) as plant:
        zone = plant.zone()
        order = get(plant.store, from_alert(plant, alert_id, cli_actor()))
    print_json(order) if as_json else _print_order(order, zone)


@maintenance_app.command("from-down")
def from_down_command(
    machine: Annotated[str, typer.Argument(help="Machine id or path")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """A corrective work order for a machine that is down now (once per stop)."""
    from microfab.maint.workorders import from_machine_down, get

    with _plant(db) as plant:
        zone = plant.zone()
        made = from_machine_down(plant, machine, cli_actor())
        order = None if made is None else get(plant.store, made)
    if order is None:
        out.print(f"{machine} is not in an unplanned stop: no work order")
    elif as_json:
        print_json(order)
    else:
        _print_order(order, zone)


@maintenance_app.command("from-health")
def from_health_command(
    min_health: Annotated[
        float, typer.Option("--min-health", help="Order below this health index")
    ] = 0.4,
    max_rul: Annotated[
        float, typer.Option("--max-rul", help="Order below this many hours of RUL")
    ] = 24.0,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Predictive work orders for machines whose health or remaining useful life is low."""
    from microfab.maint.workorders import from_health, get

    with _plant(db) as plant:
        zone = plant.zone()
        made = [
            get(plant.store, i)
            for i in from_health(plant, cli_actor(), min_health=min_health, max_rul_h=max_rul)
        ]
    if as_json:
        print_json(made)
        return
    for order in made:
        _print_order(order, zone)
    out.print(f"{len(made)} predictive work order(s)")


@maintenance_app.command("list")
def list_command(
    open_only: Annotated[
        bool, typer.Option("--open", help="Only requested, scheduled, in progress")
    ] = False,
    machine: Annotated[str | None, typer.Option("--machine", show_default=False)] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Work orders, newest first."""
    from microfab.maint.workorders import list_json

    with _plant(db) as plant:
        zone = plant.zone()
        path = plant.machine(machine).path if machine else None
        found = list_json(plant.store, machine=path, open_only=open_only)
    if as_json:
        print_json(found)
        return
    table = Table("id", "machine", "kind", "state", "prio", "problem", "window")
    for o in found:
        window = (
            f"{_local(o['window_start'], zone)} – {_local(o['window_end'], zone)}"
            if o["window_start"]
            else ""
        )
        table.add_row(
            str(o["id"]),
            o["machine"].rsplit("/", 1)[-1],
            o["kind"],
            o["state"],
            str(o["priority"]),
            o["problem"][:50],
            window,
        )
    out.print(table)


@maintenance_app.command("show")
def show(order_id: IdArg, db: DbOption = None, as_json: JsonOption = False) -> None:
    """One work order with its parts."""
    from microfab.maint.workorders import get

    with _plant(db) as plant:
        zone = plant.zone()
        order = get(plant.store, order_id)
    print_json(order) if as_json else _print_order(order, zone)


@maintenance_app.command("schedule")
def schedule(
    order_id: IdArg,
    start: Annotated[str, typer.Option("--start", help="Window start")],
    end: Annotated[str, typer.Option("--end", help="Window end")],
    technician: Annotated[str | None, typer.Option("--technician", show_default=False)] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Give a job its window: the machine is unavailable then for 'plan schedule'."""
    from microfab.maint.workorders import schedule_order

    with _plant(db) as plant:
        zone = plant.zone()
        lo, hi = _time(plant, start, "--start"), _time(plant, end, "--end")
        assert lo is not None and hi is not None
        order = schedule_order(plant, order_id, lo, hi, cli_actor(), technician)
    print_json(order) if as_json else _print_order(order, zone)


@maintenance_app.command("start")
def start_command(
    order_id: IdArg,
    technician: Annotated[str | None, typer.Option("--technician", show_default=False)] = None,
    at: AtOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Start a job (the machine enters maintenance downtime: PM planned, CM unplanned)."""
    from microfab.maint.workorders import start_order

    with _plant(db) as plant:
        zone = plant.zone()
        order = start_order(plant, order_id, cli_actor(), technician, _time(plant, at, "--at"))
    print_json(order) if as_json else _print_order(order, zone)


@maintenance_app.command("finish")
def finish_command(
    order_id: IdArg,
    result: Annotated[str, typer.Option("--result", help="What the job achieved")],
    actions: Annotated[str, typer.Option("--actions", help="What was done")] = "",
    cause: Annotated[
        str | None, typer.Option("--cause", help="Cause code", show_default=False)
    ] = None,
    labour_min: Annotated[
        float | None,
        typer.Option(
            "--labour-min", help="Labour minutes \\[default: since start]", show_default=False
        ),
    ] = None,
    rate: Annotated[float, typer.Option("--rate", help="Labour HK$ per hour")] = 250.0,
    at: AtOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Finish a started job."""
    from microfab.maint.workorders import finish_order

    with _plant(db) as plant:
        zone = plant.zone()
        order = finish_order(
            plant,
            order_id,
            cli_actor(),
            result=result,
            actions=actions,
            cause_code=cause,
            labour_min=labour_min,
            rate=rate,
            at=_time(plant, at, "--at"),
        )
    print_json(order) if as_json else _print_order(order, zone)


@maintenance_app.command("cancel")
def cancel_command(
    order_id: IdArg,
    reason: Annotated[str, typer.Option("--reason", help="Why it is cancelled")],
    db: DbOption = None,
) -> None:
    """Cancel a job that has not started."""
    from microfab.maint.workorders import cancel_order

    with _plant(db) as plant:
        _print_order(cancel_order(plant, order_id, cli_actor(), reason), plant.zone())


# ---------------------------------------------------------------------------- plans


@plans_app.command("add")
def plans_add(
    plans_file: Annotated[
        Path, typer.Argument(help="YAML: plans: [{machine, name, basis, interval, lead, …}]")
    ],
    db: DbOption = None,
) -> None:
    """Add the plans of a file (all or none; faults located as file:line)."""
    from microfab.maint.plans import add_plans, read_plans_file

    specs = read_plans_file(plans_file)
    with _plant(db) as plant:
        ids = add_plans(plant, specs, cli_actor())
    out.print(f"{len(ids)} plan(s) added: " + ", ".join(map(str, ids)))


@plans_app.command("list")
def plans_list(db: DbOption = None, as_json: JsonOption = False) -> None:
    """The active plans."""
    from microfab.maint.plans import plans_json

    with _plant(db) as plant:
        found = plans_json(plant.store)
        zone = plant.zone()
    if as_json:
        print_json(found)
        return
    table = Table("id", "machine", "name", "basis", "interval", "lead", "since", "last done")
    for p in found:
        table.add_row(
            str(p["id"]),
            p["machine"].rsplit("/", 1)[-1],
            p["name"],
            p["basis"],
            f"{p['interval']:g}",
            f"{p['lead']:g}",
            _local(p["since"], zone),
            _local(p["last_done"], zone),
        )
    out.print(table)


@maintenance_app.command("due")
def due(
    at: Annotated[
        str | None,
        typer.Option(
            "--at",
            help="As of (site time or offset) \\[default: the plant clock]",
            show_default=False,
        ),
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """When each preventive plan falls due, soonest first."""
    from microfab.maint.plans import due_list

    with _plant(db) as plant:
        now = _time(plant, at, "--at") or plant.now()
        found = [d.to_json() for d in due_list(plant.store, now)]
        zone = plant.zone()
    if as_json:
        print_json(found)
        return
    table = Table("machine", "plan", "basis", "due at", "in hours", "in cycles", "overdue")
    for d in found:
        table.add_row(
            d["machine"].rsplit("/", 1)[-1],
            d["plan"],
            d["basis"],
            dt.datetime.fromisoformat(d["due_at"]).astimezone(zone).strftime("%a %d/%m %H:%M")
            if d["due_at"]
            else "—",
            "" if d["due_in_hours"] is None else f"{d['due_in_hours']:.1f}",
            "" if d["due_in_cycles"] is None else str(d["due_in_cycles"]),
            "yes" if d["overdue"] else "",
        )
    out.print(table)


@maintenance_app.command("order-due")
def order_due(
    at: Annotated[
        str | None,
        typer.Option("--at", help="As of \\[default: the plant clock]", show_default=False),
    ] = None,
    db: DbOption = None,
) -> None:
    """Create the work order of every plan due within its lead (once while one is open)."""
    from microfab.maint.plans import order_due_jobs

    with _plant(db) as plant:
        made = order_due_jobs(plant, cli_actor(), _time(plant, at, "--at"))
    out.print(f"{len(made)} preventive work order(s): " + ", ".join(map(str, made)))


@maintenance_app.command("propose-window")
def propose_window_command(
    machine: Annotated[str, typer.Argument(help="Machine id or path")],
    within: Annotated[str, typer.Option("--within", help="FROM..TO (site time or with offsets)")],
    duration: Annotated[str, typer.Option("--duration", help="Length of the job, e.g. 2h")] = "2h",
    step: Annotated[str, typer.Option("--step", help="Start times tried every …")] = "30m",
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """The window within a range that costs the open orders the least weighted lateness."""
    from microfab.maint.windows import propose_window
    from microfab.plan.live import parse_duration

    first, sep, last = within.partition("..")
    if not sep:
        raise InputError(
            f"--within: '{within}': expected FROM..TO, e.g. 2026-11-24T08:00..2026-11-27T18:00"
        )
    with _plant(db) as plant:
        lo, hi = _time(plant, first, "--within"), _time(plant, last, "--within")
        assert lo is not None and hi is not None
        found = propose_window(
            plant,
            machine,
            start=lo,
            end=hi,
            duration=parse_duration(duration, "--duration"),
            step=parse_duration(step, "--step"),
        )
    document = found.to_json()
    if as_json:
        print_json(document)
        return
    out.print(
        f"{document['machine']}: {document['start']} – {document['end']} "
        f"(weighted lateness {document['weighted_lateness_s']} s, "
        f"+{document['extra_lateness_s']} s; {document['candidates']} windows tried)"
    )


@maintenance_app.command("reliability")
def reliability_command(
    month: Annotated[str, typer.Option("--month", help="Month, e.g. 2026-11")],
    machine: Annotated[str | None, typer.Option("--machine", show_default=False)] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """MTBF, MTTR, maintenance cost and planned vs unplanned share per machine for a month."""
    from microfab.maint.reliability import parse_month, reliability

    year, number = parse_month(month)
    with _plant(db) as plant:
        rows = reliability(plant, year, number, machine)
    if as_json:
        print_json(rows)
        return
    table = Table("machine", "failures", "MTBF h", "MTTR h", "cost HK$", "planned", "unplanned")

    def share(value: float | None) -> str:
        return "" if value is None else f"{value:.0%}"

    for r in rows:
        table.add_row(
            r["machine"].rsplit("/", 1)[-1],
            str(r["failures"]),
            "" if r["mtbf_h"] is None else f"{r['mtbf_h']:.1f}",
            "" if r["mttr_h"] is None else f"{r['mttr_h']:.2f}",
            f"{r['maintenance_cost']:.2f}",
            share(r["planned_share"]),
            share(r["unplanned_share"]),
        )
    out.print(table)


# ---------------------------------------------------------------------------- parts


@parts_app.command("add")
def parts_add(
    part: Annotated[str, typer.Argument(help="Part number")],
    name: Annotated[str, typer.Option("--name")] = "",
    unit: Annotated[str, typer.Option("--unit")] = "pc",
    on_hand: Annotated[float, typer.Option("--on-hand")] = 0.0,
    min_stock: Annotated[float, typer.Option("--min")] = 0.0,
    critical: Annotated[bool, typer.Option("--critical/--not-critical")] = False,
    cost: Annotated[float, typer.Option("--cost", help="HK$ per unit")] = 0.0,
    db: DbOption = None,
) -> None:
    """Add a part to the parts list (or change it)."""
    from microfab.maint.parts import define_part

    with _plant(db) as plant:
        define_part(
            plant.store,
            cli_actor(),
            part=part,
            name=name,
            unit=unit,
            on_hand=on_hand,
            min_stock=min_stock,
            critical=critical,
            unit_cost=cost,
        )
    out.print(f"part {part} saved")


@parts_app.command("list")
def parts_list(db: DbOption = None, as_json: JsonOption = False) -> None:
    """The parts list; LOW marks a critical part under its minimum."""
    from microfab.maint.parts import parts_json

    with _plant(db) as plant:
        found = parts_json(plant.store)
    if as_json:
        print_json(found)
        return
    table = Table("part", "name", "on hand", "min", "critical", "")
    for p in found:
        table.add_row(
            p["part"],
            p["name"],
            f"{p['on_hand']:g} {p['unit']}",
            f"{p['min_stock']:g}",
            "yes" if p["critical"] else "",
            "LOW" if p["low"] else "",
        )
    out.print(table)


@parts_app.command("issue")
def parts_issue(
    order_id: IdArg,
    items: Annotated[list[str], typer.Argument(help="PART:QTY …")],
    db: DbOption = None,
) -> None:
    """Issue parts to a work order (all or none; refused beyond the stock on hand)."""
    from microfab.maint.parts import ledger_for, parse_items

    wanted = parse_items(items)
    with _plant(db) as plant:
        ledger_for(plant.store).issue(order_id, wanted, cli_actor())
    out.print(f"issued to work order {order_id}: " + ", ".join(f"{p} × {q:g}" for p, q in wanted))
