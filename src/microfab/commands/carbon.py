"""``microfab carbon``: footprint per work order or product, PACT export, HTML and PDF report."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from microfab.commands.common import (
    DbOption,
    FromOption,
    JsonOption,
    ToOption,
    err,
    out,
    print_json,
    stored_factory,
)
from microfab.errors import InputError
from microfab.model.timerange import parse_time

if TYPE_CHECKING:
    from microfab.green.factors import FactorTable
    from microfab.green.footprint import CarbonFootprint
    from microfab.green.readings import Period
    from microfab.green.settings import CarbonSettings
    from microfab.model.factory import Factory

carbon_app = typer.Typer(
    help="Energy and carbon footprint 碳足跡 per work order and product; PACT export; report.",
    no_args_is_help=True,
)

SettingsOption = Annotated[
    Path | None,
    typer.Option(
        "--settings",
        help="Carbon settings YAML (material factors, certificates, tariffs, company ids; see "
        "docs/green.md)",
        show_default=False,
    ),
]
FactorsOption = Annotated[
    Path | None,
    typer.Option(
        "--factors",
        help="Emission factors file replacing the shipped Hong Kong table",
        show_default=False,
    ),
]
AllowMissingOption = Annotated[
    bool,
    typer.Option(
        "--allow-missing",
        help="Leave materials without a factor out of upstream (flagged) instead of failing",
    ),
]
ProductOption = Annotated[str | None, typer.Option("--product", help="Product SKU")]


def _load(
    db: str | None,
    settings_path: Path | None,
    factors_path: Path | None,
    start: str | None,
    end: str | None,
) -> tuple[Factory, CarbonSettings, FactorTable, Period]:
    from microfab.green.factors import load_factors
    from microfab.green.readings import account_period, period_range
    from microfab.green.settings import load_settings
    from microfab.store import open_store

    settings = load_settings(settings_path)
    factors = load_factors(factors_path)
    with open_store(db) as store:
        factory = stored_factory(store)
        zone = factory.sites[0].zone
        first = parse_time(start, zone, field="--from") if start else None
        last = parse_time(end, zone, field="--to") if end else None
        first, last = period_range(store, factory, first, last)
        period = account_period(store, factory, settings, first, last)
    return factory, settings, factors, period


def _footprint(
    factory: Factory,
    settings: CarbonSettings,
    factors: FactorTable,
    period: Period,
    order: str | None,
    product: str | None,
    allow_missing: bool,
) -> CarbonFootprint:
    from microfab.green.footprint import footprint, orders_of

    if (order is None) == (product is None):
        raise InputError("give exactly one of --order ID or --product SKU")
    if product is not None and product not in {p.sku for p in factory.products}:
        known = ", ".join(p.sku for p in factory.products)
        raise InputError(f"--product: '{product}' is not a product of the factory; known: {known}")
    orders = orders_of(period, order=order, product=product)
    sku = product or period.orders[orders[0]].product
    if not orders:
        raise InputError(f"no work orders of {sku} are recorded; nothing to account")
    fp = footprint(period, factory, settings, factors, orders, sku, allow_missing=allow_missing)
    fp.per_unit  # noqa: B018 - raises the clear "no finished units" message when there are none
    return fp


@carbon_app.command("footprint")
def footprint_command(
    order: Annotated[str | None, typer.Option("--order", help="Work-order id")] = None,
    product: ProductOption = None,
    start: FromOption = None,
    end: ToOption = None,
    settings: SettingsOption = None,
    factors: FactorsOption = None,
    allow_missing: AllowMissingOption = False,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Energy, cost and kgCO2e (Scope 1, 2, upstream) of one order or of a product, per unit."""
    factory, carbon, table, period = _load(db, settings, factors, start, end)
    fp = _footprint(factory, carbon, table, period, order, product, allow_missing)
    doc = fp.to_json()
    if allow_missing and any(f.startswith("materials without") for f in fp.flags):
        err.print("warning: " + next(f for f in fp.flags if f.startswith("materials without")))
    if as_json:
        print_json(doc)
        return
    grid = Table(title=f"Carbon footprint 碳足跡 · {fp.product}", show_header=False)
    grid.add_column("", style="bold")
    grid.add_column("", justify="right", overflow="fold")
    for label, value in (
        ("orders", ", ".join(fp.orders)),
        ("period", f"{doc['from']} – {doc['to']}"),
        ("energy kWh", f"{doc['energy_kwh']:,.3f}"),
        (
            "energy cost HKD",
            "—" if doc["energy_cost_hkd"] is None else f"{doc['energy_cost_hkd']:,.2f}",
        ),
        ("scope 1 kgCO2e", f"{doc['scope1_kgco2e']:,.3f}"),
        (f"scope 2 kgCO2e ({doc['scope2_basis']})", f"{doc['scope2_kgco2e']:,.3f}"),
        ("upstream kgCO2e", f"{doc['upstream_kgco2e']:,.3f}"),
        ("total kgCO2e", f"{doc['total_kgco2e']:,.3f}"),
        ("finished units", f"{doc['units']:,}"),
        ("kgCO2e per unit", f"{doc['kgco2e_per_unit']:,.4f}"),
        ("primary data share", f"{doc['primary_data_share']:.1%}"),
    ):
        grid.add_row(label, value)
    out.print(grid)
    for flag in fp.flags:
        out.print(f"· {flag}")


