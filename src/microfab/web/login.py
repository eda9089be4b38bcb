"""The login and logout pages, and the session cookie they set and clear.

``GET /login`` shows the form (English and Traditional Chinese); ``POST /login`` checks the
password through :func:`microfab.store.identity.verify_password` — throttled after repeated
failures (429 with ``Retry-After``) — starts a session and sets the ``microfab_session`` cookie,
then goes to ``next`` (a local path only). The login form carries its own CSRF token, kept in a
short-lived cookie before there is a session (double submit). ``POST /logout`` (with the session's
CSRF token) ends the session and clears the cookie.

The cookie is HttpOnly and SameSite=Lax, and Secure when the request arrived over https (directly
or through a reverse proxy on the same host that sets ``X-Forwarded-Proto``). On plain http — a
plant LAN without the proxy — it cannot be Secure, or browsers would not send it back; that is the
reason to put the TLS proxy in front (docs/security.md).
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from microfab.http.auth import (
    SESSION_COOKIE,
    client_address,
    cookie_of,
    csrf_matches,
    retry_seconds,
    safe_next,
)
from microfab.http.deps import PlantDep
from microfab.store.identity import create_session, end_session, session_principal, verify_password
from microfab.web.pages import templates

router = APIRouter(include_in_schema=False)

LOGIN_CSRF_COOKIE = "microfab_login_csrf"


def set_session_cookie(
    response: Response, request: Request, token: str, expires_at: dt.datetime
) -> None:
    seconds = max(0, int((expires_at - dt.datetime.now(dt.UTC)).total_seconds()))
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=seconds,
        path="/",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )


def _login_page(
    request: Request, next_url: str, *, error: str | None = None, status_code: int = 200
) -> Response:
    token = secrets.token_urlsafe(24)
    response = templates.TemplateResponse(
        request,
        "login.html",
        {"page": "login", "next": next_url, "login_csrf": token, "error": error},
        status_code=status_code,
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        max_age=60 * 60,
        path="/login",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, plant: PlantDep, next: str = "/") -> Response:
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie and session_principal(plant.store, cookie) is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return _login_page(request, safe_next(next))


@router.post("/login")
def login(
    request: Request,
    plant: PlantDep,
    name: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    next: Annotated[str, Form(max_length=2048)] = "/",
    csrf_token: Annotated[str, Form(max_length=256)] = "",
) -> Response:
    target = safe_next(next)
    if not csrf_matches(request.cookies.get(LOGIN_CSRF_COOKIE, ""), csrf_token or None):
        message = "the login form is out of date; it has been loaded again, sign in once more"
        return _login_page(request, target, error=message, status_code=403)
    result = verify_password(plant.store, name.strip(), password, client=client_address(request))
    if result.outcome == "throttled":
        seconds = retry_seconds(result.retry_after)
        message = f"too many failed sign-ins; try again in {seconds} seconds"
        response = _login_page(request, target, error=message, status_code=429)
        response.headers["Retry-After"] = str(seconds)
        return response
    if result.principal is None:
        return _login_page(request, target, error="wrong user name or password", status_code=401)
    session = create_session(plant.store, result.principal.name)
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(response, request, session.token, session.expires_at)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
def logout(
    request: Request,
    plant: PlantDep,
    csrf_token: Annotated[str, Form(max_length=256)] = "",
) -> Response:
    """End the session (the form must carry its CSRF token) and go to the login page."""
    cookie = cookie_of(request.headers, SESSION_COOKIE)
    if cookie:
        session = session_principal(plant.store, cookie)
        if session is not None:
            if not csrf_matches(session.csrf_token, csrf_token or None):
                return templates.TemplateResponse(
                    request,
                    "error.html",
                    {
                        "status": 403,
                        "key": "csrf_failed",
                        "message": "the sign-out form is out of date; reload the page and try "
                        "again",
                        "no_factory": False,
                    },
                    status_code=403,
                )
            end_session(plant.store, cookie)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
