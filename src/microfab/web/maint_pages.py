"""The maintenance and safety pages: the maintenance board, one page per work order, the
technician's phone page (my open jobs, start/finish, parts, photo) and the safety page.

Forms post with the session's CSRF token and redirect back (post/redirect/get); a refused form
shows the page again with the service's sentence and its status code (400, 404). Every change is
made by :mod:`microfab.maint` and :mod:`microfab.safety`, which audit it. The photo input is
shrunk in the browser (static/maint.js) before it is sent, to stay under the body limit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import UploadFile

from microfab.errors import InputError, MicrofabError, NotFoundError
from microfab.http.deps import PlantDep, PrincipalDep
from microfab.http.errors import status_of
from microfab.maint import workorders as wo
from microfab.maint.parts import ledger_for, parse_items, parts_json
from microfab.maint.plans import due_list
from microfab.maint.reliability import reliability
from microfab.model.events import parse_ts
from microfab.safety.feed import recent
from microfab.safety.register import (
    IncidentKind,
    IncidentState,
    advance,
    days_since_lost_time,
    list_json,
    report,
)
from microfab.store.alerts import list_alerts
from microfab.store.maintenance import photo
from microfab.track.plant import Plant
from microfab.web.pages import templates

router = APIRouter(include_in_schema=False)

OrderId = Annotated[int, PathParam(ge=1, le=2**31 - 1)]
ACTIONS = ("schedule", "start", "finish", "cancel", "parts", "photo")


def _local(plant: Plant) -> Callable[..., str]:
    zone = plant.zone()

    def local(value: str | dt.datetime | None, fmt: str = "%d/%m %H:%M") -> str:
        if not value:
            return ""
        when = parse_ts(value) if isinstance(value, str) else value
        return when.astimezone(zone).strftime(fmt)

    return local


def _site_time(plant: Plant, text: str, field: str) -> dt.datetime:
    from microfab.model.timerange import parse_time

    if not text.strip():
        raise InputError(f"{field}: give a time")
    return parse_time(text, plant.zone(), field=field)


def _short(path: str) -> str:
    return str(path).rsplit("/", 1)[-1]


# ---------------------------------------------------------------------------- board


@router.get("/maintenance", response_class=HTMLResponse)
def board(request: Request, plant: PlantDep, error: str = "") -> Response:
    """Open work orders by state, plans due, spare parts, open alerts to turn into work orders,
    and this month's reliability figures."""
    factory = plant.factory()
    now = plant.now()
    local = _local(plant)
    orders = wo.list_json(plant.store, open_only=False, limit=100)
    columns = {state: [o for o in orders if o["state"] == state] for state in wo.OPEN_STATES}
    done = [o for o in orders if o["state"] in ("done", "cancelled")][:10]
    month = now.astimezone(plant.zone(factory))
    context = {
        "page": "maintenance",
        "columns": columns,
        "done": done,
        "due": [d.to_json() for d in due_list(plant.store, now)],
        "parts": parts_json(plant.store),
        "alerts": list_alerts(plant.store, open_only=True, limit=20),
        "reliability": reliability(plant, month.year, month.month),
        "month": f"{month.year:04d}-{month.month:02d}",
        "machines": [(ref.path, ref.machine.id) for ref in factory.machines()],
        "local": local,
        "short": _short,
        "error": error,
    }
    return templates.TemplateResponse(
        request, "maintenance.html", context, status_code=400 if error else 200
    )


@router.post("/maintenance/new")
def new_order(
    request: Request,
    plant: PlantDep,
    principal: PrincipalDep,
    machine: Annotated[str, Form(max_length=210)] = "",
    problem: Annotated[str, Form(max_length=2000)] = "",
    kind: Annotated[str, Form(max_length=20)] = "corrective",
    priority: Annotated[int, Form(ge=1, le=9)] = 5,
) -> Response:
    try:
        chosen = wo.Kind(kind)
    except ValueError:
        return board(request, plant, f"kind: '{kind}' is not corrective, predictive or preventive")
    try:
        order_id = wo.create_order(
            plant, wo.NewOrder(machine, chosen, problem, priority=priority), principal.actor
        )
    except MicrofabError as exc:
        return board(request, plant, exc.message)
    return RedirectResponse(f"/maintenance/{order_id}?done=created", status_code=303)


