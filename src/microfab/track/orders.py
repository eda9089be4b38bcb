"""Work orders from the event log: create, release and cancel them, and read them back.

**Writing.** An order is its events (stream ``order``): :func:`create_order` appends a
``created`` event carrying product, quantity, options, due time and priority (``--release`` adds
the ``released`` event at once); :func:`release_order` and :func:`cancel_order` append
``released`` and ``cancelled``. A release repeats the order's details, as the simulator's releases
do, so the order read model keeps them. Event ids are derived from the order id and the kind
(``order:WO261123-001:created``), so a retried command stores nothing new: the store ignores an
event it already has, and a command finding its work done (an order already created with the same
details, already released, already cancelled) appends nothing and says so (``stored`` is 0).

**Where.** An order entered in the office has no machine; its events carry the path of the
first eligible machine of the product's first routing step, where its first units will be made
(the simulator releases an order on the machine it chose for the first step: the same place).

**Reading.** :func:`list_orders` and :func:`get_order` combine the order events (details, step
starts and completions), the count sums per order, step and machine (added up in SQL) and the
order read model (status). The maths of progress, WIP, expected completion and lateness is in
:mod:`microfab.model.orders`. A step's WIP sits at the machine that last started the step for the
order; before a start, at the step's only eligible machine, or for the first step at the machine
the order was released (or created) on; otherwise it waits for a machine (``machine`` null).

**The plan's completion.** ``list_orders`` and ``get_order`` take the plan document (the plan
file, ``plan=``); an open order the plan holds is then expected when the plan ends it
(:func:`microfab.model.orders.order_completion`, the one rule for every page, the API and the
CLI). :func:`plan_of` reads the plan a :class:`~microfab.track.plant.Plant` was given.

**Now.** Reads default to the *plant clock*, as the REST API does: the time of the newest stored
event (the wall clock while the store is empty), so a simulated or replayed day reads as it was.
Writes are stamped with the wall clock (or the ``now`` given).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from microfab.errors import InputError, NotFoundError
from microfab.model.events import OrderEvent, OrderEventKind, format_ts
from microfab.model.factory import Factory, Product
from microfab.model.orders import (
    DEFAULT_PRIORITY,
    OrderProgress,
    StepFacts,
    ValidOrder,
    WorkOrderRequest,
    check_request,
    is_late,
    order_completion,
    order_progress,
    standard_seconds,
    time_factor,
)
from microfab.store.event_store import EventStore, OrderStatus
from microfab.store.production_views import count_totals
from microfab.track.production import output_operation

if TYPE_CHECKING:
    from microfab.track.plant import Plant

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
FOREVER = dt.datetime(9999, 1, 1, tzinfo=dt.UTC)
STATUSES = ("created", "released", "in_progress", "completed", "cancelled")
OPEN = ("created", "released", "in_progress")
"""Statuses of an order that is not done."""
ON_FLOOR = ("released", "in_progress")
"""Statuses of an order whose units can be on the shop floor."""

_EVENT_ID = re.compile(r"^[\x21-\x7e]{1,64}$")
_AUTO_ID = re.compile(r"^WO(\d{6})-(\d+)$")


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else format_ts(value)


# --------------------------------------------------------------------------- views


@dataclass(frozen=True, slots=True)
class MachineCount:
    """Units one machine counted for one step of one order."""

    machine: str
    good: int
    scrap: int

    def to_json(self) -> dict[str, Any]:
        return {"machine": self.machine, "good": self.good, "scrap": self.scrap}


@dataclass(frozen=True, slots=True)
class OperationView:
    """One routing step of an order (or counts naming a step its routing does not have)."""

    seq: int | None
    name: str
    status: str
    """waiting, running, done or skipped; ``unplanned`` for counts outside the routing."""
    planned: int | None
    good: int
    scrap: int
    wip: int
    wip_machine: str | None
    progress: float | None
    started: dt.datetime | None
    completed: dt.datetime | None
    machines: tuple[MachineCount, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "operation": self.seq,
            "name": self.name,
            "status": self.status,
            "planned": self.planned,
            "good": self.good,
            "scrap": self.scrap,
            "wip": self.wip,
            "wip_machine": self.wip_machine,
            "progress": None if self.progress is None else round(self.progress, 4),
            "started": _iso(self.started),
            "completed": _iso(self.completed),
            "machines": [m.to_json() for m in self.machines],
        }


@dataclass(frozen=True, slots=True)
class WorkOrderView:
    """A work order as the events tell it, as of ``as_of``."""

    order: str
    product: str | None
    product_name: str | None
    options: dict[str, str]
    quantity: int | None
    due: dt.datetime | None
    priority: int
    status: str
    created: dt.datetime | None
    released: dt.datetime | None
    started: dt.datetime | None
    completed: dt.datetime | None
    cancelled: dt.datetime | None
    good: int
    """Good units out of the last routing step (finished units)."""
    scrap: int
    """Units scrapped at any step."""
    wip: int
    progress: float | None
    """Good units at the output operation / quantity (docs/production.md)."""
    work_progress: float | None
    """Share of the order's standard work done (what the expected completion is reckoned from)."""
    expected_completion: dt.datetime | None
    expected_basis: str | None
    """``plan`` (the plan's end), ``observed`` (the order's own rate), ``standard`` (routing
    times) or ``completed``."""
    late: bool
    """Not done, and due passed or expected completion after due."""
    completed_late: bool
    """Completed after its due time."""
    operation: int | None
    """Step most recently started or completed (the read model's)."""
    machine: str | None
    operations: tuple[OperationView, ...]
    as_of: dt.datetime

    @property
    def open(self) -> bool:
        return self.status in OPEN

    def to_json(self) -> dict[str, Any]:
        return {
            "order": self.order,
            "product": self.product,
            "product_name": self.product_name,
            "options": self.options,
            "quantity": self.quantity,
            "due": _iso(self.due),
            "priority": self.priority,
            "status": self.status,
            "created": _iso(self.created),
            "released": _iso(self.released),
            "started": _iso(self.started),
            "completed": _iso(self.completed),
            "cancelled": _iso(self.cancelled),
            "good": self.good,
            "scrap": self.scrap,
            "wip": self.wip,
            "progress": None if self.progress is None else round(self.progress, 4),
            "work_progress": None if self.work_progress is None else round(self.work_progress, 4),
            "expected_completion": _iso(self.expected_completion),
            "expected_basis": self.expected_basis,
            "late": self.late,
            "completed_late": self.completed_late,
            "operation": self.operation,
            "machine": self.machine,
            "operations": [op.to_json() for op in self.operations],
            "as_of": _iso(self.as_of),
        }


