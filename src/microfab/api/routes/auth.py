"""``POST /auth/token``: credentials in, a bearer token out, for scripts and customers' systems.

Two OAuth2 grants, kept small:

- **password** (the default): form fields ``username`` and ``password`` (and optionally
  ``grant_type=password``); the answer is ``access_token`` (a sign-in session, valid 12 hours,
  ended by ``microfab users password`` or by removing the user) to send as
  ``Authorization: Bearer …``. Logins are throttled as on the login page (429 with
  ``Retry-After``). Machines and long-running scripts should use an API token from
  ``microfab tokens create`` instead: it can be scoped and revoked on its own.
- **client_credentials** (RFC 6749 §4.4, what PACT's ``/3/footprints`` clients use):
  ``grant_type=client_credentials`` with the client id and secret by HTTP Basic (or the form
  fields ``client_id`` and ``client_secret``). The client id is an API token's name and the
  secret is the token (``microfab tokens create acme-pact --scope footprints.read``); the answer's
  ``access_token`` is that token itself, valid until it expires or is revoked. Wrong credentials
  answer 401 in OAuth2's shape ``{"error": "invalid_client", "error_description": …}``. Tokens
  are 256-bit random secrets, so there is nothing to throttle.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from typing import Annotated, Literal
from urllib.parse import unquote_plus

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from microfab.http.auth import client_address, retry_seconds
from microfab.http.deps import PlantDep
from microfab.http.errors import ErrorBody, ErrorDetail, error_body
from microfab.model.events import format_ts
from microfab.store.identity import create_session, list_tokens, verify_password, verify_token

router = APIRouter(tags=["authentication"])


class TokenAnswer(BaseModel):
    """A bearer token for the API."""

    access_token: str = Field(description="Send as 'Authorization: Bearer ACCESS_TOKEN'")
    token_type: Literal["bearer"] = "bearer"
    expires_in: int | None = Field(
        default=None, description="Seconds until it expires (left out: it does not expire)"
    )
    expires_at: str | None = Field(
        default=None, description="When it expires (UTC, ISO-8601; left out: never)"
    )


class OAuthError(BaseModel):
    """OAuth2's error answer (RFC 6749 §5.2), for the client-credentials grant."""

    error: str = Field(description="invalid_client")
    error_description: str


@router.post(
    "/auth/token",
    summary="Sign in and get a bearer token (password or client-credentials grant)",
    response_model=TokenAnswer,
    response_model_exclude_none=True,
    responses={
        401: {
            "model": ErrorBody | OAuthError,
            "description": "Wrong user name or password (ErrorBody); wrong client id or secret "
            "(OAuthError, invalid_client)",
        },
        422: {"model": ErrorBody, "description": "A field is missing"},
        429: {"model": ErrorBody, "description": "Too many failed attempts; see Retry-After"},
    },
)
def token(
    request: Request,
    plant: PlantDep,
    username: Annotated[str | None, Form(min_length=1, max_length=64)] = None,
    password: Annotated[str | None, Form(min_length=1, max_length=1024)] = None,
    grant_type: Annotated[Literal["password", "client_credentials"], Form()] = "password",
    client_id: Annotated[str | None, Form(max_length=64)] = None,
    client_secret: Annotated[str | None, Form(max_length=256)] = None,
) -> Response:
    """Password grant: check the password (throttled like the login page) and start a session
    whose secret is the bearer token. Client-credentials grant: check the API token given as the
    client secret, whose name is the client id, and hand it back as the bearer token."""
    if grant_type == "client_credentials":
        return _client_credentials(request, plant, client_id, client_secret)
    missing = [
        name for name, value in (("username", username), ("password", password)) if not value
    ]
    if username is None or password is None or missing:
        details = [ErrorDetail(field=f"body.{name}", message="required") for name in missing]
        message = "invalid request: " + "; ".join(f"field '{name}': required" for name in missing)
        return JSONResponse(error_body(422, "invalid_request", message, details), status_code=422)
    result = verify_password(plant.store, username, password, client=client_address(request))
    if result.outcome == "throttled":
        seconds = retry_seconds(result.retry_after)
        message = f"too many failed sign-ins; try again in {seconds} seconds"
        return JSONResponse(
            error_body(429, "too_many_attempts", message),
            status_code=429,
            headers={"Retry-After": str(seconds)},
        )
    if result.principal is None:
        return JSONResponse(
            error_body(401, "bad_credentials", "wrong user name or password"),
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )
    session = create_session(plant.store, result.principal.name)
    seconds = int((session.expires_at - dt.datetime.now(dt.UTC)).total_seconds())
    answer = TokenAnswer(
        access_token=session.token,
        expires_in=seconds,
        expires_at=format_ts(session.expires_at),
    )
    return JSONResponse(answer.model_dump(), headers={"Cache-Control": "no-store"})


def basic_credentials(request: Request) -> tuple[str, str] | None:
    """The client id and secret of an ``Authorization: Basic …`` header (RFC 6749 §2.3.1: each
    form-encoded, then joined by ':' and base64-encoded), or None."""
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        return None
    try:
        text = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    name, colon, secret = text.partition(":")
    if not colon:
        return None
    return unquote_plus(name), unquote_plus(secret)


def _invalid_client(message: str) -> JSONResponse:
    return JSONResponse(
        OAuthError(error="invalid_client", error_description=message).model_dump(),
        status_code=401,
        headers={"WWW-Authenticate": 'Basic realm="microfab"', "Cache-Control": "no-store"},
    )


def _client_credentials(
    request: Request, plant: PlantDep, client_id: str | None, client_secret: str | None
) -> Response:
    given = basic_credentials(request)
    if given is None and client_id and client_secret:
        given = (client_id, client_secret)
    if given is None:
        return _invalid_client(
            "send the client id (the API token's name) and secret (the token) by HTTP Basic"
        )
    name, secret = given
    principal = verify_token(plant.store, secret[:256])
    if principal is None or principal.name != name:
        return _invalid_client("wrong client id or secret, or the token is revoked or expired")
    now = dt.datetime.now(dt.UTC)
    expires = next(
        (
            t.expires_at
            for t in list_tokens(plant.store)
            if t.name == name and t.state(now) == "active"
        ),
        None,
    )
    answer = TokenAnswer(
        access_token=secret,
        expires_in=None if expires is None else int((expires - now).total_seconds()),
        expires_at=None if expires is None else format_ts(expires),
    )
    return JSONResponse(answer.model_dump(exclude_none=True), headers={"Cache-Control": "no-store"})
