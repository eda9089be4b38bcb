"""Materials-aware planning: when each open order's materials can be at its line, and what is short.

For every open order still to start, in priority then due order, its remaining need per item
(product BOM × quantity, less what was issued to it, in stock units) is taken first from stock
available now (on hand less quarantine, shared out in that order), then from open purchase orders
by arrival. The order's materials are *ready* at the latest arrival it waits for plus the time to
bring stock to its line (the largest ``transfer_minutes`` of the line-side locations feeding the
line of its first routing step); with everything on hand, ready is now plus that transfer time,
which the plan does not wait for. A need no delivery covers is short with no end. Each shortage
is named the way a planner says it: ``RICE-JASMINE short 12.5 kg until Tue 09:00`` (site time).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from microfab.model.factory import Factory
from microfab.model.materials import LocationKind, UnitError
from microfab.stock.inventory import item_stock
from microfab.stock.reorder import PurchaseOrder, on_order
from microfab.store.event_store import EventStore
from microfab.store.stock import issued_by_order


@dataclass(frozen=True, slots=True)
class Shortage:
    order: str
    item: str
    qty: float
    unit: str
    until: dt.datetime | None
    """When a delivery covers it (None: no open purchase order does)."""

    def text(self, zone: dt.tzinfo) -> str:
        when = "no delivery covers it"
        if self.until is not None:
            when = "until " + self.until.astimezone(zone).strftime("%a %H:%M")
        return f"{self.item} short {self.qty:g} {self.unit} {when}"

    def to_json(self, zone: dt.tzinfo) -> dict[str, object]:
        return {
            "order": self.order,
            "item": self.item,
            "qty": self.qty,
            "unit": self.unit,
            "until": None if self.until is None else self.until.isoformat(),
            "message": self.text(zone),
        }


@dataclass
class MaterialCheck:
    """Per order: when its materials are ready at the line (None: never, a shortage has no end),
    and its shortages."""

    ready: dict[str, dt.datetime | None] = field(default_factory=dict)
    shortages: list[Shortage] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Arrival:
    item: str
    qty: float
    at: dt.datetime


@dataclass(frozen=True, slots=True)
class OrderNeed:
    order: str
    product: str
    quantity: int
    priority: int = 5
    due: dt.datetime | None = None


def _transfer(factory: Factory, product_sku: str) -> dt.timedelta:
    """Time to bring stock to the line of the product's first routing step."""
    try:
        product = factory.product(product_sku)
    except KeyError:
        return dt.timedelta(0)
    machines = set(product.routing[0].machines)
    lines = {ref.line.id for ref in factory.machines() if ref.machine.id in machines}
    minutes = [
        loc.transfer_minutes
        for loc in factory.stock_locations().values()
        if loc.kind is LocationKind.LINE_SIDE and loc.line in lines
    ]
    return dt.timedelta(minutes=max(minutes, default=0.0))


def check_materials(
    factory: Factory,
    orders: Sequence[OrderNeed],
    *,
    now: dt.datetime,
    available: Mapping[str, float],
    arrivals: Sequence[Arrival] = (),
    issued: Mapping[tuple[str, str], float] | None = None,
) -> MaterialCheck:
    """When each order's materials are ready, and what is short (see the module doc). Pure."""
    issued = issued or {}
    stock = defaultdict(float, {k: max(0.0, v) for k, v in available.items()})
    coming: dict[str, list[list[object]]] = defaultdict(list)
    for arrival in sorted(arrivals, key=lambda a: a.at):
        coming[arrival.item].append([arrival.at, arrival.qty])
    out = MaterialCheck()
    far = dt.datetime.max.replace(tzinfo=dt.UTC)
    for order in sorted(orders, key=lambda o: (o.priority, o.due or far, o.order)):
        try:
            product = factory.product(order.product)
        except KeyError:
            continue
        need: dict[str, float] = defaultdict(float)
        for line in product.bom:
            try:
                item = factory.item(line.material)
                need[item.sku] += item.to_stock(line.qty * order.quantity, line.unit)
            except (KeyError, UnitError):
                continue
        ready: dt.datetime | None = now
        for sku, total in sorted(need.items()):
            left = round(total - issued.get((order.order, sku), 0.0), 6)
            if left <= 0:
                continue
            take = min(stock[sku], left)
            stock[sku] -= take
            short = round(left - take, 6)
            if short <= 0:
                continue
            until: dt.datetime | None = None
            rest = short
            for entry in coming[sku]:
                at, qty = entry[0], float(entry[1])  # type: ignore[arg-type]
                if qty <= 0:
                    continue
                used = min(qty, rest)
                entry[1] = qty - used
                rest -= used
                if rest <= 1e-9:
                    until = at  # type: ignore[assignment]
                    break
            out.shortages.append(Shortage(order.order, sku, short, factory.item(sku).unit, until))
            if until is None:
                ready = None
            elif ready is not None:
                ready = max(ready, until)
        if ready is not None and ready > now:
            ready = ready + _transfer(factory, order.product)
        out.ready[order.order] = ready
    return out


def plan_materials(
    store: EventStore,
    factory: Factory,
    orders: Sequence[OrderNeed],
    *,
    now: dt.datetime,
    purchase_orders: Sequence[PurchaseOrder] = (),
) -> MaterialCheck:
    """:func:`check_materials` with what the store holds: on hand less quarantine per item,
    what was issued to the orders, and what each open purchase order still owes at its due."""
    available = {s.item: s.on_hand - s.quarantine for s in item_stock(store, factory)}
    issued = issued_by_order(store, [o.order for o in orders])
    arrivals: list[Arrival] = []
    for po in purchase_orders:
        left = on_order(store, [po]).get(po.item, 0.0)
        if left > 0:
            arrivals.append(Arrival(po.item, left, po.due))
    return check_materials(
        factory, orders, now=now, available=available, arrivals=arrivals, issued=issued
    )


def material_violations(
    document: Mapping[str, object], ready: Mapping[str, dt.datetime | None]
) -> list[str]:
    """Operations of a plan document that start before their order's materials are at the line
    (``ready`` as :func:`plan_materials` gives it now): each as one sentence."""
    found: list[str] = []
    operations = document.get("operations")
    if not isinstance(operations, list):
        return found
    for op in operations:
        if not isinstance(op, dict) or op.get("fixed") or op.get("order") not in ready:
            continue
        start = dt.datetime.fromisoformat(str(op["start"]))
        when = ready[str(op["order"])]
        if when is None:
            found.append(
                f"{op['order']} {op.get('name', '')}: starts {start.isoformat()} but its "
                "materials are short with no delivery in sight"
            )
        elif start < when:
            found.append(
                f"{op['order']} {op.get('name', '')}: starts {start.isoformat()} before its "
                f"materials are at the line ({when.astimezone(start.tzinfo).isoformat()})"
            )
    return found
