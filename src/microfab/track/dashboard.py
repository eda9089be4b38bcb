"""What the dashboard shows, read from the store in one go: a :class:`Snapshot` of the plant.

Machine tiles come from the ``machine_status`` read model (state, reason, order) and today's
counts summed in SQL; OEE, the downtime Pareto and the OEE-per-shift trend are
:mod:`microfab.track.oee`'s rows; the order board is :mod:`microfab.track.orders`' (status,
progress, due, lateness). "Today" runs
from the site's local midnight to the plant clock (:mod:`microfab.track.plant`), so the dashboard's
OEE equals ``microfab oee --from <from> --to <to>`` for the ``from``/``to`` it reports.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass, field
from typing import Any

from microfab.console import STATE_ZH
from microfab.model.clock_policy import clamp_time
from microfab.model.events import format_ts
from microfab.model.factory import Factory, MachineRef, ReasonCode
from microfab.model.oee import NO_DATA_REASON
from microfab.store.event_store import MachineStatus
from microfab.track.oee import OeeRow, downtime_pareto, oee_rows
from microfab.track.orders import WorkOrderView, list_orders, plan_of
from microfab.track.plant import LineRef, Plant
from microfab.track.production import hourly_line_output, station_totals_all

STATE_EN = {
    "running": "Running",
    "idle": "Idle",
    "setup": "Setup",
    "planned_stop": "Planned stop",
    "unplanned_stop": "Breakdown",
    "micro_stop": "Micro-stop",
    "offline": "Offline",
    "nodata": "No data",
}
"""The machine states' English names (Chinese: :data:`microfab.console.STATE_ZH`)."""

TREND_HOURS = 24
SHIFT_DAYS = 7
DONE_SHOWN = 12


@dataclass(frozen=True, slots=True)
class Tile:
    """One machine on the line overview."""

    ref: MachineRef
    state: str
    """The machine state, or ``nodata`` before its first report."""
    reason: str | None
    reason_name: tuple[str, str] | None
    since: dt.datetime | None
    order: str | None
    good: int
    scrap: int

    @property
    def path(self) -> str:
        return self.ref.path

    @property
    def name(self) -> str:
        return self.ref.machine.name or self.ref.machine.id

    @property
    def produces(self) -> bool:
        return self.ref.machine.produces

    def to_json(self) -> dict[str, Any]:
        return {
            "machine": self.path,
            "state": self.state,
            "reason": self.reason,
            "since": format_ts(self.since) if self.since else None,
            "order": self.order,
            "good": self.good,
            "scrap": self.scrap,
        }


@dataclass(frozen=True, slots=True)
class LinePanel:
    line: LineRef
    tiles: list[Tile]
    oee: dict[str, Any] | None
    """The line's OEE row for today (``OeeRow.to_json``), or None."""


@dataclass(frozen=True, slots=True)
class OrderCard:
    order: str
    product: str | None
    quantity: int | None
    status: str
    good: int
    scrap: int
    machine: str | None
    operation: int | None
    released: dt.datetime | None
    completed: dt.datetime | None
    due: dt.datetime | None
    late: bool
    """Open and past due (or expected to finish after it), or completed after it."""
    progress: float | None
    expected: dt.datetime | None = None
    """The order's one expected completion (the plan's once there is a plan), open orders."""

    def to_json(self) -> dict[str, Any]:
        return {
            "order": self.order,
            "product": self.product,
            "quantity": self.quantity,
            "status": self.status,
            "good": self.good,
            "scrap": self.scrap,
            "machine": self.machine,
            "operation": self.operation,
            "released": format_ts(self.released) if self.released else None,
            "completed": format_ts(self.completed) if self.completed else None,
            "due": format_ts(self.due) if self.due else None,
            "late": self.late,
            "progress": None if self.progress is None else round(self.progress, 4),
            "expected": format_ts(self.expected) if self.expected else None,
        }


@dataclass(slots=True)
class OrderBoard:
    queued: list[OrderCard] = field(default_factory=list)
    in_progress: list[OrderCard] = field(default_factory=list)
    done: list[OrderCard] = field(default_factory=list)
    done_total: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "queued": [c.to_json() for c in self.queued],
            "in_progress": [c.to_json() for c in self.in_progress],
            "done": [c.to_json() for c in self.done],
            "done_total": self.done_total,
        }


