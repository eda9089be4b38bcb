"""``POST /auth/token``: a user name and password in, a bearer token out, for scripts.

OAuth2's password grant, kept small: form fields ``username`` and ``password`` (and optionally
``grant_type=password``); the answer is ``access_token`` (a sign-in session, valid 12 hours, ended
by ``microfab users password`` or by removing the user) to send as ``Authorization: Bearer …``.
Logins are throttled as on the login page (429 with ``Retry-After``). Machines and long-running
scripts should use an API token from ``microfab tokens create`` instead: it can be scoped and
revoked on its own.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Annotated, Literal

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from microfab.api.deps import PlantDep
from microfab.api.errors import ErrorBody, error_body
from microfab.store.identity import create_session, verify_password

router = APIRouter(tags=["authentication"])


class TokenAnswer(BaseModel):
    """A bearer token for the API."""

    access_token: str = Field(description="Send as 'Authorization: Bearer ACCESS_TOKEN'")
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="Seconds until it expires")
    expires_at: str = Field(description="When it expires (UTC, ISO-8601)")


def client_address(request: Request) -> str:
    """The client's address for login throttling (the proxy's when behind one)."""
    return request.client.host if request.client is not None else "-"


def retry_seconds(until: dt.datetime | None) -> int:
    if until is None:
        return 60
    return max(1, math.ceil((until - dt.datetime.now(dt.UTC)).total_seconds()))


@router.post(
    "/auth/token",
    summary="Sign in and get a bearer token",
    response_model=TokenAnswer,
    responses={
        401: {"model": ErrorBody, "description": "Wrong user name or password"},
        422: {"model": ErrorBody, "description": "A field is missing"},
        429: {"model": ErrorBody, "description": "Too many failed attempts; see Retry-After"},
    },
)
def token(
    request: Request,
    plant: PlantDep,
    username: Annotated[str, Form(min_length=1, max_length=64)],
    password: Annotated[str, Form(min_length=1, max_length=1024)],
    grant_type: Annotated[Literal["password"], Form()] = "password",
) -> Response:
    """Check the password (throttled like the login page) and start a session whose secret is
    the bearer token."""
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
        expires_at=session.expires_at.isoformat(),
    )
    return JSONResponse(answer.model_dump(), headers={"Cache-Control": "no-store"})
