"""The API's one error shape, and the handlers that give every error that shape.

Every error answer, whatever raised it, is::

    {"error": {"status": 404, "key": "not_found",
               "message": "no machine 'cnc-9' in the factory; known machines: …",
               "details": []}}

``key`` is the stable key of the microfab error (:mod:`microfab.errors`) or of the HTTP error
(``invalid_request``, ``not_found``, ``method_not_allowed``, ``internal_error``); ``message`` is one
sentence saying what was wrong; ``details`` lists each faulty field of a malformed request as
``{"field": "query.limit", "message": "…"}``. Browser pages get the same key and message as an HTML
page (see :mod:`microfab.web.pages`); everything under ``/api/`` and every client that does not ask
for HTML gets JSON.

The PACT endpoints (``/3/…``, :mod:`microfab.api.routes.pact`) answer in the shape the PACT
specification mandates instead, ``{"code": "NotFound", "message": "…"}`` (:func:`pact_error_body`),
and a malformed request there is 400 ``BadRequest`` rather than 422.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from microfab.errors import (
    BusyError,
    InputError,
    LimitError,
    MicrofabError,
    NoFactoryError,
    NotFoundError,
    PdfPrinterMissing,
    StoreSchemaError,
    StoreUnavailableError,
)

log = logging.getLogger("microfab.api")


class ErrorDetail(BaseModel):
    """One faulty field of a request."""

    field: str = Field(description="Where: body.good, query.from, path.machine …")
    message: str


class ErrorInfo(BaseModel):
    status: int = Field(description="The HTTP status code, repeated")
    key: str = Field(description="Stable key, e.g. not_found, invalid_time_range, invalid_request")
    message: str = Field(description="One sentence saying what was wrong")
    details: list[ErrorDetail] = Field(default_factory=list)


class ErrorBody(BaseModel):
    """The body of every error answer."""

    error: ErrorInfo


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Bad input (the message says which)"},
    404: {"model": ErrorBody, "description": "Unknown id"},
    409: {"model": ErrorBody, "description": "No factory model applied to the store yet"},
    422: {"model": ErrorBody, "description": "Malformed request (details name each field)"},
}
"""``responses=`` for routes, so that /openapi.json documents the error shape."""

_STATUS_KEYS = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    501: "not_implemented",
    503: "unavailable",
}


PACT_PREFIX = "/3/"
"""The PACT endpoints' paths start so; their errors have PACT's shape."""

_PACT_CODES = {
    400: "BadRequest",
    401: "TokenExpired",
    403: "AccessDenied",
    404: "NotFound",
    501: "NotImplemented",
}


class PactError(BaseModel):
    """PACT's error shape (PACT v3 ``Error``)."""

    code: str = Field(
        description="BadRequest, TokenExpired (401: no valid token), AccessDenied, NotFound, "
        "InternalError or NotImplemented"
    )
    message: str


def is_pact(path: str) -> bool:
    return path.startswith(PACT_PREFIX)


def pact_error_body(status: int, message: str) -> dict[str, Any]:
    """PACT's ``{"code", "message"}`` for an HTTP status (other 4xx: BadRequest; 5xx:
    InternalError)."""
    code = _PACT_CODES.get(status, "InternalError" if status >= 500 else "BadRequest")
    return PactError(code=code, message=message).model_dump()


class ApiError(Exception):
    """An error with an HTTP status that is not one of microfab's own (e.g. PDF not available)."""

    def __init__(self, status: int, key: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.key = key
        self.message = message


def status_of(exc: MicrofabError) -> int:
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, LimitError):
        return 422
    if isinstance(exc, InputError):
        return 400
    if isinstance(exc, NoFactoryError | BusyError):
        return 409
    if isinstance(exc, StoreUnavailableError | StoreSchemaError):
        return 503
    if isinstance(exc, PdfPrinterMissing):
        return 501
    return 500


def error_body(
    status: int, key: str, message: str, details: Sequence[ErrorDetail] = ()
) -> dict[str, Any]:
    return ErrorBody(
        error=ErrorInfo(status=status, key=key, message=message, details=list(details))
    ).model_dump()


def describe_request_errors(exc: RequestValidationError) -> tuple[str, list[ErrorDetail]]:
    """One sentence for a malformed request, and one detail per faulty field."""
    details: list[ErrorDetail] = []
    for err in exc.errors():
        loc = [str(part) for part in err.get("loc", ())]
        where = ".".join(loc) or "request"
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        if err.get("type") == "missing":
            msg = "required"
        elif err.get("type") == "json_invalid":
            msg = "not valid JSON"
        details.append(ErrorDetail(field=where, message=msg))
    if not details:
        return "the request is malformed", details
    parts = [f"{_readable(d.field)}: {d.message}" for d in details]
    return "invalid request: " + "; ".join(parts), details


def _readable(field: str) -> str:
    """``query.from`` -> ``query parameter 'from'``, ``body.good`` -> ``field 'good'``."""
    where, _, name = field.partition(".")
    if where == "query" and name:
        return f"query parameter '{name}'"
    if where == "path" and name:
        return f"'{name}' in the path"
    if where == "body" and name:
        return f"field '{name}'"
    return field


Renderer = Callable[[Request, int, str, str], Awaitable[Response] | Response]


def wants_json(request: Request) -> bool:
    """API paths, and clients that do not ask for HTML, get JSON errors."""
    if request.url.path.startswith("/api/") or request.url.path == "/openapi.json":
        return True
    return "text/html" not in request.headers.get("accept", "")


def install_error_handlers(app: FastAPI, html: Renderer | None = None) -> None:
    """Give every error the shape above (or, for browser pages, ``html``'s page)."""

    async def answer(
        request: Request,
        status: int,
        key: str,
        message: str,
        details: Sequence[ErrorDetail] = (),
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        if is_pact(request.url.path):
            status = 400 if status == 422 else status
            return JSONResponse(
                pact_error_body(status, message), status_code=status, headers=headers
            )
        if html is not None and not wants_json(request):
            page = html(request, status, key, message)
            if not isinstance(page, Response):
                page = await page
            return page
        return JSONResponse(
            error_body(status, key, message, details), status_code=status, headers=headers
        )

    async def on_microfab(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, MicrofabError)
        status = status_of(exc)
        if status >= 500:
            log.error("%s %s: %s", request.method, request.url.path, exc.message)
        return await answer(request, status, exc.key, exc.message)

    async def on_api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return await answer(request, exc.status, exc.key, exc.message)

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        message, details = describe_request_errors(exc)
        return await answer(request, 422, "invalid_request", message, details)

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        status = exc.status_code
        key = _STATUS_KEYS.get(status, "http_error")
        if status == 404 and exc.detail in (None, "Not Found"):
            message = f"no such page or endpoint: {request.url.path}"
        elif status == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
        else:
            message = str(exc.detail)
        return await answer(request, status, key, message, headers=exc.headers)

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        log.exception("%s %s failed", request.method, request.url.path, exc_info=exc)
        return await answer(
            request,
            500,
            "internal_error",
            "an unexpected error occurred in microfab; the server log has the details",
        )

    app.add_exception_handler(MicrofabError, on_microfab)
    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)
