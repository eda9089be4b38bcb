"""The order pages of the dashboard: a touch-friendly form to create a work order, one page per
order with its routing steps, and buttons to release or cancel it.

The checks and the sentences are the API's: the form is turned into the API's
:class:`~microfab.track.order_input.OrderInput` and created by the same
:func:`~microfab.track.order_input.create_from_input`; release and cancel call
:mod:`microfab.track.orders` as ``POST /api/v1/orders/{order}/release`` and ``/cancel`` do. A
refused form is shown again, with what was typed, the API's message and the API's status code
(400, 404 or 422). Success redirects to the order's page (post/redirect/get).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Callable, Mapping
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from microfab.errors import InputError, MicrofabError, NotFoundError
from microfab.http.deps import PlantDep, PrincipalDep
from microfab.http.errors import describe_request_errors, status_of
from microfab.model.factory import Factory
from microfab.model.orders import DEFAULT_PRIORITY
from microfab.track.audit_trail import record_order_change
from microfab.track.order_input import OrderInput, create_from_input
from microfab.track.orders import (
    OPEN,
    OrderChange,
    cancel_order,
    get_order,
    plan_of,
    release_order,
)
from microfab.track.plant import Plant
from microfab.web.pages import templates

router = APIRouter(include_in_schema=False)

DONE = ("created", "released", "cancelled")

OPTION_FIELD = "option:{sku}:{name}"
"""Form field of a variant option: one per option of every product, only the chosen product's
are read (so the form works without JavaScript, which only hides the other products')."""


def order_url(order: str, **params: str) -> str:
    url = f"/orders/{quote(order, safe='')}"
    if params:
        url += "?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in params.items())
    return url


templates.env.globals["order_url"] = order_url


def _local(zone: zoneinfo.ZoneInfo) -> Callable[..., str]:
    def local(value: dt.datetime | None, fmt: str = "%a %d/%m %H:%M") -> str:
        return "" if value is None else value.astimezone(zone).strftime(fmt)

    return local


def _products(factory: Factory) -> list[dict[str, Any]]:
    """What the form offers: every product with its variant options and their choices."""
    return [
        {
            "sku": p.sku,
            "name": p.name,
            "options": [
                {
                    "name": option.name,
                    "field": OPTION_FIELD.format(sku=p.sku, name=option.name),
                    "choices": [(c.code, c.name or c.code, c.time_factor) for c in option.choices],
                }
                for option in p.options
            ],
        }
        for p in factory.products
    ]


def order_input(form: Mapping[str, str]) -> OrderInput:
    """The API's request body from the form's fields; empty fields are left out (the API's
    defaults apply), a malformed value is the API's RequestValidationError."""
    product = form.get("product", "").strip()
    fields: dict[str, Any] = {"product": product} if product else {}
    for name in ("order", "quantity", "due", "priority"):
        value = form.get(name, "").strip()
        if value:
            fields[name] = value
    prefix = OPTION_FIELD.format(sku=product, name="")
    fields["options"] = {
        key[len(prefix) :]: value
        for key, value in form.items()
        if product and key.startswith(prefix) and value
    }
    fields["release"] = form.get("release", "") in ("1", "on", "true", "yes")
    try:
        return OrderInput.model_validate(fields)
    except ValidationError as exc:
        errors = [{**err, "loc": ("body", *err["loc"])} for err in exc.errors(include_url=False)]
        raise RequestValidationError(errors) from None


# ---------------------------------------------------------------------------- the form


def _form_page(
    request: Request,
    plant: Plant,
    values: Mapping[str, str],
    *,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    factory = plant.factory()
    zone = plant.zone(factory)
    context = {
        "page": "orders",
        "products": _products(factory),
        "values": values,
        "priorities": range(1, 10),
        "default_priority": DEFAULT_PRIORITY,
        "error": error,
        "company": factory.company.name,
        "min_due": plant.now().astimezone(zone).strftime("%Y-%m-%dT%H:%M"),
        "zone": str(zone),
    }
    return templates.TemplateResponse(request, "order_new.html", context, status_code=status_code)


@router.get("/orders/new", response_class=HTMLResponse)
def new_order(request: Request, plant: PlantDep, product: str = "") -> Response:
    factory = plant.factory()
    chosen = product or (factory.products[0].sku if len(factory.products) == 1 else "")
    return _form_page(request, plant, {"product": chosen})


@router.post("/orders/new")
async def create_order_form(request: Request, plant: PlantDep, principal: PrincipalDep) -> Response:
    form = await request.form()
    values = {k: v for k, v in form.items() if isinstance(v, str)}

    def create() -> OrderChange:
        change = create_from_input(plant, order_input(values))
        record_order_change(plant.store, principal, "orders.create", change)
        return change

    try:
        change = await run_in_threadpool(create)
    except RequestValidationError as exc:
        message, _ = describe_request_errors(exc)
        return await run_in_threadpool(
            _form_page, request, plant, values, error=message, status_code=422
        )
    except MicrofabError as exc:
        if status_of(exc) >= 500:
            raise
        return await run_in_threadpool(
            _form_page, request, plant, values, error=exc.message, status_code=status_of(exc)
        )
    done = "released" if values.get("release") and change.view.status != "created" else "created"
    params = {"done": done}
    if not change.stored:
        params["again"] = "1"
    return RedirectResponse(order_url(change.view.order, **params) + "#saved", status_code=303)


# ---------------------------------------------------------------------------- one order


def _order_page(
    request: Request,
    plant: Plant,
    order: str,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    factory = plant.factory()
    view = get_order(plant.store, factory, order, now=plant.now(), plan=plan_of(plant))
    done = request.query_params.get("done")
    context = {
        "page": "orders",
        "o": view,
        "local": _local(plant.zone(factory)),
        "can_release": view.status == "created",
        "can_cancel": view.status in OPEN,
        "done": done if done in DONE else None,
        "again": request.query_params.get("again") == "1",
        "error": error,
        "url": order_url(view.order),
    }
    return templates.TemplateResponse(request, "order.html", context, status_code=status_code)


@router.get("/orders/{order}", response_class=HTMLResponse)
def order_page(order: str, request: Request, plant: PlantDep) -> Response:
    return _order_page(request, plant, order)


def _back(next_url: str, order: str, what: str, change: OrderChange) -> Response:
    """Where a button sends the browser after it did its work: ``next`` when it is a page of
    this app (the dashboard's board), else the order's page."""
    params = {"done": what}
    if not change.stored:
        params["again"] = "1"
    if next_url.startswith("/") and not next_url.startswith("//"):
        return RedirectResponse(next_url, status_code=303)
    return RedirectResponse(order_url(order, **params) + "#saved", status_code=303)


def _order_action(
    request: Request,
    plant: Plant,
    order: str,
    what: str,
    action: Callable[[], OrderChange],
    next_url: str,
) -> Response:
    try:
        change = action()
    except NotFoundError:
        raise  # the error page: there is no order to show again
    except InputError as exc:
        return _order_page(request, plant, order, error=exc.message, status_code=400)
    return _back(next_url, order, what, change)


@router.post("/orders/{order}/release")
def release_order_form(
    order: str,
    request: Request,
    plant: PlantDep,
    principal: PrincipalDep,
    next: Annotated[str, Form()] = "",
) -> Response:
    def release() -> OrderChange:
        factory = plant.factory()
        before = get_order(plant.store, factory, order, now=plant.now())
        change = release_order(plant.store, factory, order, now=plant.stamp())
        record_order_change(plant.store, principal, "orders.release", change, before)
        return change

    return _order_action(request, plant, order, "released", release, next)


@router.post("/orders/{order}/cancel")
def cancel_order_form(
    order: str,
    request: Request,
    plant: PlantDep,
    principal: PrincipalDep,
    confirm: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    def cancel() -> OrderChange:
        if confirm not in ("1", "on", "yes", "true"):
            raise InputError(
                "tick 'yes, cancel this order' first: a cancelled order cannot be released again"
            )
        factory = plant.factory()
        before = get_order(plant.store, factory, order, now=plant.now())
        change = cancel_order(plant.store, factory, order, now=plant.stamp())
        record_order_change(plant.store, principal, "orders.cancel", change, before)
        return change

    return _order_action(request, plant, order, "cancelled", cancel, next)
