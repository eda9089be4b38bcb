"""Who may call what: the route → permission table, and the gate every request passes first.

Each route needs one permission (:class:`~microfab.model.identity.Permission`) or is public
(``None``): health, the login and logout pages, ``/auth/token``, ``/openapi.json``, ``/docs`` and
the static files. :data:`ROUTE_PERMISSIONS` is that table; ``/openapi.json`` repeats it on each
operation as ``x-microfab-permission``, and docs/security.md carries it written by hand (a test
compares the three).

:class:`AccessGate` (ASGI middleware) answers before any route runs:

1. A body larger than :data:`MAX_BODY_BYTES` → 413.
2. The caller is found from ``Authorization: Bearer …`` (an API token ``mfb_…``, or the token
   ``POST /auth/token`` hands out) or from the ``microfab_session`` cookie (the login page's).
   A bearer that is not valid → 401, even where a session cookie is present.
3. The request is matched against the table: no entry for its method and path → 405 or 404
   (a route nobody declared is never reached). Public entries pass.
4. Nobody signed in → 401 for the API, the PACT endpoints (``/3/…``, in PACT's error shape)
   and ``/live``; the browser pages redirect to
   ``/login?next=…``. A principal without the permission → 403.
5. A state-changing request made with the session cookie must carry the session's CSRF token, in
   the form field ``csrf_token`` or the header ``X-CSRF-Token``; it is compared with
   :func:`hmac.compare_digest`. Missing or wrong → 403. Bearer requests carry no ambient
   credential and need none.

The principal is then ``request.state.principal`` (see :func:`microfab.http.deps.get_principal`).
"""

from __future__ import annotations

import datetime as dt
import hmac
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from anyio import to_thread
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from microfab.http.errors import PACT_PREFIX, error_body, is_pact, pact_error_body, wants_json
from microfab.model.identity import Permission, Principal
from microfab.store.event_store import EventStore
from microfab.store.identity import TOKEN_PREFIX, Session, session_principal, verify_token

SESSION_COOKIE = "microfab_session"
"""The sign-in cookie: HttpOnly, SameSite=Lax, Secure when the request came over https."""
CSRF_FIELD = "csrf_token"
"""The hidden form field that carries the session's CSRF token."""
CSRF_HEADER = "x-csrf-token"
"""The header that may carry it instead (scripts using the session cookie)."""
MAX_BODY_BYTES = 1024 * 1024
"""The largest request body accepted (1 MiB); larger ones are refused with 413."""
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

_P = Permission
PUBLIC: None = None
"""A route anyone may call."""

