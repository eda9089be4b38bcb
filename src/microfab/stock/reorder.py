"""Low-inventory replenishment: reorder points, MRP-lite purchase suggestions.

**Reorder point** (per item): ``ROP = d̄·L + z·σ_d·√L`` and safety stock ``SS = z·σ_d·√L``, where
d̄ and σ_d are the mean and the sample standard deviation (n − 1) of the item's daily consumption
(issues and backflushes, in stock units) over the item's last N whole days in site time before
the day of ``at`` (N = ``demand_days``, 28 by default; a day without consumption counts as 0),
L the supplier lead time in days and z the normal quantile of the service level
(``statistics.NormalDist().inv_cdf``; 95 % → 1.6449).

**MRP-lite**: the item's *position* = on hand − quarantine + on order − what the created,
released and in-progress work orders still need of it (BOM × quantity, less what was issued).
When the position is at or below the reorder point, buy up to ``ROP + d̄·cover`` (cover =
``order_cover_days``): the quantity ``ROP + d̄·cover − position``, at least the minimum order
quantity, rounded up to whole packs, to be ordered today. Otherwise nothing is suggested and
``order_by`` is the day the position is expected to reach the reorder point at d̄ a day.
**On order** is what open purchase orders (a CSV ``po,item,qty,unit,due[,supplier]``) still
owe: their quantity less the receipts whose ``ref`` names the purchase order.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from microfab.errors import InputError
from microfab.model.factory import Factory
from microfab.model.materials import Item, UnitError
from microfab.model.timerange import parse_time
from microfab.stock.inventory import PLANNED_STATUSES, item_stock, requirements
from microfab.store.event_store import EventStore
from microfab.store.stock import ledger


@dataclass(frozen=True, slots=True)
class ReorderPoint:
    mean_daily: float
    sd_daily: float
    z: float
    safety_stock: float
    reorder_point: float


def reorder_point(
    daily: Sequence[float], lead_time_days: float, service_level: float
) -> ReorderPoint:
    """``d̄·L + z·σ_d·√L`` of a series of daily consumption (σ_d the sample deviation)."""
    mean = statistics.fmean(daily) if daily else 0.0
    sd = statistics.stdev(daily) if len(daily) > 1 else 0.0
    z = statistics.NormalDist().inv_cdf(service_level)
    safety = z * sd * math.sqrt(lead_time_days)
    return ReorderPoint(mean, sd, z, safety, mean * lead_time_days + safety)


def order_quantity(need: float, moq: float, pack_size: float | None) -> float:
    """``need`` raised to the minimum order quantity, then up to whole packs."""
    qty = max(need, moq)
    if pack_size:
        qty = math.ceil(round(qty / pack_size, 9)) * pack_size
    return round(qty, 6)


@dataclass(frozen=True, slots=True)
class PurchaseOrder:
    po: str
    item: str
    qty: float
    due: dt.datetime
    supplier: str | None


def read_purchase_orders(path: Path, factory: Factory) -> list[PurchaseOrder]:
    """Open purchase orders from a CSV ``po,item,qty,unit,due[,supplier]``; a bad row is an
    :class:`InputError` naming ``file:row:column``."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(f"cannot read the purchase orders {path}: {exc.strerror or exc}") from None
    reader = csv.DictReader(text.splitlines())
    header = reader.fieldnames or []
    for column in ("po", "item", "qty", "unit", "due"):
        if column not in header:
            raise InputError(f"{path}:1:1 header lacks '{column}' (po,item,qty,unit,due,supplier)")
    found: list[PurchaseOrder] = []
    for number, row in enumerate(reader, start=2):

        def fault(column: str, message: str, number: int = number) -> InputError:
            return InputError(f"{path}:{number}:{header.index(column) + 1} {column}: {message}")

        try:
            item = factory.item((row["item"] or "").strip())
        except KeyError:
            raise fault("item", f"'{row['item']}' is not an item of the factory model") from None
        try:
            qty = item.to_stock(float(row["qty"]), (row["unit"] or item.unit).strip())
        except ValueError as exc:
            column = "unit" if isinstance(exc, UnitError) else "qty"
            raise fault(column, str(exc)) from None
        try:
            due = parse_time((row["due"] or "").strip(), factory.sites[0].zone, field="due")
        except InputError as exc:
            raise fault("due", exc.message.removeprefix("due: ")) from None
        found.append(
            PurchaseOrder(row["po"].strip(), item.sku, qty, due, (row.get("supplier") or None))
        )
    return found


