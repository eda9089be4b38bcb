"""The shift report: one line's OEE, downtime, orders and operator entries for one shift.

Rendered as a printable HTML page by the reports layer (``reports/templates/shift.html``, A4 print
CSS inlined so the page stands alone) and printed to PDF by :func:`microfab.reports.print_pdf`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from microfab.errors import NotFoundError, TimeRangeError
from microfab.model.timerange import parse_time
from microfab.reports import render
from microfab.store.event_store import StoredEvent
from microfab.track import event_query
from microfab.track.dashboard import local_midnight, reason_names
from microfab.track.oee import downtime_pareto, oee_rows, reliability_rows
from microfab.track.plant import LineRef, Plant
from microfab.track.shift_report import day_report
from microfab.web.labels import status_words


@dataclass(slots=True)
class OrderLine:
    order: str
    product: str | None
    quantity: int | None
    status: str
    good: int
    scrap: int


@dataclass(slots=True)
class ShiftReport:
    company: str
    company_zh: str
    line: LineRef
    day: str
    shift: str
    start: dt.datetime
    end: dt.datetime
    clock: dt.datetime
    machines: list[dict[str, Any]]
    line_row: dict[str, Any] | None
    pareto: list[dict[str, Any]]
    reliability: list[dict[str, Any]]
    orders: list[OrderLine]
    entries: list[StoredEvent]
    reason_names: dict[str, tuple[str, str]]
    shifts: list[tuple[str, str]]
    """Other shifts to choose from: (day, shift), newest first."""

    def local(self, value: dt.datetime | None, fmt: str = "%H:%M") -> str:
        if value is None:
            return ""
        return value.astimezone(self.line.site_zone).strftime(fmt)


def _pick_line(plant: Plant, line: str | None) -> LineRef:
    if line is not None:
        return plant.line(line)
    lines = [ln for ln in plant.lines() if any(r.machine.produces for r in ln.machines)]
    if not lines:
        raise NotFoundError("the factory has no line with producing machines")
    return lines[0]


def build_report(
    plant: Plant, *, line: str | None = None, day: str | None = None, shift: str | None = None
) -> ShiftReport:
    """The report of ``shift`` on ``day`` (default: the shift running now, or the last one)."""
    factory = plant.factory()
    chosen = _pick_line(plant, line)
    zone = chosen.site_zone
    clock = plant.now()
    end_cap = clock + dt.timedelta(milliseconds=1)
    if day is not None:
        first = parse_time(day, zone, field="day")
        first = local_midnight(first, zone)
        start, end = first, min(first + dt.timedelta(days=2), end_cap)
        if end <= start:
            raise TimeRangeError(f"day {day} is after the plant clock; nothing to report yet")
    else:
        start, end = local_midnight(clock - dt.timedelta(days=2), zone), end_cap
    line_rows = oee_rows(
        plant.store, factory, line=chosen.path, start=start, end=end, by="shift", level="line"
    )
    available = [(r.day.isoformat() if r.day else "", r.shift or "") for r in line_rows]
    wanted = [
        r
        for r in line_rows
        if (day is None or (r.day and r.day.isoformat() == day[:10]))
        and (shift is None or r.shift == shift)
    ]
    if not wanted:
        shown = ", ".join(f"{d} {s}" for d, s in available[-6:]) or "none"
        raise NotFoundError(
            f"no shift {shift or ''} on {day or 'the last two days'} for line {chosen.path} "
            f"(shifts: {shown})".replace("  ", " ")
        )
    row = wanted[-1]
    period_start, period_end = row.start, row.end
    machine_rows = [
        r.to_json()
        for r in oee_rows(plant.store, factory, line=chosen.path, start=start, end=end, by="shift")
        if (r.day, r.shift) == (row.day, row.shift)
    ]
    pareto = downtime_pareto(
        plant.store, factory, line=chosen.path, start=period_start, end=period_end
    )
    reliability = reliability_rows(
        plant.store, factory, line=chosen.path, start=period_start, end=period_end
    )
    paths = [ref.path for ref in chosen.machines]
    made = day_report(
        plant.store,
        factory,
        row.day or period_start.date(),
        chosen.path,
        start=period_start,
        end=period_end,
    )
    status = {o.order: o for o in plant.store.order_status()}
    orders = [
        OrderLine(
            order=o.order,
            product=o.product,
            quantity=o.quantity,
            status=status[o.order].status if o.order in status else "unknown",
            good=o.good,
            scrap=o.scrap,
        )
        for o in made.orders
    ]
    entries = event_query.operator_entries(
        plant.store, machines=paths, start=period_start, end=period_end, limit=500
    )
    return ShiftReport(
        company=factory.company.name,
        company_zh=factory.company.name_zh,
        line=chosen,
        day=row.day.isoformat() if row.day else "",
        shift=row.shift or "",
        start=period_start,
        end=period_end,
        clock=clock,
        machines=machine_rows,
        line_row=row.to_json(),
        pareto=[r.to_json() for r in pareto],
        reliability=[r.to_json() for r in reliability],
        orders=orders,
        entries=entries,
        reason_names=reason_names(factory),
        shifts=list(reversed(available)),
    )


def render_html(report: ShiftReport) -> str:
    """The printable page of ``report`` (``reports/templates/shift.html``, print CSS inline)."""
    return render("shift.html", r=report, words=status_words())
