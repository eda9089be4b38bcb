"""The browser pages: the live dashboard, the operator pages and the printable shift report.

All pages are rendered on the server (Jinja2); the dashboard then follows ``/live`` (SSE) and
swaps in re-rendered panels. Forms post ordinary form fields, so the operator pages work on any
tablet browser; each answer redirects back to the page (post/redirect/get) with what was saved.
Every page needs a signed-in principal and every form carries the session's CSRF token
(:mod:`microfab.http.auth`; the login page is :mod:`microfab.web.login`); operator entries are
recorded under the signed-in user's name and in the audit log.
"""

from __future__ import annotations

import datetime as dt
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, unquote, urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from markupsafe import Markup
from starlette.responses import StreamingResponse

from microfab.errors import InputError
from microfab.green.carbon_panel import CarbonPanel
from microfab.http.deps import CarbonPanelDep, PlantDep, PrincipalDep
from microfab.http.errors import ERROR_RESPONSES
from microfab.model.events import format_ts
from microfab.model.factory import Factory, MachineRef
from microfab.model.identity import Principal
from microfab.model.timerange import parse_time
from microfab.reports import print_pdf
from microfab.reports.render import duration, number, percent
from microfab.store.event_store import StoredEvent
from microfab.track import event_query, operator_input
from microfab.track.audit_trail import operator_by, record_operator_entry
from microfab.track.dashboard import Snapshot, build, reason_names
from microfab.track.plant import Plant
from microfab.web import report as shift_report
from microfab.web.alert_banner import SHOWN, banner_rows
from microfab.web.labels import (
    chart_labels,
    label_or,
    message,
    pair,
    state_label,
    t,
    text,
    text_en,
    text_zh,
)
from microfab.web.live import LiveFeed

WEB = Path(str(files("microfab.web")))
TEMPLATES = WEB / "templates"
STATIC = WEB / "static"

templates = Jinja2Templates(directory=str(TEMPLATES))
env = templates.env


@pass_context
def signed_in(context: Any) -> Principal | None:
    """The principal of the page's request (None on the login page and in shared panels)."""
    request = context.get("request")
    principal = getattr(getattr(request, "state", None), "principal", None)
    return principal if isinstance(principal, Principal) else None


@pass_context
def csrf_value(context: Any) -> str:
    """The session's CSRF token for the page's request ("" without a session)."""
    request = context.get("request")
    token = getattr(getattr(request, "state", None), "csrf_token", None)
    return token if isinstance(token, str) else ""


@pass_context
def csrf_field(context: Any) -> Markup:
    """The hidden CSRF field of a form. Panels rendered once for every viewer (the live feed)
    leave it empty; static/session.js fills it from the page's meta tag when the form is sent."""
    return Markup('<input type="hidden" name="csrf_token" value="{}" data-csrf>').format(
        csrf_value(context)
    )


def banner_html(plant: Plant, back: str = "/", request: Request | None = None) -> str:
    """The alert banner (``_alerts.html``) over the store's open alerts; ``back`` is the page
    the buttons return to. Without ``request`` (the live feed) the forms' CSRF field is empty
    and static/session.js fills it in the browser."""
    rows = banner_rows(plant)
    context: dict[str, Any] = {"alerts": rows, "shown": SHOWN, "back": back}
    if request is not None:
        context["request"] = request
    return env.get_template("_alerts.html").render(context)


@pass_context
def alert_banner(context: Any) -> Markup:
    """The banner for a page: only for a signed-in principal (not on the login page)."""
    request = context.get("request")
    if not isinstance(request, Request) or signed_in(context) is None:
        return Markup("")
    plant = getattr(request.app.state, "plant", None)
    if not isinstance(plant, Plant):
        return Markup("")
    back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return Markup(banner_html(plant, back, request))


env.globals.update(
    alert_banner=alert_banner,
    t=t,
    pair=pair,
    state_label=state_label,
    message=message,
    label_or=label_or,
    text_en=text_en,
    text_zh=text_zh,
    text=text,
    signed_in=signed_in,
    csrf_value=csrf_value,
    csrf_field=csrf_field,
)


env.filters.update(percent=percent, duration=duration, number=number, iso=format_ts)

router = APIRouter()


def _feed(request: Request) -> LiveFeed:
    feed = request.app.state.feed
    assert isinstance(feed, LiveFeed)
    return feed


def render_panels(
    snapshot: Snapshot, carbon: CarbonPanel | None = None, plant: Plant | None = None
) -> dict[str, Any]:
    """The dashboard's live parts: HTML per panel id, and the charts' data; with ``carbon``,
    the carbon panel for the snapshot's window too, and ``version``, the figures' version;
    with ``plant``, the alert banner (``alerts``)."""
    context: dict[str, Any] = {"s": snapshot}
    names = ["clock", "overview", "orders", "oee", "downtime"]
    if carbon is not None:
        context["c"] = carbon.view(snapshot.seq, snapshot.start, snapshot.end)
        names.append("carbon")
    panels = {name: env.get_template(f"_{name}.html").render(context) for name in names}
    if plant is not None:
        panels["alerts"] = banner_html(plant)
    rendered: dict[str, Any] = {"panels": panels, "charts": snapshot.charts()}
    if carbon is not None:
        rendered["version"] = context["c"].version  # the feed's, not the page's (popped)
    return rendered


