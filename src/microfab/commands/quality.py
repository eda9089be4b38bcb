"""``microfab spc``, ``microfab anomalies`` and ``microfab health``: quality and maintenance."""

from __future__ import annotations

import datetime as dt
import math
from typing import Annotated, Any, cast

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
from microfab.errors import InputError
from microfab.model.factory import Factory
from microfab.model.spc import CHART_KINDS, ChartKind, RuleSet
from microfab.model.timerange import check_range, parse_time

MachineOption = Annotated[
    str | None,
    typer.Option("--machine", help="Only this machine (id or path) \\[default: every machine]"),
]
BaselineOption = Annotated[
    str,
    typer.Option(
        "--baseline",
        help="Healthy period the detectors learn from, from --from or the first reading: "
        "e.g. 12h, 2d",
    ),
]


def spc(
    characteristic: Annotated[
        str,
        typer.Argument(
            help="MACHINE:METRIC (a telemetry metric, e.g. imm-1:melt_temp_c) or MACHINE:scrap "
            "(count events)",
            show_default=False,
        ),
    ],
    start: FromOption = None,
    end: ToOption = None,
    chart: Annotated[
        str | None,
        typer.Option(
            "--chart",
            help="xbar-r, xbar-s, imr, p or u \\[default: xbar-r for a metric (imr with "
            "--subgroup 1), p for scrap]",
            show_default=False,
        ),
    ] = None,
    subgroup: Annotated[
        int, typer.Option("--subgroup", help="Consecutive readings per subgroup (X̄ charts)")
    ] = 5,
    period: Annotated[
        str, typer.Option("--period", help="Subgroup period for scrap (p and u charts)")
    ] = "1h",
    baseline: Annotated[
        int,
        typer.Option("--baseline", help="Subgroups (or readings, I-MR) the limits come from"),
    ] = 25,
    rules: Annotated[
        str,
        typer.Option(
            "--rules",
            help="Run rules: western-electric (1, 5, 6 and 8 on one side) or nelson (1–8)",
        ),
    ] = "western-electric",
    lsl: Annotated[
        float | None, typer.Option("--lsl", help="Lower spec limit (capability)")
    ] = None,
    usl: Annotated[
        float | None, typer.Option("--usl", help="Upper spec limit (capability)")
    ] = None,
    all_readings: Annotated[
        bool,
        typer.Option(
            "--all-readings",
            help="Chart telemetry read while the machine was stopped too \\[default: only "
            "readings taken while it ran]",
        ),
    ] = False,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Control chart and capability of a characteristic 統計製程管制 (SPC)."""
    from microfab.quality.spc import spc_report
    from microfab.store import open_store

    if chart is not None and chart not in CHART_KINDS:
        raise InputError(f"--chart '{chart}' is not one of {', '.join(CHART_KINDS)}")
    if rules not in ("nelson", "western-electric"):
        raise InputError(f"--rules '{rules}' is not nelson or western-electric")
    with open_store(db) as store:
        factory = stored_factory(store)
        first, last = _range(factory, start, end)
        report = spc_report(
            store,
            factory,
            characteristic,
            start=first,
            end=last,
            chart=_chart_kind(chart),
            subgroup=subgroup,
            period_s=_seconds("--period", period),
            baseline=baseline,
            rules=cast(RuleSet, rules),
            lsl=lsl,
            usl=usl,
            running_only=not all_readings,
        )
    if as_json:
        print_json(report)
        return
    _print_spc(report, factory)


def anomalies(
    machine: MachineOption = None,
    start: FromOption = None,
    end: ToOption = None,
    baseline: BaselineOption = "1d",
    false_alarms: Annotated[
        float,
        typer.Option(
            "--false-alarms-per-day",
            help="Target false alarms per machine and day; sets each detector's threshold",
        ),
    ] = 0.1,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Anomalies in telemetry, per machine, against a healthy baseline 異常偵測."""
    from microfab.quality.anomaly import DetectorSettings, anomaly_report
    from microfab.store import open_store

    if not 0 < false_alarms < 1000 or not math.isfinite(false_alarms):
        raise InputError("--false-alarms-per-day must be a positive number, e.g. 0.1")
    with open_store(db) as store:
        factory = stored_factory(store)
        first, last = _range(factory, start, end)
        report = anomaly_report(
            store,
            _machines(factory, machine),
            baseline_s=_seconds("--baseline", baseline),
            start=first,
            end=last,
            settings=DetectorSettings(false_alarms_per_day=false_alarms),
        )
    if as_json:
        print_json(report)
        return
    zone = factory.sites[0].zone

    def local(text: str) -> str:
        return (
            f"{dt.datetime.fromisoformat(text.replace('Z', '+00:00')).astimezone(zone):%m-%d %H:%M}"
        )

    table = Table(
        title=f"Anomaly alerts 異常警報 (site time; baseline until {local(report['baseline_end'])})"
    )
    for name in ("machine", "started", "metric", "score", "threshold", "evidence"):
        table.add_column(name, overflow="fold")
    for m in report["machines"]:
        for a in m["alerts"]:
            ev = a["evidence"][a["metric"]]
            table.add_row(
                m["machine"].rsplit("/", 1)[-1],
                local(a["ts"]),
                a["metric"],
                f"{a['score']:.1f}",
                f"{a['threshold']:.1f}",
                f"mean {ev['shift_sd']:+.1f} sd, spread ×{ev['spread']:.2f}",
            )
    quiet = [
        m["machine"].rsplit("/", 1)[-1]
        for m in report["machines"]
        if not m["alerts"] and "note" not in m
    ]
    notes = [m["note"] for m in report["machines"] if "note" in m]
    table.caption = "\n".join(([f"no alerts: {', '.join(quiet)}"] if quiet else []) + notes)
    out.print(table)


def health(
    machine: MachineOption = None,
    start: FromOption = None,
    end: ToOption = None,
    baseline: BaselineOption = "1d",
    recent: Annotated[
        str, typer.Option("--recent", help="Recent period the trend is fitted over")
    ] = "8h",
    failure_sd: Annotated[
        float,
        typer.Option("--failure-sd", help="Shift (in baseline sd) at which a metric fails"),
    ] = 6.0,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Machine health index and remaining useful life, with the evidence 設備健康."""
    from microfab.quality.maintenance import health_report, hours_text
    from microfab.store import open_store

    if not failure_sd > 0 or not math.isfinite(failure_sd):
        raise InputError("--failure-sd must be a positive number of standard deviations")
    with open_store(db) as store:
        factory = stored_factory(store)
        first, last = _range(factory, start, end)
        report = health_report(
            store,
            _machines(factory, machine),
            baseline_s=_seconds("--baseline", baseline),
            start=first,
            end=last,
            recent_h=_seconds("--recent", recent) / 3600,
            failure_sd=failure_sd,
        )
    if as_json:
        print_json(report)
        return
    table = Table(title="Machine health 設備健康 (1 = as in the baseline)")
    for name in ("machine", "health", "RUL", "recommendation"):
        table.add_column(name, overflow="fold")
    for m in report["machines"]:
        table.add_row(
            m["machine"].rsplit("/", 1)[-1],
            "—" if m["health"] is None else f"{m['health']:.2f}",
            "—" if m["rul_h"] is None else hours_text(m["rul_h"]),
            m.get("recommendation") or m.get("note", ""),
        )
    out.print(table)


def defects(
    start: FromOption = None,
    end: ToOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Defect Pareto from inspection results, per product and machine 缺陷柏拉圖."""
    from microfab.quality.defects import defect_pareto
    from microfab.store import open_store

    with open_store(db) as store:
        factory = stored_factory(store)
        first, last = _range(factory, start, end)
        report = defect_pareto(store, start=first, end=last)
    if as_json:
        print_json(report)
        return
    if not report["inspected"]:
        out.print("no inspection results in this period", highlight=False)
        return
    out.print(
        f"Inspected {report['inspected']:,}, failed {report['failed']:,} "
        f"({report['fail_rate']:.2%})",
        highlight=False,
    )
    table = Table(title="Defects 缺陷 by product and machine (largest first)")
    for name in ("product", "machine", "inspected", "failed", "defect", "n", "share", "cum"):
        text_column = name in ("product", "machine", "defect")
        table.add_column(
            name,
            justify="left" if text_column else "right",
            no_wrap=not text_column,
            overflow="fold",
        )
    for group in report["groups"]:
        first_row = True
        for d in group["defects"] or [None]:
            table.add_row(
                (group["product"] or "—") if first_row else "",
                group["machine"].rsplit("/", 1)[-1] if first_row else "",
                f"{group['inspected']:,}" if first_row else "",
                f"{group['failed']:,}" if first_row else "",
                d["defect"] if d else "",
                f"{d['count']:,}" if d else "",
                f"{d['share']:.0%}" if d else "",
                f"{d['cumulative']:.0%}" if d else "",
            )
            first_row = False
    out.print(table)


# ---------------------------------------------------------------------------- helpers


def _chart_kind(chart: str | None) -> ChartKind | None:
    for kind in CHART_KINDS:
        if kind == chart:
            return kind
    return None


def _machines(factory: Factory, machine: str | None) -> list[str]:
    from microfab.quality.spc import find_machine

    if machine is not None:
        return [find_machine(factory, machine).path]
    return [ref.path for ref in factory.machines()]


def _range(
    factory: Factory, start: str | None, end: str | None
) -> tuple[dt.datetime | None, dt.datetime | None]:
    zone = factory.sites[0].zone
    first = parse_time(start, zone, field="--from") if start else None
    last = parse_time(end, zone, field="--to") if end else None
    check_range(first, last)
    return first, last


def _seconds(option: str, text: str) -> float:
    from microfab.sim.engine import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise InputError(f"{option}: {exc}") from None


RULE_NAMES = {
    1: "beyond 3σ",
    2: "9 on one side",
    3: "6 rising/falling",
    4: "14 alternating",
    5: "2 of 3 beyond 2σ",
    6: "4 of 5 beyond 1σ",
    7: "15 within 1σ",
    8: "8 beyond 1σ",
    9: "8 on one side",
}
CHART_TITLES = {
    "xbar-r": "X̄-R",
    "xbar-s": "X̄-S",
    "imr": "I-MR",
    "p": "p (fraction scrapped)",
    "u": "u (scrap per unit)",
}


def _print_spc(report: dict[str, Any], factory: Factory) -> None:
    zone = factory.sites[0].zone
    points = report["points"]

    def local(text: str) -> str:
        return (
            f"{dt.datetime.fromisoformat(text.replace('Z', '+00:00')).astimezone(zone):%m-%d %H:%M}"
        )

    size = report["subgroup_size"]
    lines = [
        f"SPC {report['characteristic']}: {CHART_TITLES[report['chart']]} chart"
        + (f", subgroups of {size}" if size > 1 else "")
        + f", limits from the first {report['baseline_points']} points "
        f"({local(points[0]['from'])} – {local(points[report['baseline_points'] - 1]['to'])} "
        "site time)"
    ]
    varying = report["chart"] in ("p", "u")
    for name, limits in report["limits"].items():
        lines.append(
            f"  {name:13} centre {limits['center']:.4g}  LCL {limits['lower']:.4g}  "
            f"UCL {limits['upper']:.4g}"
            + ("  (at the first point's n; each point has its own)" if varying else "")
        )
    flagged = report["out_of_control"]
    dispersion = next(iter(list(report["limits"])[1:]), "spread").replace("_", " ")
    lines.append(f"Out of control: {len(flagged)} of {len(points)} points")
    out.print("\n".join(lines), highlight=False)
    episodes: list[list[int]] = []
    for i in flagged:
        if episodes and i - episodes[-1][-1] <= 3:
            episodes[-1].append(i)
        else:
            episodes.append([i])
    if episodes:
        table = Table(title="Rule violations 失控 (runs of flagged points, site time)")
        for name in ("from", "to", "points", "last value", "rules"):
            table.add_column(
                name,
                justify="right" if name in ("points", "last value") else "left",
                overflow="fold",
            )
        for run in episodes[-15:]:
            rules = sorted({r for i in run for r in points[i]["rules"]})
            spread = any(points[i].get("dispersion_rules") for i in run)
            names = [f"{r} {RULE_NAMES[r]}" for r in rules]
            if spread:
                names.append(f"{dispersion} beyond its limits")
            table.add_row(
                local(points[run[0]]["from"]),
                local(points[run[-1]]["to"]),
                str(len(run)),
                f"{points[run[-1]]['value']:.4g}",
                ", ".join(names),
            )
        if len(episodes) > 15:
            table.caption = f"the last 15 of {len(episodes)} runs; --json has every point"
        out.print(table)
    cap = report["capability"]
    if cap is not None:
        lines = [f"Capability (baseline, n = {cap['n']}, {cap['confidence']:.0%} intervals):"]
        for key in ("cp", "cpk", "pp", "ppk"):
            if cap[key] is not None:
                low, high = cap[f"{key}_ci"]
                lines.append(f"  {key.capitalize():4} {cap[key]:.2f}  [{low:.2f}, {high:.2f}]")
        out.print("\n".join(lines), highlight=False)
