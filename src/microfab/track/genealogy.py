"""Genealogy: a work order along its route, count batch by count batch, with the lots it used.

The rules (``microfab trace ORDER`` and ``GET …/trace`` follow them):

- **Batch.** One count event of the order: a machine, a routing step, its good and scrap.
  Counts at the same instant on one machine for one step are one batch, so a correction (stamped
  with the time of the count it corrects) folds into the batch it corrects.
- **Times.** A batch *ends* at its count. It *starts* at the machine's previous count for the same
  order and step; the first batch of a step on a machine starts at the step's latest start on
  that machine before the count, else at the step's first start anywhere, else at the order's
  release (or creation); with none of these before it, its start is unknown.
- **Lots.** A material event for the order belongs to the first batch on the same machine that
  ends after it (material is loaded before or while a batch runs), or to the machine's last batch
  when it comes after all of them. Lots consumed for the order on a machine that counted nothing
  for it are listed for the order as *unassigned*.
- **Units.** Count events carry no serial numbers, so the genealogy of a unit is that of its
  order: every unit may contain any lot consumed for the order (``lots``), and went through the
  machines of the batches listed for each step.
- **Which counts.** Counts of the order from its first order event to its completion or
  cancellation (inclusive), or to the end of the log while it is open, on the machines that
  counted for it; when they add up to less than all the order's counts (counts outside that
  window), the whole log is read.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from microfab.model.events import MaterialConsumption, OrderEventKind, format_ts
from microfab.model.factory import Factory
from microfab.store.event_store import EventStore
from microfab.store.production import CountRow, part_counts
from microfab.track.orders import (
    EPOCH,
    FOREVER,
    OrderHistory,
    WorkOrderView,
    get_order,
    order_counts,
    order_histories,
)

_MS = dt.timedelta(milliseconds=1)


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else format_ts(value)


@dataclass(frozen=True, slots=True)
class LotUse:
    """A quantity of one material lot consumed for the order on one machine."""

    material: str
    lot: str | None
    qty: float
    unit: str
    machine: str
    ts: dt.datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "material": self.material,
            "lot": self.lot,
            "qty": self.qty,
            "unit": self.unit,
            "machine": self.machine,
            "ts": _iso(self.ts),
        }


@dataclass(frozen=True, slots=True)
class TraceBatch:
    """One count batch of the order: where, when, how many, from which lots."""

    operation: int | None
    operation_name: str
    machine: str
    start: dt.datetime | None
    end: dt.datetime
    good: int
    scrap: int
    lots: tuple[LotUse, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "operation": self.operation,
            "operation_name": self.operation_name,
            "machine": self.machine,
            "start": _iso(self.start),
            "end": _iso(self.end),
            "good": self.good,
            "scrap": self.scrap,
            "lots": [lot.to_json() for lot in self.lots],
        }


@dataclass(frozen=True, slots=True)
class TraceStep:
    """The batches of one step on one machine, added up."""

    operation: int | None
    operation_name: str
    machine: str
    start: dt.datetime | None
    end: dt.datetime
    batches: int
    good: int
    scrap: int
    lots: tuple[LotTotal, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "operation": self.operation,
            "operation_name": self.operation_name,
            "machine": self.machine,
            "start": _iso(self.start),
            "end": _iso(self.end),
            "batches": self.batches,
            "good": self.good,
            "scrap": self.scrap,
            "lots": [lot.to_json() for lot in self.lots],
        }


@dataclass(frozen=True, slots=True)
class LotTotal:
    """One material lot and how much of it went into the order (or a step)."""

    material: str
    lot: str | None
    qty: float
    unit: str

    def to_json(self) -> dict[str, Any]:
        return {"material": self.material, "lot": self.lot, "qty": self.qty, "unit": self.unit}


@dataclass(frozen=True, slots=True)
class LotSource:
    """How much of one lot went into the order at one step on one machine."""

    material: str
    lot: str | None
    qty: float
    unit: str
    operation: int | None
    """None for a lot consumed on a machine that counted nothing for the order."""
    machine: str

    def to_json(self) -> dict[str, Any]:
        return {
            "material": self.material,
            "lot": self.lot,
            "qty": self.qty,
            "unit": self.unit,
            "operation": self.operation,
            "machine": self.machine,
        }


@dataclass(frozen=True, slots=True)
class TraceInspections:
    """The order's units as inspection stations judged them (vision or other), per machine."""

    machine: str
    inspected: int
    failed: int
    defects: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        return {
            "machine": self.machine,
            "inspected": self.inspected,
            "failed": self.failed,
            "defects": self.defects,
        }