@dataclass(frozen=True, slots=True)
class OrderChange:
    """What a create, release or cancel did: the order afterwards, and how many events it stored
    (0 when the work was already done, e.g. a retried command)."""

    view: WorkOrderView
    stored: int

    def to_json(self) -> dict[str, Any]:
        return {"stored": self.stored, "order": self.view.to_json()}


@dataclass(frozen=True, slots=True)
class WipRow:
    """Units of one order waiting at or running through one step."""

    order: str
    product: str | None
    operation: int
    operation_name: str
    machine: str | None
    units: int

    def to_json(self) -> dict[str, Any]:
        return {
            "order": self.order,
            "product": self.product,
            "operation": self.operation,
            "operation_name": self.operation_name,
            "machine": self.machine,
            "units": self.units,
        }


@dataclass(frozen=True, slots=True)
class WipReport:
    """Work in progress of the open orders, by order step, by machine and by routing step."""

    as_of: dt.datetime
    rows: tuple[WipRow, ...]

    def by_machine(self) -> list[tuple[str | None, int, int]]:
        """(machine path or None = waiting for a machine, units, orders), by path, None last."""
        units: dict[str | None, int] = defaultdict(int)
        orders: dict[str | None, set[str]] = defaultdict(set)
        for row in self.rows:
            units[row.machine] += row.units
            orders[row.machine].add(row.order)
        keys = sorted(units, key=lambda m: (m is None, m or ""))
        return [(m, units[m], len(orders[m])) for m in keys]

    def by_operation(self) -> list[tuple[str | None, int, str, int, int]]:
        """(product, step, step name, units, orders), by product then step."""
        units: dict[tuple[str | None, int, str], int] = defaultdict(int)
        orders: dict[tuple[str | None, int, str], set[str]] = defaultdict(set)
        for row in self.rows:
            key = (row.product, row.operation, row.operation_name)
            units[key] += row.units
            orders[key].add(row.order)
        keys = sorted(units, key=lambda k: (k[0] or "", k[1]))
        return [(k[0], k[1], k[2], units[k], len(orders[k])) for k in keys]

    def to_json(self) -> dict[str, Any]:
        return {
            "as_of": _iso(self.as_of),
            "units": sum(r.units for r in self.rows),
            "by_machine": [
                {"machine": m, "units": u, "orders": n} for m, u, n in self.by_machine()
            ],
            "by_operation": [
                {"product": p, "operation": s, "name": name, "units": u, "orders": n}
                for p, s, name, u, n in self.by_operation()
            ],
            "rows": [r.to_json() for r in self.rows],
        }


