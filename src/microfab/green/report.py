"""The product carbon report: one self-contained HTML page with SVG charts (printable to PDF).

Charts are drawn here as inline SVG (no script), so the page prints the same in any browser and
in headless chromium: emissions by scope, by machine, by process step, kgCO2e per unit order by
order, and idle-energy waste per machine.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from microfab.green.footprint import CarbonFootprint
from microfab.green.intensity import IdleWaste
from microfab.green.pact import PACT_NOTICE

PALETTE = ("#2f6f4f", "#4c9a6a", "#7cbf8e", "#b5dcb9", "#e0b04c", "#c0603c", "#6b7fa8")


@dataclass(frozen=True, slots=True)
class OrderPoint:
    order: str
    started: dt.datetime | None
    units: int
    kgco2e_per_unit: float | None


def bar_chart(title: str, rows: Sequence[tuple[str, float]], unit: str) -> str:
    """A horizontal bar chart as inline SVG."""
    width, label_w, bar_h, gap = 640, 220, 18, 6
    height = 30 + len(rows) * (bar_h + gap)
    top = max((v for _, v in rows), default=0.0) or 1.0
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="{escape(title)}">',
        f'<text x="0" y="16" font-size="13" font-weight="bold">{escape(title)}</text>',
    ]
    for i, (label, value) in enumerate(rows):
        y = 26 + i * (bar_h + gap)
        w = max(0.0, value) / top * (width - label_w - 110)
        colour = PALETTE[i % len(PALETTE)]
        parts += [
            f'<text x="0" y="{y + 13}" font-size="11">{escape(label[:34])}</text>',
            f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{colour}"/>',
            f'<text x="{label_w + w + 6:.1f}" y="{y + 13}" font-size="11">'
            f"{value:,.3f} {escape(unit)}</text>",
        ]
    parts.append("</svg>")
    return "".join(parts)


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
    figures = [
        ("Product 產品", f"{escape(product_name)} ({escape(fp.product)})"),
        ("Period 期間", f"{doc['from']} – {doc['to']}"),
        ("Orders 工單", f"{len(fp.orders)}: {escape(', '.join(fp.orders))}"),
        ("Finished units 完成數量", f"{fp.units:,}"),
        ("Energy 能源", f"{doc['energy_kwh']:,.3f} kWh ({doc['kwh_per_unit'] or 0:,.4f} kWh/unit)"),
        (
            "Energy cost 能源成本",
            "—" if doc["energy_cost_hkd"] is None else f"HK$ {doc['energy_cost_hkd']:,.2f}",
        ),
        ("Total 總排放", f"{doc['total_kgco2e']:,.3f} kgCO2e"),
        ("Per unit 每件", f"<b>{doc['kgco2e_per_unit'] or 0:,.4f} kgCO2e</b>"),
        ("Primary data share 一手數據比例", f"{doc['primary_data_share']:.1%}"),
        ("Allocation of facility energy", escape(fp.rule)),
    ]
    rows = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in figures)
    factor_rows = "".join(
        f"<tr><td>{escape(f['key'])}</td><td>{f['value']:g} {escape(f['unit'])}</td>"
        f"<td>{f['year']}</td><td>{escape(f['source'])}</td></tr>"
        for f in doc["factors"]
    )
    flags = "".join(f"<li>{escape(flag)}</li>" for flag in fp.flags) or "<li>none</li>"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Carbon footprint {escape(fp.product)} · {escape(company)}</title>
<style>
@page {{ size: A4; margin: 14mm; }}
body {{ font-family: "Noto Sans", "Noto Sans CJK TC", Arial, sans-serif; font-size: 12px;
       color: #1d2a22; max-width: 720px; margin: 0 auto; }}
h1 {{ font-size: 20px; margin-bottom: 0; }} h2 {{ font-size: 15px; margin-top: 22px; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ text-align: left; padding: 3px 6px; border-bottom: 1px solid #dde5df;
          vertical-align: top; }}
th {{ width: 38%; font-weight: 600; }}
.chart {{ page-break-inside: avoid; margin: 10px 0; }}
.small {{ font-size: 10px; color: #55645a; }}
</style></head><body>
<h1>Product carbon footprint 產品碳足跡</h1>
<p>{escape(company)} · generated {created:%Y-%m-%d %H:%M} UTC by microfab</p>
<table>{rows}</table>
<div class="chart">{bar_chart("By scope 按範疇 (kgCO2e)", scopes, "kgCO2e")}</div>
<div class="chart">{bar_chart("By machine 按機器 (kgCO2e, energy)", machines, "kgCO2e")}</div>
<div class="chart">{bar_chart("By process step 按工序 (kgCO2e, energy)", steps, "kgCO2e")}</div>
<div class="chart">{bar_chart("Per-unit trend by order 每件趨勢 (kgCO2e/unit)", trend_rows, "kgCO2e")}</div>
<h2>Idle-energy waste 閒置能源浪費</h2>
<p>Standby energy of production machines in the period: {standby_total:,.3f} kWh. Switching
machines off after the configured idle time would have saved about {saving_total:,.3f} kWh
(≈ {saving_total * idle_factor:,.3f} kgCO2e).</p>
<div class="chart">{bar_chart("Avoidable idle energy 可避免閒置能耗 (kWh)", idle_rows, "kWh")}</div>
<h2>Emission factors used 排放因子</h2>
<table><tr><th>key</th><th>value</th><th>year</th><th>source</th></tr>{factor_rows}</table>
<h2>Data quality 數據質素</h2><ul>{flags}</ul>
<p class="small">{escape(PACT_NOTICE)}</p>
</body></html>
"""
