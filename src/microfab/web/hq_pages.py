"""HQ's pages: ``/hq`` (a tile per site: data received, lag, OEE today, output, late orders,
alerts, kgCO2e per unit; the group's line) and ``/hq/{site}`` (the site's machines today and its
open alerts, with links into the plant's own pages for those who may read them).

A site manager sees only the sites granted to them; another site is "not found" for them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from microfab.errors import NotFoundError
from microfab.hq.access import visible_sites
from microfab.hq.registry import only_sites
from microfab.hq.rollup import group_figures
from microfab.http.deps import PlantDep, PrincipalDep
from microfab.model.factory import Factory
from microfab.model.identity import Permission
from microfab.store.alerts import list_alerts
from microfab.track.oee import oee_rows

router = APIRouter(include_in_schema=False)


@router.get("/hq", response_class=HTMLResponse)
def hq_page(request: Request, plant: PlantDep, principal: PrincipalDep) -> Response:
    from microfab.web.pages import templates

    factory = plant.factory()
    figures = group_figures(plant.store, factory, visible_sites(plant.store, factory, principal))
    context: dict[str, Any] = {"page": "hq", "figures": figures, "zones": _zones(factory)}
    return templates.TemplateResponse(request, "hq.html", context)


@router.get("/hq/{site}", response_class=HTMLResponse)
def hq_site_page(request: Request, site: str, plant: PlantDep, principal: PrincipalDep) -> Response:
    from microfab.web.pages import templates

    factory = plant.factory()
    if site not in visible_sites(plant.store, factory, principal):
        raise NotFoundError(f"no site '{site[:40]}' here")
    figures = group_figures(plant.store, factory, [site])
    tile = figures.sites[0]
    narrowed = only_sites(factory, [site])
    rows = []
    if tile.day_start is not None and tile.newest_event is not None:
        end = tile.newest_event + dt.timedelta(milliseconds=1)
        rows = [r.to_json() for r in oee_rows(plant.store, narrowed, start=tile.day_start, end=end)]
    alerts = [a for a in list_alerts(plant.store, open_only=True, limit=500) if a.site == site]
    context: dict[str, Any] = {
        "page": "hq",
        "tile": tile,
        "rows": rows,
        "alerts": alerts[:50],
        "zones": _zones(factory),
        "plant_pages": principal.allows(Permission.PLANT_READ),
        "short": lambda path: str(path).rsplit("/", 1)[-1],
    }
    return templates.TemplateResponse(request, "hq_site.html", context)


def _zones(factory: Factory) -> dict[str, ZoneInfo]:
    return {s.id: s.zone for s in factory.sites}
