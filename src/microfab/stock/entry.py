"""A stock movement sent to the REST API: the import row's fields as a JSON body."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from microfab.model.factory import Factory
from microfab.stock.moves import enter_move
from microfab.store.event_store import EventStore


class StockMoveInput(BaseModel):
    """One stock movement (the columns of ``microfab stock import``); ``id`` makes a retry safe."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    id: str = Field(min_length=1, max_length=64, description="Idempotency key")
    ts: str | None = Field(default=None, description="When; none = now (ISO-8601 with offset)")
    kind: str = Field(description="receipt, issue, transfer, adjust, count, scrap, quarantine, …")
    item: str
    lot: str | None = None
    qty: float | None = Field(default=None, description="In ``unit`` (default the stock unit)")
    unit: str | None = None
    from_: str | None = Field(default=None, alias="from", description="Location taken from")
    to: str | None = Field(default=None, description="Location put to, adjusted or counted")
    ref: str | None = None
    order: str | None = None
    supplier: str | None = None
    expiry: str | None = None
    cost_hkd: float | None = None
    reason: str | None = None
    by: str | None = None


def enter_input(
    store: EventStore, factory: Factory, body: StockMoveInput, *, by: str | None = None
) -> dict[str, object]:
    """Check and store the movement (an :class:`InputError` naming the field when it is wrong);
    ``{"stored": bool, "id": …}`` — false when the id was already stored."""
    values = {
        "id": body.id,
        "ts": body.ts,
        "kind": body.kind,
        "item": body.item,
        "lot": body.lot,
        "qty": None if body.qty is None else repr(body.qty),
        "unit": body.unit,
        "from": body.from_,
        "to": body.to,
        "ref": body.ref,
        "order": body.order,
        "supplier": body.supplier,
        "expiry": body.expiry,
        "cost_hkd": None if body.cost_hkd is None else repr(body.cost_hkd),
        "reason": body.reason,
        "by": body.by or by,
    }
    _, stored = enter_move(store, factory, values)
    return {"stored": stored, "id": body.id}
