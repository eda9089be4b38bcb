"""Routes for vision inspection: upload an image for a station to judge, read kept images.

``POST /api/v1/machines/{machine}/inspections`` takes the image itself as the body (PNG, JPEG,
BMP or TIFF, at most 1 MiB) and the unit it shows as query parameters; the machine's model (the
factory model's ``inspection_model``) judges it and one ``inspection`` event is stored and
answered. A token made with ``--scope inspection.write`` is what a camera gateway needs.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from microfab.api.answers import InspectionAnswer
from microfab.errors import NotFoundError
from microfab.http.errors import ERROR_RESPONSES
from microfab.vision.service import VisionStations
from microfab.vision.station import UnitInfo

router = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES, tags=["quality"])

Text = Annotated[str | None, Query(max_length=64)]


def _stations(request: Request) -> VisionStations:
    stations = request.app.state.vision
    assert isinstance(stations, VisionStations)
    return stations


@router.post(
    "/machines/{machine:path}/inspections",
    status_code=201,
    response_model=InspectionAnswer,
    summary="Judge an uploaded image at an inspection station",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "image/png": {"schema": {"type": "string", "format": "binary"}},
                "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
            },
        }
    },
)
async def upload_inspection(
    machine: str,
    request: Request,
    order: Text = None,
    lot: Text = None,
    unit: Text = None,
    product: Text = None,
    name: Annotated[str, Query(max_length=200, description="The image's file name")] = "upload",
) -> dict[str, Any]:
    """The stored ``inspection`` event: result, defect and scores, the model's id and version,
    latency, the image kept (with a thumbnail). 404 when the machine has no
    ``inspection_model``; 400 (``unreadable_image``) with the reason when the body is not an
    image that can be decoded."""
    data = await request.body()
    info = UnitInfo(order, lot, unit, product)
    stations = _stations(request)
    return await run_in_threadpool(stations.upload, machine, data, name=name, info=info)


@router.get(
    "/inspections/images/{image:path}",
    summary="A kept inspection image's thumbnail",
    response_class=FileResponse,
    responses={200: {"content": {"image/jpeg": {}}, "description": "The JPEG thumbnail"}},
)
def inspection_thumbnail(image: str, request: Request) -> FileResponse:
    """The JPEG thumbnail of an image an ``inspection`` event names (its ``image`` field)."""
    path = _stations(request).thumbnail(image)
    if path is None:
        raise NotFoundError(f"no kept image {image}")
    return FileResponse(path, media_type="image/jpeg")
