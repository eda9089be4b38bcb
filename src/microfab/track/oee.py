"""OEE, downtime Pareto and MTBF/MTTR per machine, line, shift and day, from the stored events.

The maths is in :mod:`microfab.model.oee`; this module picks the machines, reads their state
spans and counts from the production read models (:mod:`microfab.store.production_views`), lays
the line's shift calendar over them and groups the result. One period adds up the spans'
working-time seconds in SQL; per shift or day the spans overlapping the range are read and cut.

Which machines: those that make countable units — a machine with an ideal cycle time, or one that
a routing names. Ideal cycle time of a count: the routing's time per unit for the order's product
on that machine when the count names an order and an operation; otherwise the machine's own
``ideal_cycle_s`` (or, lacking it, its shortest routing time).

Counts come from the hourly production read model through :mod:`microfab.track.production`
(one-hour resolution in site time; counts were split into inside and outside working time as they
were stored).

A line's row never sums its stations (docs/production.md): its ``bottleneck`` is the machine with
the longest ideal cycle time (the slowest step sets the line's pace; the later one on a tie) and
gives the row its times (availability and performance), together with the machines that share a
routing step with it (parallel moulders: their times add up; a unit's ideal time is the mean
ideal cycle of the units that step made, each at its product's routing time); its counts are
the line output — good
units at the output operation of their order, scrap counted on any of the line's machines —
inside working time; ``output_good`` is the line output inside and outside working time (the
difference is ``outside_total``'s good part).
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import zoneinfo
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Literal

from microfab.errors import NotFoundError
from microfab.model.calendar import Window, working_windows
from microfab.model.clock_policy import believable_span
from microfab.model.events import format_ts
from microfab.model.factory import Factory, MachineRef
from microfab.model.oee import (
    NO_DATA_REASON,
    PLANNED_STOP,
    RUNNING,
    UNKNOWN,
    UNPLANNED_STOP,
    DowntimeEntry,
    Interval,
    OeeFigures,
    Reliability,
    StateSpan,
    clip_to_windows,
    downtime,
    oee_figures,
    reliability,
)
from microfab.model.timerange import check_range
from microfab.store.event_store import EventStore
from microfab.store.production import time_span
from microfab.store.production_views import (
    EdgeSpan,
    hour_counts,
    product_totals,
    spans_between,
    state_totals,
)
from microfab.track.production import is_output, order_refs, output_operations

By = Literal["machine", "shift", "day"]
Level = Literal["machine", "line"]


@dataclass(frozen=True, slots=True)
class OeeRow:
    """OEE of one machine (or one line) over one period."""

    machine: str
    """Machine path, or the line path (site/area/line) for a line row."""
    line: str
    level: Level
    start: dt.datetime
    end: dt.datetime
    shift: str | None
    day: dt.date | None
    figures: OeeFigures
    bottleneck: str | None = None
    output_good: int | None = None

    def to_json(self) -> dict[str, Any]:
        f = self.figures
        return {
            "machine": self.machine,
            "line": self.line,
            "level": self.level,
            "from": format_ts(self.start),
            "to": format_ts(self.end),
            "shift": self.shift,
            "day": self.day.isoformat() if self.day else None,
            "planned_busy_s": round(f.planned_busy_s, 3),
            "run_s": round(f.run_s, 3),
            "ideal_cycle_s": _round(f.ideal_cycle_s),
            "total": f.total,
            "good": f.good,
            "scrap": f.scrap,
            "outside_total": f.outside_total,
            "availability": _round(f.availability),
            "performance": _round(f.performance),
            "quality": _round(f.quality),
            "oee": _round(f.oee),
            "bottleneck": self.bottleneck,
            "output_good": self.output_good,
        }


@dataclass(frozen=True, slots=True)
class DowntimeRow:
    """Time lost in one state and reason code, over the selected machines."""

    state: str
    reason: str
    category: str
    """``unplanned`` or ``planned`` from the factory's reason-code tree, else ``unplanned``."""
    seconds: float
    stops: int
    share: float
    """Share of all lost time in the selection, 0–1."""
    machines: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "reason": self.reason,
            "category": self.category,
            "seconds": round(self.seconds, 3),
            "stops": self.stops,
            "share": round(self.share, 6),
            "machines": list(self.machines),
        }