ROUTE_PERMISSIONS: dict[tuple[str, str], Permission | None] = {
    # public
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/login"): PUBLIC,
    ("POST", "/login"): PUBLIC,
    ("POST", "/logout"): PUBLIC,
    ("POST", "/auth/token"): PUBLIC,
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/favicon.ico"): PUBLIC,
    ("GET", "/static/{path:path}"): PUBLIC,
    # the API: plant, events, OEE and downtime
    ("GET", "/api/v1/status"): _P.PLANT_READ,
    ("GET", "/api/v1/factory"): _P.PLANT_READ,
    ("GET", "/api/v1/machines"): _P.PLANT_READ,
    ("GET", "/api/v1/machines/{machine:path}"): _P.PLANT_READ,
    ("GET", "/api/v1/events"): _P.PLANT_READ,
    ("GET", "/api/v1/oee"): _P.PLANT_READ,
    ("GET", "/api/v1/oee.csv"): _P.PLANT_READ,
    ("GET", "/api/v1/downtime"): _P.PLANT_READ,
    ("GET", "/api/v1/downtime.csv"): _P.PLANT_READ,
    ("GET", "/api/v1/dashboard"): _P.PLANT_READ,
    ("GET", "/api/v1/carbon/intensity"): _P.PLANT_READ,
    # PACT for customers' systems (read-only)
    ("GET", "/3/footprints"): _P.FOOTPRINTS_READ,
    ("GET", "/3/footprints/{id}"): _P.FOOTPRINTS_READ,
    # alerts and quality
    ("GET", "/api/v1/alerts"): _P.PLANT_READ,
    ("POST", "/api/v1/alerts/{alert_id}/ack"): _P.OPERATOR_RECORD,
    ("POST", "/api/v1/alerts/{alert_id}/close"): _P.OPERATOR_RECORD,
    ("GET", "/api/v1/defects"): _P.PLANT_READ,
    # operator input
    ("GET", "/api/v1/machines/{machine:path}/stops"): _P.PLANT_READ,
    ("GET", "/api/v1/machines/{machine:path}/counts"): _P.PLANT_READ,
    ("POST", "/api/v1/machines/{machine:path}/reasons"): _P.OPERATOR_RECORD,
    ("POST", "/api/v1/machines/{machine:path}/counts"): _P.OPERATOR_RECORD,
    ("POST", "/api/v1/machines/{machine:path}/corrections"): _P.OPERATOR_RECORD,
    ("POST", "/api/v1/machines/{machine:path}/inspections"): _P.INSPECTION_WRITE,
    ("GET", "/api/v1/inspections/images/{image:path}"): _P.PLANT_READ,
    # orders
    ("GET", "/api/v1/orders"): _P.PLANT_READ,
    ("POST", "/api/v1/orders"): _P.ORDERS_WRITE,
    ("GET", "/api/v1/orders/{order}"): _P.PLANT_READ,
    ("POST", "/api/v1/orders/{order}/release"): _P.ORDERS_WRITE,
    ("POST", "/api/v1/orders/{order}/cancel"): _P.ORDERS_WRITE,
    ("GET", "/api/v1/orders/{order}/trace"): _P.PLANT_READ,
    ("GET", "/api/v1/wip"): _P.PLANT_READ,
    # planning
    ("GET", "/api/v1/plan"): _P.PLANT_READ,
    ("POST", "/api/v1/plan"): _P.PLAN_WRITE,
    ("GET", "/api/v1/plan/gantt"): _P.PLANT_READ,
    # the plant assistant (each tool checks its own permission too)
    ("POST", "/api/v1/ask"): _P.PLANT_READ,
    # exports
    ("GET", "/report/shift.pdf"): _P.PLANT_READ,
    ("GET", "/funding/report/{kind}.pdf"): _P.FUNDING_READ,
    # dashboard pages
    ("GET", "/"): _P.PLANT_READ,
    ("GET", "/live"): _P.PLANT_READ,
    ("GET", "/operator"): _P.PLANT_READ,
    ("GET", "/operator/{machine:path}"): _P.PLANT_READ,
    ("POST", "/operator/{machine:path}/reason"): _P.OPERATOR_RECORD,
    ("POST", "/operator/{machine:path}/counts"): _P.OPERATOR_RECORD,
    ("POST", "/operator/{machine:path}/correction"): _P.OPERATOR_RECORD,
    ("GET", "/report/shift"): _P.PLANT_READ,
    ("GET", "/orders/new"): _P.ORDERS_WRITE,
    ("POST", "/orders/new"): _P.ORDERS_WRITE,
    ("GET", "/orders/{order}"): _P.PLANT_READ,
    ("POST", "/orders/{order}/release"): _P.ORDERS_WRITE,
    ("POST", "/orders/{order}/cancel"): _P.ORDERS_WRITE,
    ("GET", "/plan"): _P.PLANT_READ,
    ("POST", "/plan"): _P.PLAN_WRITE,
    ("GET", "/funding"): _P.FUNDING_READ,
    ("GET", "/funding/evidence"): _P.FUNDING_READ,
    ("GET", "/funding/match"): _P.FUNDING_READ,
    ("POST", "/funding/match"): _P.FUNDING_READ,
    ("GET", "/funding/report/{kind}"): _P.FUNDING_READ,
    ("GET", "/quality"): _P.PLANT_READ,
    ("POST", "/alerts/{alert_id}/ack"): _P.OPERATOR_RECORD,
    ("POST", "/alerts/{alert_id}/close"): _P.OPERATOR_RECORD,
    # HQ over several sites (issue 20)
    ("GET", "/api/v1/hq/sites"): _P.HQ_READ,
    ("GET", "/hq"): _P.HQ_READ,
    ("GET", "/hq/{site}"): _P.HQ_READ,
    # maintenance and safety (issue 21)
    ("GET", "/api/v1/maintenance/orders"): _P.PLANT_READ,
    ("POST", "/api/v1/maintenance/orders"): _P.MAINT_WRITE,
    ("GET", "/api/v1/maintenance/orders/{order_id}"): _P.PLANT_READ,
    ("POST", "/api/v1/maintenance/orders/{order_id}/schedule"): _P.MAINT_WRITE,
    ("POST", "/api/v1/maintenance/orders/{order_id}/start"): _P.MAINT_WRITE,
    ("POST", "/api/v1/maintenance/orders/{order_id}/finish"): _P.MAINT_WRITE,
    ("POST", "/api/v1/maintenance/orders/{order_id}/cancel"): _P.MAINT_WRITE,
    ("POST", "/api/v1/maintenance/orders/{order_id}/parts"): _P.MAINT_WRITE,
    ("POST", "/api/v1/maintenance/from-alert/{alert_id}"): _P.MAINT_WRITE,
    ("GET", "/api/v1/maintenance/due"): _P.PLANT_READ,
    ("GET", "/api/v1/maintenance/parts"): _P.PLANT_READ,
    ("GET", "/api/v1/maintenance/reliability"): _P.PLANT_READ,
    ("GET", "/api/v1/safety"): _P.PLANT_READ,
    ("POST", "/api/v1/safety/incidents"): _P.SAFETY_WRITE,
    ("POST", "/api/v1/safety/incidents/{incident_id}/close"): _P.SAFETY_WRITE,
    ("GET", "/maintenance"): _P.PLANT_READ,
    ("POST", "/maintenance/new"): _P.MAINT_WRITE,
    ("POST", "/maintenance/from-alert/{alert_id}"): _P.MAINT_WRITE,
    ("GET", "/maintenance/{order_id}"): _P.PLANT_READ,
    ("POST", "/maintenance/{order_id}/{action}"): _P.MAINT_WRITE,
    ("GET", "/maintenance/{order_id}/photos/{name}"): _P.PLANT_READ,
    ("GET", "/technician"): _P.PLANT_READ,
    ("GET", "/safety"): _P.PLANT_READ,
    ("POST", "/safety/report"): _P.SAFETY_WRITE,
    ("POST", "/safety/{incident_id}/close"): _P.SAFETY_WRITE,
    # stock (materials and inventory)
    ("GET", "/api/v1/stock/on-hand"): _P.PLANT_READ,
    ("GET", "/api/v1/stock/items"): _P.PLANT_READ,
    ("GET", "/api/v1/stock/ledger"): _P.PLANT_READ,
    ("GET", "/api/v1/stock/expiring"): _P.PLANT_READ,
    ("GET", "/api/v1/stock/reorder"): _P.PLANT_READ,
    ("GET", "/api/v1/stock/suggestions"): _P.PLANT_READ,
    ("GET", "/api/v1/stock/tasks"): _P.PLANT_READ,
    ("POST", "/api/v1/stock/moves"): _P.STOCK_WRITE,
    ("GET", "/stock"): _P.PLANT_READ,
}
"""Every route of the app by (method, path) → the permission it needs, or ``PUBLIC``.

Paths are written as the routes declare them (``{machine:path}`` may hold slashes); the OpenAPI
spec shows ``{machine}``. A request is matched to the most specific entry (most literal text)."""


