"""``microfab haccp batches|record``: critical control points judged per batch, batch records."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from microfab.commands.common import (
    DbOption,
    FromOption,
    JsonOption,
    ToOption,
    out,
    print_json,
    stored_factory,
)

haccp_app = typer.Typer(
    help="Food safety: critical control points per batch, printable batch records 食物安全.",
    no_args_is_help=True,
)

PlanOption = Annotated[
    Path,
    typer.Option(
        "--plan",
        help="HACCP plan YAML: CCPs and critical limits (docs/examples/haccp-food-line.yaml)",
    ),
]
DEFAULT_PLAN = Path("haccp.yaml")


@haccp_app.command("batches")
def haccp_batches(
    plan_file: PlanOption = DEFAULT_PLAN,
    deviations_only: Annotated[
        bool, typer.Option("--deviations", help="Only batches with a deviation")
    ] = False,
    start: FromOption = None,
    end: ToOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Every batch at every critical control point, judged against its critical limits."""
    from microfab.commands.quality import _range
    from microfab.quality.haccp import haccp_report, load_haccp
    from microfab.store import open_store

    plan = load_haccp(plan_file)
    with open_store(db) as store:
        factory = stored_factory(store)
        first, last = _range(factory, start, end)
        report = haccp_report(store, factory, plan, start=first, end=last)
    if deviations_only:
        report["batches"] = [b for b in report["batches"] if b["deviations"]]
    if as_json:
        print_json(report)
        return
    zone = factory.sites[0].zone

    def local(text: str | None) -> str:
        if text is None:
            return "—"
        return (
            f"{dt.datetime.fromisoformat(text.replace('Z', '+00:00')).astimezone(zone):%m-%d %H:%M}"
        )

    table = Table(title=f"{plan.plan}: batches at critical control points (site time)")
    for name in ("CCP", "order", "product", "start", "min", "status", "deviations"):
        table.add_column(name, justify="right" if name == "min" else "left", overflow="fold")
    for b in report["batches"]:
        table.add_row(
            b["ccp"],
            b["order"],
            b["product"] or "—",
            local(b["start"]),
            "—" if b["minutes"] is None else f"{b['minutes']:.0f}",
            b["status"],
            "; ".join(d["message"] for d in b["deviations"]),
        )
    out.print(table)
    out.print(
        f"{len(report['batches'])} batches shown; {report['batches_with_deviations']} with "
        f"deviations ({report['deviations']} deviations)",
        highlight=False,
    )


@haccp_app.command("record")
def haccp_record(
    order: Annotated[str, typer.Argument(help="Work order (the batch)")],
    plan_file: PlanOption = DEFAULT_PLAN,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write the HTML here \\[default: print it]"),
    ] = None,
    pdf: Annotated[
        Path | None,
        typer.Option("--pdf", help="Also print the record to this PDF file (needs chromium)"),
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """The printable batch record of one work order at every CCP (HTML, PDF for inspectors)."""
    from microfab.quality.haccp import batch_records, load_haccp, render_batch_record
    from microfab.reports import print_pdf
    from microfab.store import open_store

    plan = load_haccp(plan_file)
    with open_store(db) as store:
        factory = stored_factory(store)
        records = batch_records(store, factory, plan, order=order)
    if as_json:
        print_json({"order": order, "records": [r.to_json() for r in records]})
        return
    html = render_batch_record(factory, plan, order, records)
    if output is not None:
        output.write_text(html, encoding="utf-8")
        out.print(f"wrote {output}", highlight=False)
    elif pdf is None:
        print(html)
    if pdf is not None:
        pdf.write_bytes(print_pdf(html))
        out.print(f"wrote {pdf}", highlight=False)
