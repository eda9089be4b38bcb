"""Routes for operator input: stops and their reasons, counts typed in, corrections of counts.

Each input is stored as a new event (:mod:`microfab.track.operator_input`); the answer is the
stored event and ``stored`` (``false`` when the same token was sent before: a repeat is stored
once). ``by`` is the signed-in user's name; an API token (a scanner, a gateway) gives the
operator's name in ``by``. Each stored entry is also written to the audit log with the caller.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from microfab.api.answers import CountLine, EventEntry, Stop
from microfab.http.deps import PlantDep, PrincipalDep
from microfab.http.errors import ERROR_RESPONSES
from microfab.model.events import MAX_COUNT, MAX_INT, event_to_dict
from microfab.model.timerange import parse_time
from microfab.track import operator_input
from microfab.track.audit_trail import operator_by, record_operator_entry

router = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES, tags=["operator input"])

By = Annotated[
    str | None,
    Field(
        default=None,
        max_length=64,
        description="Operator name: needed with an API token; a signed-in user is the operator",
    ),
]
Token = Annotated[
    str | None,
    Field(
        default=None,
        description="6–40 letters, digits, - or _: the same token twice stores one event "
        "(default: a new one)",
    ),
]


class ReasonInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event: str = Field(min_length=1, max_length=64, description="Id of the stop's state event")
    reason: str = Field(min_length=1, max_length=64, description="Downtime reason code")
    by: By = None
    token: Token = None


class CountInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    good: int = Field(ge=0, le=MAX_COUNT, description="Good units")
    scrap: int = Field(default=0, ge=0, le=MAX_COUNT, description="Scrapped units")
    order: str | None = Field(default=None, max_length=64, description="Work order id")
    operation: int | None = Field(default=None, ge=1, le=MAX_INT, description="Routing step")
    ts: str | None = Field(
        default=None,
        description="When the units were made: ISO-8601 with an offset, or site time "
        "(default: the plant clock)",
    )
    by: By = None
    token: Token = None


class CorrectionInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    corrects: str = Field(min_length=1, max_length=64, description="Id of the wrong count event")
    good: int = Field(ge=0, le=MAX_COUNT, description="What the good count should have been")
    scrap: int = Field(ge=0, le=MAX_COUNT, description="What the scrap count should have been")
    by: By = None
    token: Token = None


def _answer(entry: operator_input.Entry, response: Response) -> dict[str, Any]:
    response.status_code = 201 if entry.stored else 200
    return {"stored": entry.stored, "event": event_to_dict(entry.event)}


@router.get(
    "/machines/{machine:path}/stops",
    response_model=list[Stop],
    response_model_exclude_unset=True,
    summary="A machine's recent stops",
)
def stops(
    machine: str,
    plant: PlantDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 30,
    unexplained: Annotated[bool, Query(description="Only stops without a reason code")] = False,
) -> list[dict[str, Any]]:
    """Every state other than running the machine entered, newest first, with its reason as
    operators restated it (``reason_by``) and how long it lasted (``null`` while it goes on)."""
    ref = plant.machine(machine)
    found = operator_input.recent_stops(plant, ref, limit)
    return [s.to_json() for s in found if not (unexplained and s.reason is not None)]


@router.post(
    "/machines/{machine:path}/reasons",
    response_model=EventEntry,
    response_model_exclude_unset=True,
    summary="Give a stop its reason",
    status_code=201,
)
def give_reason(
    machine: str, body: ReasonInput, plant: PlantDep, principal: PrincipalDep, response: Response
) -> dict[str, Any]:
    """Stores a restatement of the stop with the reason code (docs/events.md)."""
    ref = plant.machine(machine)
    entry = operator_input.give_reason(
        plant,
        ref,
        event_id=body.event,
        reason=body.reason,
        by=operator_by(principal, body.by),
        token=body.token,
    )
    record_operator_entry(plant.store, principal, "operator.reason", entry)
    return _answer(entry, response)


@router.get(
    "/machines/{machine:path}/counts",
    response_model=list[CountLine],
    response_model_exclude_unset=True,
    summary="A machine's recent counts",
)
def counts(
    machine: str, plant: PlantDep, limit: Annotated[int, Query(ge=1, le=200)] = 20
) -> list[dict[str, Any]]:
    """Count events newest first: as ``reported``, the corrections made to each, and the net
    ``good``/``scrap`` they add up to."""
    ref = plant.machine(machine)
    return [line.to_json() for line in operator_input.recent_counts(plant, ref, limit)]


@router.post(
    "/machines/{machine:path}/counts",
    response_model=EventEntry,
    response_model_exclude_unset=True,
    summary="Enter counts by hand",
    status_code=201,
)
def enter_count(
    machine: str, body: CountInput, plant: PlantDep, principal: PrincipalDep, response: Response
) -> dict[str, Any]:
    """For a machine with no connection (or counts it missed). With an ``order`` and no
    ``operation``, the routing step this machine runs for the order's product is filled in."""
    factory = plant.factory()
    ref = plant.machine(machine, factory)
    ts = parse_time(body.ts, ref.site.zone, field="ts") if body.ts else None
    entry = operator_input.enter_count(
        plant,
        ref,
        good=body.good,
        scrap=body.scrap,
        order=body.order,
        operation=body.operation,
        ts=ts,
        by=operator_by(principal, body.by),
        token=body.token,
    )
    record_operator_entry(plant.store, principal, "operator.count", entry)
    return _answer(entry, response)


@router.post(
    "/machines/{machine:path}/corrections",
    response_model=EventEntry,
    response_model_exclude_unset=True,
    summary="Correct a wrong count",
    status_code=201,
)
def correct_count(
    machine: str,
    body: CorrectionInput,
    plant: PlantDep,
    principal: PrincipalDep,
    response: Response,
) -> dict[str, Any]:
    """Give the numbers the count should have been; a compensating count event with the signed
    differences is stored (the original stays as it was)."""
    ref = plant.machine(machine)
    entry = operator_input.correct_count(
        plant,
        ref,
        event_id=body.corrects,
        good=body.good,
        scrap=body.scrap,
        by=operator_by(principal, body.by),
        token=body.token,
    )
    record_operator_entry(plant.store, principal, "operator.correction", entry)
    return _answer(entry, response)
