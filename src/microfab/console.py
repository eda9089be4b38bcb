"""Terminal views built with Rich: the live factory summary and end-of-run totals.

Both read the store's read models (never the simulator), so what they show is what was stored.
"""

from __future__ import annotations

import datetime as dt

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from microfab.model.factory import Factory
from microfab.store.event_store import MachineStatus, OrderStatus

STATE_STYLE = {
    "running": "bold green",
    "idle": "yellow",
    "setup": "cyan",
    "planned_stop": "blue",
    "unplanned_stop": "bold red",
    "micro_stop": "magenta",
    "offline": "dim",
}
STATE_ZH = {
    "running": "運行",
    "idle": "閒置",
    "setup": "換模",
    "planned_stop": "計劃停機",
    "unplanned_stop": "故障停機",
    "micro_stop": "小停",
    "offline": "離線",
}


def _local(ts: dt.datetime | None, factory: Factory) -> str:
    if ts is None:
        return "-"
    return ts.astimezone(factory.sites[0].zone).strftime("%H:%M:%S")


def machine_table(
    factory: Factory, status: list[MachineStatus], title: str = "Machines 機器"
) -> Table:
    by_path = {s.machine: s for s in status}
    table = Table(title=title, expand=True, title_justify="left", pad_edge=False)
    table.add_column("machine", no_wrap=True)
    table.add_column("state 狀態", no_wrap=True)
    table.add_column("since", justify="right")
    table.add_column("good 良品", justify="right")
    table.add_column("scrap 廢品", justify="right")
    table.add_column("kWh", justify="right")
    table.add_column("order 工單")
    for ref in factory.machines():
        s = by_path.get(ref.path)
        state = s.state if s and s.state else "offline"
        label = Text(f"{state} {STATE_ZH.get(state, '')}", style=STATE_STYLE.get(state, ""))
        if s and s.reason:
            label.append(f" {s.reason}", style="dim")
        produces = ref.machine.produces
        table.add_row(
            f"{ref.cell.id}/{ref.machine.id}",
            label,
            _local(s.state_ts if s else None, factory),
            f"{s.good:,}" if s and produces else "",
            f"{s.scrap:,}" if s and produces else "",
            f"{s.kwh:,.0f}" if s and s.kwh is not None else "",
            (s.order or "") if s else "",
        )
    return table


def _line_title(factory: Factory) -> str:
    lines = sorted({f"{r.site.id}/{r.area.id}/{r.line.id}" for r in factory.machines()})
    return "Machines 機器 · " + ", ".join(lines)


def order_summary(orders: list[OrderStatus]) -> Text:
    counts = {"released": 0, "in_progress": 0, "completed": 0}
    for o in orders:
        counts[o.status] = counts.get(o.status, 0) + 1
    return Text(
        f"Orders 工單: {counts['released']} waiting · {counts['in_progress']} in progress · "
        f"{counts['completed']} completed"
    )


def live_view(
    factory: Factory,
    status: list[MachineStatus],
    orders: list[OrderStatus],
    *,
    scenario: str,
    sim_time: dt.datetime,
    stored: int,
    duplicates: int,
    speed: str,
) -> Panel:
    zone = factory.sites[0].zone
    header = Text.assemble(
        (f"{factory.company.name}", "bold"),
        f"  scenario {scenario}  ·  ",
        (sim_time.astimezone(zone).strftime("%a %Y-%m-%d %H:%M:%S %Z"), "bold"),
        f"  ·  speed {speed}  ·  events stored {stored:,}",
        f" ({duplicates:,} duplicates ignored)" if duplicates else "",
    )
    return Panel(
        Group(
            header,
            machine_table(factory, status, title=_line_title(factory)),
            order_summary(orders),
        ),
        title="microfab demo 智能微工廠",
        subtitle="Ctrl-C to stop",
    )


def totals_table(factory: Factory, status: list[MachineStatus]) -> Table:
    by_path = {s.machine: s for s in status}
    table = Table(title="Totals per machine", title_justify="left")
    table.add_column("machine")
    table.add_column("good", justify="right")
    table.add_column("scrap", justify="right")
    table.add_column("events", justify="right")
    for ref in factory.machines():
        s = by_path.get(ref.path)
        if s is None:
            continue
        produces = ref.machine.produces
        table.add_row(
            ref.path,
            f"{s.good:,}" if produces else "-",
            f"{s.scrap:,}" if produces else "-",
            f"{s.events:,}",
        )
    return table
