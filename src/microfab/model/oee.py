"""OEE per ISO 22400-2, from state changes and part counts. Pure: no I/O.

The inputs are what a machine reports: when it changed state (so the work is proportional to the
number of transitions, not to samples) and how many units it counted; plus the planned working
windows of its line's calendar (shifts less breaks, public holidays and closures; see
:mod:`microfab.model.calendar`).

Definitions (ISO 22400-2, as microfab applies them)::

    planned busy time  = working windows − time in planned_stop within them
    run time           = time in running within the working windows
    availability       = run time / planned busy time
    performance        = ideal cycle time × total count / run time
    quality            = good count / total count
    OEE                = availability × performance × quality

Ratios are ``None`` when their denominator is 0. A count belongs to the working window that holds
its time stamp (windows are half-open, ``[start, end)``); counts stamped outside planned working
time are reported as ``outside_total`` and are not part of OEE. When the ideal cycle time differs
by product, the ideal cycle time reported is the count-weighted mean, so that
``performance = ideal_cycle_s × total / run_s`` holds for every row.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

RUNNING = "running"
PLANNED_STOP = "planned_stop"
UNPLANNED_STOP = "unplanned_stop"
UNKNOWN = "unknown"
"""The state of a machine before its first reported state change: time with no data."""
NO_DATA_REASON = "NO-DATA"


@dataclass(frozen=True, slots=True)
class Transition:
    """The machine entered ``state`` at ``ts`` (with an optional reason code)."""

    ts: dt.datetime
    state: str
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class StateSpan:
    """A half-open interval ``[start, end)`` the machine spent in one state."""

    start: dt.datetime
    end: dt.datetime
    state: str
    reason: str | None = None

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


@dataclass(frozen=True, slots=True)
class Interval:
    """A half-open UTC interval ``[start, end)``: a working window."""

    start: dt.datetime
    end: dt.datetime

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


@dataclass(frozen=True, slots=True)
class Count:
    """Units counted at ``ts``; ``ideal_cycle_s`` is the ideal time per unit for what was made."""

    ts: dt.datetime
    good: int
    scrap: int
    ideal_cycle_s: float


def state_spans(
    transitions: Sequence[Transition],
    start: dt.datetime,
    end: dt.datetime,
    initial: Transition | None = None,
) -> list[StateSpan]:
    """The machine's states over ``[start, end)``.

    ``transitions`` are sorted by time; ``initial`` is the last transition before ``start`` (the
    state the machine was in when the period began), or None: then the time before the first
    transition is :data:`UNKNOWN`. A state lasts until the next transition.
    """
    spans: list[StateSpan] = []
    state, reason = (initial.state, initial.reason) if initial else (UNKNOWN, NO_DATA_REASON)
    at = start
    for tr in transitions:
        if tr.ts >= end:
            break
        if (tr.state, tr.reason) == (state, reason):
            continue  # a repeated report of the same state does not start a new span
        if tr.ts > at:
            spans.append(StateSpan(at, tr.ts, state, reason))
            at = tr.ts
        state, reason = tr.state, tr.reason
    if at < end:
        spans.append(StateSpan(at, end, state, reason))
    return spans


def clip_to_windows(spans: Iterable[StateSpan], windows: Sequence[Interval]) -> list[StateSpan]:
    """The parts of ``spans`` that fall inside the (sorted, disjoint) ``windows``."""
    starts = [w.start for w in windows]
    clipped: list[StateSpan] = []
    for span in spans:
        i = max(bisect.bisect_right(starts, span.start) - 1, 0)
        while i < len(windows) and windows[i].start < span.end:
            w = windows[i]
            s, e = max(span.start, w.start), min(span.end, w.end)
            if s < e:
                clipped.append(StateSpan(s, e, span.state, span.reason))
            i += 1
    return clipped


def window_index(windows: Sequence[Interval], ts: dt.datetime) -> int | None:
    """Index of the window holding ``ts`` (half-open), or None."""
    i = bisect.bisect_right([w.start for w in windows], ts) - 1
    if i >= 0 and ts < windows[i].end:
        return i
    return None


def ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator > 0 else None


@dataclass(slots=True)
class OeeFigures:
    """Times and counts of one machine (or a sum of machines) over some working windows."""

    working_s: float = 0.0
    """Planned operating time: the working windows (shifts less breaks, holidays, closures)."""
    planned_stop_s: float = 0.0
    run_s: float = 0.0
    ideal_work_s: float = 0.0
    """Σ ideal cycle time × units: the time the counted units take at ideal speed."""
    good: int = 0
    scrap: int = 0
    outside_total: int = 0
    """Units counted outside planned working time (not in OEE)."""
    state_s: dict[str, float] = field(default_factory=dict)
    """Seconds per state within the working windows."""

    @property
    def planned_busy_s(self) -> float:
        return self.working_s - self.planned_stop_s

    @property
    def total(self) -> int:
        return self.good + self.scrap

    @property
    def ideal_cycle_s(self) -> float | None:
        return ratio(self.ideal_work_s, self.total)

    @property
    def availability(self) -> float | None:
        return ratio(self.run_s, self.planned_busy_s)

    @property
    def performance(self) -> float | None:
        return ratio(self.ideal_work_s, self.run_s)

    @property
    def quality(self) -> float | None:
        return ratio(self.good, self.total)

    @property
    def oee(self) -> float | None:
        a, p, q = self.availability, self.performance, self.quality
        return None if a is None or p is None or q is None else a * p * q

    def add(self, other: OeeFigures) -> None:
        self.working_s += other.working_s
        self.planned_stop_s += other.planned_stop_s
        self.run_s += other.run_s
        self.ideal_work_s += other.ideal_work_s
        self.good += other.good
        self.scrap += other.scrap
        self.outside_total += other.outside_total
        for state, seconds in other.state_s.items():
            self.state_s[state] = self.state_s.get(state, 0.0) + seconds


def oee_figures(
    spans_in_windows: Iterable[StateSpan],
    windows: Sequence[Interval],
    counts: Iterable[Count],
) -> OeeFigures:
    """Figures for one machine: ``spans_in_windows`` already clipped to ``windows``; ``counts``
    are all counts of the period (those outside the windows are set aside)."""
    figures = OeeFigures(working_s=sum(w.seconds for w in windows))
    for span in spans_in_windows:
        figures.state_s[span.state] = figures.state_s.get(span.state, 0.0) + span.seconds
    figures.run_s = figures.state_s.get(RUNNING, 0.0)
    figures.planned_stop_s = figures.state_s.get(PLANNED_STOP, 0.0)
    for c in counts:
        if window_index(windows, c.ts) is None:
            figures.outside_total += c.good + c.scrap
            continue
        figures.good += c.good
        figures.scrap += c.scrap
        figures.ideal_work_s += c.ideal_cycle_s * (c.good + c.scrap)
    return figures


@dataclass(frozen=True, slots=True)
class Reliability:
    """Failures (unplanned stops) within working time, MTBF and MTTR in seconds."""

    failures: int
    run_s: float
    repair_s: float

    @property
    def mtbf_s(self) -> float | None:
        return self.run_s / self.failures if self.failures else None

    @property
    def mttr_s(self) -> float | None:
        return self.repair_s / self.failures if self.failures else None


def reliability(spans: Sequence[StateSpan], windows: Sequence[Interval]) -> Reliability:
    """MTBF = run time / failures and MTTR = unplanned stop time / failures, within working time.

    A failure is an unplanned_stop that reaches into working time; one stop that a break cuts in
    two counts once."""
    failures, run, repair = 0, 0.0, 0.0
    for span in spans:
        inside = sum(part.seconds for part in clip_to_windows([span], windows))
        if span.state == RUNNING:
            run += inside
        elif span.state == UNPLANNED_STOP and inside > 0:
            failures += 1
            repair += inside
    return Reliability(failures=failures, run_s=run, repair_s=repair)


@dataclass(slots=True)
class DowntimeEntry:
    """Time lost in one (state, reason) within working time."""

    state: str
    reason: str
    seconds: float = 0.0
    stops: int = 0


def downtime(spans: Iterable[StateSpan], windows: Sequence[Interval]) -> list[DowntimeEntry]:
    """Availability losses by state and reason code, largest first (a Pareto).

    Everything in working time that is neither running nor a planned stop is a loss; a stop with
    no reason code is listed under its state name in capitals (``UNPLANNED_STOP``). A stop that a
    break cuts in two counts once."""
    entries: dict[tuple[str, str], DowntimeEntry] = {}
    for span in spans:
        if span.state in (RUNNING, PLANNED_STOP):
            continue
        inside = sum(part.seconds for part in clip_to_windows([span], windows))
        if inside <= 0:
            continue
        reason = span.reason or span.state.upper()
        entry = entries.setdefault((span.state, reason), DowntimeEntry(span.state, reason))
        entry.seconds += inside
        entry.stops += 1
    return sorted(entries.values(), key=lambda e: (-e.seconds, e.state, e.reason))
