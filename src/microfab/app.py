"""The app factory: the JSON API (``/api/v1``, OpenAPI at ``/openapi.json``, docs at ``/docs``) and
the dashboard pages, served by one FastAPI application over one event store.

This is the one module that imports both the JSON routes (:mod:`microfab.api.routes`) and the
pages (:mod:`microfab.web`); both build on :mod:`microfab.http` (access control, the error shape,
dependencies) and call the domain services, which are built here once per app and kept on
``app.state``."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from microfab import __version__
from microfab.api.routes import ask as ask_routes
from microfab.api.routes import (
    auth,
    dashboard,
    health,
    operator,
    orders,
    pact,
    plan,
    plant,
    quality,
    stock,
    tracking,
)
from microfab.api.routes import carbon as carbon_routes
from microfab.api.routes import hq as hq_routes
from microfab.api.routes import maintenance as maintenance_routes
from microfab.api.routes import safety as safety_routes
from microfab.api.routes import vision as vision_routes
from microfab.errors import MicrofabError
from microfab.green.carbon_panel import CarbonPanel
from microfab.green.pact_footprints import PactFootprints
from microfab.http.auth import AccessGate, openapi_permissions
from microfab.http.errors import install_error_handlers
from microfab.http.headers import SecurityHeaders
from microfab.plan.plan_file import PlanFile
from microfab.store import EventStore, open_store
from microfab.track.plant import Plant
from microfab.vision.service import VisionStations
from microfab.web.api_docs import api_docs_page
from microfab.web.funding_pages import router as funding_pages_router
from microfab.web.hq_pages import router as hq_pages_router
from microfab.web.live import LiveFeed
from microfab.web.login import router as login_router
from microfab.web.maint_pages import router as maint_pages_router
from microfab.web.order_pages import router as order_pages_router
from microfab.web.pages import STATIC, html_error, render_carbon, render_panels
from microfab.web.pages import router as pages_router
from microfab.web.plan_page import router as plan_page_router
from microfab.web.quality_pages import router as quality_pages_router
from microfab.web.stock_pages import router as stock_pages_router

DESCRIPTION = """\
The shop floor as microfab stores it: the factory tree, machines and their live state, events,
OEE and downtime, operator input. Times are UTC (`2026-11-23T08:00:00.000Z`); `from`/`to` also
take site time (`2026-11-23T16:00`) or a date. Every error has one shape:
`{"error": {"status", "key", "message", "details"}}` — except on PACT's `/3/footprints`
endpoints, which answer in PACT's shape `{"code", "message"}`.

