"""``microfab oee`` and ``microfab downtime``: OEE per ISO 22400-2, downtime Pareto, MTBF/MTTR."""

from __future__ import annotations

import datetime as dt
import sys
import zoneinfo
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
from microfab.model.factory import Factory
from microfab.settings import load_settings
from microfab.store import EventStore
from microfab.track.export import DOWNTIME_COLUMNS, OEE_COLUMNS, csv_text
from microfab.track.oee import (
    By,
    Level,
    downtime_pareto,
    oee_rows,
    reliability_rows,
    select_lines,
)
from microfab.track.windows import data_window

LineOption = Annotated[
    str | None,
    typer.Option("--line", help="Line id or path site/area/line \\[default: all lines]"),
]
SiteOption = Annotated[
    str | None,
    typer.Option("--site", help="Only this site's lines (an HQ store holds several sites)"),
]
MachineOption = Annotated[
    str | None, typer.Option("--machine", help="Only this machine (id or path)")
]
CsvOption = Annotated[bool, typer.Option("--csv", help="Print CSV (for a spreadsheet)")]
MaxDaysOption = Annotated[
    int | None,
    typer.Option(
        "--max-days",
        min=1,
        help="Longest --from/--to window to take, in days (the window is first cut to the days "
        "holding data) \\[default: MICROFAB_MAX_QUERY_DAYS, 366]",
        show_default=False,
    ),
]


def oee(
    line: LineOption = None,
    machine: MachineOption = None,
    start: FromOption = None,
    end: ToOption = None,
    by: Annotated[
        str, typer.Option("--by", help="One row per machine (whole period), per shift or per day")
    ] = "machine",
    level: Annotated[
        str,
        typer.Option(
            "--level",
            help="machine rows, or line rows (the line output at the bottleneck's pace)",
        ),
    ] = "machine",
    max_days: MaxDaysOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
    as_csv: CsvOption = False,
    site: SiteOption = None,
) -> None:
    """OEE per ISO 22400-2 (availability × performance × quality) 設備綜合效率."""
    from microfab.store import open_store

    period_by = _choice("--by", by, ("machine", "shift", "day"))
    row_level = _choice("--level", level, ("machine", "line"))
    with open_store(db) as store:
        factory = _of_site(stored_factory(store), site)
        first, last = _range(store, factory, line, start, end, max_days)
        rows = oee_rows(
            store,
            factory,
            line=line,
            machine=machine,
            start=first,
            end=last,
            by=cast(By, period_by),
            level=cast(Level, row_level),
        )
    documents = [row.to_json() for row in rows]
    if as_json:
        print_json(documents)
    elif as_csv:
        sys.stdout.write(csv_text(documents, OEE_COLUMNS))
    else:
        out.print(_oee_table(documents, factory, period_by))


def downtime(
    line: LineOption = None,
    machine: MachineOption = None,
    start: FromOption = None,
    end: ToOption = None,
    max_days: MaxDaysOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
    as_csv: CsvOption = False,
    site: SiteOption = None,
) -> None:
    """Downtime Pareto by reason code, and MTBF/MTTR per machine 停機原因."""
    from microfab.store import open_store

    with open_store(db) as store:
        factory = _of_site(stored_factory(store), site)
        first, last = _range(store, factory, line, start, end, max_days)
        pareto = downtime_pareto(store, factory, line=line, machine=machine, start=first, end=last)
        reliability = reliability_rows(
            store, factory, line=line, machine=machine, start=first, end=last
        )
    if as_json:
        print_json(
            {
                "pareto": [row.to_json() for row in pareto],
                "reliability": [row.to_json() for row in reliability],
            }
        )
        return
    if as_csv:
        rows = [row.to_json() | {"machines": " ".join(row.machines)} for row in pareto]
        sys.stdout.write(csv_text(rows, DOWNTIME_COLUMNS))
        return
    table = Table(title="Downtime Pareto 停機柏拉圖 (working time)")
    for name in ("reason", "state", "category", "lost", "stops", "share", "cumulative"):
        table.add_column(name, justify="right" if name in ("stops",) else "left", overflow="fold")
    cumulative = 0.0
    for row in pareto:
        cumulative += row.share
        table.add_row(
            row.reason,
            row.state,
            row.category,
            _duration(row.seconds),
            str(row.stops),
            f"{row.share:.1%}",
            f"{cumulative:.1%}",
        )
    out.print(table)
    rel = Table(title="Reliability 可靠性 (working time)")
    for name in ("machine", "failures", "run", "MTBF", "MTTR"):
        rel.add_column(name, overflow="fold")
    for r in reliability:
        rel.add_row(
            r.machine.rsplit("/", 1)[-1],
            str(r.failures),
            _duration(r.run_s),
            _duration(r.mtbf_s) if r.mtbf_s is not None else "—",
            _duration(r.mttr_s) if r.mttr_s is not None else "—",
        )
    out.print(rel)