def render_carbon(snapshot: Snapshot, carbon: CarbonPanel) -> dict[str, str]:
    """The carbon panel alone (new figures for the same snapshot)."""
    context = {"s": snapshot, "c": carbon.view(snapshot.seq, snapshot.start, snapshot.end)}
    return {"carbon": env.get_template("_carbon.html").render(context)}


def html_error(request: Request, status: int, key: str, message: str) -> Response:
    """The error page for browsers (see :func:`microfab.http.errors.install_error_handlers`):
    the same key and message as the JSON shape."""
    return templates.TemplateResponse(
        request,
        "error.html",
        {"status": status, "key": key, "message": message, "no_factory": key == "no_factory"},
        status_code=status,
    )


# ---------------------------------------------------------------------------- dashboard


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def dashboard(request: Request, plant: PlantDep, carbon: CarbonPanelDep) -> Response:
    snapshot = build(plant)
    panels = render_panels(snapshot, carbon)["panels"]
    return templates.TemplateResponse(
        request,
        "dashboard.html",
        {
            "s": snapshot,
            "page": "dashboard",
            "panels": {k: Markup(v) for k, v in panels.items()},
            "charts": snapshot.charts(),
            "chart_labels": chart_labels(),
        },
    )


@router.get("/live", include_in_schema=False)
async def live(
    request: Request, since: Annotated[int | None, Query(ge=0)] = None
) -> StreamingResponse:
    """Server-Sent Events: an ``update`` message whenever the store has new events."""
    last = request.headers.get("last-event-id")
    seen = int(last) if last and last.isdigit() else since
    return StreamingResponse(
        _feed(request).stream(seen),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


# ---------------------------------------------------------------------------- operator


@router.get("/operator", response_class=HTMLResponse, include_in_schema=False)
def operator_index(request: Request, plant: PlantDep) -> Response:
    snapshot = build(plant)
    return templates.TemplateResponse(
        request, "operator_index.html", {"s": snapshot, "page": "operator"}
    )


def _operator_url(ref: MachineRef, **params: str) -> str:
    url = f"/operator/{quote(ref.path)}"
    return f"{url}?{urlencode(params)}" if params else url


def _operator_page(
    request: Request,
    plant: Plant,
    ref: MachineRef,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    factory = plant.factory()
    zone = ref.site.zone
    clock = plant.now()
    machine_status = [s for s in plant.store.machine_status() if s.machine == ref.path]
    orders = [o for o in plant.store.order_status() if o.status in ("released", "in_progress")]
    entries = _recent_entries(plant, ref, clock)
    context = {
        "page": "operator",
        "ref": ref,
        "status": machine_status[0] if machine_status else None,
        "stops": operator_input.recent_stops(plant, ref),
        "counts": operator_input.recent_counts(plant, ref, 12) if ref.machine.produces else [],
        "reasons": _reason_options(factory),
        "reason_names": reason_names(factory),
        "orders": orders,
        "entries": entries,
        "operator": _signed_in_name(request)
        or unquote(request.cookies.get("microfab_operator", "")),
        "by_fixed": _signed_in_name(request) is not None,
        "token": operator_input.new_token,
        "now_local": clock.astimezone(zone).strftime("%Y-%m-%dT%H:%M"),
        "local": lambda v, fmt="%a %d/%m %H:%M": (
            "" if v is None else v.astimezone(zone).strftime(fmt)
        ),
        "done": request.query_params.get("done"),
        "again": request.query_params.get("again") == "1",
        "error": error,
        "company": factory.company.name,
    }
    return templates.TemplateResponse(request, "operator.html", context, status_code=status_code)


def _signed_in_name(request: Request) -> str | None:
    """The signed-in user's name (operator entries are theirs), or None for an API token."""
    principal = getattr(request.state, "principal", None)
    if isinstance(principal, Principal) and principal.kind == "user":
        return principal.name
    return None


def _recent_entries(plant: Plant, ref: MachineRef, clock: dt.datetime) -> list[StoredEvent]:
    return event_query.operator_entries(
        plant.store, machines=[ref.path], start=clock - dt.timedelta(days=7), limit=20
    )


def _reason_options(factory: Factory) -> list[tuple[str, str, str]]:
    """(category, code, label) for every reason code, unplanned first."""
    options: list[tuple[str, str, str]] = []
    for category, roots in (
        ("unplanned", factory.downtime_reasons.unplanned),
        ("planned", factory.downtime_reasons.planned),
    ):
        stack = list(reversed(roots))
        while stack:
            node = stack.pop()
            label = f"{node.code} · {node.name}" + (f" {node.name_zh}" if node.name_zh else "")
            options.append((category, node.code, label))
            stack.extend(reversed(node.children))
    return options


@router.get("/operator/{machine:path}", response_class=HTMLResponse, include_in_schema=False)
def operator_page(machine: str, request: Request, plant: PlantDep) -> Response:
    return _operator_page(request, plant, plant.machine(machine))


def _saved(ref: MachineRef, what: str, entry: operator_input.Entry, by: str) -> Response:
    params = {"done": what}
    if not entry.stored:
        params["again"] = "1"
    response = RedirectResponse(_operator_url(ref, **params) + "#saved", status_code=303)
    response.set_cookie(
        "microfab_operator", quote(by), max_age=60 * 60 * 24 * 30, samesite="strict"
    )
    return response


def _operator_post(
    request: Request,
    plant: Plant,
    principal: Principal,
    machine: str,
    what: str,
    action: Any,
) -> Response:
    ref = plant.machine(machine)
    try:
        entry, by = action(ref)
    except InputError as exc:
        return _operator_page(request, plant, ref, error=exc.message, status_code=400)
    record_operator_entry(plant.store, principal, f"operator.{_ACTIONS[what]}", entry)
    return _saved(ref, what, entry, by)


_ACTIONS = {"reason": "reason", "counts": "count", "correction": "correction"}


def _int(value: str, name: str) -> int:
    text_value = value.strip() or "0"
    try:
        return int(text_value)
    except ValueError:
        raise InputError(f"{name}: '{value}' is not a whole number") from None


@router.post("/operator/{machine:path}/reason", include_in_schema=False)
def operator_reason(
    machine: str,
    request: Request,
    plant: PlantDep,
    principal: PrincipalDep,
    event: Annotated[str, Form()],
    reason: Annotated[str, Form()] = "",
    by: Annotated[str, Form()] = "",
    token: Annotated[str, Form()] = "",
) -> Response:
    def act(ref: MachineRef) -> tuple[operator_input.Entry, str]:
        if not reason:
            raise InputError("choose a reason code for the stop")
        name = operator_by(principal, by)
        entry = operator_input.give_reason(
            plant, ref, event_id=event, reason=reason, by=name, token=token or None
        )
        return entry, (name or "").strip()

    return _operator_post(request, plant, principal, machine, "reason", act)


@router.post("/operator/{machine:path}/counts", include_in_schema=False)
def operator_counts(
    machine: str,
    request: Request,
    plant: PlantDep,
    principal: PrincipalDep,
    good: Annotated[str, Form()] = "0",
    scrap: Annotated[str, Form()] = "0",
    order: Annotated[str, Form()] = "",
    ts: Annotated[str, Form()] = "",
    by: Annotated[str, Form()] = "",
    token: Annotated[str, Form()] = "",
) -> Response:
    def act(ref: MachineRef) -> tuple[operator_input.Entry, str]:
        when = parse_time(ts, ref.site.zone, field="time") if ts.strip() else None
        name = operator_by(principal, by)
        entry = operator_input.enter_count(
            plant,
            ref,
            good=_int(good, "good"),
            scrap=_int(scrap, "scrap"),
            order=order or None,
            ts=when,
            by=name,
            token=token or None,
        )
        return entry, (name or "").strip()

    return _operator_post(request, plant, principal, machine, "counts", act)


@router.post("/operator/{machine:path}/correction", include_in_schema=False)
def operator_correction(
    machine: str,
    request: Request,
    plant: PlantDep,
    principal: PrincipalDep,
    event: Annotated[str, Form()],
    good: Annotated[str, Form()] = "0",
    scrap: Annotated[str, Form()] = "0",
    by: Annotated[str, Form()] = "",
    token: Annotated[str, Form()] = "",
) -> Response:
    def act(ref: MachineRef) -> tuple[operator_input.Entry, str]:
        name = operator_by(principal, by)
        entry = operator_input.correct_count(
            plant,
            ref,
            event_id=event,
            good=_int(good, "good"),
            scrap=_int(scrap, "scrap"),
            by=name,
            token=token or None,
        )
        return entry, (name or "").strip()

    return _operator_post(request, plant, principal, machine, "correction", act)


# ---------------------------------------------------------------------------- shift report


@router.get("/report/shift", response_class=HTMLResponse, include_in_schema=False)
def report_page(
    request: Request,
    plant: PlantDep,
    line: str | None = None,
    day: str | None = None,
    shift: str | None = None,
) -> Response:
    report = shift_report.build_report(plant, line=line, day=day, shift=shift)
    return HTMLResponse(shift_report.render_html(report))


@router.get(
    "/report/shift.pdf",
    tags=["exports"],
    summary="The shift report as PDF (needs chromium)",
    response_class=Response,
    responses={
        200: {"content": {"application/pdf": {}}, "description": "A4 PDF"},
        501: {"description": "No chromium on this machine", **ERROR_RESPONSES[400]},
        **ERROR_RESPONSES,
    },
)
def report_pdf(
    request: Request,
    plant: PlantDep,
    line: str | None = None,
    day: str | None = None,
    shift: str | None = None,
) -> Response:
    """The printable shift report (``/report/shift``) printed to PDF by headless chromium."""
    report = shift_report.build_report(plant, line=line, day=day, shift=shift)
    pdf = print_pdf(shift_report.render_html(report))
    name = f"shift-report-{report.day}-{report.shift}.pdf".replace(" ", "_")
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
