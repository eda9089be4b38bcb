"""The command line's Rich consoles and terminal views: the live factory summary, end-of-run totals.

``out`` (stdout) and ``err`` (stderr) are the only consoles: every command prints through them.
Both views read the store's read models (never the simulator), so what they show is what was
stored.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from microfab.model.factory import Factory
from microfab.store.event_store import MachineStatus, OrderStatus

out = Console(soft_wrap=True, markup=False)  # user text (names, ids) is never markup
err = Console(stderr=True, soft_wrap=True, markup=False)

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
    counts = {"created": 0, "released": 0, "in_progress": 0, "completed": 0, "cancelled": 0}
    for o in orders:
        counts[o.status] = counts.get(o.status, 0) + 1
    waiting = counts["created"] + counts["released"]
    return Text(
        f"Orders 工單: {waiting} waiting · {counts['in_progress']} in progress · "
        f"{counts['completed']} completed"
        + (f" · {counts['cancelled']} cancelled" if counts["cancelled"] else "")
    )


@dataclass(frozen=True, slots=True)
class MqttPath:
    """How far the demo's events have come: simulator → MQTT broker → ingest worker → store."""

    broker: str
    """The broker's URL (password masked)."""
    embedded: bool
    """Whether it is microfab's own broker, started for this run."""
    published: int
    """Events the simulator handed to the MQTT publisher."""
    waiting: int
    """Messages the broker has not acknowledged yet."""
    ingested: int
    """Events the ingest worker has committed to the store (new ones and duplicates)."""
    dead_letters: int
    """Messages (or batch elements) the ingest worker could not store as events."""


def mqtt_line(path: MqttPath) -> Text:
    """One line: the MQTT path and how many events have passed each point of it."""
    line = Text.assemble(
        ("MQTT", "bold"),
        f"  simulator → {path.broker}{' (embedded broker)' if path.embedded else ''}"
        " → ingest → store  ·  ",
        f"published {path.published:,}  ·  ingested {path.ingested:,}",
        no_wrap=False,  # wrap even on a soft-wrapping console: the counts must stay visible
        overflow="fold",
    )
    if path.waiting:
        line.append(f"  ·  waiting for the broker {path.waiting:,}", style="yellow")
    line.append("  ·  ")
    line.append(
        f"dead letters {path.dead_letters:,}", style="bold red" if path.dead_letters else ""
    )
    return line


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
    mqtt: MqttPath | None = None,
) -> Panel:
    """The demo's live panel; ``mqtt`` adds the line about the MQTT path (absent with --direct)."""
    zone = factory.sites[0].zone
    header = Text.assemble(
        (f"{factory.company.name}", "bold"),
        f"  scenario {scenario}  ·  ",
        (sim_time.astimezone(zone).strftime("%a %Y-%m-%d %H:%M:%S %Z"), "bold"),
        f"  ·  speed {speed}  ·  events stored {stored:,}",
        f" ({duplicates:,} duplicates ignored)" if duplicates else "",
        no_wrap=False,
        overflow="fold",
    )
    parts: list[Text | Table] = [header]
    if mqtt is not None:
        parts.append(mqtt_line(mqtt))
    parts += [machine_table(factory, status, title=_line_title(factory)), order_summary(orders)]
    return Panel(
        Group(*parts),
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