@dataclass(frozen=True, slots=True)
class ReliabilityRow:
    machine: str
    failures: int
    run_s: float
    repair_s: float
    mtbf_s: float | None
    mttr_s: float | None

    def to_json(self) -> dict[str, Any]:
        return {
            "machine": self.machine,
            "failures": self.failures,
            "run_s": round(self.run_s, 3),
            "repair_s": round(self.repair_s, 3),
            "mtbf_s": _round(self.mtbf_s, 3),
            "mttr_s": _round(self.mttr_s, 3),
        }


# ---------------------------------------------------------------------------- public functions


def oee_rows(
    store: EventStore,
    factory: Factory,
    *,
    line: str | None = None,
    machine: str | None = None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    by: By = "machine",
    level: Level = "machine",
) -> list[OeeRow]:
    """OEE rows, lines in file order, machines in file order within a line, periods in time order.

    ``start``/``end`` default to the first and last stored event of each line's machines."""
    check_range(start, end)
    rows: list[OeeRow] = []
    grain: _Grain = "whole" if by == "machine" else "hour"
    for history in _histories(store, factory, line, machine, start, end, grain):
        rows += _line_rows(history, by, level)
    return rows


def downtime_pareto(
    store: EventStore,
    factory: Factory,
    *,
    line: str | None = None,
    machine: str | None = None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
) -> list[DowntimeRow]:
    """Lost time by state and reason code over the selected machines, largest first."""
    check_range(start, end)
    seconds: dict[tuple[str, str], float] = defaultdict(float)
    stops: dict[tuple[str, str], int] = defaultdict(int)
    machines: dict[tuple[str, str], set[str]] = defaultdict(set)
    for history in _histories(store, factory, line, machine, start, end, "none"):
        for m in history.machines:
            entries = (
                downtime(m.spans, history.windows)
                if m.summary is None
                else _summary_downtime(m.summary)
            )
            for entry in entries:
                key = (entry.state, entry.reason)
                seconds[key] += entry.seconds
                stops[key] += entry.stops
                machines[key].add(m.ref.path)
    total = sum(seconds.values())
    order = sorted(seconds, key=lambda k: (-seconds[k], k))
    return [
        DowntimeRow(
            state=state,
            reason=reason,
            category=_category(factory, state, reason),
            seconds=seconds[(state, reason)],
            stops=stops[(state, reason)],
            share=seconds[(state, reason)] / total if total else 0.0,
            machines=tuple(sorted(machines[(state, reason)])),
        )
        for state, reason in order
    ]


def reliability_rows(
    store: EventStore,
    factory: Factory,
    *,
    line: str | None = None,
    machine: str | None = None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
) -> list[ReliabilityRow]:
    """MTBF and MTTR per machine within working time."""
    check_range(start, end)
    rows: list[ReliabilityRow] = []
    for history in _histories(store, factory, line, machine, start, end, "none"):
        for m in history.machines:
            r = (
                reliability(m.spans, history.windows)
                if m.summary is None
                else _summary_reliability(m.summary)
            )
            rows.append(
                ReliabilityRow(m.ref.path, r.failures, r.run_s, r.repair_s, r.mtbf_s, r.mttr_s)
            )
    return rows


def _summary_downtime(summary: _StateSummary) -> list[DowntimeEntry]:
    """:func:`downtime` from working-time totals: every state but running and planned stops."""
    entries: dict[tuple[str, str], DowntimeEntry] = {}
    for (state, reason), (seconds, spans) in summary.items():
        if state in (RUNNING, PLANNED_STOP) or seconds <= 0:
            continue
        name = reason or state.upper()
        entry = entries.setdefault((state, name), DowntimeEntry(state, name))
        entry.seconds += seconds
        entry.stops += int(spans)
    return list(entries.values())


def _summary_reliability(summary: _StateSummary) -> Reliability:
    """:func:`reliability` from working-time totals."""
    run = sum(s for (state, _), (s, _) in summary.items() if state == RUNNING)
    repair = sum(s for (state, _), (s, _) in summary.items() if state == UNPLANNED_STOP)
    failures = sum(
        int(n) for (state, _), (s, n) in summary.items() if state == UNPLANNED_STOP and s > 0
    )
    return Reliability(failures=failures, run_s=run, repair_s=repair)


def line_path(ref: MachineRef) -> str:
    return f"{ref.site.id}/{ref.area.id}/{ref.line.id}"


