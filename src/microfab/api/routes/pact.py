"""PACT's footprint endpoints (PACT v3.0.3), read-only: ``GET /3/footprints`` and
``GET /3/footprints/{id}``, for a customer's system holding a ``footprints.read`` token.

The documents are :class:`microfab.green.pact_footprints.PactFootprints`' (the period's footprint of each
product). The list takes ``limit`` (and ``offset``, which the ``Link: <…>; rel="next"`` header
carries) and PACT's filters ``productId``, ``companyId``, ``geography``, ``classification``
(each repeatable: one of the values must match, case-insensitively), ``status``, ``validOn``,
``validAfter`` and ``validBefore`` (the validity period is three years from the reference period's
end, as PACT says when none is given). Errors have PACT's shape ``{"code", "message"}``.

These endpoints implement the API of the *PACT Technical Specifications*, owned by the World
Business Council for Sustainable Development (WBCSD); the licence's notice is in
:mod:`microfab.green.pact` and docs/green.md.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from microfab.api.answers import PactFootprintAnswer, PactFootprintList
from microfab.errors import MicrofabError, NoFactoryError
from microfab.green.pact import ProductFootprint
from microfab.http.errors import PactError, pact_error_body
from microfab.model.timerange import parse_time

router = APIRouter(tags=["PACT"])

UTC = zoneinfo.ZoneInfo("UTC")

VALIDITY_YEARS = 3
"""PACT: without a validity period, a footprint is valid three years from referencePeriodEnd."""

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": PactError, "description": "Bad request (BadRequest)"},
    401: {"model": PactError, "description": "No valid access token (TokenExpired)"},
    403: {"model": PactError, "description": "The token lacks footprints.read (AccessDenied)"},
    500: {"model": PactError, "description": "The footprints cannot be computed (InternalError)"},
}

_Many = Annotated[list[str], Query()]


def _pact_error(status: int, message: str) -> JSONResponse:
    return JSONResponse(pact_error_body(status, message), status_code=status)


def _documents(request: Request) -> list[ProductFootprint] | JSONResponse:
    try:
        documents: list[ProductFootprint] = request.app.state.pact.documents()
    except NoFactoryError as exc:
        return _pact_error(500, exc.message)
    except MicrofabError as exc:
        return _pact_error(500, f"the footprints cannot be computed: {exc.message}")
    return documents


def _validity(document: ProductFootprint) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.fromisoformat(document.pcf.reference_period_end.replace("Z", "+00:00"))
    return start, start.replace(year=start.year + VALIDITY_YEARS)


def _any(wanted: list[str], values: list[str]) -> bool:
    lowered = {v.lower() for v in values}
    return any(w.lower() in lowered for w in wanted)


@router.get(
    "/3/footprints",
    summary="PACT ListFootprints: the product footprints of the period",
    responses={200: {"model": PactFootprintList, "description": "The footprints"}, **ERRORS},
)
def list_footprints(
    request: Request,
    limit: Annotated[int | None, Query(ge=0, description="At most this many")] = None,
    offset: Annotated[int, Query(ge=0, description="Skip this many (the next link)")] = 0,
    product_id: Annotated[list[str], Query(alias="productId")] = [],  # noqa: B006
    company_id: Annotated[list[str], Query(alias="companyId")] = [],  # noqa: B006
    geography: _Many = [],  # noqa: B006
    classification: _Many = [],  # noqa: B006
    status: Annotated[str | None, Query(description="Active or Deprecated")] = None,
    valid_on: Annotated[str | None, Query(alias="validOn")] = None,
    valid_after: Annotated[str | None, Query(alias="validAfter")] = None,
    valid_before: Annotated[str | None, Query(alias="validBefore")] = None,
) -> JSONResponse:
    """``{"data": [ProductFootprint, …]}``; a ``Link: <…>; rel="next"`` header when more
    remain after ``limit``."""
    if status is not None and status.lower() not in ("active", "deprecated"):
        return _pact_error(400, f"status '{status}' is not Active or Deprecated")
    times: dict[str, dt.datetime] = {}
    given = (("validOn", valid_on), ("validAfter", valid_after), ("validBefore", valid_before))
    for name, text in given:
        if text is not None:
            try:
                times[name] = parse_time(text, UTC, field=name)
            except MicrofabError as exc:
                return _pact_error(400, exc.message)
    found = _documents(request)
    if isinstance(found, JSONResponse):
        return found
    chosen = []
    for document in found:
        start, end = _validity(document)
        if (
            (product_id and not _any(product_id, document.product_ids))
            or (company_id and not _any(company_id, document.company_ids))
            or (geography and not _any(geography, [document.pcf.geography_country]))
            or (classification and not _any(classification, document.product_classifications or []))
            or (status is not None and status.lower() != document.status.lower())
            or ("validOn" in times and not start <= times["validOn"] <= end)
            or ("validAfter" in times and not start > times["validAfter"])
            or ("validBefore" in times and not end < times["validBefore"])
        ):
            continue
        chosen.append(document)
    stop = len(chosen) if limit is None else offset + limit
    page = chosen[offset:stop]
    headers = {}
    if stop < len(chosen):
        query = [(k, v) for k, v in request.query_params.multi_items() if k != "offset"]
        query.append(("offset", str(stop)))
        target = str(request.url.replace(query=urlencode(query)))
        headers["Link"] = f'<{target}>; rel="next"'
    return JSONResponse({"data": [d.to_json() for d in page]}, headers=headers)


@router.get(
    "/3/footprints/{id}",
    summary="PACT GetFootprint: one product footprint by its id",
    responses={
        200: {"model": PactFootprintAnswer, "description": "The footprint"},
        **ERRORS,
        404: {"model": PactError, "description": "No such footprint"},
    },
)
def get_footprint(request: Request, id: str) -> JSONResponse:
    """``{"data": ProductFootprint}``."""
    found = _documents(request)
    if isinstance(found, JSONResponse):
        return found
    for document in found:
        if document.id == id.lower():
            return JSONResponse({"data": document.to_json()})
    return _pact_error(
        404,
        f"no product footprint {id}; GET /3/footprints lists the footprints of the period "
        f"(ids change when the period or its data change)",
    )
