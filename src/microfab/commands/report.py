"""``microfab report shift``: one line's production of one site day (docs/production.md)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer
from rich.table import Table

from microfab.commands.common import DbOption, JsonOption, out, print_json, stored_factory
from microfab.errors import InputError

report_app = typer.Typer(help="Production reports 生產報告.", no_args_is_help=True)


@report_app.command("shift")
def report_shift(
    day: Annotated[str, typer.Option("--day", help="Site day, e.g. 2026-11-23")],
    line: Annotated[
        str | None,
        typer.Option("--line", help="Line id or path site/area/line \\[default: the first line]"),
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """A line's output, its orders' good and scrap, and each station's counts over one day."""
    from microfab.store import open_store
    from microfab.track.shift_report import day_report

    try:
        when = dt.date.fromisoformat(day)
    except ValueError:
        raise InputError(f"--day: '{day}' is not a date (YYYY-MM-DD)") from None
    with open_store(db) as store:
        report = day_report(store, stored_factory(store), when, line)
    if as_json:
        print_json(report.to_json())
        return
    out.print(
        f"{report.line} · {report.day} · line output {report.output_good:,} good", highlight=False
    )
    orders = Table("order", "product", "good", "scrap", title="Orders 工單")
    for o in report.orders:
        orders.add_row(o.order, o.product or "", f"{o.good:,}", f"{o.scrap:,}")
    out.print(orders)
    machines = Table("machine", "good", "scrap", "outside", title="Stations 工位")
    for m in report.machines:
        machines.add_row(
            m.machine.rsplit("/", 1)[-1], f"{m.good:,}", f"{m.scrap:,}", f"{m.outside_total:,}"
        )
    out.print(machines)
    out.print(
        "Stations' good and scrap count working time only (as OEE does); outside = units counted "
        "outside working time, which still count for the orders and the line output.",
        highlight=False,
    )