def select_lines(factory: Factory, line: str | None) -> list[list[MachineRef]]:
    """Producing machines grouped by line; ``line`` is a line id or path (site/area/line)."""
    groups: dict[str, list[MachineRef]] = {}
    routed = {m for p in factory.products for op in p.routing for m in op.machines}
    for ref in factory.machines():
        if ref.machine.ideal_cycle_s is None and ref.machine.id not in routed:
            continue
        groups.setdefault(line_path(ref), []).append(ref)
    if line is None:
        return list(groups.values())
    chosen = [refs for path, refs in groups.items() if line in (path, path.rsplit("/", 1)[-1])]
    if not chosen:
        known = ", ".join(groups) or "none"
        raise NotFoundError(f"no production line '{line}' in the factory (lines: {known})")
    if len(chosen) > 1:
        paths = ", ".join(line_path(refs[0]) for refs in chosen)
        raise NotFoundError(f"line id '{line}' is ambiguous; give its path: {paths}")
    return chosen


# ---------------------------------------------------------------------------- loading


@dataclass(frozen=True, slots=True)
class _HourCount:
    """A machine's counts of one order step in one site hour (from the read model)."""

    hour: dt.datetime
    good: int
    scrap: int
    outside_good: int
    outside_scrap: int
    ideal_cycle_s: float
    output: bool
    """Good units here are their order's output (counted at its output operation)."""


_StateSummary = dict[tuple[str, str | None], list[float]]
"""(state, reason) -> [seconds within working time, spans reaching into it], over one period."""


@dataclass(slots=True)
class _MachineHistory:
    ref: MachineRef
    spans: list[StateSpan]
    """The state spans (read when the period is cut into shifts or days)."""
    counts: list[_HourCount]
    nameplate_s: float
    summary: _StateSummary | None = None
    """Or their working-time totals from the read model (one period: the whole range)."""
    parallel: frozenset[str] = frozenset()
    """Ids of the machines sharing a routing step with this one (itself included)."""


@dataclass(slots=True)
class _LineHistory:
    path: str
    zone: zoneinfo.ZoneInfo
    start: dt.datetime
    end: dt.datetime
    windows: list[Interval]
    shift_windows: list[Window]
    machines: list[_MachineHistory]


def _histories(
    store: EventStore,
    factory: Factory,
    line: str | None,
    machine: str | None,
    start: dt.datetime | None,
    end: dt.datetime | None,
    grain: _Grain,
) -> list[_LineHistory]:
    lines = select_lines(factory, line)
    if machine is not None:
        lines = [[r for r in refs if machine in (r.path, r.machine.id)] for refs in lines]
        lines = [refs for refs in lines if refs]
        if not lines:
            raise NotFoundError(
                f"no producing machine '{machine}' in the selection; "
                "give a machine id or path from the factory file"
            )
    known = order_refs(store)
    products = {o.order: o.product for o in known.values() if o.product is not None}
    outputs = output_operations(store, factory, known)
    ideals: dict[tuple[str, str | None, int | None], float] = {}
    last_steps: dict[str | None, int] = {p.sku: p.routing[-1].seq for p in factory.products}
    histories: list[_LineHistory] = []
    calendars: dict[tuple[Any, ...], list[Window]] = {}
    for refs in lines:
        paths = [r.path for r in refs]
        span = (  # (extreme times stored before the clock policy are left out)
            believable_span(time_span(store, paths)) if start is None or end is None else None
        )
        if span is None and (start is None or end is None):
            continue
        first = start or (span[0] if span else None)
        last = end or (span[1] + dt.timedelta(milliseconds=1) if span else None)
        assert first is not None and last is not None
        if last <= first:
            continue
        site = refs[0].site
        calendar = factory.calendar(refs[0].line.calendar)
        key = (refs[0].line.calendar, site.zone.key, site.holidays, first, last)
        if key not in calendars:  # lines on one calendar share their windows
            calendars[key] = working_windows(calendar, first, last, site.zone, site.holidays)
        shift_windows = calendars[key]
        windows = [Interval(w.start, w.end) for w in shift_windows]
        if grain == "hour":  # cut into shifts or days: the spans themselves, from the read model
            stored = spans_between(store, paths, first, last)
            summaries: dict[str, _StateSummary] = {}
        else:
            stored, summaries = {}, _summaries(store, paths, first, last, windows)
        counts_by_machine: dict[str, list[_HourCount]] = defaultdict(list)
        nameplates = {ref.path: _nameplate(factory, ref) for ref in refs}
        by_path = {ref.path: ref for ref in refs}
        for row in _hour_rows(store, factory, paths, first, last, grain, products):
            ref = by_path[row.machine]
            step = (ref.path, row.product, row.operation)
            ideal = ideals.get(step)
            if ideal is None:
                ideal = ideals[step] = _ideal(
                    factory, ref, row.product, row.operation, nameplates[ref.path]
                )
            output = (
                row.operation == last_steps.get(row.product)
                if row.routed
                else is_output(row.order, row.operation, outputs)
            )
            counts_by_machine[ref.path].append(
                _HourCount(
                    row.hour,
                    row.good,
                    row.scrap,
                    row.outside_good,
                    row.outside_scrap,
                    ideal,
                    output,
                )
            )
        machines = []
        for ref in refs:
            machines.append(
                _MachineHistory(
                    ref=ref,
                    spans=_clipped(stored.get(ref.path, []), first, last),
                    counts=counts_by_machine[ref.path],
                    nameplate_s=nameplates[ref.path],
                    summary=summaries.get(ref.path),
                    parallel=frozenset(
                        peer
                        for p in factory.products
                        for op in p.routing
                        if ref.machine.id in op.machines
                        for peer in op.machines
                    ),
                )
            )
        histories.append(
            _LineHistory(
                line_path(refs[0]), site.zone, first, last, windows, shift_windows, machines
            )
        )
    return histories


