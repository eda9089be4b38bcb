"""``GET /api/v1/dashboard``: what the dashboard shows, as JSON (:mod:`microfab.track.dashboard`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from microfab.api.answers import Dashboard
from microfab.http.deps import PlantDep
from microfab.http.errors import ERROR_RESPONSES
from microfab.track.dashboard import build

router = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES, tags=["dashboard"])


@router.get(
    "/dashboard",
    response_model=Dashboard,
    response_model_exclude_unset=True,
    summary="The numbers the dashboard shows",
)
def dashboard_json(plant: PlantDep) -> dict[str, Any]:
    """Today (site midnight to the plant clock): machine tiles, order board, OEE rows per
    machine and line (the same as ``microfab oee --from <from> --to <to>``), the downtime
    Pareto, output per hour for the last 24 h and OEE per shift for the last 7 days."""
    return build(plant).to_json()
