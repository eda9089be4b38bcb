"""Line-side kanban: a line-side location whose stock of an item falls to its ``min`` gets a
transfer task to refill it up to ``max`` from the rule's source, picked FEFO.

Tasks are computed from the stock as stored (no state of their own): once the transfer is
stored, the task is gone. A task's id is derived from its location, its item and the time of the
newest stock movement, so the same shortage keeps the same id until something moves (and
assigning it to an AGV twice stores nothing new).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from dataclasses import dataclass, field

from microfab.model.factory import Factory
from microfab.stock.inventory import Pick, fefo
from microfab.store.event_store import EventStore
from microfab.store.stock import newest_stock_ts, on_hand


@dataclass(frozen=True, slots=True)
class TransferTask:
    """Move ``qty`` of ``item`` from ``source`` to the line-side ``location``."""

    id: str
    item: str
    source: str
    location: str
    qty: float
    unit: str
    on_hand: float
    min: float
    max: float
    picks: list[Pick] = field(default_factory=list)
    short: float = 0.0

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "item": self.item,
            "from": self.source,
            "to": self.location,
            "qty": self.qty,
            "unit": self.unit,
            "on_hand": self.on_hand,
            "min": self.min,
            "max": self.max,
            "picks": [p.to_json() for p in self.picks],
            "short": self.short,
        }


def transfer_tasks(store: EventStore, factory: Factory, *, at: dt.datetime) -> list[TransferTask]:
    """The refills the kanban rules call for now."""
    places = factory.stock_locations()
    stock: dict[tuple[str, str], float] = defaultdict(float)
    for row in on_hand(store):
        stock[(row.location, row.item)] += row.qty
    newest = newest_stock_ts(store)
    stamp = "" if newest is None else newest.isoformat()
    tasks: list[TransferTask] = []
    for location in places.values():
        for rule in location.kanban:
            have = round(stock[(location.id, rule.item)], 6)
            if have > rule.min:
                continue
            item = factory.item(rule.item)
            qty = round(rule.max - have, 6)
            picks, short = fefo(store, factory, rule.item, qty, at=at, locations=[rule.source])
            digest = hashlib.sha256(f"{location.id}|{rule.item}|{stamp}".encode()).hexdigest()
            tasks.append(
                TransferTask(
                    id=f"task-{digest[:12]}",
                    item=rule.item,
                    source=rule.source,
                    location=location.id,
                    qty=qty,
                    unit=item.unit,
                    on_hand=have,
                    min=rule.min,
                    max=rule.max,
                    picks=picks,
                    short=short,
                )
            )
    return tasks
