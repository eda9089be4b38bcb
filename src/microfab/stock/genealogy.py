"""Lot genealogy for recalls: which orders used a lot, and what they made (and back).

Forward (a supplier lot → finished lots): every ``issue``/``backflush`` of the lot names the work
order it went to; every ``receipt`` naming one of those orders (a production receipt) is a lot
made from it. Backward (a finished lot → supplier lots): the order its receipt names, and every
lot issued to that order. Material events (``material`` stream) naming the lot count as uses too.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from microfab.model.events import MaterialConsumption, format_ts
from microfab.store.event_store import EventStore
from microfab.store.stock import ledger, lots


@dataclass
class LotTrace:
    """What one lot number went into and came from."""

    lot: str
    items: list[str] = field(default_factory=list)
    supplier: str | None = None
    orders: list[dict[str, object]] = field(default_factory=list)
    made: list[dict[str, object]] = field(default_factory=list)
    made_from: list[dict[str, object]] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {
            "lot": self.lot,
            "items": self.items,
            "supplier": self.supplier,
            "orders": self.orders,
            "made": self.made,
            "made_from": self.made_from,
        }


def trace_lot(store: EventStore, lot: str) -> LotTrace:
    """The orders that used ``lot`` (with quantities and first and last use), the lots received
    from those orders, and for a finished lot the lots issued to the order that made it."""
    found = LotTrace(lot=lot)
    known = lots(store, lot=lot)
    found.items = sorted({entry.item for entry in known})
    found.supplier = next((entry.supplier for entry in known if entry.supplier), None)
    used: dict[tuple[str, str], list[object]] = {}
    for leg in ledger(store, lot=lot, kinds=["issue", "backflush"]):
        if leg.order is None:
            continue
        entry = used.setdefault((leg.order, leg.item), [0.0, leg.ts, leg.ts])
        entry[0] = float(entry[0]) - leg.delta  # type: ignore[arg-type]
        entry[2] = leg.ts
    for stored in store.events(stream="material"):
        ev = stored.event
        if isinstance(ev, MaterialConsumption) and ev.lot == lot and ev.order is not None:
            entry = used.setdefault((ev.order, ev.material), [0.0, ev.ts, ev.ts])
            entry[0] = float(entry[0]) + ev.qty  # type: ignore[arg-type]
    for (order, item), (qty, first, last) in sorted(used.items()):
        found.orders.append(
            {
                "order": order,
                "item": item,
                "qty": round(float(qty), 6),  # type: ignore[arg-type]
                "first": format_ts(first),  # type: ignore[arg-type]
                "last": format_ts(last),  # type: ignore[arg-type]
            }
        )
    orders = {order for order, _ in used}
    made: dict[tuple[str, str | None, str], float] = defaultdict(float)
    for leg in ledger(store, kinds=["receipt"]):
        if leg.order in orders:
            made[(leg.item, leg.lot, leg.order or "")] += leg.delta
    found.made = [
        {"item": item, "lot": made_lot, "order": order, "qty": round(qty, 6)}
        for (item, made_lot, order), qty in sorted(made.items(), key=lambda kv: str(kv[0]))
    ]
    sources: dict[tuple[str, str | None, str], float] = defaultdict(float)
    for receipt in ledger(store, lot=lot, kinds=["receipt"]):
        if receipt.order is None:
            continue
        for leg in ledger(store, order=receipt.order, kinds=["issue", "backflush"]):
            sources[(leg.item, leg.lot, receipt.order)] -= leg.delta
    found.made_from = [
        {"item": item, "lot": src, "order": order, "qty": round(qty, 6)}
        for (item, src, order), qty in sorted(sources.items(), key=lambda kv: str(kv[0]))
    ]
    return found