@dataclass(slots=True)
class Snapshot:
    """Everything on the dashboard, as of one store sequence number."""

    seq: int
    factory_version: int | None
    company: str
    company_zh: str
    zone: zoneinfo.ZoneInfo
    clock: dt.datetime
    start: dt.datetime
    end: dt.datetime
    lines: list[LinePanel]
    board: OrderBoard
    oee: list[dict[str, Any]]
    """Today's OEE rows: every machine's, then every line's (``OeeRow.to_json``)."""
    pareto: list[dict[str, Any]]
    output: dict[str, Any]
    shifts: dict[str, Any]
    reason_names: dict[str, tuple[str, str]]

    def local(self, value: dt.datetime | None, fmt: str = "%H:%M") -> str:
        return "" if value is None else clamp_time(value).astimezone(self.zone).strftime(fmt)

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "factory_version": self.factory_version,
            "clock": format_ts(self.clock),
            "from": format_ts(self.start),
            "to": format_ts(self.end),
            "machines": [tile.to_json() for line in self.lines for tile in line.tiles],
            "orders": self.board.to_json(),
            "oee": self.oee,
            "downtime": self.pareto,
            "output_per_hour": self.output,
            "oee_per_shift": self.shifts,
        }

    def charts(self) -> dict[str, Any]:
        """The data the page's ECharts draw (labels are picked in the browser)."""
        machine_rows = [r for r in self.oee if r["level"] == "machine"]
        line_rows = [r for r in self.oee if r["level"] == "line"]
        bars = [
            {
                "name": r["machine"].rsplit("/", 1)[-1],
                "line": r["level"] == "line",
                "a": r["availability"],
                "p": r["performance"],
                "q": r["quality"],
                "oee": r["oee"],
            }
            for r in [*machine_rows, *line_rows]
        ]
        pareto = [
            {
                "reason": r["reason"],
                "name": list(self.reason_names.get(r["reason"], (r["reason"], r["reason"]))),
                "minutes": round(r["seconds"] / 60, 1),
                "share": r["share"],
            }
            for r in self.pareto[:12]
        ]
        return {"oee": bars, "pareto": pareto, "output": self.output, "shifts": self.shifts}


# ---------------------------------------------------------------------------- building


def local_midnight(value: dt.datetime, zone: zoneinfo.ZoneInfo) -> dt.datetime:
    day = value.astimezone(zone).date()
    return dt.datetime.combine(day, dt.time(0), zone).astimezone(dt.UTC)


def today(plant: Plant, factory: Factory) -> tuple[dt.datetime, dt.datetime, dt.datetime]:
    """(plant clock, local midnight before it, end): the dashboard's period."""
    clock = plant.now()
    zone = plant.zone(factory)
    return clock, local_midnight(clock, zone), clock + dt.timedelta(milliseconds=1)


def reason_names(factory: Factory) -> dict[str, tuple[str, str]]:
    names: dict[str, tuple[str, str]] = {}

    def walk(node: ReasonCode) -> None:
        names[node.code] = (f"{node.code} {node.name}", f"{node.code} {node.name_zh or node.name}")
        for child in node.children:
            walk(child)

    for root in [*factory.downtime_reasons.planned, *factory.downtime_reasons.unplanned]:
        walk(root)
    # a stop reported without a reason is listed under its state (model.oee.downtime)
    for state, en in STATE_EN.items():
        zh = STATE_ZH.get(state)
        if zh and state.upper() not in names:
            names[state.upper()] = (f"{en}, no reason given", f"{zh}（未註明原因）")
    names.setdefault(NO_DATA_REASON, ("No data from the machine", "機器沒有數據"))
    return names


def _tiles(
    line: LineRef,
    status: dict[str, MachineStatus],
    counted: dict[str, tuple[int, int]],
    names: dict[str, tuple[str, str]],
) -> list[Tile]:
    tiles = []
    for ref in line.machines:
        s = status.get(ref.path)
        good, scrap = counted.get(ref.path, (0, 0))
        reason = s.reason if s else None
        tiles.append(
            Tile(
                ref=ref,
                state=(s.state if s and s.state else "nodata"),
                reason=reason,
                reason_name=names.get(reason) if reason else None,
                since=s.state_ts if s else None,
                order=s.order if s else None,
                good=good,
                scrap=scrap,
            )
        )
    return tiles


def _counts_today(
    plant: Plant, paths: list[str], start: dt.datetime, end: dt.datetime
) -> dict[str, tuple[int, int]]:
    return station_totals_all(plant.store, paths, start, end)