def openapi_path(path: str) -> str:
    """A route's path as /openapi.json writes it: ``{machine:path}`` → ``{machine}``."""
    return re.sub(r"\{(\w+):\w+\}", r"{\1}", path)


@dataclass(frozen=True, slots=True)
class RouteRule:
    """One row of the table, compiled."""

    method: str
    path: str
    permission: Permission | None
    pattern: re.Pattern[str]
    literal: int
    """Characters outside ``{…}``: more means more specific."""


def compile_rules(
    table: dict[tuple[str, str], Permission | None] = ROUTE_PERMISSIONS,
) -> list[RouteRule]:
    rules = []
    for (method, path), permission in table.items():
        pattern, _, _ = compile_path(path)
        literal = len(re.sub(r"\{[^}]*\}", "", path))
        rules.append(RouteRule(method, path, permission, pattern, literal))
    return sorted(rules, key=lambda r: -r.literal)


def match_rule(rules: Iterable[RouteRule], method: str, path: str) -> tuple[RouteRule | None, bool]:
    """The most specific rule for ``method`` and ``path``, and whether the path matched any rule
    (of another method) at all."""
    wanted = "GET" if method == "HEAD" else method
    path_known = False
    for rule in rules:
        if rule.pattern.match(path):
            path_known = True
            if rule.method == wanted:
                return rule, True
    return None, path_known


@dataclass(frozen=True, slots=True)
class Caller:
    """Who sent a request, and how: ``session`` is set when it came with the session cookie."""

    principal: Principal | None
    session: Session | None = None
    bad_bearer: bool = False