# ---------------------------------------------------------------------------- helpers


def _of_site(factory: Factory, site: str | None) -> Factory:
    """The factory model narrowed to ``site`` (``--site``), or whole."""
    if site is None:
        return factory
    from microfab.hq.registry import only_sites

    return only_sites(factory, [site])


def _choice(option: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise typer.BadParameter(f"'{value}' is not one of {', '.join(allowed)}", param_hint=option)
    return value


def _range(
    store: EventStore,
    factory: Factory,
    line: str | None,
    start: str | None,
    end: str | None,
    max_days: int | None,
) -> tuple[dt.datetime | None, dt.datetime | None]:
    """--from/--to in the time zone of the selected line's site (first site by default), cut to
    the stored data and at most ``max_days`` long, as the API takes ``from``/``to``."""
    zone: zoneinfo.ZoneInfo = factory.sites[0].zone
    if line is not None:
        zone = select_lines(factory, line)[0][0].site.zone
    limit = max_days if max_days is not None else load_settings().max_query_days
    return data_window(
        store, factory, line, start, end, zone, max_days=limit, fields=("--from", "--to")
    )


def _oee_table(documents: list[dict[str, Any]], factory: Factory, by: str) -> Table:
    zone = factory.sites[0].zone
    table = Table(title="OEE 設備綜合效率 (ISO 22400-2)")
    columns = ["machine"]
    if by != "machine":
        columns += ["day", "shift"] if by == "shift" else ["day"]
    columns += ["busy", "run", "total", "good", "A", "P", "Q", "OEE"]
    for name in columns:
        text = name in ("machine", "day", "shift")
        table.add_column(
            name, justify="left" if text else "right", no_wrap=not text, overflow="fold"
        )
    for d in documents:
        name = d["machine"].rsplit("/", 1)[-1]  # the id; paths are in --json and --csv
        cells = [f"{name} (line)" if d["level"] == "line" else name]
        if by != "machine":
            cells.append(d["day"] or "")
            if by == "shift":
                cells.append(d["shift"] or "")
        cells += [
            _duration(d["planned_busy_s"]),
            _duration(d["run_s"]),
            f"{d['total']:,}",
            f"{d['good']:,}",
            *(_percent(d[k]) for k in ("availability", "performance", "quality", "oee")),
        ]
        table.add_row(*cells)
    if documents:
        first = dt.datetime.fromisoformat(documents[0]["from"]).astimezone(zone)
        last = dt.datetime.fromisoformat(documents[-1]["to"]).astimezone(zone)
        table.caption = (
            f"{first:%Y-%m-%d %H:%M} – {last:%Y-%m-%d %H:%M} site time; "
            "busy = planned busy time, A/P/Q = availability/performance/quality"
        )
        for d in documents:
            if d["level"] == "line" and d["bottleneck"]:
                table.caption += (
                    f"\n{d['machine'].rsplit('/', 1)[-1]} {d['day'] or ''} {d['shift'] or ''}: "
                    f"bottleneck {d['bottleneck'].rsplit('/', 1)[-1]}, "
                    f"line output {d['output_good']:,} good"
                    + (
                        f" ({d['outside_total']:,} units counted outside working time are in "
                        "the line output, not in OEE)"
                        if d["outside_total"]
                        else ""
                    )
                ).replace("  ", " ")
    return table


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes // 60}h{minutes % 60:02d}m"