@router.post("/maintenance/from-alert/{alert_id}")
def from_alert(
    alert_id: Annotated[int, PathParam(ge=1, le=2**63 - 1)],
    request: Request,
    plant: PlantDep,
    principal: PrincipalDep,
) -> Response:
    try:
        order_id = wo.from_alert(plant, alert_id, principal.actor)
    except MicrofabError as exc:
        return board(request, plant, exc.message)
    return RedirectResponse(f"/maintenance/{order_id}?done=created", status_code=303)


# ---------------------------------------------------------------------------- one work order


def _order_page(
    request: Request,
    plant: Plant,
    order_id: int,
    *,
    error: str = "",
    done: str = "",
    status_code: int = 200,
    template: str = "maint_order.html",
) -> Response:
    order = wo.get(plant.store, order_id)
    context = {
        "page": "maintenance",
        "o": order,
        "parts": parts_json(plant.store),
        "local": _local(plant),
        "short": _short,
        "error": error,
        "done": done,
        "next_url": f"/maintenance/{order_id}",
    }
    return templates.TemplateResponse(request, template, context, status_code=status_code)


@router.get("/maintenance/{order_id}", response_class=HTMLResponse)
def order_page(order_id: OrderId, request: Request, plant: PlantDep, done: str = "") -> Response:
    return _order_page(request, plant, order_id, done=done if done in (*ACTIONS, "created") else "")


@router.post("/maintenance/{order_id}/{action}")
async def order_action(
    order_id: OrderId,
    action: Annotated[str, PathParam(max_length=20)],
    request: Request,
    plant: PlantDep,
    principal: PrincipalDep,
) -> Response:
    """One step of a work order from a form: schedule, start, finish, cancel, parts, photo."""
    from fastapi.concurrency import run_in_threadpool

    if action not in ACTIONS:
        raise NotFoundError(
            f"no work order action '{action}'; expected one of {', '.join(ACTIONS)}"
        )
    async with request.form() as form:
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        upload = form.get("photo")
        data = await upload.read() if isinstance(upload, UploadFile) else b""
        content_type = (upload.content_type or "") if isinstance(upload, UploadFile) else ""
    next_url = fields.get("next", "")
    if not next_url.startswith(("/maintenance/", "/technician")):
        next_url = f"/maintenance/{order_id}"

    def run() -> None:
        who = principal.name
        if action == "schedule":
            wo.schedule_order(
                plant,
                order_id,
                _site_time(plant, fields.get("start", ""), "start"),
                _site_time(plant, fields.get("end", ""), "end"),
                principal.actor,
                fields.get("technician") or None,
            )
        elif action == "start":
            wo.start_order(plant, order_id, principal.actor, fields.get("technician") or who)
        elif action == "finish":
            labour = fields.get("labour_min", "").strip()
            try:
                minutes = float(labour) if labour else None
            except ValueError:
                raise InputError(f"labour: '{labour}' is not a number of minutes") from None
            wo.finish_order(
                plant,
                order_id,
                principal.actor,
                result=fields.get("result", ""),
                actions=fields.get("actions", ""),
                cause_code=fields.get("cause_code") or None,
                labour_min=minutes,
            )
        elif action == "cancel":
            wo.cancel_order(plant, order_id, principal.actor, fields.get("reason", ""))
        elif action == "parts":
            items = parse_items([f"{fields.get('part', '')}:{fields.get('qty', '1') or '1'}"])
            ledger_for(plant.store).issue(order_id, items, principal.actor)
        else:
            wo.add_photo(plant, order_id, data, content_type, principal.actor)

    try:
        await run_in_threadpool(run)
    except NotFoundError:
        raise
    except MicrofabError as exc:
        return _order_page(request, plant, order_id, error=exc.message, status_code=status_of(exc))
    sep = "&" if "?" in next_url else "?"
    return RedirectResponse(f"{next_url}{sep}done={action}#saved", status_code=303)