@dataclass(frozen=True, slots=True)
class OrderTrace:
    """The genealogy of one work order (see the module docstring)."""

    order: WorkOrderView
    batches: tuple[TraceBatch, ...]
    unassigned: tuple[LotUse, ...]
    """Lots consumed for the order on machines that counted nothing for it."""
    inspections: tuple[TraceInspections, ...] = ()
    """Inspection results that name the order, per machine."""

    def lots(self) -> list[LotTotal]:
        """Every lot consumed for the order: what any of its units may contain."""
        uses = [lot for batch in self.batches for lot in batch.lots] + list(self.unassigned)
        return _lot_totals(uses)

    def lot_sources(self) -> list[LotSource]:
        """Every lot with the step and machine it was consumed at, in route order."""
        totals: dict[tuple[str, str | None, str, int | None, str], float] = {}
        for batch in self.batches:
            for use in batch.lots:
                key = (use.material, use.lot, use.unit, batch.operation, use.machine)
                totals[key] = totals.get(key, 0.0) + use.qty
        for use in self.unassigned:
            key = (use.material, use.lot, use.unit, None, use.machine)
            totals[key] = totals.get(key, 0.0) + use.qty
        return [
            LotSource(material, lot, round(qty, 6), unit, operation, machine)
            for (material, lot, unit, operation, machine), qty in totals.items()
        ]

    def steps(self) -> list[TraceStep]:
        """The batches added up per step and machine, in route order."""
        groups: dict[tuple[int | None, str], list[TraceBatch]] = {}
        for batch in self.batches:
            groups.setdefault((batch.operation, batch.machine), []).append(batch)
        steps = []
        for (operation, machine), batches in groups.items():
            starts = [b.start for b in batches if b.start is not None]
            steps.append(
                TraceStep(
                    operation=operation,
                    operation_name=batches[0].operation_name,
                    machine=machine,
                    start=min(starts) if starts else None,
                    end=max(b.end for b in batches),
                    batches=len(batches),
                    good=sum(b.good for b in batches),
                    scrap=sum(b.scrap for b in batches),
                    lots=tuple(_lot_totals([lot for b in batches for lot in b.lots])),
                )
            )
        return steps

    def to_json(self) -> dict[str, Any]:
        view = self.order
        return {
            "order": view.order,
            "product": view.product,
            "options": view.options,
            "quantity": view.quantity,
            "status": view.status,
            "due": _iso(view.due),
            "created": _iso(view.created),
            "released": _iso(view.released),
            "completed": _iso(view.completed),
            "cancelled": _iso(view.cancelled),
            "good": view.good,
            "scrap": view.scrap,
            "lots": [lot.to_json() for lot in self.lots()],
            "lot_sources": [lot.to_json() for lot in self.lot_sources()],
            "steps": [step.to_json() for step in self.steps()],
            "batches": [batch.to_json() for batch in self.batches],
            "unassigned_lots": [lot.to_json() for lot in self.unassigned],
            "inspections": [i.to_json() for i in self.inspections],
        }


def _lot_totals(uses: list[LotUse]) -> list[LotTotal]:
    totals: dict[tuple[str, str | None, str], float] = defaultdict(float)
    for use in uses:
        totals[(use.material, use.lot, use.unit)] += use.qty
    return [
        LotTotal(material, lot, round(qty, 6), unit)
        for (material, lot, unit), qty in sorted(totals.items(), key=lambda kv: _lot_key(kv[0]))
    ]


def _lot_key(key: tuple[str, str | None, str]) -> tuple[str, str, str]:
    return key[0], key[1] or "", key[2]


def trace_order(store: EventStore, factory: Factory, order: str) -> OrderTrace:
    """The genealogy of ``order``; NotFoundError (field ``order``) when no event names it."""
    view = get_order(store, factory, order)
    history = order_histories(store).get(order)
    sums = order_counts(store).get(order, {})
    machines = sorted({m for by_machine in sums.values() for m in by_machine})
    rows = _order_rows(store, order, machines, history, view, sums)
    names = {op.seq: op.name for op in view.operations if op.seq is not None}
    batches = _batches(rows, history, names)
    materials = [
        stored.event
        for stored in store.events(stream="material")
        if isinstance(stored.event, MaterialConsumption) and stored.event.order == order
    ]
    batches, unassigned = _assign_lots(batches, materials)
    route: dict[int | None, int] = {seq: index for index, seq in enumerate(names)}
    batches.sort(
        key=lambda b: (route.get(b.operation, len(route)), b.operation or 0, b.end, b.machine)
    )
    return OrderTrace(view, tuple(batches), tuple(unassigned), _inspections(store, order))


