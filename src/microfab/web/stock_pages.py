"""The stock page ``/stock``: stock by location, low stock, expiring lots, purchase suggestions
and transfer tasks, all from the stock service (:mod:`microfab.stock`)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from microfab.http.deps import PlantDep
from microfab.stock.agv import task_board
from microfab.stock.inventory import expiring, item_stock
from microfab.stock.kanban import transfer_tasks
from microfab.stock.reorder import purchase_suggestions, reorder_report
from microfab.store.stock import on_hand

router = APIRouter(include_in_schema=False)


@router.get("/stock", response_class=HTMLResponse)
def stock_page(request: Request, plant: PlantDep) -> Response:
    """Everything a storekeeper looks at in the morning, on one page."""
    from microfab.web.pages import templates

    factory = plant.factory()
    zone = plant.zone(factory)
    now = dt.datetime.now(dt.UTC)
    places = factory.stock_locations()
    by_location: dict[str, list[Any]] = {}
    for row in on_hand(plant.store):
        by_location.setdefault(row.location, []).append(row)
    reorder = {r["item"]: r for r in reorder_report(plant.store, factory, at=now)}
    low = [
        {**s.to_json(), "reorder_point": reorder[s.item]["reorder_point"],
         "safety_stock": reorder[s.item]["safety_stock"]}
        for s in item_stock(plant.store, factory)
        if s.available <= float(reorder[s.item]["reorder_point"])  # type: ignore[arg-type]
    ]  # fmt: skip
    context = {
        "page": "stock",
        "locations": [(places.get(lid), lid, rows) for lid, rows in sorted(by_location.items())],
        "low": low,
        "expiring": [e.to_json() for e in expiring(plant.store, at=now, days=14)],
        "suggestions": purchase_suggestions(plant.store, factory, at=now),
        "tasks": [t.to_json() for t in transfer_tasks(plant.store, factory, at=now)],
        "board": [r.to_json() for r in task_board(plant.store)[:50]],
        "local": lambda text: (
            dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
            .astimezone(zone)
            .strftime("%d/%m/%Y %H:%M")
        ),
        "zone": zone,
    }
    return templates.TemplateResponse(request, "stock.html", context)