@router.get("/maintenance/{order_id}/photos/{name}")
def order_photo(
    order_id: OrderId, name: Annotated[str, PathParam(max_length=40)], plant: PlantDep
) -> Response:
    try:
        photo_id = int(name.split(".", 1)[0])
    except ValueError:
        raise NotFoundError(f"no photo '{name}'") from None
    found = photo(plant.store, order_id, photo_id)
    if found is None:
        raise NotFoundError(f"work order {order_id} has no photo {photo_id}")
    return Response(
        found[1], media_type=found[0], headers={"Cache-Control": "private, max-age=3600"}
    )


# ---------------------------------------------------------------------------- technician


@router.get("/technician", response_class=HTMLResponse)
def technician(
    request: Request, plant: PlantDep, principal: PrincipalDep, done: str = ""
) -> Response:
    """The signed-in technician's open jobs (and the unassigned ones), for a phone."""
    mine = wo.list_json(plant.store, open_only=True, technician=principal.name)
    free = [o for o in wo.list_json(plant.store, open_only=True) if not o["technician"]]
    jobs = []
    for o in [*mine, *free]:
        jobs.append(wo.get(plant.store, o["id"]))
    context = {
        "page": "technician",
        "jobs": jobs,
        "parts": parts_json(plant.store),
        "local": _local(plant),
        "short": _short,
        "tech_name": principal.name,
        "done": done if done in ACTIONS else "",
    }
    return templates.TemplateResponse(request, "technician.html", context)


# ---------------------------------------------------------------------------- safety


def _safety_page(
    request: Request, plant: Plant, error: str = "", status_code: int = 200
) -> Response:
    factory = plant.factory()
    context = {
        "page": "safety",
        "events": recent(plant, 50),
        "incidents": list_json(plant, 100),
        "days": days_since_lost_time(plant),
        "machines": [(ref.path, ref.machine.id) for ref in factory.machines()],
        "local": _local(plant),
        "short": _short,
        "error": error,
    }
    return templates.TemplateResponse(request, "safety.html", context, status_code=status_code)


@router.get("/safety", response_class=HTMLResponse)
def safety_page(request: Request, plant: PlantDep) -> Response:
    """Days since the last lost-time incident per site, recent safety events, the register."""
    return _safety_page(request, plant)


@router.post("/safety/report")
def safety_report(
    request: Request,
    plant: PlantDep,
    principal: PrincipalDep,
    what: Annotated[str, Form(max_length=2000)] = "",
    kind: Annotated[str, Form(max_length=20)] = "near_miss",
    machine: Annotated[str, Form(max_length=210)] = "",
    location: Annotated[str, Form(max_length=200)] = "",
    injury: Annotated[str, Form(max_length=5)] = "",
    lost_time: Annotated[str, Form(max_length=5)] = "",
) -> Response:
    try:
        report(
            plant,
            principal.actor,
            kind=IncidentKind(kind)
            if kind in ("incident", "near_miss")
            else IncidentKind.NEAR_MISS,
            what=what,
            reported_by=principal.name,
            machine=machine or None,
            location=location,
            injury=bool(injury),
            lost_time=bool(lost_time),
        )
    except MicrofabError as exc:
        return _safety_page(request, plant, exc.message, status_of(exc))
    return RedirectResponse("/safety#register", status_code=303)


@router.post("/safety/{incident_id}/close")
def safety_close(
    incident_id: Annotated[int, PathParam(ge=1, le=2**31 - 1)],
    request: Request,
    plant: PlantDep,
    principal: PrincipalDep,
    actions: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    try:
        advance(plant, incident_id, IncidentState.CLOSED, principal.actor, actions)
    except MicrofabError as exc:
        return _safety_page(request, plant, exc.message, status_of(exc))
    return RedirectResponse("/safety#register", status_code=303)
