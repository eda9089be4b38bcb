"""Routes for alerts (list them, acknowledge, close) and the defect Pareto.

The alerts are what ``microfab alerts run`` (or the demo) stored from the rules
(:mod:`microfab.quality.alerts`). Acknowledging and closing record the caller (``user:NAME`` or
``token:NAME``) in the alert and in the audit log (``alerts.acknowledge``, ``alerts.close``); the
next ``alerts run`` delivers the change to its channels.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query

from microfab.api.answers import AlertAnswer, Alerts, Defects
from microfab.http.deps import PlantDep, PrincipalDep
from microfab.http.errors import ERROR_RESPONSES
from microfab.quality.alerts import acknowledge_alert, close_alert
from microfab.quality.defects import defect_pareto
from microfab.store.alerts import list_alerts

router = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES, tags=["alerts"])

AlertId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The alert's id")]


@router.get(
    "/alerts",
    response_model=Alerts,
    response_model_exclude_unset=True,
    summary="Alerts, newest first (the dashboard banner's)",
)
def alerts(
    plant: PlantDep,
    state: Annotated[
        Literal["open", "all"],
        Query(description="open: not yet closed (open or acknowledged); all: closed ones too"),
    ] = "open",
    limit: Annotated[int, Query(ge=1, le=1000, description="At most this many")] = 50,
) -> dict[str, Any]:
    """Alerts newest first, each as the MQTT payload of ``microfab/v1/{site}/alerts`` without
    ``event``: id, state, rule, kind, severity, machine, cause, message, ``first_ts`` (when the
    condition started in the data), ``last_ts``, occurrences, raised/acknowledged/closed times
    and people, details."""
    found = list_alerts(plant.store, open_only=state == "open", limit=limit)
    return {"alerts": [a.to_json() for a in found]}


@router.post(
    "/alerts/{alert_id}/ack",
    response_model=AlertAnswer,
    response_model_exclude_unset=True,
    summary="Acknowledge an alert",
)
def acknowledge(alert_id: AlertId, plant: PlantDep, principal: PrincipalDep) -> dict[str, Any]:
    """Mark the alert seen by the caller; it stays open (on the banner) until closed. 404 for an
    unknown alert, 400 (``alert_state``) when it is acknowledged or closed already."""
    return acknowledge_alert(plant.store, alert_id, principal.actor).to_json()


@router.post(
    "/alerts/{alert_id}/close",
    response_model=AlertAnswer,
    response_model_exclude_unset=True,
    summary="Close an alert",
)
def close(alert_id: AlertId, plant: PlantDep, principal: PrincipalDep) -> dict[str, Any]:
    """Close the alert (it leaves the banner; the same occurrence is never raised again and a
    new one is held off for the rules' ``hold_off_min``). 404 for an unknown alert, 400
    (``alert_state``) when it is closed already."""
    return close_alert(plant.store, alert_id, principal.actor).to_json()


@router.get(
    "/defects",
    response_model=Defects,
    response_model_exclude_unset=True,
    tags=["quality"],
    summary="Defect Pareto from inspection results",
)
def defects(
    plant: PlantDep,
    start: Annotated[
        str | None,
        Query(
            alias="from",
            description="Start: 2026-11-23, 2026-11-23T08:00 (site time) or ISO-8601 with an "
            "offset (default: the first inspection)",
        ),
    ] = None,
    end: Annotated[
        str | None,
        Query(alias="to", description="End (exclusive), same forms (default: the last)"),
    ] = None,
) -> dict[str, Any]:
    """Inspection results counted: ``inspected``, ``failed``, ``fail_rate`` and ``defects`` (each
    class with ``count``, ``share`` of the failures and ``cumulative``, largest first), overall
    and per product and machine in ``groups``; the same as ``microfab defects --json``."""
    first = last = None
    if start is not None or end is not None:
        first, last = plant.time_range(start, end, plant.zone())
    return defect_pareto(plant.store, start=first, end=last)
