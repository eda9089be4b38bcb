"""Security headers (issue 15, finding 9): every response carries the content security policy,
nosniff, no framing and the referrer policy; authenticated answers are ``no-store``; and no
template holds inline script or an inline event handler (the policy would block it)."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from microfab.http.headers import CONTENT_SECURITY_POLICY, SECURITY_HEADERS
from microfab.model.identity import Role
from microfab.store import EventStore
from webapp import CNC1, fill, serving

SRC = Path(__file__).resolve().parents[1] / "src" / "microfab"
TEMPLATE_DIRS = [SRC / "web" / "templates", SRC / "reports" / "templates"]
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>")
INLINE_HANDLER = re.compile(r"\son[a-z]+\s*=", re.IGNORECASE)


def _assert_security_headers(response: httpx.Response) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, (response.url, name)


def test_the_policy_allows_no_inline_script_and_no_framing() -> None:
    parts = dict(part.split(" ", 1) for part in CONTENT_SECURITY_POLICY.split("; "))
    assert parts["script-src"] == "'self'"  # no 'unsafe-inline', no 'unsafe-eval'
    assert parts["frame-ancestors"] == "'none'"
    assert parts["object-src"] == "'none'"
    assert SECURITY_HEADERS["X-Frame-Options"] == "DENY"
    assert SECURITY_HEADERS["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("folder", TEMPLATE_DIRS, ids=lambda p: p.parent.name)
def test_no_template_has_inline_script_or_handlers(folder: Path) -> None:
    found = []
    for template in sorted(folder.glob("*.html")):
        text = template.read_text(encoding="utf-8")
        found += [f"{template.name}: {m.group(0)}" for m in INLINE_SCRIPT.finditer(text)]
        found += [f"{template.name}: {m.group(0)}" for m in INLINE_HANDLER.finditer(text)]
    assert not found, found


def test_every_kind_of_response_carries_the_headers(store: EventStore) -> None:
    fill(store)
    with serving(store, role=Role.VIEWER) as (url, api):
        answers = {
            "api": api.get("/api/v1/machines"),
            "page": api.get(f"/operator/{CNC1}"),
            "csv": api.get("/api/v1/oee.csv"),
            "forbidden": api.post("/api/v1/orders", json={}),
            "not found": api.get("/nowhere"),
        }
        with httpx.Client(base_url=url, timeout=30) as anonymous:
            answers |= {
                "login": anonymous.get("/login"),
                "refused": anonymous.get("/api/v1/machines"),
                "redirect": anonymous.get("/", follow_redirects=False),
                "docs": anonymous.get("/docs"),
                "health": anonymous.get("/healthz"),
                "static": anonymous.get("/static/dashboard.css"),
            }
    assert answers["forbidden"].status_code == 403
    assert answers["refused"].status_code == 401
    for name, response in answers.items():
        _assert_security_headers(response)
        authenticated = name in ("api", "page", "csv", "forbidden", "not found")
        if authenticated:
            assert response.headers.get("cache-control") == "no-store", name
    # public static files stay cacheable; the docs page loads its script from a file
    assert answers["static"].headers.get("cache-control") != "no-store"
    assert "<script>" not in answers["docs"].text
    assert 'src="/static/api-docs.js"' in answers["docs"].text
