"""``GET /api/v1/hq/sites``: HQ's roll-up — each site's day and the group's (``hq.read``).

A principal with ``plant.read`` (an HQ role) gets every site; a site manager only the sites
granted to it (``microfab hq grant``), and the group figures add up those alone.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from microfab.hq.access import visible_sites
from microfab.hq.rollup import group_figures
from microfab.http.deps import PlantDep, PrincipalDep
from microfab.http.errors import ERROR_RESPONSES

router = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES, tags=["hq"])


class HqSites(BaseModel):
    """The group's figures and one entry per site (see ``microfab hq status --json``)."""

    model_config = ConfigDict(extra="allow")

    group: dict[str, Any] = Field(
        description="oee, good, scrap, late_orders, open_alerts, kwh, kgco2e, kgco2e_per_unit"
    )
    sites: list[dict[str, Any]] = Field(
        description="site, name, timezone, currency, newest_event, received, lag_s, day_start, "
        "oee, planned_busy_s, good, scrap, late_orders, open_alerts, kwh, kgco2e, "
        "kgco2e_per_unit, grid_factor, grid_factor_year, uplink_lag_events, uplink_lag_s, "
        "uplink_reported"
    )


@router.get(
    "/hq/sites",
    response_model=HqSites,
    summary="HQ: each site's day (data freshness, OEE, output, late orders, alerts, kgCO2e) and the group's",
)
def hq_sites(plant: PlantDep, principal: PrincipalDep) -> dict[str, Any]:
    factory = plant.factory()
    sites = visible_sites(plant.store, factory, principal)
    return group_figures(plant.store, factory, sites).to_json()
