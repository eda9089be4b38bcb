"""The funding pages: the project's budget vs spend, claims and deadlines; smart-line evidence;
the scheme matcher; and the printable reports.

Everything is :mod:`microfab.funding`'s (docs/funding.md, "For the UI"): the project comes from
the ledger file given to ``microfab serve --funding-ledger FILE`` (read on every visit, so an
edited ledger shows at once), the evidence from the live store, the matcher from a company
profile the user pastes or uploads. A file that is not valid shows its located problems.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any

import yaml
from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup

from microfab.errors import FundingFileError, InputError, NotFoundError
from microfab.funding.evidence import gather_store_facts, smart_line_evidence
from microfab.funding.ledger import Ledger, parse_ledger, review_ledger
from microfab.funding.matcher import CompanyProfile, match_schemes, parse_profile
from microfab.funding.reports import (
    benefit_report_html,
    evidence_html,
    final_report_html,
    money,
    progress_report_html,
)
from microfab.funding.rules import catalogue_data
from microfab.http.deps import PlantDep
from microfab.http.errors import ERROR_RESPONSES
from microfab.model.located_yaml import read_file
from microfab.reports import print_pdf
from microfab.track.plant import Plant
from microfab.web.labels import LABELS, in_site_time, pair, t
from microfab.web.pages import env, templates

router = APIRouter()

REPORTS = ("evidence", "progress", "final", "benefit")
MAX_PROFILE_BYTES = 256 * 1024

env.filters.setdefault("money", money)


def _as_of(value: str | None) -> dt.date:
    if not value:
        return dt.date.today()
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise InputError(f"as_of '{value}' is not a date; write YYYY-MM-DD") from None


def _ledger_path(request: Request) -> Path | None:
    path = request.app.state.funding_ledger
    assert path is None or isinstance(path, Path)
    return path


def load_ledger(path: Path) -> Ledger:
    """The ledger file, parsed (a :class:`FundingFileError` with located problems if not valid)."""
    return parse_ledger(read_file(path, "funding ledger"), str(path))


def _evidence(plant: Plant, line: str | None) -> dict[str, Any]:
    factory = plant.factory()
    if line:
        plant.line(line, factory)  # an unknown line is a 404 with the known ones
    facts = gather_store_facts(plant.store, factory)
    document = smart_line_evidence(factory, facts, line=line or None).to_json()
    return dict(in_site_time(document, plant.zone(factory)))


# ---------------------------------------------------------------------------- project


@router.get("/funding", response_class=HTMLResponse, include_in_schema=False)
def funding_project(request: Request, as_of: str | None = None) -> Response:
    path = _ledger_path(request)
    day = _as_of(as_of)
    context: dict[str, Any] = {
        "page": "funding",
        "tab": "project",
        "ledger_file": path,
        "as_of": day,
        "review": None,
        "problems": [],
    }
    if path is not None:
        try:
            context["review"] = review_ledger(load_ledger(path), day).to_json()
        except FundingFileError as exc:
            context["problems"] = exc.problems
        except InputError as exc:
            context["problems"] = [exc.message]
    return templates.TemplateResponse(request, "funding.html", context)


# ---------------------------------------------------------------------------- evidence


@router.get("/funding/evidence", response_class=HTMLResponse, include_in_schema=False)
def funding_evidence(request: Request, plant: PlantDep, line: str | None = None) -> Response:
    path = _ledger_path(request)
    if line is None and path is not None:
        try:
            line = _known_line(plant, load_ledger(path).project.line)
        except InputError:
            line = None  # the project page shows the ledger's problems
    document = _evidence(plant, line)
    context = {"page": "funding", "tab": "evidence", "doc": document, "line": line or ""}
    return templates.TemplateResponse(request, "funding_evidence.html", context)


# ---------------------------------------------------------------------------- matcher


STAGES = (
    "startup",
    "R&D",
    "business_expansion",
    "technology_application",
    "production",
    "training",
    "loan",
)
"""The funding stages a profile names (the catalogue's ``stage_vocabulary`` when it has one)."""

PROFILE_FIELDS = ("as_of", "name", "founded", "sector", "purpose", "project_cost_hkd", "keywords")
PROFILE_CHECKS = ("incorporated_in_hk", "listed", "sme", "new_line")


def _stages() -> list[tuple[str, Markup]]:
    """Each stage's value and its name in both languages (the value itself when the catalogue
    has no name for it)."""
    named = []
    for stage in catalogue_data().get("stage_vocabulary") or STAGES:
        key = "stage_" + str(stage).lower().replace("&", "")
        named.append((str(stage), t(key) if key in LABELS else pair(str(stage), "")))
    return named


def profile_from_fields(form: dict[str, Any]) -> str:
    """The company profile (YAML, as in docs/examples/company.yaml) that the form's fields say;
    :func:`parse_profile` then checks it as it checks a file."""
    company: dict[str, Any] = {"name": str(form.get("name", "")).strip()}
    for check in ("incorporated_in_hk", "listed", "sme"):
        company[check] = check in form
    founded = str(form.get("founded", "")).strip()
    if founded:
        company["founded"] = int(founded) if founded.isdigit() else founded
    company["sector"] = str(form.get("sector", "")).strip()
    need: dict[str, Any] = {
        "stages": list(form.get("stages", [])),
        "purpose": str(form.get("purpose", "")).strip(),
        "new_line": "new_line" in form,
        "keywords": [k.strip() for k in str(form.get("keywords", "")).split(",") if k.strip()],
    }
    cost = str(form.get("project_cost_hkd", "")).replace(",", "").strip()
    if cost:
        need["project_cost_hkd"] = int(cost) if cost.isdigit() else cost
    as_of = str(form.get("as_of", "")).strip() or dt.date.today().isoformat()
    document = {"as_of": as_of, "company": company, "need": need}
    return yaml.safe_dump(document, allow_unicode=True, sort_keys=False)


def _fields(profile: CompanyProfile | None) -> dict[str, Any]:
    """The form's fields for ``profile`` (an empty form: the example's choices as hints)."""
    if profile is None:
        return {
            "as_of": dt.date.today().isoformat(),
            "stages": [],
            "checks": {"incorporated_in_hk", "sme"},
        }
    c, n = profile.company, profile.need
    checks = {k for k in ("incorporated_in_hk", "listed", "sme") if getattr(c, k)}
    if n.new_line:
        checks.add("new_line")
    return {
        "as_of": profile.as_of.isoformat(),
        "name": c.name,
        "founded": c.founded or "",
        "sector": c.sector,
        "purpose": n.purpose,
        "project_cost_hkd": "" if n.project_cost_hkd is None else f"{n.project_cost_hkd:.0f}",
        "keywords": ", ".join(n.keywords),
        "stages": list(n.stages),
        "checks": checks,
    }


def _match_page(
    request: Request, profile_text: str = "", filename: str = "", status_code: int = 200
) -> Response:
    context: dict[str, Any] = {
        "page": "funding",
        "tab": "match",
        "profile_text": profile_text,
        "filename": filename,
        "matches": None,
        "profile": None,
        "problems": [],
        "stages": _stages(),
        "fields": _fields(None),
    }
    if profile_text.strip():
        try:
            profile = parse_profile(profile_text, filename or "company.yaml")
        except FundingFileError as exc:
            context["problems"] = exc.problems
            status_code = 400
        else:
            context["profile"] = profile
            context["fields"] = _fields(profile)
            context["matches"] = [m.to_json() for m in match_schemes(profile)]
    return templates.TemplateResponse(
        request, "funding_match.html", context, status_code=status_code
    )


@router.get("/funding/match", response_class=HTMLResponse, include_in_schema=False)
def funding_match_form(request: Request) -> Response:
    return _match_page(request)


@router.post("/funding/match", response_class=HTMLResponse, include_in_schema=False)
async def funding_match(
    request: Request,
    profile: Annotated[str, Form()] = "",
    upload: Annotated[UploadFile | None, File()] = None,
) -> Response:
    text, name = profile, "company.yaml (pasted)"
    form = await request.form()
    if not profile.strip() and form.get("name") is not None:
        fields: dict[str, Any] = {k: form.get(k, "") for k in PROFILE_FIELDS}
        fields.update({k: "on" for k in PROFILE_CHECKS if k in form})
        fields["stages"] = [str(s) for s in form.getlist("stages")]
        text, name = profile_from_fields(fields), "the form"
    if upload is not None and upload.filename:
        data = await upload.read(MAX_PROFILE_BYTES + 1)
        if len(data) > MAX_PROFILE_BYTES:
            raise InputError(f"{upload.filename}: a company profile is at most 256 kB")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise InputError(f"{upload.filename}: not a UTF-8 text file") from None
        name = upload.filename
    if not text.strip():
        raise InputError("paste a company profile (YAML) or choose a file to upload")
    return _match_page(request, text, name)


# ---------------------------------------------------------------------------- printable


def _report_html(request: Request, plant: Plant, kind: str, as_of: str | None) -> str:
    if kind not in REPORTS:
        raise NotFoundError(f"no funding report '{kind}'; there are {', '.join(REPORTS)}")
    path = _ledger_path(request)
    ledger = load_ledger(path) if path is not None else None
    if kind == "evidence":
        return evidence_html(
            _evidence(plant, _known_line(plant, ledger.project.line if ledger else None))
        )
    if ledger is None:
        raise InputError(
            f"the {kind} report needs the project's ledger: start the server with "
            "microfab serve --funding-ledger FILE"
        )
    review = review_ledger(ledger, _as_of(as_of)).to_json()
    if kind == "progress":
        return progress_report_html(review, ledger)
    line = _known_line(plant, ledger.project.line)  # else the draft says what is missing
    if kind == "final":
        return final_report_html(review, ledger, _evidence(plant, line) if line else None)
    from microfab.funding.benefit import line_output

    factory = plant.factory()
    output = line_output(plant.store, factory, line).to_json() if line else None
    if output is not None:
        output = dict(in_site_time(output, plant.zone(factory)))
    return benefit_report_html(review, ledger, output)


def _known_line(plant: Plant, line: str | None) -> str | None:
    """The ledger's line when the stored factory has it."""
    if line is None:
        return None
    try:
        return plant.line(line).path
    except InputError:
        return None


@router.get(
    "/funding/report/{kind}.pdf",
    tags=["exports"],
    summary="A funding report as PDF (needs chromium)",
    response_class=Response,
    responses={
        200: {"content": {"application/pdf": {}}, "description": "A4 PDF"},
        501: {"description": "No chromium on this machine", **ERROR_RESPONSES[400]},
        **ERROR_RESPONSES,
    },
)
def funding_report_pdf(
    request: Request,
    plant: PlantDep,
    kind: str,
    as_of: Annotated[str | None, Query(description="Date of the position, YYYY-MM-DD")] = None,
) -> Response:
    """``evidence`` (the smart-line annex), ``progress``, ``final`` or ``benefit`` (drafts from
    the ledger given to ``microfab serve --funding-ledger``), printed by headless chromium."""
    pdf = print_pdf(_report_html(request, plant, kind, as_of))
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="funding-{kind}-report.pdf"'},
    )


@router.get("/funding/report/{kind}", response_class=HTMLResponse, include_in_schema=False)
def funding_report(
    request: Request, plant: PlantDep, kind: str, as_of: str | None = None
) -> HTMLResponse:
    """A printable draft (evidence annex, progress, final or benefit report)."""
    return HTMLResponse(_report_html(request, plant, kind, as_of))