def _inspections(store: EventStore, order: str) -> tuple[TraceInspections, ...]:
    from microfab.store.quality import inspection_rows

    by_machine: dict[str, list[tuple[bool, str | None]]] = defaultdict(list)
    for row in inspection_rows(store):
        if row.order == order:
            by_machine[row.machine].append((row.passed, row.defect))
    out = []
    for machine, judged in sorted(by_machine.items()):
        defects: dict[str, int] = defaultdict(int)
        for passed, defect in judged:
            if not passed:
                defects[defect or "unclassified"] += 1
        ranked = dict(sorted(defects.items(), key=lambda kv: (-kv[1], kv[0])))
        out.append(TraceInspections(machine, len(judged), sum(not p for p, _ in judged), ranked))
    return tuple(out)


def _order_rows(
    store: EventStore,
    order: str,
    machines: list[str],
    history: OrderHistory | None,
    view: WorkOrderView,
    sums: dict[int | None, dict[str, list[int]]],
) -> list[CountRow]:
    if not machines:
        return []
    start, end = EPOCH, FOREVER
    if history is not None and history.events:
        start = history.events[0].ts
        finished = view.completed if view.status == "completed" else view.cancelled
        if view.status in ("completed", "cancelled") and finished is not None:
            end = finished + _MS
    rows = [r for r in part_counts(store, machines, start, end) if r.order == order]
    total = sum(g + s for by_machine in sums.values() for g, s in by_machine.values())
    if sum(r.good + r.scrap for r in rows) != total and (start, end) != (EPOCH, FOREVER):
        rows = [r for r in part_counts(store, machines, EPOCH, FOREVER) if r.order == order]
    return rows


@dataclass(slots=True)
class _Batch:
    operation: int | None
    machine: str
    end: dt.datetime
    good: int = 0
    scrap: int = 0
    start: dt.datetime | None = None


def _batches(
    rows: list[CountRow], history: OrderHistory | None, names: dict[int, str]
) -> list[TraceBatch]:
    merged: dict[tuple[str, int | None, dt.datetime], _Batch] = {}
    for row in rows:
        key = (row.machine, row.operation, row.ts)
        batch = merged.get(key)
        if batch is None:
            batch = merged[key] = _Batch(row.operation, row.machine, row.ts)
        batch.good += row.good
        batch.scrap += row.scrap
    starts: dict[tuple[int, str], list[dt.datetime]] = defaultdict(list)
    first_start: dict[int, dt.datetime] = {}
    order_start: dt.datetime | None = None
    if history is not None:
        for ev in history.events:
            if ev.event is OrderEventKind.STARTED and ev.operation is not None:
                starts[(ev.operation, ev.machine)].append(ev.ts)
                first_start.setdefault(ev.operation, ev.ts)
        opened = history.released or history.created
        order_start = opened.ts if opened is not None else None
    previous: dict[tuple[str, int | None], dt.datetime] = {}
    out: list[TraceBatch] = []
    for batch in sorted(merged.values(), key=lambda b: (b.end, b.machine)):
        lane = (batch.machine, batch.operation)
        start = previous.get(lane)
        if start is None and batch.operation is not None:
            before = [t for t in starts.get((batch.operation, batch.machine), []) if t <= batch.end]
            if before:
                start = max(before)
            elif (first := first_start.get(batch.operation)) is not None and first <= batch.end:
                start = first
        if start is None and order_start is not None and order_start <= batch.end:
            start = order_start
        previous[lane] = batch.end
        name = names.get(batch.operation, "") if batch.operation is not None else ""
        out.append(
            TraceBatch(
                operation=batch.operation,
                operation_name=name or ("(no step named)" if batch.operation is None else ""),
                machine=batch.machine,
                start=start,
                end=batch.end,
                good=batch.good,
                scrap=batch.scrap,
                lots=(),
            )
        )
    return out


def _assign_lots(
    batches: list[TraceBatch], materials: list[MaterialConsumption]
) -> tuple[list[TraceBatch], list[LotUse]]:
    by_machine: dict[str, list[int]] = defaultdict(list)
    for index, batch in enumerate(batches):
        by_machine[batch.machine].append(index)  # batches are in time order
    lots: dict[int, list[LotUse]] = defaultdict(list)
    unassigned: list[LotUse] = []
    for ev in materials:
        use = LotUse(ev.material, ev.lot, ev.qty, ev.unit, ev.machine, ev.ts)
        lane = by_machine.get(ev.machine)
        if not lane:
            unassigned.append(use)
            continue
        target = next((i for i in lane if batches[i].end > ev.ts), lane[-1])
        lots[target].append(use)
    out = [
        TraceBatch(
            b.operation,
            b.operation_name,
            b.machine,
            b.start,
            b.end,
            b.good,
            b.scrap,
            tuple(lots.get(i, ())),
        )
        for i, b in enumerate(batches)
    ]
    return out, unassigned
