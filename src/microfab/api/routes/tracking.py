"""Routes for OEE, downtime and reliability, as JSON and as CSV for a spreadsheet.

The numbers are :mod:`microfab.track.oee`'s, the same as ``microfab oee`` and ``microfab
downtime`` print for the same options; ``from``/``to`` take the same forms as ``--from``/``--to``,
cut to the days holding stored data and capped at ``MICROFAB_MAX_QUERY_DAYS`` (a longer window
answers 422 saying the limit; with no ``from`` over more data, the last that many days).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from microfab.api.answers import Downtime, OeeRowAnswer
from microfab.http.deps import PlantDep
from microfab.http.errors import ERROR_RESPONSES
from microfab.model.factory import Factory
from microfab.settings import load_settings
from microfab.track.export import DOWNTIME_COLUMNS, OEE_API_COLUMNS, csv_text
from microfab.track.oee import downtime_pareto, oee_rows, reliability_rows
from microfab.track.plant import Plant
from microfab.track.windows import data_window

router = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES, tags=["OEE and downtime"])


LineQuery = Annotated[
    str | None, Query(description="Line id or path site/area/line (default: all)")
]
MachineQuery = Annotated[str | None, Query(description="Only this machine (id or path)")]
FromQuery = Annotated[
    str | None,
    Query(
        alias="from",
        description="Start: 2026-11-23, 2026-11-23T08:00 (site time) or ISO-8601 with an offset "
        "(default: first stored event)",
    ),
]
ToQuery = Annotated[
    str | None,
    Query(alias="to", description="End (exclusive), same forms (default: last stored event)"),
]
ByQuery = Annotated[
    Literal["machine", "shift", "day"],
    Query(description="One row per machine for the whole period, or per shift, or per day"),
]
LevelQuery = Annotated[
    Literal["machine", "line", "all"],
    Query(
        description="Machine rows, line rows (the line output at the bottleneck's pace, never a "
        "sum of stations), or all: the machine rows then the line rows, as the dashboard shows them"
    ),
]


def _window(
    plant: Plant,
    factory: Factory,
    line: str | None,
    start: str | None,
    end: str | None,
    zone: zoneinfo.ZoneInfo,
) -> tuple[dt.datetime | None, dt.datetime | None]:
    return data_window(
        plant.store, factory, line, start, end, zone, max_days=load_settings().max_query_days
    )


def _oee(
    plant: Plant,
    line: str | None,
    machine: str | None,
    start: str | None,
    end: str | None,
    by: Literal["machine", "shift", "day"],
    level: Literal["machine", "line", "all"],
) -> list[dict[str, Any]]:
    if level == "all":
        return [
            *_oee(plant, line, machine, start, end, by, "machine"),
            *_oee(plant, line, machine, start, end, by, "line"),
        ]
    factory = plant.factory()
    zone = plant.line(line, factory).site_zone if line else plant.zone(factory)
    first, last = _window(plant, factory, line, start, end, zone)
    rows = oee_rows(
        plant.store, factory, line=line, machine=machine, start=first, end=last, by=by, level=level
    )
    return [row.to_json() for row in rows]


@router.get(
    "/oee",
    response_model=list[OeeRowAnswer],
    response_model_exclude_unset=True,
    summary="OEE per ISO 22400-2",
)
def oee(
    plant: PlantDep,
    line: LineQuery = None,
    machine: MachineQuery = None,
    start: FromQuery = None,
    end: ToQuery = None,
    by: ByQuery = "machine",
    level: LevelQuery = "machine",
) -> list[dict[str, Any]]:
    """Availability × performance × quality per machine (or line) and period, as ``microfab oee
    --json`` gives them: times in seconds, ratios 0–1 (``null`` when undefined)."""
    return _oee(plant, line, machine, start, end, by, level)


@router.get(
    "/oee.csv",
    summary="OEE as CSV",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "CSV with a header row"}},
)
def oee_csv(
    plant: PlantDep,
    line: LineQuery = None,
    machine: MachineQuery = None,
    start: FromQuery = None,
    end: ToQuery = None,
    by: ByQuery = "machine",
    level: LevelQuery = "machine",
) -> Response:
    """The rows of ``/api/v1/oee`` as CSV, one column per field, empty cells for ``null``."""
    rows = _oee(plant, line, machine, start, end, by, level)
    return _csv_response(rows, OEE_API_COLUMNS, "oee.csv")


def _downtime(
    plant: Plant, line: str | None, machine: str | None, start: str | None, end: str | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    factory = plant.factory()
    zone = plant.line(line, factory).site_zone if line else plant.zone(factory)
    first, last = _window(plant, factory, line, start, end, zone)
    pareto = downtime_pareto(
        plant.store, factory, line=line, machine=machine, start=first, end=last
    )
    reliability = reliability_rows(
        plant.store, factory, line=line, machine=machine, start=first, end=last
    )
    return [r.to_json() for r in pareto], [r.to_json() for r in reliability]


@router.get(
    "/downtime",
    response_model=Downtime,
    response_model_exclude_unset=True,
    summary="Downtime Pareto and MTBF/MTTR",
)
def downtime(
    plant: PlantDep,
    line: LineQuery = None,
    machine: MachineQuery = None,
    start: FromQuery = None,
    end: ToQuery = None,
) -> dict[str, Any]:
    """``pareto``: time lost in working time by state and reason code, largest first, with its
    share; ``reliability``: failures, MTBF and MTTR per machine (as ``microfab downtime --json``)."""
    pareto, reliability = _downtime(plant, line, machine, start, end)
    return {"pareto": pareto, "reliability": reliability}


@router.get(
    "/downtime.csv",
    summary="Downtime Pareto as CSV",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "CSV with a header row"}},
)
def downtime_csv(
    plant: PlantDep,
    line: LineQuery = None,
    machine: MachineQuery = None,
    start: FromQuery = None,
    end: ToQuery = None,
) -> Response:
    """The Pareto of ``/api/v1/downtime`` as CSV; ``machines`` is a space-separated list."""
    pareto, _ = _downtime(plant, line, machine, start, end)
    rows = [r | {"machines": " ".join(r["machines"])} for r in pareto]
    return _csv_response(rows, DOWNTIME_COLUMNS, "downtime.csv")


def _csv_response(rows: list[dict[str, Any]], columns: Sequence[str], name: str) -> Response:
    return Response(
        csv_text(rows, columns),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
