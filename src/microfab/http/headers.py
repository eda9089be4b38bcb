"""Security headers on every response: a content security policy without inline script, no
sniffing, no framing, a same-origin referrer, and ``Cache-Control: no-store`` on authenticated
answers.

:class:`SecurityHeaders` (ASGI middleware, the outermost) adds them to whatever answers — the
routes, the access gate's refusals, the error pages and the static files — so no path can miss
them. The policy (:data:`CONTENT_SECURITY_POLICY`) allows scripts only from this origin's files:
pages carry data in ``<script type="application/json">`` blocks (never executed) and their code
in ``/static/*.js``; the Swagger UI at ``/docs`` starts from ``/static/api-docs.js``. Inline
``style`` attributes stay allowed (progress bars are drawn with a width); styles cannot run
script. A browser reports a broken rule in its console, which the browser tests watch.

A response is authenticated when the request came with credentials (an ``Authorization`` header
or the session cookie) or the gate found a principal; it must not be kept by the browser or a
proxy, so it gets ``Cache-Control: no-store`` (replacing a weaker value). Static files keep
their caching: they are the same for everyone.
"""

from __future__ import annotations

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
"""The Content-Security-Policy header of every response (docs/security.md explains each part)."""

SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}
"""Headers set on every response."""

NO_STORE = "no-store"
STATIC_PREFIX = "/static/"
SESSION_COOKIE_NAME = "microfab_session"


def _carries_credentials(scope: Scope) -> bool:
    state = scope.get("state") or {}
    if state.get("principal") is not None:
        return True
    headers = Headers(scope=scope)
    if headers.get("authorization"):
        return True
    return any(
        part.strip().startswith(f"{SESSION_COOKIE_NAME}=")
        for part in headers.get("cookie", "").split(";")
    )


class SecurityHeaders:
    """ASGI middleware: :data:`SECURITY_HEADERS` on every HTTP response, and ``no-store`` on
    authenticated ones (see the module)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope.get("path", "")).startswith(STATIC_PREFIX)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
                if not static and _carries_credentials(scope):
                    headers["Cache-Control"] = NO_STORE
            await send(message)

        await self.app(scope, receive, send_with_headers)
