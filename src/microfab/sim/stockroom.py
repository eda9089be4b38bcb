"""The simulator's materials (opt-in, ``stock:`` in behaviour.yaml): stock, deliveries, kanban
and the AGV that carries the transfer tasks.

The simulator keeps its own stock by item × lot × location (it never reads the store) and only
publishes events: supplier deliveries are ``stock`` receipts on their schedule (a ``late`` one
arrives hours after it); the first routing step of an order issues the order's BOM from its
line's line-side location (backflushed items, such as trays, when the step is done: good + scrap
units × BOM) and, while the line side is short, waits idle with reason ``WAITING_MATERIAL``. The
line-side kanban rules of the factory file (min/max, source; :mod:`microfab.stock.kanban`) call
transfer tasks, also when a waiting order needs more than the line side holds; each is
``assigned`` to the AGV (:func:`microfab.stock.agv.assignments`), which answers on the ``task``
contract (``acknowledged``, then ``started`` when it sets off in working time, then ``done`` or
``failed``) and publishes the ``stock`` transfer (from → to, ``by`` the AGV, ``ref`` the task id)
when it arrives, two ``travel_min`` legs later. Lots are taken first expired, first out.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import simpy

from microfab.model.events import MachineState, StockKind, StockMove, TaskStatus, TransferTaskUpdate
from microfab.model.materials import Item, LocationKind
from microfab.sim.scenario import Delivery, StockBehaviour
from microfab.stock.agv import assignments
from microfab.stock.inventory import Pick
from microfab.stock.kanban import TransferTask
from microfab.stock.moves import recorder_path

if TYPE_CHECKING:
    from microfab.sim.engine import FactorySimulation, Job, SimMachine

SimProcess = Generator[simpy.Event, Any, None]
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_EPS = 1e-9


class Stockroom:
    """Stock, deliveries, kanban and the AGV of one simulation."""

    def __init__(self, sim: FactorySimulation, spec: StockBehaviour) -> None:
        self.sim = sim
        self.spec = spec
        self.factory = sim.factory
        self.env = sim.env
        self.places = self.factory.stock_locations()
        self.line_side = {
            loc.line: loc.id
            for loc in self.places.values()
            if loc.kind is LocationKind.LINE_SIDE and loc.line is not None
        }
        self.agv = sim.machines[spec.agv]
        self.recorder = recorder_path(self.factory)
        self.rng = sim._rng("stock")
        self.zone = self.agv.worktime.zone
        self.on_hand: dict[tuple[str, str | None, str], float] = defaultdict(float)
        self.expiry: dict[tuple[str, str | None], dt.datetime | None] = {}
        self.committed: dict[tuple[str, str], float] = defaultdict(float)
        """Backflushed items an order under way will take from a line side when its step ends."""
        self.in_transit: dict[tuple[str, str], float] = defaultdict(float)
        self.open_tasks: set[tuple[str, str]] = set()
        self.tasks = 0
        self.queue: simpy.Store = simpy.Store(self.env)
        self.changed = self.env.event()
        self.receipts = 0
        self.issues = 0
        self.transfers = 0
        self.tasks_done = 0
        start = sim.start
        for i, opening in enumerate(spec.opening):
            item = self.factory.item(opening.item)
            lot = f"{item.sku[:10]}-OPEN{i + 1}" if item.lot_tracked else None
            self._receive(item, opening.qty, opening.location, lot, start, None, "opening")
        for delivery in spec.deliveries:
            self.env.process(self._deliveries(delivery))
        self.env.process(self._agv())
        for place in sorted(set(self.line_side.values())):
            self._kanban(place, {})

    # ------------------------------------------------------------------ stock

    def _have(self, item: str, location: str) -> float:
        """Usable stock of ``item`` at ``location`` (expired lots left out)."""
        now = self.sim._ts()
        return sum(
            q
            for (i, lot, loc), q in self.on_hand.items()
            if i == item and loc == location and not self._expired(i, lot, now)
        )

    def _expired(self, item: str, lot: str | None, now: dt.datetime) -> bool:
        expiry = self.expiry.get((item, lot))
        return expiry is not None and expiry <= now

    def _scrap_expired(self, place: str) -> None:
        """Scrap the expired lots left at ``place`` (reason ``expired``)."""
        now = self.sim._ts()
        for (sku, lot, loc), qty in sorted(self.on_hand.items(), key=str):
            if loc != place or qty <= _EPS or not self._expired(sku, lot, now):
                continue
            self.on_hand[(sku, lot, loc)] = 0.0
            self._emit_move(
                self.recorder,
                kind=StockKind.SCRAP,
                item=sku,
                lot=lot,
                qty=round(qty, 6),
                unit=self.factory.item(sku).unit,
                from_location=place,
                reason="expired",
            )

    def _fefo(self, item: Item, qty: float, location: str) -> list[Pick]:
        """Lots to take ``qty`` from at ``location``, soonest expiry first (expired lots left)."""
        now = self.sim._ts()
        lots = [
            (self.expiry.get((i, lot)), lot, q)
            for (i, lot, loc), q in self.on_hand.items()
            if i == item.sku and loc == location and q > _EPS
        ]
        far = dt.datetime.max.replace(tzinfo=dt.UTC)
        lots.sort(key=lambda t: (t[0] or far, t[1] or ""))
        picks: list[Pick] = []
        left = qty
        for expiry, lot, have in lots:
            if left <= _EPS:
                break
            if expiry is not None and expiry <= now:
                continue
            take = round(min(have, left), 6)
            picks.append(Pick(item.sku, lot, location, take, item.unit, expiry))
            left -= take
        return picks

    def _emit_move(self, machine: str, **fields: Any) -> None:
        self.sim._emit(
            StockMove(id=self.sim._next_id(), ts=self.sim._ts(), machine=machine, **fields)
        )

    def _receive(
        self,
        item: Item,
        qty: float,
        location: str,
        lot: str | None,
        when: dt.datetime,
        supplier: str | None,
        ref: str,
    ) -> None:
        expiry = None
        if lot is not None and item.shelf_life_days is not None:
            expiry = when + dt.timedelta(days=item.shelf_life_days)
        self.expiry[(item.sku, lot)] = expiry
        self.on_hand[(item.sku, lot, location)] += qty
        self.receipts += 1
        self._emit_move(
            self.recorder,
            kind=StockKind.RECEIPT,
            item=item.sku,
            lot=lot,
            qty=round(qty, 6),
            unit=item.unit,
            to_location=location,
            ref=ref,
            supplier=supplier,
            expiry=expiry,
            cost_hkd=item.standard_cost_hkd or None,
        )

    def _notify(self) -> None:
        if not self.changed.triggered:
            self.changed.succeed()
        self.changed = self.env.event()

    # ------------------------------------------------------------------ the first step

    def place_of(self, m: SimMachine) -> str:
        return self.line_side[m.ref.line.id]

    def need(self, job: Job) -> dict[str, float]:
        """What the job's BOM takes, per item, in stock units."""
        need: dict[str, float] = defaultdict(float)
        for material, qty, unit in job.order.bom:
            item = self.factory.item(material)
            need[material] += item.to_stock(qty * job.quantity, unit)
        return {sku: round(q, 6) for sku, q in need.items()}

    def short(self, place: str, need: dict[str, float]) -> dict[str, float]:
        """Items the line side at ``place`` holds too little of (usable lots, less committed)."""
        out: dict[str, float] = {}
        for sku, qty in need.items():
            usable = self._have(sku, place) - self.committed[(place, sku)]
            if usable < qty - 1e-6:
                out[sku] = round(qty - usable, 6)
        return out

    def ready(self, m: SimMachine, job: Job) -> bool:
        """Whether ``job`` can start on ``m`` as far as materials go (later steps always can)."""
        return job.index != 0 or not self.short(self.place_of(m), self.need(job))

    def wait_for(self, m: SimMachine, job: Job) -> Generator[simpy.Event, Any, bool]:
        """Idle ``WAITING_MATERIAL`` until the line side holds the job's BOM (calling transfers);
        False as soon as another job queued at ``m`` could start instead."""
        place = self.place_of(m)
        need = self.need(job)
        while self.short(place, need):
            self._kanban(place, need)
            if any(self.ready(m, other) for other in m.queue):
                return False
            if m.worktime.window_at(self.env.now) is None:
                yield from self.sim._wait_for_work_time(m)
                continue
            self.sim._set_state(m, MachineState.IDLE, "WAITING_MATERIAL")
            end = m.worktime.window_end(self.env.now)
            wake = self.env.event()
            m.wakeup = wake
            yield self.changed | wake | self.env.timeout(max(end - self.env.now, 1.0))
            m.wakeup = None
        return True

    def issue(self, m: SimMachine, job: Job) -> None:
        """Issue the job's picked materials from the line side; commit the backflushed ones."""
        place = self.place_of(m)
        for sku, qty in self.need(job).items():
            item = self.factory.item(sku)
            if item.backflush:
                self.committed[(place, sku)] += qty
                continue
            self._take(m, item, qty, place, StockKind.ISSUE, job)
        self._kanban(place, {})

    def step_done(self, m: SimMachine, job: Job, units: int) -> None:
        """Backflush the step's good + scrap units × BOM of the backflushed items."""
        place = self.place_of(m)
        for sku, qty in self.need(job).items():
            item = self.factory.item(sku)
            if not item.backflush:
                continue
            self.committed[(place, sku)] = max(0.0, self.committed[(place, sku)] - qty)
            used = round(qty * units / job.quantity, 6) if job.quantity else 0.0
            if used > 0:
                self._take(m, item, used, place, StockKind.BACKFLUSH, job)
        self._kanban(place, {})

    def _take(
        self, m: SimMachine, item: Item, qty: float, place: str, kind: StockKind, job: Job
    ) -> None:
        for pick in self._fefo(item, qty, place):
            self.on_hand[(item.sku, pick.lot, place)] -= pick.qty
            self.issues += 1
            self._emit_move(
                m.ref.path,
                kind=kind,
                item=item.sku,
                lot=pick.lot,
                qty=pick.qty,
                unit=item.unit,
                from_location=place,
                order=job.order.id,
                operation=job.operation.seq,
            )

    # ------------------------------------------------------------------ kanban and the AGV

    def _kanban(self, place: str, need: dict[str, float]) -> None:
        """Call a transfer task for every rule of ``place`` at or below its min (or below what a
        waiting order needs), unless one is on its way."""
        location = self.places[place]
        self._scrap_expired(place)
        for rule in location.kanban:
            key = (place, rule.item)
            if key in self.open_tasks:
                continue
            have = self._have(rule.item, place) - self.committed[key]
            wanted = need.get(rule.item, 0.0)
            if have > rule.min + _EPS and have >= wanted - 1e-6:
                continue
            item = self.factory.item(rule.item)
            qty = round(max(rule.max - have, wanted - have), 6)
            picks = self._fefo(item, qty, rule.source)
            if not picks:
                continue
            self.tasks += 1
            digest = hashlib.sha256(f"{self.sim.id_prefix}{self.tasks}".encode()).hexdigest()
            task = TransferTask(
                id=f"task-{digest[:12]}",
                item=rule.item,
                source=rule.source,
                location=place,
                qty=round(sum(p.qty for p in picks), 6),
                unit=item.unit,
                on_hand=round(have, 6),
                min=rule.min,
                max=rule.max,
                picks=picks,
            )
            self.open_tasks.add(key)
            self.in_transit[key] += task.qty
            for event in assignments([task], self.agv.ref.path, now=self.sim._ts()):
                self.sim._emit(event)
            self._task_event(task, TaskStatus.ACKNOWLEDGED)
            self.queue.put(task)

    def _task_event(
        self, task: TransferTask, status: TaskStatus, reason: str | None = None
    ) -> None:
        self.sim._emit(
            TransferTaskUpdate(
                id=self.sim._next_id(),
                ts=self.sim._ts(),
                machine=self.agv.ref.path,
                task=task.id,
                status=status,
                reason=reason,
            )
        )

    def _agv(self) -> SimProcess:
        """Carry the tasks one by one, in working time: to the source and on to the line side."""
        while True:
            task: TransferTask = yield self.queue.get()
            worktime = self.agv.worktime
            while worktime.window_at(self.env.now) is None:
                yield self.env.timeout(worktime.next_start(self.env.now) - self.env.now)
            self._task_event(task, TaskStatus.STARTED)
            trip = 2 * self.spec.travel_min * 60 * self.rng.uniform(0.85, 1.25)
            yield self.env.timeout(trip)
            key = (task.location, task.item)
            moved = 0.0
            for pick in task.picks:
                there = self.on_hand[(task.item, pick.lot, task.source)]
                qty = round(min(there, pick.qty), 6)
                if qty <= _EPS:
                    continue
                self.on_hand[(task.item, pick.lot, task.source)] -= qty
                self.on_hand[(task.item, pick.lot, task.location)] += qty
                moved += qty
                self.transfers += 1
                self._emit_move(
                    self.agv.ref.path,
                    kind=StockKind.TRANSFER,
                    item=task.item,
                    lot=pick.lot,
                    qty=qty,
                    unit=task.unit,
                    from_location=task.source,
                    to_location=task.location,
                    ref=task.id,
                    by=self.agv.id,
                )
            self.in_transit[key] -= task.qty
            self.open_tasks.discard(key)
            if moved > 0:
                self.tasks_done += 1
                self._task_event(task, TaskStatus.DONE)
            else:
                self._task_event(task, TaskStatus.FAILED, "nothing left at the source")
            self._notify()
            self._kanban(task.location, {})

    # ------------------------------------------------------------------ deliveries

    def _deliveries(self, delivery: Delivery) -> SimProcess:
        """Receive ``delivery`` on its days at its time (site time), late where ``late`` says."""
        item = self.factory.item(delivery.item)
        first = self.sim.start.astimezone(self.zone).date()
        hour, minute = (int(x) for x in delivery.at.split(":"))
        late = {(d.item, d.day): d.hours for d in self.spec.late}
        day = 0
        while True:
            date = first + dt.timedelta(days=day)
            day += 1
            if WEEKDAYS[date.weekday()] not in delivery.days:
                continue
            due = dt.datetime.combine(date, dt.time(hour, minute), tzinfo=self.zone)
            due += dt.timedelta(hours=late.get((item.sku, day), 0.0))
            at = max(0.0, (due - self.sim.start).total_seconds())
            if at > self.env.now:
                yield self.env.timeout(at - self.env.now)
            lot = f"{item.sku[:10]}-{date:%y%m%d}" if item.lot_tracked else None
            ref = f"PO-{date:%y%m%d}-{item.sku[:20]}"
            self._receive(
                item,
                delivery.qty,
                delivery.to,
                lot,
                self.sim._ts(),
                delivery.supplier or item.supplier,
                ref,
            )
            self._scrap_expired(delivery.to)  # the store is checked as the delivery goes in
            for place in sorted(set(self.line_side.values())):
                self._kanban(place, {})
            self._notify()