# --------------------------------------------------------------------------- event history


@dataclass(slots=True)
class _Step:
    first_started: dt.datetime | None = None
    last_started: tuple[dt.datetime, str] | None = None
    started_machine: str | None = None
    last_completed: tuple[dt.datetime, str] | None = None

    @property
    def completed(self) -> bool:
        if self.last_completed is None:
            return False
        return self.last_started is None or self.last_completed >= self.last_started


@dataclass(slots=True)
class OrderHistory:
    """The order events of one order, folded (in (ts, id) order)."""

    order: str
    events: list[OrderEvent] = field(default_factory=list)
    details: OrderEvent | None = None
    """The latest created or released event: product, quantity, options, due, priority."""
    created: OrderEvent | None = None
    released: OrderEvent | None = None
    """The first release."""
    started: dt.datetime | None = None
    completed: dt.datetime | None = None
    cancelled: dt.datetime | None = None
    steps: dict[int, _Step] = field(default_factory=dict)

    def add(self, ev: OrderEvent) -> None:
        self.events.append(ev)
        kind = ev.event
        if kind in (OrderEventKind.CREATED, OrderEventKind.RELEASED):
            self.details = ev  # events come in (ts, id) order: the latest wins
            if kind is OrderEventKind.CREATED and self.created is None:
                self.created = ev
            if kind is OrderEventKind.RELEASED and self.released is None:
                self.released = ev
        elif kind is OrderEventKind.CANCELLED:
            self.cancelled = self.cancelled or ev.ts
        elif kind is OrderEventKind.STARTED:
            self.started = self.started or ev.ts
            if ev.operation is not None:
                step = self.steps.setdefault(ev.operation, _Step())
                step.first_started = step.first_started or ev.ts
                step.last_started = (ev.ts, ev.id)
                step.started_machine = ev.machine
        elif kind is OrderEventKind.COMPLETED:
            if ev.operation is None:
                self.completed = ev.ts
            else:
                self.steps.setdefault(ev.operation, _Step()).last_completed = (ev.ts, ev.id)

    @property
    def home(self) -> str:
        """The machine path the order's office events carry (that of its first event)."""
        return (self.details or self.events[0]).machine


def order_histories(store: EventStore) -> dict[str, OrderHistory]:
    """Every order's events, folded; read from the ``order`` stream in (ts, id) order."""
    histories: dict[str, OrderHistory] = {}
    for stored in store.events(stream="order"):
        ev = stored.event
        assert isinstance(ev, OrderEvent)
        history = histories.get(ev.order)
        if history is None:
            history = histories[ev.order] = OrderHistory(ev.order)
        history.add(ev)
    return histories


CountTable = dict[str, dict[int | None, dict[str, list[int]]]]
"""order -> step (None: no step named) -> machine path -> [good, scrap]."""


def order_counts(store: EventStore) -> CountTable:
    """Good and scrap per order, step and machine over the whole log (the hourly production read
    model, summed in SQL; inside and outside working time)."""
    table: CountTable = defaultdict(lambda: defaultdict(dict))
    for row in count_totals(store):
        if row.order is None:
            continue
        cell = table[row.order][row.operation].setdefault(row.machine, [0, 0])
        cell[0] += row.all_good
        cell[1] += row.all_scrap
    return table


