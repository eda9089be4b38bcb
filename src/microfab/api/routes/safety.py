"""Routes for safety: recent safety events, the register, days since the last lost-time
incident; report an incident or near miss and close it (audited)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field

from microfab.errors import InputError
from microfab.http.deps import PlantDep, PrincipalDep
from microfab.http.errors import ERROR_RESPONSES
from microfab.model.events import parse_ts
from microfab.safety.feed import recent
from microfab.safety.register import (
    IncidentKind,
    IncidentState,
    advance,
    days_since_lost_time,
    incident_json,
    list_json,
    report,
)
from microfab.store.safety import get_incident

router = APIRouter(prefix="/api/v1/safety", responses=ERROR_RESPONSES, tags=["safety"])


class IncidentBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["incident", "near_miss"] = "near_miss"
    what: str = Field(min_length=1, max_length=2000)
    reported_by: str = Field(min_length=1, max_length=200)
    machine: str | None = Field(default=None, max_length=210)
    site: str | None = Field(default=None, max_length=40)
    location: str = Field(default="", max_length=200)
    injury: bool = False
    lost_time: bool = False
    occurred_at: str | None = None
    actions: str = Field(default="", max_length=2000)


class IncidentAnswer(BaseModel):
    """One entry of the incident and near-miss register (docs/safety.md)."""

    id: int
    site: str
    machine: str | None
    kind: str = Field(description="incident or near_miss")
    what: str
    location: str
    reported_by: str
    injury: bool
    lost_time: bool
    occurred_at: str
    actions: str
    state: str = Field(description="reported, investigating or closed")
    closed_at: str | None
    closed_by: str | None
    event_id: str | None


class SafetyEventRow(BaseModel):
    id: str
    ts: str
    machine: str
    kind: str
    severity: str
    zone: str | None = None
    source: str | None = None
    value: float | None = None
    limit: float | None = None
    words: str = Field(description="The kind in words")


class DaysRow(BaseModel):
    site: str
    last_lost_time: str | None
    days: int | None = Field(description="Whole days since the last lost-time incident")


class SafetyAnswer(BaseModel):
    events: list[SafetyEventRow]
    incidents: list[IncidentAnswer]
    days_since_lost_time: list[DaysRow]


class CloseBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    actions: str = Field(default="", max_length=2000)


@router.get(
    "",
    response_model=SafetyAnswer,
    summary="Safety events, the register and days since a lost-time incident",
)
def safety(plant: PlantDep) -> dict[str, Any]:
    return {
        "events": recent(plant, 100),
        "incidents": list_json(plant),
        "days_since_lost_time": days_since_lost_time(plant),
    }


@router.post("/incidents", response_model=IncidentAnswer, summary="Report an incident or near miss")
def report_incident(body: IncidentBody, plant: PlantDep, principal: PrincipalDep) -> dict[str, Any]:
    when = None
    if body.occurred_at is not None:
        try:
            when = parse_ts(body.occurred_at)
        except ValueError as exc:
            raise InputError(f"occurred_at: {exc}") from None
    incident_id = report(
        plant,
        principal.actor,
        kind=IncidentKind(body.kind),
        what=body.what,
        reported_by=body.reported_by,
        site=body.site,
        machine=body.machine,
        location=body.location,
        injury=body.injury,
        lost_time=body.lost_time,
        occurred_at=when,
        actions=body.actions,
    )
    row = get_incident(plant.store, incident_id)
    assert row is not None
    return incident_json(row)


@router.post(
    "/incidents/{incident_id}/close",
    response_model=IncidentAnswer,
    summary="Close an incident with the actions taken",
)
def close_incident(
    incident_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    body: CloseBody,
    plant: PlantDep,
    principal: PrincipalDep,
) -> dict[str, Any]:
    return advance(plant, incident_id, IncidentState.CLOSED, principal.actor, body.actions)
