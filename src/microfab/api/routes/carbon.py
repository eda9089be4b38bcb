"""``GET /api/v1/carbon/intensity``: energy and carbon per unit, and idle energy
(:mod:`microfab.green.carbon_panel`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from microfab.api.answers import CarbonIntensity
from microfab.http.deps import CarbonPanelDep, PlantDep
from microfab.http.errors import ERROR_RESPONSES
from microfab.track.dashboard import today

router = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES, tags=["carbon"])


@router.get(
    "/carbon/intensity",
    response_model=CarbonIntensity,
    response_model_exclude_unset=True,
    summary="Energy and carbon per unit by line and product, and idle waste",
)
def carbon_intensity(
    plant: PlantDep,
    panel: CarbonPanelDep,
    start: Annotated[
        str | None,
        Query(
            alias="from",
            description="Start: 2026-11-23, 2026-11-23T08:00 (site time) or ISO-8601 with an "
            "offset (default: the dashboard's window, today from site midnight)",
        ),
    ] = None,
    end: Annotated[
        str | None,
        Query(alias="to", description="End (exclusive), same forms (default: the plant clock)"),
    ] = None,
) -> dict[str, Any]:
    """What the dashboard's carbon panel shows: per line and product the finished units, kWh,
    kgCO2e, kWh/unit and kgCO2e/unit with the factors' flags (``upstream_included`` is false
    when materials have no factor), and per machine the standby and avoidable kWh. Without
    ``from``/``to`` it is the dashboard's window and figures (recomputed at most every few
    seconds); with either, computed now for that window, the same as
    ``microfab.green.intensity.energy_intensity`` (an omitted end is the first or last stored
    event). ``notes`` says what is missing (no carbon settings file: upstream not included)."""
    if start is None and end is None:
        factory = plant.factory()
        _clock, first, last = today(plant, factory)
        return panel.view(plant.store.last_seq(), first, last).to_json()
    first_at, last_at = plant.time_range(start, end, plant.zone())
    return panel.figures(plant.store.last_seq(), first_at, last_at).to_json()
