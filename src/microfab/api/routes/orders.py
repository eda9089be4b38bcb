"""Routes for work orders: list, read, create, release, cancel, work in progress, genealogy.

The work is :mod:`microfab.track.orders` and :mod:`microfab.track.genealogy`'s, as ``microfab
orders …`` and ``microfab trace`` do it. An order is its events, so nothing is ever edited or
deleted: *cancel* withdraws an order; a changed order is a new one. Create, release and cancel are
safe to retry: work already done stores nothing (``stored`` 0) and answers 200 instead of 201.
Each change that stored something is written to the audit log with the caller.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response

from microfab.api.answers import OrderChangeAnswer, OrderTrace, WorkInProgress, WorkOrder
from microfab.http.deps import PlantDep, PrincipalDep
from microfab.http.errors import ERROR_RESPONSES
from microfab.track.audit_trail import record_order_change
from microfab.track.genealogy import trace_order
from microfab.track.order_input import OrderInput, create_from_input
from microfab.track.orders import (
    OrderChange,
    cancel_order,
    get_order,
    list_orders,
    plan_of,
    release_order,
    wip,
)

router = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES, tags=["orders"])

Status = Literal["created", "released", "in_progress", "completed", "cancelled"]


def _changed(change: OrderChange, response: Response) -> dict[str, Any]:
    response.status_code = 201 if change.stored else 200
    return change.to_json()


@router.get(
    "/orders",
    response_model=list[WorkOrder],
    response_model_exclude_unset=True,
    summary="Work orders",
)
def orders(
    plant: PlantDep,
    status: Annotated[Status | None, Query(description="Only orders of this status")] = None,
    late: Annotated[bool | None, Query(description="Only late (true) or on-time orders")] = None,
) -> list[dict[str, Any]]:
    """Every work order, by id: details, status, progress, WIP, expected completion, lateness
    and each routing step, as of the plant clock."""
    factory = plant.factory()
    views = list_orders(
        plant.store, factory, now=plant.now(), status=status, late=late, plan=plan_of(plant)
    )
    return [v.to_json() for v in views]


@router.post(
    "/orders",
    response_model=OrderChangeAnswer,
    response_model_exclude_unset=True,
    summary="Create a work order",
    status_code=201,
)
def create(
    body: OrderInput, plant: PlantDep, principal: PrincipalDep, response: Response
) -> dict[str, Any]:
    """Checks the order against the factory (product, options, quantity, priority, due) and
    stores its ``created`` event (and ``released`` with ``release``)."""
    change = create_from_input(plant, body)
    record_order_change(plant.store, principal, "orders.create", change)
    return _changed(change, response)


@router.get(
    "/orders/{order}",
    response_model=WorkOrder,
    response_model_exclude_unset=True,
    summary="One work order",
)
def order(order: str, plant: PlantDep) -> dict[str, Any]:
    return get_order(
        plant.store, plant.factory(), order, now=plant.now(), plan=plan_of(plant)
    ).to_json()


@router.post(
    "/orders/{order}/release",
    response_model=OrderChangeAnswer,
    response_model_exclude_unset=True,
    summary="Release an order to the floor",
    status_code=201,
)
def release(
    order: str, plant: PlantDep, principal: PrincipalDep, response: Response
) -> dict[str, Any]:
    """Stores the ``released`` event; an order already on the floor stores nothing."""
    factory = plant.factory()
    before = get_order(plant.store, factory, order, now=plant.now())
    change = release_order(plant.store, factory, order, now=plant.stamp())
    record_order_change(plant.store, principal, "orders.release", change, before)
    return _changed(change, response)


@router.post(
    "/orders/{order}/cancel",
    response_model=OrderChangeAnswer,
    response_model_exclude_unset=True,
    summary="Cancel an order",
    status_code=201,
)
def cancel(
    order: str, plant: PlantDep, principal: PrincipalDep, response: Response
) -> dict[str, Any]:
    """Stores the ``cancelled`` event; a completed order cannot be cancelled."""
    factory = plant.factory()
    before = get_order(plant.store, factory, order, now=plant.now())
    change = cancel_order(plant.store, factory, order, now=plant.stamp())
    record_order_change(plant.store, principal, "orders.cancel", change, before)
    return _changed(change, response)


@router.get(
    "/orders/{order}/trace",
    response_model=OrderTrace,
    response_model_exclude_unset=True,
    summary="Genealogy of an order",
)
def trace(order: str, plant: PlantDep) -> dict[str, Any]:
    """The order along its route, count batch by count batch (machine, times, good, scrap),
    with the material lots each batch used (``microfab trace``)."""
    return trace_order(plant.store, plant.factory(), order).to_json()


@router.get(
    "/wip",
    response_model=WorkInProgress,
    response_model_exclude_unset=True,
    summary="Work in progress",
)
def work_in_progress(plant: PlantDep) -> dict[str, Any]:
    """Units of the open orders by order step, by machine and by routing step."""
    return wip(plant.store, plant.factory(), now=plant.now()).to_json()