def _clipped(stored: list[EdgeSpan], first: dt.datetime, last: dt.datetime) -> list[StateSpan]:
    """The machine's states over ``[first, last)`` from its stored spans: each clipped to the
    range, the time before its first span :data:`UNKNOWN` (no state reported yet)."""
    spans: list[StateSpan] = []
    at = first
    for span in stored:
        begin, finish = max(span.start, first), last if span.end is None else min(span.end, last)
        if begin > at:
            spans.append(StateSpan(at, begin, UNKNOWN, NO_DATA_REASON))
        if begin < finish:
            spans.append(StateSpan(begin, finish, span.state, span.reason))
            at = finish
    if at < last:  # no state reported at all (spans are contiguous up to the open one)
        spans.append(StateSpan(at, last, UNKNOWN, NO_DATA_REASON))
    return spans


def _summaries(
    store: EventStore,
    paths: list[str],
    first: dt.datetime,
    last: dt.datetime,
    windows: list[Interval],
) -> dict[str, _StateSummary]:
    """Per machine, working-time seconds and spans per state and reason over ``[first, last)``:
    whole spans added up by the read model, the spans over its edges clipped here, and the time
    before a machine's first state change as unknown (no data), as :func:`state_spans` has it."""
    totals, edges = state_totals(store, paths, first, last)
    out: dict[str, _StateSummary] = {path: {} for path in paths}
    for t in totals:
        cell = out[t.machine].setdefault((t.state, t.reason), [0.0, 0])
        cell[0] += t.inside_s
        cell[1] += t.spans
    starts = [w.start for w in windows]
    before = list(itertools.accumulate((w.seconds for w in windows), initial=0.0))

    def working_before(t: dt.datetime) -> float:
        """Working seconds in the windows before ``t`` (prefix sums: a long open span costs
        no more than a short one)."""
        i = bisect.bisect_right(starts, t) - 1
        if i < 0:
            return 0.0
        return before[i] + min((t - windows[i].start).total_seconds(), windows[i].seconds)

    for e in edges:
        a, b = max(e.start, first), min(e.end or last, last)
        if a >= b:
            continue
        inside = working_before(b) - working_before(a)
        cell = out[e.machine].setdefault((e.state, e.reason), [0.0, 0])
        cell[0] += inside
        cell[1] += 1 if inside > 0 else 0
    working = sum(w.seconds for w in windows)
    for summary in out.values():
        unknown = working - sum(seconds for seconds, _ in summary.values())
        if unknown > 1e-6:
            summary[(UNKNOWN, NO_DATA_REASON)] = [unknown, 1]
    return out


