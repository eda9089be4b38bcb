"""The product carbon report: the page data of one product footprint, rendered as printable HTML.

:func:`render_report` builds the figures and the charts (geometry of inline SVG bar charts, no
script, so the page prints the same in any browser and in headless chromium) and renders the
reports layer's ``carbon.html``: emissions by scope, by machine, by process step, kgCO2e per unit
order by order, and idle-energy waste per machine.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from microfab.green.footprint import CarbonFootprint
from microfab.green.intensity import IdleWaste
from microfab.green.pact import PACT_NOTICE
from microfab.reports import render

PALETTE = ("#2f6f4f", "#4c9a6a", "#7cbf8e", "#b5dcb9", "#e0b04c", "#c0603c", "#6b7fa8")


@dataclass(frozen=True, slots=True)
class OrderPoint:
    order: str
    started: dt.datetime | None
    units: int
    kgco2e_per_unit: float | None


@dataclass(frozen=True, slots=True)
class Bar:
    """One bar of a chart, placed: its label, top edge, length, colour and value text."""

    label: str
    y: int
    width: str
    colour: str
    value_x: str
    value: str


@dataclass(frozen=True, slots=True)
class BarChart:
    """A horizontal bar chart, laid out for inline SVG."""

    title: str
    width: int
    height: int
    label_width: int
    bar_height: int
    bars: list[Bar]


def bar_chart(title: str, rows: Sequence[tuple[str, float]], unit: str) -> BarChart:
    """The layout of a horizontal bar chart of ``rows`` (label, value in ``unit``)."""
    width, label_w, bar_h, gap = 640, 220, 18, 6
    height = 30 + len(rows) * (bar_h + gap)
    top = max((v for _, v in rows), default=0.0) or 1.0
    bars = []
    for i, (label, value) in enumerate(rows):
        y = 26 + i * (bar_h + gap)
        w = max(0.0, value) / top * (width - label_w - 110)
        bars.append(
            Bar(
                label[:34],
                y,
                f"{w:.1f}",
                PALETTE[i % len(PALETTE)],
                f"{label_w + w + 6:.1f}",
                f"{value:,.3f} {unit}",
            )
        )
    return BarChart(title, width, height, label_w, bar_h, bars)


def _short(machine: str) -> str:
    return (
        machine.rsplit("/", 2)[-2] + "/" + machine.rsplit("/", 1)[-1] if "/" in machine else machine
    )


def _kg(q: Any) -> float:
    return float(q.to("kgCO2e").magnitude)


def render_report(
    fp: CarbonFootprint,
    *,
    company: str,
    product_name: str,
    trend: Sequence[OrderPoint],
    idle: Sequence[IdleWaste],
    idle_factor: float,
    created: dt.datetime,
) -> str:
    """The report page for one product footprint."""
    doc = fp.to_json()
    scopes = [
        ("Scope 1 (fuels on site)", _kg(fp.scope1)),
        (f"Scope 2 ({doc['scope2_basis']}-based)", _kg(fp.scope2)),
        ("Upstream materials", _kg(fp.upstream)),
    ]
    machines = sorted(((_short(m), _kg(q)) for m, q in fp.by_machine.items()), key=lambda r: -r[1])
    steps = sorted(((s, _kg(q)) for s, q in fp.by_step.items()), key=lambda r: r[0])
    trend_rows = [
        (f"{p.order} ({p.units} u)", p.kgco2e_per_unit or 0.0)
        for p in trend
        if p.kgco2e_per_unit is not None
    ]
    idle_rows = [(_short(w.machine), float(w.saving.to("kWh").magnitude)) for w in idle]
    standby_total = sum(float(w.standby.to("kWh").magnitude) for w in idle)
    saving_total = sum(r[1] for r in idle_rows)
    per_unit = f"{doc['kgco2e_per_unit'] or 0:,.4f} kgCO2e"
    energy_cost = "—" if doc["energy_cost_hkd"] is None else f"HK$ {doc['energy_cost_hkd']:,.2f}"
    figures = [  # (label, value, shown in bold)
        ("Product 產品", f"{product_name} ({fp.product})", False),
        ("Period 期間", f"{doc['from']} – {doc['to']}", False),
        ("Orders 工單", f"{len(fp.orders)}: {', '.join(fp.orders)}", False),
        ("Finished units 完成數量", f"{fp.units:,}", False),
        (
            "Energy 能源",
            f"{doc['energy_kwh']:,.3f} kWh ({doc['kwh_per_unit'] or 0:,.4f} kWh/unit)",
            False,
        ),
        ("Energy cost 能源成本", energy_cost, False),
        ("Total 總排放", f"{doc['total_kgco2e']:,.3f} kgCO2e", False),
        ("Per unit 每件", per_unit, True),
        ("Primary data share 一手數據比例", f"{doc['primary_data_share']:.1%}", False),
        ("Allocation of facility energy", fp.rule, False),
    ]
    return render(
        "carbon.html",
        product=fp.product,
        company=company,
        created=f"{created:%Y-%m-%d %H:%M}",
        figures=figures,
        charts=[
            bar_chart("By scope 按範疇 (kgCO2e)", scopes, "kgCO2e"),
            bar_chart("By machine 按機器 (kgCO2e, energy)", machines, "kgCO2e"),
            bar_chart("By process step 按工序 (kgCO2e, energy)", steps, "kgCO2e"),
            bar_chart("Per-unit trend by order 每件趨勢 (kgCO2e/unit)", trend_rows, "kgCO2e"),
        ],
        standby=f"{standby_total:,.3f}",
        saving=f"{saving_total:,.3f}",
        saving_kg=f"{saving_total * idle_factor:,.3f}",
        idle_chart=bar_chart("Avoidable idle energy 可避免閒置能耗 (kWh)", idle_rows, "kWh"),
        factors=[{**f, "value": f"{f['value']:g}"} for f in doc["factors"]],
        flags=list(fp.flags),
        notice=PACT_NOTICE,
    )
