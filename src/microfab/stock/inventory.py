"""What is in stock: on hand by item × lot × location, available per item, FEFO picks, expiry.

- **On hand** comes from the stock read model (:mod:`microfab.store.stock`), now or at any time.
- **Quarantine** of an item: its on hand in held lots plus its on hand at quarantine locations.
- **Reserved** for an item: what the released and in-progress work orders still need of it, by
  their product's bill of materials × ordered quantity, less what was already issued to them.
- **Available** = on hand − reserved − quarantine.
- **FEFO** (first expired, first out): a pick takes lots by expiry, earliest first (lots without
  an expiry last), skipping held and expired lots and quarantine locations.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from microfab.model.events import format_ts
from microfab.model.factory import Factory
from microfab.model.materials import LocationKind, UnitError
from microfab.store.event_store import EventStore
from microfab.store.stock import Lot, OnHand, issued_by_order, lots, on_hand

OPEN_STATUSES = ("released", "in_progress")
"""Work-order statuses whose materials are reserved."""
PLANNED_STATUSES = ("created", "released", "in_progress")
"""Work-order statuses MRP-lite nets against stock."""


def on_hand_json(rows: Iterable[OnHand]) -> list[dict[str, object]]:
    """The ``stock on-hand --json`` contract: ``{item, lot, location, qty, unit}``."""
    return [
        {"item": r.item, "lot": r.lot, "location": r.location, "qty": r.qty, "unit": r.unit}
        for r in rows
    ]


@dataclass(frozen=True, slots=True)
class ItemStock:
    """One item's stock figures, in its stock unit."""

    item: str
    name: str
    unit: str
    on_hand: float
    quarantine: float
    reserved: float

    @property
    def available(self) -> float:
        return round(self.on_hand - self.reserved - self.quarantine, 6)

    def to_json(self) -> dict[str, object]:
        return {
            "item": self.item,
            "name": self.name,
            "unit": self.unit,
            "on_hand": round(self.on_hand, 6),
            "quarantine": round(self.quarantine, 6),
            "reserved": round(self.reserved, 6),
            "available": self.available,
        }


def requirements(
    store: EventStore, factory: Factory, statuses: Iterable[str]
) -> dict[str, dict[str, float]]:
    """What each work order of those statuses still needs, per item: order -> item -> stock
    units (BOM × ordered quantity, less what was issued to it; never below zero)."""
    wanted = set(statuses)
    orders = [o for o in store.order_status() if o.status in wanted and o.product and o.quantity]
    issued = issued_by_order(store, [o.order for o in orders])
    needs: dict[str, dict[str, float]] = {}
    for order in orders:
        try:
            product = factory.product(order.product or "")
        except KeyError:
            continue
        per_item: dict[str, float] = defaultdict(float)
        for line in product.bom:
            try:
                item = factory.item(line.material)
                per_item[item.sku] += item.to_stock(line.qty * (order.quantity or 0), line.unit)
            except (KeyError, UnitError):
                continue  # a BOM line that is not a stocked item (or not convertible)
        needs[order.order] = {
            sku: max(0.0, round(qty - issued.get((order.order, sku), 0.0), 6))
            for sku, qty in per_item.items()
        }
    return needs


def item_stock(
    store: EventStore, factory: Factory, *, at: dt.datetime | None = None
) -> list[ItemStock]:
    """Every item of the item master: on hand, quarantine, reserved, available."""
    rows = on_hand(store, at=at)
    held = {(lot.item, lot.lot) for lot in lots(store) if lot.held}
    quarantine_places = {
        lid for lid, loc in factory.stock_locations().items() if loc.kind is LocationKind.QUARANTINE
    }
    totals: dict[str, float] = defaultdict(float)
    quarantine: dict[str, float] = defaultdict(float)
    for row in rows:
        totals[row.item] += row.qty
        if (row.item, row.lot or "") in held or row.location in quarantine_places:
            quarantine[row.item] += row.qty
    reserved: dict[str, float] = defaultdict(float)
    for needs in requirements(store, factory, OPEN_STATUSES).values():
        for sku, qty in needs.items():
            reserved[sku] += qty
    return [
        ItemStock(
            item=item.sku,
            name=item.name,
            unit=item.unit,
            on_hand=round(totals[item.sku], 6),
            quarantine=round(quarantine[item.sku], 6),
            reserved=round(reserved[item.sku], 6),
        )
        for item in factory.items
    ]