def _summary_figures(summary: _StateSummary, working_s: float) -> OeeFigures:
    figures = OeeFigures(working_s=working_s)
    for (state, _), (seconds, _) in summary.items():
        if seconds > 0:
            figures.state_s[state] = figures.state_s.get(state, 0.0) + seconds
    figures.run_s = figures.state_s.get(RUNNING, 0.0)
    figures.planned_stop_s = figures.state_s.get(PLANNED_STOP, 0.0)
    return figures


_Grain = Literal["hour", "whole", "none"]
"""Counts per site hour, summed over the whole range (one period), or not read at all."""


@dataclass(frozen=True, slots=True)
class _CountRow:
    """Counts of one machine and step: of a routed product's orders (``order`` None), or of one
    order (its ``product`` as the store knows it)."""

    machine: str
    hour: dt.datetime
    product: str | None
    order: str | None
    operation: int | None
    good: int
    scrap: int
    outside_good: int
    outside_scrap: int
    routed: bool = False
    """Summed over a routed product's orders (``order`` None, ``product`` set)."""


def _hour_rows(
    store: EventStore,
    factory: Factory,
    paths: list[str],
    first: dt.datetime,
    last: dt.datetime,
    grain: _Grain,
    products: dict[str, str],
) -> list[_CountRow]:
    if grain == "none":
        return []
    if grain == "hour":
        return [
            _CountRow(
                r.machine,
                r.hour,
                products.get(r.order) if r.order is not None else None,
                r.order,
                r.operation,
                r.good,
                r.scrap,
                r.outside_good,
                r.outside_scrap,
            )
            for r in hour_counts(store, first, last, paths)
        ]
    routed = [p.sku for p in factory.products if p.routing]
    rows: list[_CountRow] = []
    for t in product_totals(store, first, last, paths, routed):
        by_product = t.product is not None
        rows.append(
            _CountRow(
                t.machine,
                first,
                t.product if by_product else products.get(t.order or ""),
                t.order,
                t.operation,
                t.good,
                t.scrap,
                t.outside_good,
                t.outside_scrap,
                routed=by_product,
            )
        )
    return rows


def _nameplate(factory: Factory, ref: MachineRef) -> float:
    if ref.machine.ideal_cycle_s is not None:
        return ref.machine.ideal_cycle_s
    times = [
        op.machines[ref.machine.id]
        for p in factory.products
        for op in p.routing
        if ref.machine.id in op.machines
    ]
    return min(times)


def _ideal(
    factory: Factory,
    ref: MachineRef,
    sku: str | None,
    operation: int | None,
    nameplate: float,
) -> float:
    if sku is None or operation is None:
        return nameplate
    try:
        product = factory.product(sku)
    except KeyError:
        return nameplate
    for op in product.routing:
        if op.seq == operation and ref.machine.id in op.machines:
            return op.machines[ref.machine.id]
    return nameplate


# ---------------------------------------------------------------------------- grouping


@dataclass(frozen=True, slots=True)
class _Period:
    start: dt.datetime
    end: dt.datetime
    windows: list[Interval]
    shift: str | None
    day: dt.date | None


def _periods(history: _LineHistory, by: By) -> list[_Period]:
    if by == "machine":
        return [_Period(history.start, history.end, history.windows, None, None)]
    groups: dict[tuple[dt.date, str | None], list[Interval]] = {}
    if by == "shift":
        for w in history.shift_windows:
            groups.setdefault((w.day, w.shift), []).append(Interval(w.start, w.end))
    else:
        for w in history.shift_windows:
            for piece, day in _split_at_midnight(w, history.zone):
                groups.setdefault((day, None), []).append(piece)
    periods = []
    for (day, shift), windows in groups.items():
        if by == "day":
            begin = dt.datetime.combine(day, dt.time(0), history.zone).astimezone(dt.UTC)
            finish = begin + dt.timedelta(days=1)
            begin, finish = max(begin, history.start), min(finish, history.end)
        else:
            begin, finish = windows[0].start, windows[-1].end
        periods.append(_Period(begin, finish, windows, shift, day))
    periods.sort(key=lambda p: (p.start, p.shift or ""))
    return periods


def _split_at_midnight(w: Window, zone: zoneinfo.ZoneInfo) -> list[tuple[Interval, dt.date]]:
    pieces = []
    start = w.start
    while start < w.end:
        local_day = start.astimezone(zone).date()
        midnight = dt.datetime.combine(local_day + dt.timedelta(days=1), dt.time(0), zone)
        stop = min(w.end, midnight.astimezone(dt.UTC))
        pieces.append((Interval(start, stop), local_day))
        start = stop
    return pieces