Every call needs a principal: send `Authorization: Bearer TOKEN` with an API token (`microfab
tokens create`) or the `access_token` of `POST /auth/token`. Each operation names the permission
it needs in `x-microfab-permission`; without credentials the answer is 401, without the
permission 403 (docs/security.md).
"""


def create_app(
    store: str | EventStore | None = None,
    *,
    clock: Callable[[], dt.datetime] | None = None,
    poll_s: float = 0.5,
    min_refresh_s: float = 0.2,
    plan_file: Path | str | None = None,
    carbon_settings: Path | str | None = None,
    carbon_refresh_s: float = 10.0,
    funding_ledger: Path | str | None = None,
    pact_period: str | None = None,
    vision_images: Path | str | None = None,
) -> FastAPI:
    """The app over ``store``: an opened :class:`EventStore` (the caller closes it) or a database
    URL (opened now, closed when the app shuts down; ``None`` = ``$MICROFAB_DB`` or the default).

    ``clock`` replaces the plant clock (the newest event time); ``poll_s`` and ``min_refresh_s``
    pace the dashboard's live updates (see :mod:`microfab.web.live`); ``plan_file`` is the plan
    the plan page shows and re-plans (default ``plan.json`` in the working directory, where
    ``microfab plan schedule`` writes it).

    ``carbon_settings`` is the carbon settings file (docs/green.md) the dashboard's carbon panel
    uses (read now: a bad file is an :class:`~microfab.errors.InputError`); its figures are
    recomputed at most every ``carbon_refresh_s``. ``funding_ledger`` is the funding project's
    ledger the ``/funding`` pages show (docs/funding.md), read on every visit.

    ``pact_period`` is the period of the PACT footprints at ``/3/footprints``: a month
    ``2026-11`` or ``FROM..TO`` in site time (default: the last complete calendar month before
    the plant clock; see :mod:`microfab.green.pact_footprints`). They use the carbon settings file too."""
    owned = not isinstance(store, EventStore)
    opened = store if isinstance(store, EventStore) else open_store(store)
    plant_view = Plant(opened, clock=clock)
    try:
        carbon = CarbonPanel(plant_view, carbon_settings, refresh_s=carbon_refresh_s)
    except MicrofabError:
        if owned:
            opened.close()
        raise
    try:
        footprints = PactFootprints(plant_view, carbon.settings, pact_period)
    except MicrofabError:
        carbon.close()
        if owned:
            opened.close()
        raise

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            carbon.close()
            if owned:
                opened.close()

    app = FastAPI(
        title="microfab",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served below from the vendored Swagger UI: the plant has no internet
        redoc_url=None,
        openapi_tags=[
            {"name": "plant", "description": "Factory tree, machines and their live state"},
            {"name": "events", "description": "Stored events by machine, stream and time"},
            {"name": "orders", "description": "Work orders: create, release, cancel, trace"},
            {"name": "OEE and downtime", "description": "ISO 22400-2 OEE, Pareto, MTBF/MTTR"},
            {"name": "operator input", "description": "Reasons, counts typed in, corrections"},
            {"name": "planning", "description": "The plan: read it, re-plan, plan vs actual"},
            {"name": "dashboard", "description": "What the dashboard shows"},
            {"name": "carbon", "description": "Energy and carbon per unit, idle energy"},
            {"name": "alerts", "description": "Alerts: list, acknowledge, close"},
            {"name": "quality", "description": "Inspection results: the defect Pareto"},
            {"name": "exports", "description": "Printable and PDF reports"},
            {"name": "authentication", "description": "A bearer token for scripts"},
            {"name": "assistant", "description": "Ask the plant: answers with their source"},
            {
                "name": "PACT",
                "description": "PACT v3 product footprints for customers' systems (read-only; "
                "errors in PACT's shape {code, message})",
            },
        ],
    )
    app.state.plant = plant_view
    app.state.plan_file = PlanFile(plan_file)
    plant_view.plan_source = app.state.plan_file.read  # one expected completion per order
    app.state.carbon = carbon
    app.state.pact = footprints
    app.state.funding_ledger = Path(funding_ledger) if funding_ledger is not None else None
    app.state.vision = VisionStations(
        plant_view, Path(vision_images) if vision_images is not None else None
    )
    app.state.feed = LiveFeed(
        plant_view,
        lambda snapshot: render_panels(snapshot, carbon, plant_view),
        poll_s=poll_s,
        min_refresh_s=min_refresh_s,
        version=lambda: carbon.version,
        render_extra=lambda snapshot: render_carbon(snapshot, carbon),
    )
    install_error_handlers(app, html_error)
    app.add_middleware(AccessGate, store=opened, html=html_error)
    app.add_middleware(SecurityHeaders)  # outermost: the gate's refusals get the headers too
    app.include_router(auth.router)
    app.include_router(login_router)
    app.include_router(operator.router)  # before plant: its /machines/…/stops must win
    app.include_router(plant.router)
    app.include_router(tracking.router)
    app.include_router(orders.router)
    app.include_router(plan.router)
    app.include_router(quality.router)
    app.include_router(pact.router)
    app.include_router(dashboard.router)
    app.include_router(carbon_routes.router)
    app.include_router(health.router)
    app.include_router(vision_routes.router)
    app.include_router(ask_routes.router)
    app.include_router(pages_router)
    app.include_router(order_pages_router)
    app.include_router(plan_page_router)
    app.include_router(funding_pages_router)
    app.include_router(quality_pages_router)
    app.include_router(hq_routes.router)  # HQ over several sites (issue 20)
    app.include_router(hq_pages_router)
    app.include_router(maintenance_routes.router)
    app.include_router(safety_routes.router)
    app.include_router(maint_pages_router)
    app.include_router(stock.router)
    app.include_router(stock_pages_router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/docs", include_in_schema=False)
    def docs(request: Request) -> HTMLResponse:
        return api_docs_page(request)  # the vendored Swagger UI, a link back, no inline script

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> RedirectResponse:
        return RedirectResponse("/static/favicon.svg", status_code=308)

    generate_openapi = app.openapi

    def openapi_with_permissions() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = openapi_permissions(generate_openapi())
        return app.openapi_schema

    app.openapi = openapi_with_permissions  # type: ignore[method-assign]
    try:
        app.openapi()  # a route missing from the permission table stops the app here
    except LookupError:
        if owned:
            opened.close()
        carbon.close()
        raise
    return app
