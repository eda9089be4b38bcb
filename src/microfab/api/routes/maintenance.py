"""Routes for maintenance: work orders and their steps, plans due, spare parts, reliability.

Each write records the caller (``user:NAME`` / ``token:NAME``) in the audit log with the change
(:mod:`microfab.maint.workorders`); a refused write (400 with the reason, 404 for an unknown work
order or machine, 422 for a malformed body) changes nothing.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from microfab.errors import InputError
from microfab.http.deps import PlantDep, PrincipalDep
from microfab.http.errors import ERROR_RESPONSES
from microfab.maint import workorders as wo
from microfab.maint.parts import ledger_for, parts_json
from microfab.maint.plans import due_list
from microfab.maint.reliability import parse_month, reliability
from microfab.model.events import parse_ts

router = APIRouter(prefix="/api/v1/maintenance", responses=ERROR_RESPONSES, tags=["maintenance"])

OrderId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The work order's id")]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NewOrderBody(_Body):
    machine: str = Field(min_length=1, max_length=210, description="Machine id or path")
    kind: Literal["corrective", "predictive", "preventive"] = "corrective"
    problem: str = Field(min_length=1, max_length=2000)
    priority: int = Field(default=5, ge=1, le=9)
    window_start: str | None = Field(default=None, description="ISO time with offset")
    window_end: str | None = None


class ScheduleBody(_Body):
    start: str = Field(description="Window start, ISO time with offset")
    end: str
    technician: str | None = Field(default=None, max_length=200)


class StartBody(_Body):
    technician: str | None = Field(default=None, max_length=200)


class FinishBody(_Body):
    result: str = Field(min_length=1, max_length=2000)
    actions: str = Field(default="", max_length=2000)
    cause_code: str | None = Field(default=None, max_length=64)
    labour_min: float | None = Field(default=None, ge=0, le=44640)
    rate: float = Field(default=wo.DEFAULT_LABOUR_RATE, ge=0, le=100000)


class CancelBody(_Body):
    reason: str = Field(min_length=1, max_length=2000)


class PartLine(_Body):
    part: str = Field(min_length=1, max_length=64)
    qty: float = Field(gt=0, le=1e9)


class PartsBody(_Body):
    parts: list[PartLine] = Field(min_length=1, max_length=100)


# ---------------------------------------------------------------------------- answers


class PartIssued(BaseModel):
    part: str
    qty: float
    unit_cost: float = Field(description="HK$ per unit when issued")


class WorkOrderAnswer(BaseModel):
    """A maintenance work order (docs/maintenance.md)."""

    id: int
    machine: str
    kind: str = Field(description="corrective, predictive or preventive")
    source: str = Field(description="manual, alert, machine_down, health or plan")
    source_ref: str | None
    priority: int
    problem: str
    cause_code: str | None
    actions: str
    technician: str | None
    state: str = Field(description="requested, scheduled, in_progress, done or cancelled")
    requested_at: str | None
    window_start: str | None
    window_end: str | None
    started_at: str | None
    finished_at: str | None
    result: str | None
    labour_min: float
    labour_cost: float = Field(description="HK$")
    plan_id: int | None
    evidence: dict[str, Any]
    photos: list[int]
    parts: list[PartIssued] | None = None
    parts_cost: float | None = Field(default=None, description="HK$")


class WorkOrders(BaseModel):
    orders: list[WorkOrderAnswer]


class DueRow(BaseModel):
    machine: str
    plan: str
    basis: str = Field(description="calendar, run_hours, cycles or condition")
    due_at: str | None
    due_in_hours: float | None
    due_in_cycles: float | None
    overdue: bool
    plan_id: int
    since: str
    used: float | None
    left: float | None
    interval: float
    within_lead: bool
    reading: float | None


class DueAnswer(BaseModel):
    due: list[DueRow]


class PartRow(BaseModel):
    part: str
    name: str
    unit: str
    on_hand: float
    min_stock: float
    critical: bool
    unit_cost: float
    low: bool = Field(description="A critical part below its minimum")


class PartsAnswer(BaseModel):
    parts: list[PartRow]


class ReliabilityRow(BaseModel):
    machine: str
    month: str
    failures: int
    run_h: float
    unplanned_stop_h: float
    mtbf_h: float | None
    mttr_h: float | None
    jobs: int
    maintenance_cost: float
    planned_h: float
    unplanned_h: float
    planned_share: float | None
    unplanned_share: float | None


class ReliabilityAnswer(BaseModel):
    machines: list[ReliabilityRow]


def _time(text: str, field: str) -> dt.datetime:
    try:
        return parse_ts(text)
    except ValueError as exc:
        raise InputError(f"{field}: {exc}") from None


@router.get("/orders", response_model=WorkOrders, summary="Maintenance work orders, newest first")
def orders(
    plant: PlantDep,
    state: Annotated[Literal["open", "all"], Query()] = "open",
    machine: Annotated[str | None, Query(max_length=210)] = None,
) -> dict[str, Any]:
    path = plant.machine(machine).path if machine else None
    return {"orders": wo.list_json(plant.store, machine=path, open_only=state == "open")}


@router.post(
    "/orders",
    response_model=WorkOrderAnswer,
    summary="Request a work order (scheduled with a window)",
)
def create(body: NewOrderBody, plant: PlantDep, principal: PrincipalDep) -> dict[str, Any]:
    window = None
    if (body.window_start is None) != (body.window_end is None):
        raise InputError("window_start and window_end go together")
    if body.window_start is not None and body.window_end is not None:
        window = (_time(body.window_start, "window_start"), _time(body.window_end, "window_end"))
    order_id = wo.create_order(
        plant,
        wo.NewOrder(
            body.machine, wo.Kind(body.kind), body.problem, priority=body.priority, window=window
        ),
        principal.actor,
    )
    return wo.get(plant.store, order_id)


@router.get(
    "/orders/{order_id}", response_model=WorkOrderAnswer, summary="One work order with its parts"
)
def order(order_id: OrderId, plant: PlantDep) -> dict[str, Any]:
    return wo.get(plant.store, order_id)


@router.post(
    "/orders/{order_id}/schedule", response_model=WorkOrderAnswer, summary="Give a job its window"
)
def schedule(
    order_id: OrderId, body: ScheduleBody, plant: PlantDep, principal: PrincipalDep
) -> dict[str, Any]:
    return wo.schedule_order(
        plant,
        order_id,
        _time(body.start, "start"),
        _time(body.end, "end"),
        principal.actor,
        body.technician,
    )


@router.post(
    "/orders/{order_id}/start",
    response_model=WorkOrderAnswer,
    summary="Start a job (maintenance downtime begins)",
)
def start(
    order_id: OrderId, body: StartBody, plant: PlantDep, principal: PrincipalDep
) -> dict[str, Any]:
    return wo.start_order(plant, order_id, principal.actor, body.technician)


@router.post(
    "/orders/{order_id}/finish", response_model=WorkOrderAnswer, summary="Finish a started job"
)
def finish(
    order_id: OrderId, body: FinishBody, plant: PlantDep, principal: PrincipalDep
) -> dict[str, Any]:
    return wo.finish_order(
        plant,
        order_id,
        principal.actor,
        result=body.result,
        actions=body.actions,
        cause_code=body.cause_code,
        labour_min=body.labour_min,
        rate=body.rate,
    )


@router.post(
    "/orders/{order_id}/cancel", response_model=WorkOrderAnswer, summary="Cancel a job not started"
)
def cancel(
    order_id: OrderId, body: CancelBody, plant: PlantDep, principal: PrincipalDep
) -> dict[str, Any]:
    return wo.cancel_order(plant, order_id, principal.actor, body.reason)


@router.post(
    "/orders/{order_id}/parts",
    response_model=WorkOrderAnswer,
    summary="Issue spare parts to a job (all or none)",
)
def parts_issue(
    order_id: OrderId, body: PartsBody, plant: PlantDep, principal: PrincipalDep
) -> dict[str, Any]:
    ledger_for(plant.store).issue(order_id, [(p.part, p.qty) for p in body.parts], principal.actor)
    return wo.get(plant.store, order_id)


@router.post(
    "/from-alert/{alert_id}",
    response_model=WorkOrderAnswer,
    summary="A work order for an alert (once per alert)",
)
def from_alert(
    alert_id: Annotated[int, Path(ge=1, le=2**63 - 1)], plant: PlantDep, principal: PrincipalDep
) -> dict[str, Any]:
    return wo.get(plant.store, wo.from_alert(plant, alert_id, principal.actor))


@router.get("/due", response_model=DueAnswer, summary="When each preventive plan falls due")
def due(plant: PlantDep) -> dict[str, Any]:
    return {"due": [d.to_json() for d in due_list(plant.store, plant.now())]}


@router.get("/parts", response_model=PartsAnswer, summary="The spare parts list")
def parts(plant: PlantDep) -> dict[str, Any]:
    return {"parts": parts_json(plant.store)}


@router.get(
    "/reliability",
    response_model=ReliabilityAnswer,
    summary="MTBF, MTTR, cost, planned vs unplanned per machine",
)
def reliability_route(
    plant: PlantDep, month: Annotated[str, Query(pattern=r"^\d{4}-\d{2}$", description="2026-11")]
) -> dict[str, Any]:
    year, number = parse_month(month)
    return {"machines": reliability(plant, year, number)}