def _line_rows(history: _LineHistory, by: By, level: Level) -> list[OeeRow]:
    rows: list[OeeRow] = []
    bottleneck = max(enumerate(history.machines), key=lambda pair: (pair[1].nameplate_s, pair[0]))[
        1
    ]
    periods = _periods(history, by)
    working = [sum(w.seconds for w in period.windows) for period in periods]
    buckets: dict[tuple[int, int], list[_HourCount]] = defaultdict(list)
    for i, m in enumerate(history.machines):
        for c in m.counts:
            at = _period_of(c.hour, history, periods)
            if at is not None:
                buckets[(at, i)].append(c)
    for p, period in enumerate(periods):
        per_machine: list[tuple[_MachineHistory, OeeFigures]] = []
        for i, m in enumerate(history.machines):
            counts = buckets.get((p, i), [])
            if m.summary is not None:
                figures = _summary_figures(m.summary, working[p])
            else:
                figures = oee_figures(clip_to_windows(m.spans, period.windows), period.windows, [])
            for c in counts:
                figures.good += c.good
                figures.scrap += c.scrap
                figures.ideal_work_s += c.ideal_cycle_s * (c.good + c.scrap)
                figures.outside_total += c.outside_good + c.outside_scrap
            per_machine.append((m, figures))
        if level == "machine":
            rows += [
                OeeRow(
                    m.ref.path,
                    history.path,
                    "machine",
                    period.start,
                    period.end,
                    period.shift,
                    period.day,
                    figures,
                )
                for m, figures in per_machine
            ]
        else:
            line_counts = [c for i in range(len(history.machines)) for c in buckets.get((p, i), [])]
            rows.append(_line_row(history, period, line_counts, bottleneck, per_machine))
    return rows


def _period_of(hour: dt.datetime, history: _LineHistory, periods: list[_Period]) -> int | None:
    """Index of the period a site hour's counts belong to: the one holding the hour's start (or
    the range's start, for the hour the range begins in)."""
    at = max(hour, history.start)
    starts = [p.start for p in periods]
    i: int = bisect.bisect_right(starts, at) - 1
    if i >= 0 and at < periods[i].end:
        return i
    return 0 if len(periods) == 1 else None


def _line_row(
    history: _LineHistory,
    period: _Period,
    counts: list[_HourCount],
    bottleneck: _MachineHistory,
    per_machine: list[tuple[_MachineHistory, OeeFigures]],
) -> OeeRow:
    """The line's row: the bottleneck step's times, the line output's counts (module
    docstring)."""
    group = [
        (m, f) for m, f in per_machine if m is bottleneck or m.ref.machine.id in bottleneck.parallel
    ]
    total = OeeFigures()
    for _, pace in group:
        total.working_s += pace.working_s
        total.planned_stop_s += pace.planned_stop_s
        total.run_s += pace.run_s
        for state, seconds in pace.state_s.items():
            total.state_s[state] = total.state_s.get(state, 0.0) + seconds
    output = 0
    for c in counts:
        total.scrap += c.scrap
        total.outside_total += c.outside_scrap
        if c.output:
            total.good += c.good
            total.outside_total += c.outside_good
            output += c.good + c.outside_good
    # performance is the bottleneck step's own: the ideal time of the units it made in working
    # time over its run time (a chiller batch that ends after the shift is counted outside, and
    # reaches the line's output the next morning: the output's count would not match its time)
    if sum(f.total for _, f in group):
        total.ideal_work_s = sum(f.ideal_work_s for _, f in group)
    else:
        total.ideal_work_s = sum(m.nameplate_s for m, _ in group) / len(group) * total.total
    return OeeRow(
        history.path,
        history.path,
        "line",
        period.start,
        period.end,
        period.shift,
        period.day,
        total,
        bottleneck=bottleneck.ref.path,
        output_good=output,
    )


def _category(factory: Factory, state: str, reason: str) -> str:
    found = factory.downtime_reasons.category_of(reason)
    if found is not None:
        return found.value
    return "planned" if state == PLANNED_STOP else "unplanned"


def _round(value: float | None, digits: int = 6) -> float | None:
    return None if value is None else round(value, digits)
