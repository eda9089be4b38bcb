"""``GET /healthz``: liveness for load balancers and service managers (public, not in the
OpenAPI document)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from microfab.errors import MicrofabError, NoFactoryError
from microfab.http.deps import PlantDep
from microfab.model.events import format_ts
from microfab.store.production_views import view_health

router = APIRouter()


@router.get("/healthz", include_in_schema=False)
def healthz(plant: PlantDep) -> JSONResponse:
    """Liveness: the store answers; ``views`` says whether the read models keep up."""
    try:
        seq = plant.store.last_seq()
        views = view_health(plant.store)
    except MicrofabError as exc:
        return JSONResponse({"ok": False, "message": exc.message}, status_code=503)
    try:
        plant.factory()
    except NoFactoryError as exc:
        return JSONResponse({"ok": True, "last_seq": seq, "warning": exc.message, "views": views})
    return JSONResponse(
        {"ok": True, "last_seq": seq, "clock": format_ts(plant.now()), "views": views}
    )