def _board(views: list[WorkOrderView]) -> OrderBoard:
    board = OrderBoard()
    done: list[OrderCard] = []
    for v in views:
        card = OrderCard(
            order=v.order,
            product=v.product,
            quantity=v.quantity,
            status=v.status,
            good=v.good,
            scrap=v.scrap,
            machine=v.machine,
            operation=v.operation,
            released=v.released,
            completed=v.completed,
            due=v.due,
            late=v.late or v.completed_late,
            progress=v.progress,
            expected=v.expected_completion if v.open else None,
        )
        if v.status in ("created", "released"):
            board.queued.append(card)
        elif v.status == "in_progress":
            board.in_progress.append(card)
        elif v.status == "completed":
            done.append(card)
    far = dt.datetime.max.replace(tzinfo=dt.UTC)
    board.queued.sort(key=lambda c: (c.due or far, c.released or far, c.order))
    board.in_progress.sort(key=lambda c: (c.due or far, c.released or far, c.order))
    done.sort(key=lambda c: (c.completed or far, c.order), reverse=True)
    board.done, board.done_total = done[:DONE_SHOWN], len(done)
    return board


def _output_per_hour(
    plant: Plant,
    factory: Factory,
    lines: list[LineRef],
    line_rows: list[OeeRow],
    clock: dt.datetime,
) -> dict[str, Any]:
    """The line output (docs/production.md) per local hour, last 24 h."""
    zone = lines[0].site_zone if lines else dt.UTC
    local = clock.astimezone(zone).replace(minute=0, second=0, microsecond=0)
    hours = [local - dt.timedelta(hours=TREND_HOURS - 1 - i) for i in range(TREND_HOURS)]
    edges = [h.astimezone(dt.UTC) for h in hours]
    series = []
    for row in line_rows:
        if row.bottleneck is None:
            continue
        values = hourly_line_output(plant.store, factory, row.machine, edges)
        series.append({"line": row.machine, "machine": row.bottleneck, "values": values})
    return {"hours": [h.strftime("%H:%M") for h in hours], "series": series}


def _oee_per_shift(
    plant: Plant, factory: Factory, start: dt.datetime, end: dt.datetime
) -> dict[str, Any]:
    rows = oee_rows(plant.store, factory, start=start, end=end, by="shift", level="line")
    zone = plant.zone(factory)
    labels: list[str] = []
    keys: list[tuple[str, str]] = []
    for r in rows:
        key = (r.day.isoformat() if r.day else "", r.shift or "")
        if key not in keys:
            keys.append(key)
            labels.append(f"{r.start.astimezone(zone):%a %d/%m} {r.shift or ''}".strip())
    by_line: dict[str, list[float | None]] = {}
    for r in rows:
        key = (r.day.isoformat() if r.day else "", r.shift or "")
        values = by_line.setdefault(r.machine, [None] * len(keys))
        oee = r.figures.oee
        values[keys.index(key)] = None if oee is None else round(oee, 4)
    first = min(
        (
            next((i for i, v in enumerate(vs) if v is not None), len(keys))
            for vs in by_line.values()
        ),
        default=0,
    )  # shifts before the first with data are left out
    return {
        "shifts": labels[first:],
        "series": [{"line": line, "values": values[first:]} for line, values in by_line.items()],
    }


def build(plant: Plant, *, seq: int | None = None) -> Snapshot:
    """Read everything the dashboard shows (a few indexed queries)."""
    seq = plant.store.last_seq() if seq is None else seq
    factory = plant.factory()
    version = plant.factory_version()
    clock, start, end = today(plant, factory)
    zone = plant.zone(factory)
    lines = plant.lines(factory)
    names = reason_names(factory)
    status = {s.machine: s for s in plant.store.machine_status()}
    paths = [ref.path for ln in lines for ref in ln.machines if ref.machine.produces]
    counted = _counts_today(plant, paths, start, end) if paths else {}
    machine_rows = oee_rows(plant.store, factory, start=start, end=end)
    line_rows = oee_rows(plant.store, factory, start=start, end=end, level="line")
    line_json = {r.machine: r.to_json() for r in line_rows}
    panels = [
        LinePanel(line=ln, tiles=_tiles(ln, status, counted, names), oee=line_json.get(ln.path))
        for ln in lines
    ]
    orders = list_orders(plant.store, factory, now=clock, plan=plan_of(plant))
    pareto = [r.to_json() for r in downtime_pareto(plant.store, factory, start=start, end=end)]
    shift_start = local_midnight(clock - dt.timedelta(days=SHIFT_DAYS - 1), zone)
    return Snapshot(
        seq=seq,
        factory_version=version,
        company=factory.company.name,
        company_zh=factory.company.name_zh,
        zone=zone,
        clock=clock,
        start=start,
        end=end,
        lines=panels,
        board=_board(orders),
        oee=[r.to_json() for r in machine_rows] + list(line_json.values()),
        pareto=pareto,
        output=_output_per_hour(plant, factory, lines, line_rows, clock),
        shifts=_oee_per_shift(plant, factory, shift_start, end),
        reason_names=names,
    )