@carbon_app.command("export")
def export_command(
    product: Annotated[str, typer.Option("--product", help="Product SKU")],
    export_format: Annotated[
        str, typer.Option("--format", help="Document format (pact: PACT v3 ProductFootprint)")
    ] = "pact",
    start: FromOption = None,
    end: ToOption = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", help="Write to this file \\[default: standard output]"),
    ] = None,
    settings: SettingsOption = None,
    factors: FactorsOption = None,
    allow_missing: AllowMissingOption = False,
    db: DbOption = None,
) -> None:
    """A product's footprint as a PACT v3.0.3 ProductFootprint JSON document."""
    from microfab.green.pact import product_footprint

    if export_format != "pact":
        raise typer.BadParameter(f"'{export_format}' is not one of pact", param_hint="--format")
    factory, carbon, table, period = _load(db, settings, factors, start, end)
    fp = _footprint(factory, carbon, table, period, None, product, allow_missing)
    document = product_footprint(fp, factory, carbon, created=dt.datetime.now(dt.UTC))
    text = json.dumps(document.to_json(), ensure_ascii=False, indent=2)
    if output is None:
        print(text)
        return
    output.write_text(text + "\n", encoding="utf-8")
    err.print(f"wrote {output}: PACT ProductFootprint {document.id} for {product}")


@carbon_app.command("report")
def report_command(
    product: Annotated[str, typer.Option("--product", help="Product SKU")],
    start: FromOption = None,
    end: ToOption = None,
    output: Annotated[
        Path,
        typer.Option("--output", help="HTML file to write; the PDF goes beside it (.pdf)"),
    ] = Path("carbon-report.html"),
    pdf: Annotated[bool, typer.Option("--pdf/--no-pdf", help="Also print a PDF (chromium)")] = True,
    settings: SettingsOption = None,
    factors: FactorsOption = None,
    allow_missing: AllowMissingOption = False,
    db: DbOption = None,
) -> None:
    """HTML and PDF report: by scope, machine, process step, per-unit trend, idle waste."""
    from microfab.green.footprint import footprint
    from microfab.green.intensity import IdleWaste
    from microfab.green.report import OrderPoint, render_report
    from microfab.model.carbon import MILLI, UNITS
    from microfab.reports import print_pdf

    factory, carbon, table, period = _load(db, settings, factors, start, end)
    fp = _footprint(factory, carbon, table, period, None, product, allow_missing)
    trend = []
    for order in sorted(fp.orders, key=lambda o: (period.orders[o].started or fp.start, o)):
        one = footprint(period, factory, carbon, table, [order], fp.product, allow_missing=True)
        per_unit = float(one.per_unit.to("kgCO2e").magnitude) if one.units else None
        trend.append(OrderPoint(order, period.orders[order].started, one.units, per_unit))
    idle = [
        IdleWaste(
            m.machine,
            UNITS.Quantity(m.standby_milli / MILLI, m.unit),
            UNITS.Quantity(m.saving_milli / MILLI, m.unit),
        )
        for m in period.account.meters
        if m.carrier == "electricity" and not m.facility
    ]
    electricity = fp.electricity.to("kWh").magnitude
    idle_factor = float(fp.scope2.to("kgCO2e").magnitude / electricity) if electricity else 0.0
    html = render_report(
        fp,
        company=factory.company.name,
        product_name=factory.product(fp.product).name or fp.product,
        trend=trend,
        idle=idle,
        idle_factor=idle_factor,
        created=dt.datetime.now(dt.UTC),
    )
    output.write_text(html, encoding="utf-8")
    out.print(f"wrote {output}")
    if pdf:
        pdf_path = output.with_suffix(".pdf")
        pdf_path.write_bytes(print_pdf(html))
        out.print(f"wrote {pdf_path}")
