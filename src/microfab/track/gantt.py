"""The Gantt chart's data: per machine, the plan against what the events say happened.

- **Plan**: the operations of the plan document (the plan file) on each machine, with setups.
- **Actual**: from the ``order`` stream, a bar per order step and machine from the step's
  ``started`` event on that machine to its ``completed`` event, the order's completion or
  cancellation, or the next step another order started on the machine (whichever comes first);
  a step still running ends at the plant clock (``running``). Count events add their good and
  scrap to the bar they fall in; counts for a step with no ``started`` event make a bar from the
  first to the last such count. A bar stops at the machine's planned stops (no shift, breaks,
  closures: state ``planned_stop``) and goes on after them as a new piece, so a machine never
  looks as if it worked overnight; counts stamped inside a planned stop go to the piece before.
- **Stops**: the machine's states other than running and idle (setup, planned stops,
  breakdowns, micro-stops, offline), from the ``state`` stream.
- **Late**: an order is marked late when the plan finishes it after its due time or the
  tracking says it is late (past due, or expected to finish after it).

The window runs from the site's midnight before the plant clock (or the plan's start, if
earlier) to the end of the plan (or the plant clock), at most 14 days; ``start``/``end`` override.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from microfab.model.events import OrderEvent, OrderEventKind, format_ts
from microfab.model.factory import Factory
from microfab.store.maintenance import gantt_windows
from microfab.store.production import part_counts, state_transitions
from microfab.track.orders import list_orders
from microfab.track.plant import Plant

LONGEST = dt.timedelta(days=14)
QUIET_STATES = ("running", "idle")
CUT_STATES = ("planned_stop",)
"""States an actual bar stops at (ISO 22400: no planned busy time)."""


@dataclass(slots=True)
class ActualBar:
    machine: str
    order: str
    operation: int | None
    start: dt.datetime
    end: dt.datetime
    running: bool = False
    good: int = 0
    scrap: int = 0
    counts: list[tuple[dt.datetime, int, int]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "order": self.order,
            "operation": self.operation,
            "start": format_ts(self.start),
            "end": format_ts(self.end),
            "running": self.running,
            "good": self.good,
            "scrap": self.scrap,
        }


@dataclass(slots=True)
class Lane:
    machine: str
    name: str
    plan: list[dict[str, Any]] = field(default_factory=list)
    actual: list[ActualBar] = field(default_factory=list)
    stops: list[dict[str, Any]] = field(default_factory=list)
    maintenance: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "machine": self.machine,
            "name": self.name,
            "plan": self.plan,
            "actual": [bar.to_json() for bar in self.actual],
            "stops": self.stops,
            "maintenance": self.maintenance,
        }


def _utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).astimezone(dt.UTC)


def _window(
    plant: Plant,
    factory: Factory,
    document: Mapping[str, Any] | None,
    now: dt.datetime,
    start: dt.datetime | None,
    end: dt.datetime | None,
) -> tuple[dt.datetime, dt.datetime]:
    zone = plant.zone(factory)
    midnight = dt.datetime.combine(now.astimezone(zone).date(), dt.time(0), zone)
    first = midnight.astimezone(dt.UTC)
    last = now
    if document is not None:
        first = min(first, _utc(document["plan"]["start"]))
        ends = [_utc(op["end"]) for op in document.get("operations", [])]
        last = max([last, *ends])
    first = start or first
    last = end or min(last, first + LONGEST)
    return first, max(last, first + dt.timedelta(hours=1))


def _actual(
    plant: Plant,
    machines: list[str],
    first: dt.datetime,
    now: dt.datetime,
    cuts: Mapping[str, list[tuple[dt.datetime, dt.datetime]]] | None = None,
) -> dict[str, list[ActualBar]]:
    """Actual bars per machine path (see the module docstring), clipped to ``[first, now]`` and
    cut at the ``cuts`` (planned stops) of their machine."""
    bars: dict[str, list[ActualBar]] = {m: [] for m in machines}
    running: dict[str, ActualBar] = {}  # machine -> the step it runs

    def close(bar: ActualBar, at: dt.datetime) -> None:
        bar.end = max(bar.start, at)
        running.pop(bar.machine, None)

    for stored in plant.store.events(stream="order"):
        ev = stored.event
        assert isinstance(ev, OrderEvent)
        if ev.ts > now:
            break
        if ev.event is OrderEventKind.STARTED and ev.operation is not None:
            if ev.machine in running:
                close(running[ev.machine], ev.ts)
            bar = ActualBar(ev.machine, ev.order, ev.operation, ev.ts, ev.ts)
            running[ev.machine] = bar
            bars.setdefault(ev.machine, []).append(bar)
        elif ev.event in (OrderEventKind.COMPLETED, OrderEventKind.CANCELLED):
            for bar in list(running.values()):
                whole = ev.operation is None or ev.event is OrderEventKind.CANCELLED
                if bar.order == ev.order and (whole or bar.operation == ev.operation):
                    close(bar, ev.ts)
    for bar in running.values():
        bar.end, bar.running = max(bar.start, now), True

    loose: dict[tuple[str, str, int | None], ActualBar] = {}
    for row in part_counts(plant.store, machines, first, now + dt.timedelta(milliseconds=1)):
        if row.order is None:
            continue
        lane = bars.setdefault(row.machine, [])
        home = next(
            (
                b
                for b in lane
                if b.order == row.order
                and b.operation in (row.operation, None)
                and b.start <= row.ts <= b.end
            ),
            None,
        )
        if home is None:
            key = (row.machine, row.order, row.operation)
            home = loose.get(key)
            if home is None:
                home = loose[key] = ActualBar(row.machine, row.order, row.operation, row.ts, row.ts)
                lane.append(home)
            home.end = max(home.end, row.ts)
        home.good += row.good
        home.scrap += row.scrap
        home.counts.append((row.ts, row.good, row.scrap))
    for machine, lane in bars.items():
        stops = (cuts or {}).get(machine)
        if stops:
            lane = [piece for bar in lane for piece in _cut(bar, stops)]
        kept = [b for b in lane if b.end >= first and b.start <= now]
        for b in kept:
            b.start = max(b.start, first)
        kept.sort(key=lambda b: (b.start, b.order))
        bars[machine] = kept
    return bars


def _cut(bar: ActualBar, stops: list[tuple[dt.datetime, dt.datetime]]) -> list[ActualBar]:
    """``bar`` without the planned stops in it: the pieces in working time (a bar wholly inside a
    stop stays, as a count made there does not vanish). Counts stay with the piece they fall in,
    or the piece before."""
    pieces: list[ActualBar] = []
    at = bar.start
    for begin, end in stops:
        if end <= at or begin >= bar.end:
            continue
        if begin > at:
            pieces.append(ActualBar(bar.machine, bar.order, bar.operation, at, begin))
        at = max(at, end)
    if at < bar.end:
        pieces.append(ActualBar(bar.machine, bar.order, bar.operation, at, bar.end, bar.running))
    if not pieces or [(p.start, p.end) for p in pieces] == [(bar.start, bar.end)]:
        return [bar]
    pieces[-1].running = bar.running and pieces[-1].end == bar.end
    _share_counts(bar, pieces)
    return pieces


def _share_counts(bar: ActualBar, pieces: list[ActualBar]) -> None:
    for piece in pieces:
        piece.good = piece.scrap = 0
    for ts, good, scrap in bar.counts:
        home = pieces[0]
        for piece in pieces:
            if piece.start <= ts:
                home = piece
        home.good += good
        home.scrap += scrap
        home.counts.append((ts, good, scrap))


def _planned_stops(
    plant: Plant, machines: list[str], first: dt.datetime, now: dt.datetime
) -> dict[str, list[tuple[dt.datetime, dt.datetime]]]:
    """Per machine, its planned stops reaching into ``[first, now]``, in time order."""
    found: dict[str, list[tuple[dt.datetime, dt.datetime]]] = {}
    for machine, (initial, changes) in state_transitions(plant.store, machines, first, now).items():
        sequence = ([initial] if initial is not None else []) + changes
        spans = []
        for i, change in enumerate(sequence):
            until = sequence[i + 1].ts if i + 1 < len(sequence) else now
            if change.state in CUT_STATES and until > change.ts:
                spans.append((change.ts, until))
        found[machine] = spans
    return found


def _stops(
    plant: Plant, machines: list[str], first: dt.datetime, now: dt.datetime
) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for machine, (initial, changes) in state_transitions(plant.store, machines, first, now).items():
        spans: list[dict[str, Any]] = []
        sequence = ([initial] if initial is not None else []) + changes
        for i, change in enumerate(sequence):
            until = sequence[i + 1].ts if i + 1 < len(sequence) else now
            if change.state in QUIET_STATES or until <= first:
                continue
            spans.append(
                {
                    "state": change.state,
                    "reason": change.reason,
                    "start": format_ts(max(change.ts, first)),
                    "end": format_ts(until),
                }
            )
        found[machine] = spans
    return found


def gantt(
    plant: Plant,
    document: Mapping[str, Any] | None,
    *,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
) -> dict[str, Any]:
    """The chart's data as JSON: the window, the plan's summary, late orders and one lane per
    machine (those the products' routings name, then any other the plan or events use)."""
    factory = plant.factory()
    now = plant.now()
    first, last = _window(plant, factory, document, now, start, end)
    refs = factory.machines()
    routed = {m for p in factory.products for op in p.routing for m in op.machines}
    names = {ref.path: ref.machine.id for ref in refs}
    lanes = {ref.path: Lane(ref.path, ref.machine.id) for ref in refs if ref.machine.id in routed}
    plan_late: set[str] = set()
    if document is not None:
        plan_late = {row["order"] for row in document.get("orders", []) if row.get("late")}
        for op in document.get("operations", []):
            if _utc(op["end"]) < first or _utc(op["start"]) > last:
                continue
            lane = lanes.setdefault(
                op["machine"], Lane(op["machine"], names.get(op["machine"], op["machine"]))
            )
            lane.plan.append(
                {
                    "order": op["order"],
                    "operation": op["operation"],
                    "name": op["name"],
                    "units": op["units"],
                    "start": format_ts(_utc(op["start"])),
                    "end": format_ts(_utc(op["end"])),
                    "setup_s": op["setup_s"],
                    "fixed": op["fixed"],
                    "late": op["order"] in plan_late,
                }
            )
    actual_to = min(now, last)
    cuts = _planned_stops(plant, list(lanes), first, actual_to)
    for machine, bars in _actual(plant, list(lanes), first, actual_to, cuts).items():
        if bars:
            lanes.setdefault(machine, Lane(machine, names.get(machine, machine))).actual = bars
    for machine, spans in _stops(plant, list(lanes), first, actual_to).items():
        lanes[machine].stops = spans
    for machine, windows in gantt_windows(plant.store, first, last).items():
        lanes.setdefault(machine, Lane(machine, names.get(machine, machine))).maintenance = windows
    tracked_late = {
        v.order
        for v in list_orders(plant.store, factory, now=now, plan=document)
        if v.late or v.completed_late
    }
    late = sorted(plan_late | tracked_late)
    for lane in lanes.values():
        for bar in lane.plan:
            bar["late"] = bar["order"] in late
    zone = plant.zone(factory)
    offset = now.astimezone(zone).utcoffset() or dt.timedelta(0)
    summary = None
    if document is not None:
        plan = document["plan"]
        summary = {
            key: plan.get(key)
            for key in ("start", "status", "objective", "criteria", "runtime_s", "changes")
        }
        summary["start"] = format_ts(_utc(plan["start"]))
    return {
        "from": format_ts(first),
        "to": format_ts(last),
        "now": format_ts(now),
        "zone": str(zone),
        "utc_offset_s": int(offset.total_seconds()),
        "plan": summary,
        "late_orders": late,
        "machines": [lane.to_json() for lane in lanes.values()],
    }