def on_order(store: EventStore, orders: Sequence[PurchaseOrder]) -> dict[str, float]:
    """Per item, what open purchase orders still owe (quantity less receipts naming them)."""
    received: dict[tuple[str, str], float] = defaultdict(float)
    for item in {po.item for po in orders}:
        for leg in ledger(store, item=item, kinds=["receipt"]):
            if leg.ref is not None:
                received[(leg.ref, item)] += leg.delta
    owed: dict[str, float] = defaultdict(float)
    for po in orders:
        left = po.qty - received[(po.po, po.item)]
        received[(po.po, po.item)] = max(0.0, -left)
        owed[po.item] += max(0.0, left)
    return owed


def daily_consumption(
    store: EventStore, factory: Factory, item: Item, at: dt.datetime
) -> list[float]:
    """The item's consumption on each of its last N whole site days before ``at``'s day."""
    zone = factory.sites[0].zone
    today = at.astimezone(zone).date()
    first = today - dt.timedelta(days=item.demand_days)
    start = dt.datetime.combine(first, dt.time(), zone)
    end = dt.datetime.combine(today, dt.time(), zone)
    days = [0.0] * item.demand_days
    for leg in ledger(store, item=item.sku, start=start, end=end, kinds=["issue", "backflush"]):
        index = (leg.ts.astimezone(zone).date() - first).days
        if 0 <= index < len(days):
            days[index] -= leg.delta
    return [round(d, 6) for d in days]


def reorder_report(
    store: EventStore,
    factory: Factory,
    *,
    at: dt.datetime,
    purchase_orders: Sequence[PurchaseOrder] = (),
) -> list[dict[str, object]]:
    """The ``stock reorder --json`` contract, one entry per item of the item master."""
    zone = factory.sites[0].zone
    stock = {s.item: s for s in item_stock(store, factory, at=at)}
    owed = on_order(store, purchase_orders)
    needed: dict[str, float] = defaultdict(float)
    for needs in requirements(store, factory, PLANNED_STATUSES).values():
        for sku, qty in needs.items():
            needed[sku] += qty
    out: list[dict[str, object]] = []
    for item in factory.items:
        daily = daily_consumption(store, factory, item, at)
        rop = reorder_point(daily, item.lead_time_days, item.service_level)
        figures = stock[item.sku]
        position = figures.on_hand - figures.quarantine + owed[item.sku] - needed[item.sku]
        suggest = 0.0
        order_by: dt.date | None
        if position <= rop.reorder_point + 1e-9 and (rop.reorder_point > 0 or position < 0):
            need = rop.reorder_point + rop.mean_daily * item.order_cover_days - position
            suggest = order_quantity(need, item.moq, item.pack_size)
            order_by = at.astimezone(zone).date()
        elif rop.mean_daily > 0:
            days = (position - rop.reorder_point) / rop.mean_daily
            order_by = (at + dt.timedelta(days=days)).astimezone(zone).date()
        else:
            order_by = None
        out.append(
            {
                "item": item.sku,
                "mean_daily": round(rop.mean_daily, 6),
                "sd_daily": round(rop.sd_daily, 6),
                "lead_time_days": item.lead_time_days,
                "service_level": item.service_level,
                "safety_stock": round(rop.safety_stock, 6),
                "reorder_point": round(rop.reorder_point, 6),
                "on_hand": figures.on_hand,
                "on_order": round(owed[item.sku], 6),
                "suggest_qty": suggest,
                "order_by": None if order_by is None else order_by.isoformat(),
            }
        )
    return out


def purchase_suggestions(
    store: EventStore,
    factory: Factory,
    *,
    at: dt.datetime,
    purchase_orders: Sequence[PurchaseOrder] = (),
) -> list[dict[str, object]]:
    """The items to buy now: supplier, quantity (packs), order-by and expected arrival, cost."""
    out: list[dict[str, object]] = []
    for row in reorder_report(store, factory, at=at, purchase_orders=purchase_orders):
        qty = float(row["suggest_qty"])  # type: ignore[arg-type]
        if qty <= 0:
            continue
        item = factory.item(str(row["item"]))
        order_by = dt.date.fromisoformat(str(row["order_by"]))
        arrival = order_by + dt.timedelta(days=math.ceil(item.lead_time_days))
        out.append(
            {
                "item": item.sku,
                "name": item.name,
                "supplier": item.supplier,
                "qty": qty,
                "unit": item.unit,
                "packs": None if not item.pack_size else round(qty / item.pack_size),
                "order_by": order_by.isoformat(),
                "arrives": arrival.isoformat(),
                "cost_hkd": round(qty * item.standard_cost_hkd, 2),
            }
        )
    return out