@dataclass(frozen=True, slots=True)
class Pick:
    """Take ``qty`` of ``lot`` from ``location`` (a FEFO proposal line)."""

    item: str
    lot: str | None
    location: str
    qty: float
    unit: str
    expiry: dt.datetime | None

    def to_json(self) -> dict[str, object]:
        return {
            "item": self.item,
            "lot": self.lot,
            "location": self.location,
            "qty": self.qty,
            "unit": self.unit,
            "expiry": None if self.expiry is None else format_ts(self.expiry),
        }


def fefo(
    store: EventStore,
    factory: Factory,
    sku: str,
    qty: float,
    *,
    at: dt.datetime,
    locations: Iterable[str] | None = None,
) -> tuple[list[Pick], float]:
    """FEFO picks of ``qty`` stock units of ``sku`` (from ``locations``, default every location
    but quarantine and line-side ones); returns (picks, quantity short)."""
    places = factory.stock_locations()
    allowed = (
        set(locations)
        if locations is not None
        else {
            lid
            for lid, loc in places.items()
            if loc.kind not in (LocationKind.QUARANTINE, LocationKind.LINE_SIDE)
        }
    )
    lot_info = {lot.lot: lot for lot in lots(store, item=sku)}
    candidates: list[tuple[dt.datetime, str, str, float, str]] = []
    far = dt.datetime.max.replace(tzinfo=dt.UTC)
    for row in on_hand(store, item=sku):
        if row.location not in allowed or row.qty <= 0:
            continue
        info: Lot | None = lot_info.get(row.lot or "")
        if info is not None and info.held:
            continue
        expiry = info.expiry if info is not None else None
        if expiry is not None and expiry <= at:
            continue
        candidates.append((expiry or far, row.lot or "", row.location, row.qty, row.unit))
    candidates.sort()
    picks: list[Pick] = []
    left = qty
    for expiry, lot, location, have, unit in candidates:
        if left <= 1e-9:
            break
        take = min(have, left)
        picks.append(
            Pick(
                sku, lot or None, location, round(take, 6), unit, None if expiry == far else expiry
            )
        )
        left -= take
    return picks, round(max(left, 0.0), 6)


@dataclass(frozen=True, slots=True)
class Expiring:
    """A lot with stock that expires within the horizon (or has expired)."""

    item: str
    lot: str
    expiry: dt.datetime
    qty: float
    unit: str
    days_left: float
    locations: list[str]

    def to_json(self) -> dict[str, object]:
        return {
            "item": self.item,
            "lot": self.lot,
            "expiry": format_ts(self.expiry),
            "qty": self.qty,
            "unit": self.unit,
            "days_left": self.days_left,
            "locations": self.locations,
        }


def expiring(store: EventStore, *, at: dt.datetime, days: float = 7.0) -> list[Expiring]:
    """Lots with stock on hand whose expiry falls before ``at`` + ``days``, soonest first."""
    horizon = at + dt.timedelta(days=days)
    found: list[Expiring] = []
    stock: dict[tuple[str, str], list[OnHand]] = defaultdict(list)
    for row in on_hand(store):
        stock[(row.item, row.lot or "")].append(row)
    for lot in lots(store):
        rows = stock.get((lot.item, lot.lot))
        if lot.expiry is None or lot.expiry >= horizon or not rows:
            continue
        found.append(
            Expiring(
                item=lot.item,
                lot=lot.lot,
                expiry=lot.expiry,
                qty=round(sum(r.qty for r in rows), 6),
                unit=rows[0].unit,
                days_left=round((lot.expiry - at).total_seconds() / 86400, 2),
                locations=sorted(r.location for r in rows),
            )
        )
    return sorted(found, key=lambda e: (e.expiry, e.item, e.lot))
