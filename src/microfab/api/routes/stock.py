"""Stock routes: on hand (now or at a time), stock per item, ledger, expiring lots, reorder
points, purchase suggestions, transfer tasks; and a stock movement posted (idempotent by id).

Every answer is the JSON of the matching ``microfab stock … --json`` command
(docs/inventory.md)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from microfab.http.deps import PlantDep, PrincipalDep
from microfab.http.errors import ERROR_RESPONSES
from microfab.model.events import format_ts
from microfab.model.timerange import parse_time
from microfab.stock.entry import StockMoveInput, enter_input
from microfab.stock.inventory import expiring, item_stock, on_hand_json
from microfab.stock.kanban import transfer_tasks
from microfab.stock.reorder import purchase_suggestions, reorder_report
from microfab.store.stock import ledger, on_hand
from microfab.track.plant import Plant

router = APIRouter(prefix="/api/v1/stock", responses=ERROR_RESPONSES, tags=["stock"])


class OnHandRow(BaseModel):
    item: str
    lot: str | None
    location: str
    qty: float = Field(description="In the item's stock unit")
    unit: str


class OnHandAnswer(BaseModel):
    at: str | None = Field(description="As at this time; none = now")
    rows: list[OnHandRow]


class RowsAnswer(BaseModel):
    rows: list[dict[str, Any]] = Field(
        description="The rows of the matching `microfab stock … --json` (docs/inventory.md)"
    )


class MoveAnswer(BaseModel):
    stored: bool = Field(description="False when the id was stored already (nothing stored)")
    id: str


AtQuery = Annotated[
    str | None,
    Query(description="As at this time: ISO-8601 with an offset, or site time; none = now"),
]


def _at(plant: Plant, text: str | None) -> dt.datetime:
    if not text:
        return dt.datetime.now(dt.UTC)
    return parse_time(text, plant.factory().sites[0].zone, field="at")


@router.get("/on-hand", response_model=OnHandAnswer, summary="On hand by item × lot × location")
def stock_on_hand(
    plant: PlantDep,
    at: AtQuery = None,
    item: Annotated[str | None, Query(max_length=64)] = None,
    location: Annotated[str | None, Query(max_length=64)] = None,
) -> dict[str, Any]:
    """``rows``: ``{item, lot, location, qty, unit}`` in the item's stock unit, zero rows left
    out (what ``microfab stock on-hand --json`` prints)."""
    when = _at(plant, at) if at else None
    rows = on_hand_json(on_hand(plant.store, at=when, item=item, location=location))
    return {"at": None if when is None else format_ts(when), "rows": rows}


@router.get(
    "/items",
    response_model=RowsAnswer,
    summary="Per item: on hand, quarantine, reserved, available",
)
def stock_items(plant: PlantDep, at: AtQuery = None) -> dict[str, Any]:
    when = _at(plant, at) if at else None
    return {"rows": [s.to_json() for s in item_stock(plant.store, plant.factory(), at=when)]}


@router.get(
    "/ledger", response_model=RowsAnswer, summary="Stock ledger legs, with the balance after each"
)
def stock_ledger(
    plant: PlantDep,
    item: Annotated[str | None, Query(max_length=64)] = None,
    lot: Annotated[str | None, Query(max_length=64)] = None,
    location: Annotated[str | None, Query(max_length=64)] = None,
    order: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 500,
) -> dict[str, Any]:
    legs = ledger(plant.store, item=item, lot=lot, location=location, order=order, limit=limit)
    return {
        "rows": [
            {
                "ts": format_ts(leg.ts),
                "id": leg.event_id,
                "kind": leg.kind,
                "item": leg.item,
                "lot": leg.lot,
                "location": leg.location,
                "qty": leg.delta,
                "balance": leg.balance,
                "order": leg.order,
                "ref": leg.ref,
            }
            for leg in legs
        ]
    }


@router.get("/expiring", response_model=RowsAnswer, summary="Lots with stock that expire soon")
def stock_expiring(
    plant: PlantDep,
    days: Annotated[float, Query(ge=0, le=3660)] = 7.0,
    at: AtQuery = None,
) -> dict[str, Any]:
    return {"rows": [e.to_json() for e in expiring(plant.store, at=_at(plant, at), days=days)]}


@router.get(
    "/reorder",
    response_model=RowsAnswer,
    summary="Reorder points, safety stock and suggestions per item",
)
def stock_reorder(plant: PlantDep, at: AtQuery = None) -> dict[str, Any]:
    return {"rows": reorder_report(plant.store, plant.factory(), at=_at(plant, at))}


@router.get("/suggestions", response_model=RowsAnswer, summary="Purchase suggestions (MRP-lite)")
def stock_suggestions(plant: PlantDep, at: AtQuery = None) -> dict[str, Any]:
    return {"rows": purchase_suggestions(plant.store, plant.factory(), at=_at(plant, at))}


@router.get(
    "/tasks",
    response_model=RowsAnswer,
    summary="Transfer tasks the line-side kanban rules call for",
)
def stock_tasks(plant: PlantDep) -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC)
    return {"rows": [t.to_json() for t in transfer_tasks(plant.store, plant.factory(), at=now)]}


@router.post(
    "/moves",
    response_model=MoveAnswer,
    summary="Record a stock movement (idempotent by id)",
    status_code=201,
)
def stock_move(
    body: StockMoveInput, plant: PlantDep, principal: PrincipalDep, response: Response
) -> dict[str, Any]:
    """Checked like an import row (unknown item or location, unit, negative on hand, expired or
    quarantined lot → 400 naming the field); 201 when stored, 200 when the id was stored
    already."""
    answer = enter_input(plant.store, plant.factory(), body, by=principal.name)
    if not answer["stored"]:
        response.status_code = 200
    return answer