def plant_clock(store: EventStore) -> dt.datetime:
    """The plant clock, :meth:`EventStore.plant_clock` (the newest stored event time)."""
    return store.plant_clock()


def _wall_clock() -> dt.datetime:
    now = dt.datetime.now(dt.UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def _event_time(now: dt.datetime | None) -> dt.datetime:
    if now is None:
        return _wall_clock()
    now = now.astimezone(dt.UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


# --------------------------------------------------------------------------- ids and places


def order_event_id(order: str, kind: OrderEventKind | str) -> str:
    """The id of an order's lifecycle event of this kind: ``order:{order}:{kind}``; orders whose
    id would not fit an event id (64 printable ASCII characters) use a SHA-256 of their id."""
    kind = OrderEventKind(kind).value
    text = f"order:{order}:{kind}"
    if _EVENT_ID.match(text):
        return text
    return f"order:#{hashlib.sha256(order.encode('utf-8')).hexdigest()[:32]}:{kind}"


def first_machine_path(factory: Factory, product: Product) -> str:
    """Path of the first eligible machine of the product's first routing step."""
    paths = _machine_paths(factory)
    return paths[next(iter(product.routing[0].machines))]


def _machine_paths(factory: Factory) -> dict[str, str]:
    return {ref.machine.id: ref.path for ref in factory.machines()}


def _next_order_id(known: Iterable[str], at: dt.datetime, factory: Factory) -> str:
    """``WO{yymmdd}-{nnn}``: the day's next number (site time of the first site), after the
    site's ``order_prefix`` if it has one (``GD1-WO…``: order ids stay unique at HQ)."""
    site = factory.sites[0]
    day = at.astimezone(site.zone).strftime("%y%m%d")
    prefix = site.order_prefix or ""
    numbers = [
        int(m.group(2))
        for k in known
        if k.startswith(prefix) and (m := _AUTO_ID.match(k[len(prefix) :])) and m.group(1) == day
    ]
    return f"{prefix}WO{day}-{max(numbers, default=0) + 1:03d}"


# --------------------------------------------------------------------------- writing


def create_order(
    store: EventStore,
    factory: Factory,
    request: WorkOrderRequest,
    *,
    release: bool = False,
    now: dt.datetime | None = None,
) -> OrderChange:
    """Check the request against the factory and store the order's ``created`` event (and, with
    ``release``, its ``released`` event).

    Without an order id the next ``WO{yymmdd}-{nnn}`` of the day is used. Creating an order that
    already exists with the same details stores nothing (a retry); with other details, or when the
    id is taken by an order made elsewhere (the simulator, a connector), it is an InputError."""
    valid = check_request(factory, request)
    ts = _event_time(now)
    stored = 0
    for _attempt in range(5):
        histories = order_histories(store)
        known = set(histories) | {row.order for row in store.order_status()}
        order = valid.order or _next_order_id(known, ts, factory)
        created = _created_event(factory, valid, order, ts)
        if order in known:
            _check_same_order(order, histories.get(order), created)
            break
        result = store.append([created])
        stored += result.inserted
        if not result.conflicts:
            break
        # created by someone else between our read and our append
        if valid.order is not None:
            _check_same_order(order, order_histories(store).get(order), created)
            break
    else:  # pragma: no cover - five concurrent creations of the same day's numbers
        raise InputError("order: no free order number found; give the order id")
    if release:
        stored += release_order(store, factory, order, now=now).stored
    return OrderChange(get_order(store, factory, order), stored)


def _created_event(factory: Factory, valid: ValidOrder, order: str, ts: dt.datetime) -> OrderEvent:
    return OrderEvent(
        id=order_event_id(order, OrderEventKind.CREATED),
        ts=ts,
        machine=first_machine_path(factory, valid.product),
        order=order,
        event=OrderEventKind.CREATED,
        product=valid.product.sku,
        quantity=valid.quantity,
        options=valid.options or None,
        due=valid.due,
        priority=valid.priority,
    )


def _details(ev: OrderEvent) -> tuple[Any, ...]:
    return (
        ev.product,
        ev.quantity,
        ev.options or {},
        ev.due,
        ev.priority or DEFAULT_PRIORITY,
    )


def _check_same_order(order: str, history: OrderHistory | None, wanted: OrderEvent) -> None:
    """A retried create is fine; anything else under a taken id is an InputError."""
    if history is not None and history.created is not None:
        if _details(history.created) == _details(wanted):
            return
        ev = history.created
        raise InputError(
            f"order: '{order}' already exists with other details ({ev.quantity} × {ev.product}, "
            f"created {format_ts(ev.ts)}); give another order id"
        )
    raise InputError(
        f"order: '{order}' already exists (it was not created here: released by the shop floor "
        "or counted by a machine); give another order id"
    )


def release_order(
    store: EventStore, factory: Factory, order: str, *, now: dt.datetime | None = None
) -> OrderChange:
    """Send a created order to the floor: a ``released`` event repeating its details.

    An order already released (in progress, completed) stores nothing; a cancelled one cannot be
    released (InputError); an unknown id is a NotFoundError."""
    history, status = _known(store, order)
    stored = 0
    if status == "cancelled":
        raise InputError(f"order: '{order}' was cancelled; a cancelled order cannot be released")
    if status == "created" and history is not None:
        base = history.details or history.events[0]
        event = OrderEvent(
            id=order_event_id(order, OrderEventKind.RELEASED),
            ts=max(_event_time(now), base.ts),
            machine=history.home,
            order=order,
            event=OrderEventKind.RELEASED,
            product=base.product,
            quantity=base.quantity,
            options=base.options,
            due=base.due,
            priority=base.priority,
        )
        stored = store.append([event]).inserted
    return OrderChange(get_order(store, factory, order), stored)


def cancel_order(
    store: EventStore, factory: Factory, order: str, *, now: dt.datetime | None = None
) -> OrderChange:
    """Withdraw an order that is not completed: a ``cancelled`` event for the whole order.

    An order already cancelled stores nothing; a completed one cannot be cancelled (InputError)."""
    history, status = _known(store, order)
    if status == "completed":
        raise InputError(f"order: '{order}' is completed; a completed order cannot be cancelled")
    stored = 0
    if status != "cancelled":
        if history is not None:
            machine, last = history.home, history.events[-1].ts
        else:  # known from counts only
            counts = order_counts(store).get(order, {})
            machine = min(m for machines in counts.values() for m in machines)
            last = EPOCH
        event = OrderEvent(
            id=order_event_id(order, OrderEventKind.CANCELLED),
            ts=max(_event_time(now), last),
            machine=machine,
            order=order,
            event=OrderEventKind.CANCELLED,
        )
        stored = store.append([event]).inserted
    return OrderChange(get_order(store, factory, order), stored)


def _known(store: EventStore, order: str) -> tuple[OrderHistory | None, str]:
    rows = {row.order: row for row in store.order_status()}
    if order not in rows:
        raise _unknown(order)
    return order_histories(store).get(order), rows[order].status


def _unknown(order: str) -> NotFoundError:
    return NotFoundError(
        f"order: '{order}' is not a known work order; 'microfab orders list' shows them"
    )


# --------------------------------------------------------------------------- reading


def list_orders(
    store: EventStore,
    factory: Factory,
    *,
    now: dt.datetime | None = None,
    status: str | None = None,
    late: bool | None = None,
    plan: Mapping[str, Any] | None = None,
) -> list[WorkOrderView]:
    """Every work order (optionally only those of one status, or only late / not late ones),
    ordered by order id; ``plan``: the plan document whose planned ends are the expected
    completions of the open orders it holds (module docstring)."""
    if status is not None and status not in STATUSES:
        raise InputError(f"status: '{status}' is not one of {', '.join(STATUSES)}")
    as_of = plant_clock(store) if now is None else now.astimezone(dt.UTC)
    histories = order_histories(store)
    counts = order_counts(store)
    paths = _machine_paths(factory)
    ends = planned_ends(plan, as_of)
    views = [
        _view(
            row,
            histories.get(row.order),
            counts.get(row.order, {}),
            factory,
            paths,
            as_of,
            ends.get(row.order),
        )
        for row in store.order_status()
        if status is None or row.status == status
    ]
    if late is not None:
        views = [v for v in views if v.late is late]
    return sorted(views, key=lambda v: v.order)


def get_order(
    store: EventStore,
    factory: Factory,
    order: str,
    *,
    now: dt.datetime | None = None,
    plan: Mapping[str, Any] | None = None,
) -> WorkOrderView:
    """One work order; NotFoundError (field ``order``) when no event names it. ``plan`` as for
    :func:`list_orders`."""
    rows = {row.order: row for row in store.order_status()}
    row = rows.get(order)
    if row is None:
        raise _unknown(order)
    as_of = plant_clock(store) if now is None else now.astimezone(dt.UTC)
    histories = order_histories(store)
    counts = order_counts(store).get(order, {})
    end = planned_ends(plan, as_of).get(order)
    return _view(row, histories.get(order), counts, factory, _machine_paths(factory), as_of, end)


def planned_ends(
    plan: Mapping[str, Any] | None, now: dt.datetime | None = None
) -> dict[str, dt.datetime]:
    """Order id -> planned end (UTC) of every order a plan document schedules; nothing from a
    plan made after ``now`` (a plan file left by an earlier run of a replayed or simulated day)."""
    ends: dict[str, dt.datetime] = {}
    if not plan:
        return ends
    made = (plan.get("plan") or {}).get("start")
    if now is not None and made:
        try:
            if dt.datetime.fromisoformat(str(made)) > now:
                return ends
        except (TypeError, ValueError):
            return ends
    for row in plan.get("orders") or ():
        text = row.get("planned_end") if isinstance(row, Mapping) else None
        if not text:
            continue
        try:
            when = dt.datetime.fromisoformat(str(text))
        except ValueError:
            continue
        if when.tzinfo is not None:
            ends[str(row.get("order"))] = when.astimezone(dt.UTC)
    return ends


def plan_of(plant: Plant) -> Mapping[str, Any] | None:
    """The plan document of a :class:`~microfab.track.plant.Plant` (None without a plan)."""
    return plant.plan_source() if plant.plan_source is not None else None


def wip(store: EventStore, factory: Factory, *, now: dt.datetime | None = None) -> WipReport:
    """Units in progress of every open order, per order step with the machine holding them."""
    views = list_orders(store, factory, now=now)
    rows = [
        WipRow(v.order, v.product, op.seq, op.name, op.wip_machine, op.wip)
        for v in views
        for op in v.operations
        if op.wip > 0 and op.seq is not None
    ]
    as_of = views[0].as_of if views else (plant_clock(store) if now is None else now)
    return WipReport(as_of.astimezone(dt.UTC), tuple(rows))


def _view(
    row: OrderStatus,
    history: OrderHistory | None,
    counts: dict[int | None, dict[str, list[int]]],
    factory: Factory,
    paths: dict[str, str],
    now: dt.datetime,
    planned_end: dt.datetime | None = None,
) -> WorkOrderView:
    details = history.details if history else None
    sku = details.product if details and details.product else row.product
    quantity = details.quantity if details and details.quantity else row.quantity
    options = dict(details.options or {}) if details else {}
    due = details.due if details else None
    priority = (details.priority if details else None) or DEFAULT_PRIORITY
    product: Product | None = None
    if sku is not None:
        product = next((p for p in factory.products if p.sku == sku), None)
    status = row.status
    completed = (history.completed if history else None) or row.completed_ts
    started = history.started if history else None
    released = (history.released.ts if history and history.released else None) or row.released_ts

    operations: list[OperationView] = []
    progress: OrderProgress | None = None
    if product is not None and quantity:
        progress, operations = _route(
            product, options, quantity, status, history, counts, paths, row
        )
    routed = {op.seq for op in operations}
    for seq in sorted(counts, key=lambda s: (s is None, s or 0)):
        if seq in routed and seq is not None:
            continue
        machines = _machine_counts(counts[seq])
        operations.append(
            OperationView(
                seq=seq,
                name="(no step named)" if seq is None else "(not in the routing)",
                status="unplanned",
                planned=None,
                good=sum(m.good for m in machines),
                scrap=sum(m.scrap for m in machines),
                wip=0,
                wip_machine=None,
                progress=None,
                started=None,
                completed=None,
                machines=machines,
            )
        )
    out_op = output_operation(product, quantity, counts)
    good = sum(op.good for op in operations if op.seq == out_op)
    scrap = sum(op.scrap for op in operations)

    expected, basis = order_completion(
        status=status,
        completed=completed,
        progress=progress,
        began=started or released,
        now=now,
        planned_end=planned_end,
    )
    return WorkOrderView(
        order=row.order,
        product=sku,
        product_name=product.name if product else None,
        options=options,
        quantity=quantity,
        due=due,
        priority=priority,
        status=status,
        created=history.created.ts if history and history.created else None,
        released=released,
        started=started,
        completed=completed,
        cancelled=history.cancelled if history else None,
        good=good,
        scrap=scrap,
        wip=sum(op.wip for op in operations),
        progress=good / quantity if quantity else None,
        work_progress=(progress.progress if progress else (1.0 if status == "completed" else None)),
        expected_completion=expected,
        expected_basis=basis,
        late=is_late(open_=status in OPEN, due=due, expected=expected, now=now),
        completed_late=(
            status == "completed" and due is not None and completed is not None and completed > due
        ),
        operation=row.operation,
        machine=row.machine,
        operations=tuple(operations),
        as_of=now,
    )


def _route(
    product: Product,
    options: dict[str, str],
    quantity: int,
    status: str,
    history: OrderHistory | None,
    counts: dict[int | None, dict[str, list[int]]],
    paths: dict[str, str],
    row: OrderStatus,
) -> tuple[OrderProgress, list[OperationView]]:
    factor = time_factor(product, options)
    steps = history.steps if history else {}
    facts = []
    for op in product.routing:
        step = steps.get(op.seq)
        by_machine = counts.get(op.seq, {})
        facts.append(
            StepFacts(
                seq=op.seq,
                standard_s=standard_seconds(op, factor),
                good=sum(g for g, _ in by_machine.values()),
                scrap=sum(s for _, s in by_machine.values()),
                started=step is not None and step.last_started is not None,
                completed=step is not None and step.completed,
            )
        )
    progress = order_progress(
        quantity, facts, on_floor=status in ON_FLOOR, finished=status == "completed"
    )
    first_machine = None  # where the order was released, else created
    if history is not None:
        first_machine = history.released.machine if history.released else history.home
    operations = []
    for index, (op, fact, step_progress) in enumerate(
        zip(product.routing, facts, progress.steps, strict=True)
    ):
        step = steps.get(op.seq)
        holder = step.started_machine if step else None
        if holder is None and len(op.machines) == 1:
            holder = paths.get(next(iter(op.machines)))
        if holder is None and index == 0:
            holder = first_machine
        operations.append(
            OperationView(
                seq=op.seq,
                name=op.name,
                status=step_progress.status,
                planned=step_progress.planned,
                good=fact.good,
                scrap=fact.scrap,
                wip=step_progress.wip,
                wip_machine=holder,
                progress=step_progress.progress,
                started=step.first_started if step else None,
                completed=step.last_completed[0] if step and step.last_completed else None,
                machines=_machine_counts(counts.get(op.seq, {})),
            )
        )
    return progress, operations


def _machine_counts(by_machine: dict[str, list[int]]) -> tuple[MachineCount, ...]:
    return tuple(MachineCount(m, g, s) for m, (g, s) in sorted(by_machine.items()))


__all__ = [
    "MachineCount",
    "OperationView",
    "OrderChange",
    "OrderHistory",
    "WipReport",
    "WipRow",
    "WorkOrderRequest",
    "WorkOrderView",
    "cancel_order",
    "create_order",
    "first_machine_path",
    "get_order",
    "list_orders",
    "order_counts",
    "order_event_id",
    "order_histories",
    "plan_of",
    "planned_ends",
    "plant_clock",
    "release_order",
    "wip",
]