def bearer_of(headers: Headers) -> str | None:
    value = headers.get("authorization", "")
    scheme, _, credential = value.partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        return None
    return credential.strip()


def cookie_of(headers: Headers, name: str) -> str | None:
    for part in headers.get("cookie", "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name and value:
            return value
    return None


def identify(store: EventStore, headers: Headers) -> Caller:
    """The caller of a request (blocking: it reads the store)."""
    bearer = bearer_of(headers)
    if bearer is not None:
        if bearer.startswith(TOKEN_PREFIX):
            principal = verify_token(store, bearer[:256])
            return Caller(principal, bad_bearer=principal is None)
        session = session_principal(store, bearer[:256])  # a token from POST /auth/token
        if session is None:
            return Caller(None, bad_bearer=True)
        return Caller(session.principal)
    cookie = cookie_of(headers, SESSION_COOKIE)
    if cookie is not None:
        session = session_principal(store, cookie[:256])
        if session is not None:
            return Caller(session.principal, session)
    return Caller(None)


def csrf_matches(expected: str, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(
        expected.encode("utf-8"), given.encode("utf-8")
    )


def safe_next(value: str | None, default: str = "/") -> str:
    """A local path to go back to after login (never another site: ``//evil``, ``/\\evil``)."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return default
    return value


HtmlRenderer = Callable[[Request, int, str, str], Response]


class AccessGate:
    """ASGI middleware: body limit, authentication, authorisation and CSRF (see the module)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        store: EventStore,
        html: HtmlRenderer | None = None,
        rules: list[RouteRule] | None = None,
    ) -> None:
        self.app = app
        self.store = store
        self.html = html
        self.rules = rules if rules is not None else compile_rules()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = str(scope["method"]).upper()
        path = str(scope["path"])
        headers = Headers(scope=scope)

        body: bytes | None = None
        if method not in SAFE_METHODS:
            body = await self._read_body(headers, receive)
            if body is None:
                await self._refuse(scope, 413, "too_large", _too_large(), send)
                return
            receive = _replay(body)

        rule, path_known = match_rule(self.rules, method, path)
        if rule is None:
            if path_known:
                message = f"{method} is not allowed on {path}"
                await self._refuse(scope, 405, "method_not_allowed", message, send)
            else:
                message = f"no such page or endpoint: {path}"
                await self._refuse(scope, 404, "not_found", message, send)
            return
        if rule.permission is None:
            await self.app(scope, receive, send)
            return

        caller = await to_thread.run_sync(identify, self.store, headers)
        if caller.principal is None:
            await self._unauthenticated(scope, method, path, caller.bad_bearer, send)
            return
        principal = caller.principal
        if not principal.allows(rule.permission):
            role = principal.role.value if principal.role is not None else "scoped token"
            message = (
                f"{principal.actor} ({role}) may not do this: it needs the permission "
                f"{rule.permission.value}"
            )
            await self._refuse(scope, 403, "forbidden", message, send)
            return
        if caller.session is not None and method not in SAFE_METHODS:
            given = await _csrf_given(scope, headers, body or b"")
            if not csrf_matches(caller.session.csrf_token, given):
                message = (
                    "the form's security token (CSRF) is missing or out of date; reload the "
                    "page and send it again"
                )
                await self._refuse(scope, 403, "csrf_failed", message, send)
                return
        state = scope.setdefault("state", {})
        state["principal"] = principal
        state["csrf_token"] = caller.session.csrf_token if caller.session else None
        await self.app(scope, receive, send)

    async def _read_body(self, headers: Headers, receive: Receive) -> bytes | None:
        """The whole body, or None when it is larger than :data:`MAX_BODY_BYTES`."""
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            return None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    async def _unauthenticated(
        self, scope: Scope, method: str, path: str, bad_bearer: bool, send: Send
    ) -> None:
        page = not path.startswith(("/api/", PACT_PREFIX)) and path != "/live"
        if page and method in ("GET", "HEAD") and not bad_bearer:
            query = scope.get("query_string", b"").decode("latin-1")
            target = path + (f"?{query}" if query else "")
            response: Response = RedirectResponse(
                f"/login?next={quote(target, safe='')}", status_code=303
            )
            await response(scope, _replay(b""), send)
            return
        if bad_bearer:
            message = "the API token is not valid (unknown, revoked or expired)"
        elif is_pact(path):
            message = (
                "send 'Authorization: Bearer ACCESS_TOKEN': the access_token of POST /auth/token "
                "with grant_type=client_credentials"
            )
        else:
            message = (
                "sign in first: send 'Authorization: Bearer TOKEN' (microfab tokens create, or "
                "POST /auth/token) or log in at /login"
            )
        await self._refuse(
            scope, 401, "not_authenticated", message, send, {"WWW-Authenticate": "Bearer"}
        )

    async def _refuse(
        self,
        scope: Scope,
        status: int,
        key: str,
        message: str,
        send: Send,
        headers: dict[str, str] | None = None,
    ) -> None:
        request = Request(scope, _replay(b""))
        response: Response
        if is_pact(request.url.path):
            response = JSONResponse(
                pact_error_body(status, message), status_code=status, headers=headers
            )
        elif self.html is not None and not wants_json(request):
            response = self.html(request, status, key, message)
            for name, value in (headers or {}).items():
                response.headers[name] = value
        else:
            response = JSONResponse(
                error_body(status, key, message), status_code=status, headers=headers
            )
        await response(scope, _replay(b""), send)


def _too_large() -> str:
    return f"the request body is larger than {MAX_BODY_BYTES // 1024} kB; send less"


def _replay(body: bytes) -> Receive:
    """A ``receive`` that hands the app a body already read."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive


async def _csrf_given(scope: Scope, headers: Headers, body: bytes) -> str | None:
    """The CSRF token a request carries: its header, or its form field."""
    header = headers.get(CSRF_HEADER)
    if header:
        return header
    content_type = headers.get("content-type", "")
    if not content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        return None
    request = Request(scope, _replay(body))
    try:
        form = await request.form()
    except (HTTPException, MultiPartException, UnicodeDecodeError, ValueError):
        return None
    try:
        value = form.get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    finally:
        await form.close()


def permission_of(method: str, path: str) -> Permission | None:
    """The permission a declared route needs (``None``: public); KeyError if undeclared."""
    return ROUTE_PERMISSIONS[(method.upper(), path)]


def openapi_permissions(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with each operation's ``x-microfab-permission`` (``public`` or a permission),
    its ``security``, the 401/403 answers and the two security schemes. Raises LookupError when
    an operation has no entry in :data:`ROUTE_PERMISSIONS` (the app refuses to start)."""
    by_openapi = {(m, openapi_path(p)): perm for (m, p), perm in ROUTE_PERMISSIONS.items()}
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {}).update(
        {
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "An API token (microfab tokens create) or the access_token of "
                "POST /auth/token",
            },
            "session": {
                "type": "apiKey",
                "in": "cookie",
                "name": SESSION_COOKIE,
                "description": "The dashboard's sign-in cookie (state changes also need the "
                "X-CSRF-Token header)",
            },
        }
    )
    missing = []
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            key = (method.upper(), path)
            if key not in by_openapi:
                missing.append(f"{method.upper()} {path}")
                continue
            permission = by_openapi[key]
            operation["x-microfab-permission"] = (
                "public" if permission is None else permission.value
            )
            if permission is None:
                operation["security"] = []
                continue
            operation["security"] = [{"bearer": []}, {"session": []}]
            responses = operation.setdefault("responses", {})
            ref = {"$ref": "#/components/schemas/ErrorBody"}
            for status, text in (
                ("401", "Not signed in, or the token is not valid"),
                ("403", f"Signed in without the permission {permission.value}"),
            ):
                responses.setdefault(
                    status, {"description": text, "content": {"application/json": {"schema": ref}}}
                )
            if method.upper() not in SAFE_METHODS:
                responses.setdefault(
                    "413",
                    {
                        "description": "The request body is larger than 1 MiB",
                        "content": {"application/json": {"schema": ref}},
                    },
                )
    if missing:
        raise LookupError(
            "routes without an entry in microfab.http.auth.ROUTE_PERMISSIONS: " + ", ".join(missing)
        )
    return schema


def client_address(request: Request) -> str:
    """The client's address for login throttling: the connecting address, or the one a trusted
    proxy forwarded (``MICROFAB_TRUSTED_PROXIES``; see :mod:`microfab.http.server`)."""
    return request.client.host if request.client is not None else "-"


def retry_seconds(until: dt.datetime | None) -> int:
    """Seconds until a throttled login may try again (for ``Retry-After``)."""
    if until is None:
        return 60
    return max(1, math.ceil((until - dt.datetime.now(dt.UTC)).total_seconds()))
