"""Backflush: items marked ``backflush: true`` are issued from counts × BOM, not picked.

For every stored count of a work order at its product's first routing step (good + scrap units
started; corrections left out), each backflushed BOM line becomes a ``backflush`` movement from
the line-side location of the counting machine's line, from the lot FEFO takes first there (one
movement per count and item). Ids derive from the count's id, so running it again stores
nothing new. A backflush records consumption that already
happened, so it is stored even when it takes the on hand below zero; a line without a line-side
location is named and skipped.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from microfab.model.events import PartCount, StockKind, StockMove
from microfab.model.factory import Factory
from microfab.model.materials import LocationKind, UnitError
from microfab.stock.inventory import fefo
from microfab.store.event_store import EventStore
from microfab.store.stock import ledger


@dataclass
class Backflushed:
    stored: int = 0
    ignored: int = 0
    problems: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {"stored": self.stored, "ignored": self.ignored, "problems": self.problems}


def _event_id(count_id: str, sku: str) -> str:
    text = f"bf-{count_id}-{sku}"
    if len(text) <= 64:
        return text
    return "bf-" + hashlib.sha256(text.encode()).hexdigest()[:40]


def backflush(store: EventStore, factory: Factory) -> Backflushed:
    """Store the backflush movements the stored counts call for (see the module doc)."""
    out = Backflushed()
    if not any(item.backflush for item in factory.items):
        return out
    refs = {ref.path: ref for ref in factory.machines()}
    line_side = {
        loc.line: loc.id
        for loc in factory.stock_locations().values()
        if loc.kind is LocationKind.LINE_SIDE and loc.line is not None
    }
    orders = {o.order: o for o in store.order_status()}
    done = {leg.event_id for leg in ledger(store, kinds=["backflush"])}
    events: list[StockMove] = []
    for stored in store.events(stream="count"):
        count = stored.event
        if not isinstance(count, PartCount) or count.corrects is not None or count.order is None:
            continue
        status = orders.get(count.order)
        if status is None or status.product is None:
            continue
        try:
            product = factory.product(status.product)
        except KeyError:
            continue
        first = product.routing[0]
        ref = refs.get(count.machine)
        if ref is None or ref.machine.id not in first.machines:
            continue
        if count.operation is not None and count.operation != first.seq:
            continue
        units = count.good + count.scrap
        if units <= 0:
            continue
        place = line_side.get(ref.line.id)
        for line in product.bom:
            try:
                item = factory.item(line.material)
                qty = round(item.to_stock(line.qty * units, line.unit), 6)
            except (KeyError, UnitError):
                continue
            if not item.backflush or qty <= 0:
                continue
            if place is None:
                out.problems.append(
                    f"{count.id}: line {ref.line.id} has no line-side location to backflush "
                    f"{item.sku} from"
                )
                continue
            event_id = _event_id(count.id, item.sku)
            if event_id in done:
                out.ignored += 1
                continue
            picks, _ = fefo(store, factory, item.sku, qty, at=count.ts, locations=[place])
            lot = picks[0].lot if picks else None
            if item.lot_tracked and lot is None:
                out.problems.append(
                    f"{count.id}: no lot of {item.sku} at {place} to backflush {qty:g} "
                    f"{item.unit} from"
                )
                continue
            events.append(
                StockMove(
                    id=event_id,
                    ts=count.ts,
                    machine=count.machine,
                    kind=StockKind.BACKFLUSH,
                    item=item.sku,
                    lot=lot,
                    qty=qty,
                    unit=item.unit,
                    from_location=place,
                    order=count.order,
                    operation=first.seq,
                    ref=count.id,
                )
            )
    result = store.append(events)
    out.stored = result.inserted
    out.ignored += result.duplicates
    return out


__all__ = ["Backflushed", "backflush"]
