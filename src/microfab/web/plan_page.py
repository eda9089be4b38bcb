"""The plan page of the dashboard: a Gantt chart per machine (plan against actual, late orders
in red), the planned orders, and a *Re-plan* button.

The chart's data is ``GET /api/v1/plan/gantt``'s (:mod:`microfab.track.gantt`), rendered into the
page and drawn by ``static/gantt.js`` with the vendored ECharts. The button posts a form that
re-plans as ``POST /api/v1/plan`` does (:class:`microfab.plan.plan_file.PlanFile`) and comes back
to the page (post/redirect/get); a refused re-plan shows the page again with the API's sentence.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from microfab.errors import InputError, MicrofabError
from microfab.http.deps import PlantDep, PrincipalDep
from microfab.http.errors import status_of
from microfab.plan.plan_file import PlanFile
from microfab.store.maintenance import maintenance_down
from microfab.track.audit_trail import record_plan
from microfab.track.gantt import gantt
from microfab.track.orders import list_orders
from microfab.track.plant import Plant
from microfab.web.labels import LABELS
from microfab.web.pages import templates

router = APIRouter(include_in_schema=False)

TIME_LIMITS = (2, 5, 10, 30)
"""Seconds the page offers the solver (5 by default)."""


def _plan_file(request: Request) -> PlanFile:
    found = request.app.state.plan_file
    assert isinstance(found, PlanFile)
    return found


def gantt_labels() -> dict[str, dict[str, str]]:
    keys: tuple[str, ...] = ("plan", "actual", "late", "now", "running", "setup_s", "good")
    keys += ("scrap", "no_data", "maintenance")
    return {k: {"en": LABELS[k][0], "zh": LABELS[k][1]} for k in keys}


def _plan_page(
    request: Request,
    plant: Plant,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    factory = plant.factory()
    zone = plant.zone(factory)
    document = _plan_file(request).read()
    data = gantt(plant, document)
    views = {v.order: v for v in list_orders(plant.store, factory, now=plant.now(), plan=document)}

    def local(text: str | dt.datetime | None, fmt: str = "%a %d/%m %H:%M") -> str:
        if not text:
            return ""
        when = text if isinstance(text, dt.datetime) else dt.datetime.fromisoformat(text)
        return when.astimezone(zone).strftime(fmt)

    done = request.query_params.get("done")
    context: dict[str, Any] = {
        "page": "plan",
        "doc": document,
        "views": views,
        "gantt": data,
        "labels": gantt_labels(),
        "local": local,
        "late_orders": set(data["late_orders"]),
        "machines": [ref for ref in factory.machines() if ref.machine.produces],
        "time_limits": TIME_LIMITS,
        "done": done if done == "replanned" else None,
        "error": error,
        "plan_path": str(_plan_file(request).path),
    }
    return templates.TemplateResponse(request, "plan.html", context, status_code=status_code)


@router.get("/plan", response_class=HTMLResponse)
def plan_page(request: Request, plant: PlantDep) -> Response:
    return _plan_page(request, plant)


@router.post("/plan")
def replan_form(
    request: Request,
    plant: PlantDep,
    principal: PrincipalDep,
    time_limit: Annotated[str, Form()] = "5",
    repair: Annotated[str, Form()] = "",
    down_machine: Annotated[str, Form()] = "",
    down_for: Annotated[str, Form()] = "",
) -> Response:
    try:
        seconds = float(time_limit) if time_limit.strip() else 5.0
    except ValueError:
        seconds = -1.0
    try:
        if not 0.5 <= seconds <= 60:
            raise InputError(f"time limit: '{time_limit}' is not 0.5 to 60 seconds")
        down = [f"{down_machine}:{down_for.strip() or '1h'}"] if down_machine else []
        target = _plan_file(request)
        document, saved = target.replan(
            plant,
            time_limit=seconds,
            repair=repair in ("1", "on", "true"),
            down=down,
            maintenance=maintenance_down(plant.store),
        )
        record_plan(plant.store, principal, target.path, document, saved)
    except MicrofabError as exc:
        if status_of(exc) >= 500:
            raise
        return _plan_page(request, plant, error=exc.message, status_code=status_of(exc))
    if not saved:
        reasons = "; ".join(document["plan"].get("reasons") or []) or "no schedule found"
        message = f"no new plan ({document['plan']['status']}): {reasons}; the plan shown stays"
        return _plan_page(request, plant, error=message)
    return RedirectResponse("/plan?done=replanned#saved", status_code=303)
