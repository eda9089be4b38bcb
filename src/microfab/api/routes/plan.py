"""Routes for the plan: read it, re-plan the open orders, and the Gantt chart's data.

The plan is the plan file the app shares with ``microfab plan schedule``
(:mod:`microfab.plan.plan_file`); its document is the one docs/planning.md describes.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from microfab.api.answers import Gantt, PlanDocument, Replanned
from microfab.http.deps import PlantDep, PrincipalDep
from microfab.http.errors import ERROR_RESPONSES, ErrorBody
from microfab.plan.plan_file import REPLAN_TIME_LIMIT_S, PlanFile, parse_window
from microfab.store.maintenance import maintenance_down
from microfab.track.audit_trail import record_plan
from microfab.track.gantt import gantt

router = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES, tags=["planning"])


def plan_file(request: Request) -> PlanFile:
    found = request.app.state.plan_file
    assert isinstance(found, PlanFile)
    return found


class ReplanInput(BaseModel):
    """How to re-plan; every field may be left out."""

    model_config = ConfigDict(extra="forbid")

    time_limit: float = Field(
        default=REPLAN_TIME_LIMIT_S, ge=0.5, le=60, description="Seconds the solver may take"
    )
    repair: bool = Field(
        default=False,
        description="Repair the current plan with few changes (started work kept) instead of "
        "planning afresh",
    )
    down: list[str] = Field(
        default_factory=list,
        description="MACHINE:DURATION, e.g. cnc-1:2h: the machine is out from now for that long",
    )
    horizon: str = Field(default="14d", description="How far ahead shift calendars are laid out")
    objective: str | None = Field(
        default=None,
        description="As 'microfab plan schedule --objective' (default "
        "10*weighted_tardiness+setup_time+makespan)",
    )


@router.get(
    "/plan",
    response_model=PlanDocument,
    response_model_exclude_unset=True,
    summary="The current plan",
)
def read_plan(request: Request) -> dict[str, Any]:
    """The plan document (as the plan file holds it): summary, orders with planned start, end
    and lateness, operations per machine with setups, warnings, and the solver's schedule."""
    return plan_file(request).require()


@router.post(
    "/plan",
    response_model=Replanned,
    response_model_exclude_unset=True,
    summary="Re-plan the open orders",
    responses={409: {"model": ErrorBody, "description": "A re-plan is running already"}},
)
def replan(
    request: Request,
    plant: PlantDep,
    principal: PrincipalDep,
    response: Response,
    body: ReplanInput | None = None,
) -> dict[str, Any]:
    """Plans every open order from the plant clock (CP-SAT, the current plan as a hint, or
    repaired with ``repair``) and writes the plan file when a schedule was found. The answer is
    the plan document and ``saved``; an infeasible problem answers 200 with status
    ``infeasible``, its reasons and ``saved: false`` (the earlier plan stays)."""
    wanted = body or ReplanInput()
    target = plan_file(request)
    document, saved = target.replan(
        plant,
        time_limit=wanted.time_limit,
        repair=wanted.repair,
        down=wanted.down,
        horizon=wanted.horizon,
        objective=wanted.objective,
        maintenance=maintenance_down(plant.store),
    )
    record_plan(plant.store, principal, target.path, document, saved)
    response.status_code = 201 if saved else 200
    return {"saved": saved, **document}


@router.get(
    "/plan/gantt",
    response_model=Gantt,
    response_model_exclude_unset=True,
    summary="Plan against actual, per machine",
)
def plan_gantt(
    request: Request,
    plant: PlantDep,
    start: Annotated[str | None, Query(alias="from", description="Window start")] = None,
    end: Annotated[str | None, Query(alias="to", description="Window end")] = None,
) -> dict[str, Any]:
    """One lane per machine: the planned operations (``late`` when their order is late), the
    actual order steps from the events (``running`` up to the plant clock) and the stops. The
    window defaults to the site's midnight before the plant clock (or the plan start) to the end
    of the plan."""
    first, last = parse_window(plant, start, end)
    return gantt(plant, plan_file(request).read(), start=first, end=last)
