"""The quality pages: the alert banner's buttons and ``/quality`` (SPC chart, machine health,
anomaly alerts, defect Pareto).

The buttons post ordinary forms (with the session's CSRF token) and redirect back to the page
they were on; the alert records the signed-in user as the one who acknowledged or closed it, and
so does the audit log.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from microfab.errors import InputError
from microfab.http.auth import safe_next
from microfab.http.deps import PlantDep, PrincipalDep
from microfab.model.events import parse_ts
from microfab.model.factory import Factory
from microfab.quality.alerts import acknowledge_alert, close_alert
from microfab.quality.defects import defect_pareto
from microfab.quality.maintenance import health_report, hours_text
from microfab.quality.spc import spc_report
from microfab.store.alerts import list_alerts
from microfab.store.quality import metric_names
from microfab.track.plant import Plant
from microfab.vision.service import latest_images

router = APIRouter(include_in_schema=False)

AlertId = Annotated[int, Path(ge=1, le=2**63 - 1)]


@router.post("/alerts/{alert_id}/ack")
def alert_ack_form(
    alert_id: AlertId,
    plant: PlantDep,
    principal: PrincipalDep,
    next_page: Annotated[str, Form(alias="next")] = "/",
) -> Response:
    acknowledge_alert(plant.store, alert_id, principal.actor)
    return RedirectResponse(safe_next(next_page), status_code=303)


@router.post("/alerts/{alert_id}/close")
def alert_close_form(
    alert_id: AlertId,
    plant: PlantDep,
    principal: PrincipalDep,
    next_page: Annotated[str, Form(alias="next")] = "/",
) -> Response:
    close_alert(plant.store, alert_id, principal.actor)
    return RedirectResponse(safe_next(next_page), status_code=303)


# ---------------------------------------------------------------------------- /quality


def _characteristics(plant: Plant, factory: Factory) -> list[str]:
    """``machine:metric`` of every stored telemetry metric, then ``machine:scrap`` of machines
    that count parts: what the page's chart can show."""
    found: list[str] = []
    for ref in factory.machines():
        found += [f"{ref.machine.id}:{m}" for m in metric_names(plant.store, ref.path)]
    found += [f"{ref.machine.id}:scrap" for ref in factory.machines() if ref.machine.produces]
    found += [
        f"{ref.machine.id}:defects" for ref in factory.machines() if ref.machine.inspection_model
    ]
    return found


def _number(text: str, name: str) -> float | None:
    if not text.strip():
        return None
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"{name}: '{text}' is not a number") from None
    if not math.isfinite(value):
        raise InputError(f"{name}: '{text}' is not a finite number")
    return value


@router.get("/quality", response_class=HTMLResponse)
def quality_page(
    request: Request,
    plant: PlantDep,
    characteristic: Annotated[str, Query(alias="c", max_length=200)] = "",
    lsl: Annotated[str, Query(max_length=40)] = "",
    usl: Annotated[str, Query(max_length=40)] = "",
) -> Response:
    """The SPC chart of one characteristic (``?c=imm-1:cycle_s&lsl=28&usl=32``), machine health
    and RUL with the evidence, recent anomaly alerts and the defect Pareto."""
    from microfab.web.pages import templates

    factory = plant.factory()
    zone = plant.zone(factory)
    options = _characteristics(plant, factory)
    chosen = characteristic or (options[0] if options else "")
    spc: dict[str, Any] | None = None
    spc_note: str | None = None
    if chosen:
        try:
            spc = spc_report(
                plant.store,
                factory,
                chosen,
                lsl=_number(lsl, "LSL"),
                usl=_number(usl, "USL"),
            )
        except InputError as exc:
            spc_note = exc.message
    paths = [ref.path for ref in factory.machines()]
    try:
        health: dict[str, Any] | None = health_report(plant.store, paths)
        health_note = None
    except InputError as exc:
        health, health_note = None, exc.message
    anomalies = [a for a in list_alerts(plant.store, limit=200) if a.kind == "anomaly"][:10]

    def local(text: str | None, fmt: str = "%d/%m %H:%M") -> str:
        if not text:
            return ""
        return parse_ts(text).astimezone(zone).strftime(fmt)

    chart = None
    if spc is not None:
        out = set(spc["out_of_control"])
        chart = {
            "points": [
                {
                    "t": local(p["to"]),
                    "value": p["value"],
                    "lower": p["lower"],
                    "upper": p["upper"],
                    "rules": p["rules"],
                    "dispersion_rules": p.get("dispersion_rules", []),
                    "out": p["index"] in out,
                    "baseline": p["baseline"],
                }
                for p in spc["points"]
            ],
            "center": next(iter(spc["limits"].values()))["center"],
            "name": next(iter(spc["limits"]), "value"),
            "lsl": _number(lsl, "LSL"),
            "usl": _number(usl, "USL"),
        }
    context = {
        "page": "quality",
        "options": options,
        "chosen": chosen,
        "lsl": lsl,
        "usl": usl,
        "spc": spc,
        "spc_note": spc_note,
        "chart": chart,
        "health": health,
        "health_note": health_note,
        "anomalies": anomalies,
        "defects": defect_pareto(plant.store),
        "inspection_images": latest_images(plant),
        "local": local,
        "zone": zone,
        "short": lambda path: str(path).rsplit("/", 1)[-1],
        "hours": hours_text,
    }
    return templates.TemplateResponse(request, "quality.html", context)
