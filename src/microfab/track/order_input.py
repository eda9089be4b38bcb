"""A new work order as a form or a JSON body gives it, checked and created the same way by the
API's ``POST /api/v1/orders`` and the dashboard's order form."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from microfab.model.orders import DEFAULT_PRIORITY, WorkOrderRequest, parse_due
from microfab.track.orders import OrderChange, create_order
from microfab.track.plant import Plant


class OrderInput(BaseModel):
    """A new work order."""

    model_config = ConfigDict(extra="forbid")

    order: str | None = Field(
        default=None, description="Order id; none = the next WOyymmdd-nnn of the day"
    )
    product: str = Field(description="Product SKU, as in the factory file")
    quantity: int = Field(description="Units to make, 1 or more")
    options: dict[str, str] = Field(
        default_factory=dict, description="Variant option name -> choice code, one per option"
    )
    due: str | None = Field(
        default=None,
        description="Due: ISO-8601 with an offset, site time (2026-11-24T17:00), or a date (the "
        "end of that day)",
    )
    priority: int = Field(default=DEFAULT_PRIORITY, description="1 (most urgent) to 9")
    release: bool = Field(default=False, description="Release it to the floor at once")


def create_from_input(plant: Plant, body: OrderInput) -> OrderChange:
    """Create the order ``body`` asks for: the API's route and the dashboard's form both call
    this, so they check the same things and say the same sentences."""
    factory = plant.factory()
    due = parse_due(body.due, plant.zone(factory)) if body.due else None
    request = WorkOrderRequest(
        order=body.order,
        product=body.product,
        options=body.options,
        quantity=body.quantity,
        due=due,
        priority=body.priority,
    )
    return create_order(plant.store, factory, request, release=body.release, now=plant.stamp())
