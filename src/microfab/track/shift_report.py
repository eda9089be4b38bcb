"""One line's production of one site day, as the shift report prints it and
``microfab report shift --json`` gives it: line output, each order's good and scrap made that
day, each station's own counts.

Every figure comes from :mod:`microfab.track.production` (definitions in docs/production.md):
an order's good is what reached its output operation on the line that day (inside or outside
working time), its scrap what was scrapped for it at any of the line's operations; the line's
``output_good`` is the sum of its orders' good; a station's ``good``/``scrap`` are its counts
inside working time (what OEE uses) and ``outside_total`` its counts outside it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from microfab.model.events import format_ts
from microfab.model.factory import Factory
from microfab.store.event_store import EventStore
from microfab.track.oee import line_path, select_lines
from microfab.track.production import OrderOutput, StationCount, order_outputs, station_counts


@dataclass(frozen=True, slots=True)
class DayReport:
    day: dt.date
    line: str
    start: dt.datetime
    end: dt.datetime
    orders: list[OrderOutput]
    machines: list[StationCount]

    @property
    def output_good(self) -> int:
        return sum(o.good for o in self.orders)

    def to_json(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat(),
            "line": self.line,
            "from": format_ts(self.start),
            "to": format_ts(self.end),
            "output_good": self.output_good,
            "orders": [o.to_json() for o in self.orders],
            "machines": [m.to_json() for m in self.machines],
        }


def day_bounds(day: dt.date, factory: Factory, line: str | None) -> tuple[dt.datetime, dt.datetime]:
    """Local midnight to the next local midnight of ``day`` at the line's site, in UTC."""
    refs = select_lines(factory, line)[0]
    zone = refs[0].site.zone
    start = dt.datetime.combine(day, dt.time(0), zone)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), zone)
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


def day_report(
    store: EventStore,
    factory: Factory,
    day: dt.date,
    line: str | None = None,
    *,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
) -> DayReport:
    """The line's production over ``day`` in site time (or over ``[start, end)`` when given, e.g.
    one shift); ``line`` is a line id or path, default the factory's first producing line."""
    refs = select_lines(factory, line)[0]
    first, last = day_bounds(day, factory, line_path(refs[0]))
    first, last = start or first, end or last
    machines = [ref.path for ref in refs]
    outputs = order_outputs(store, factory, start=first, end=last, machines=machines)
    stations = station_counts(store, machines, first, last)
    return DayReport(
        day=day,
        line=line_path(refs[0]),
        start=first,
        end=last,
        orders=list(outputs.values()),
        machines=[stations.get(m) or StationCount(m, 0, 0, 0) for m in machines],
    )
