"""The route matrix: every route of the app, called as every role and as nobody, against the two
hand-written tables of docs/security.md (role → permissions, route → permission).

The docs' route table must be exactly the code's (``ROUTE_PERMISSIONS``) and what /openapi.json
says (``x-microfab-permission``); every route the app has — API operations and HTML pages — must
have a row. Then each call is judged: a public route never answers the gate's 401 or 403; an
allowed call is neither 401 nor 403 nor a 5xx; a denied call is 403; nobody gets 401 (the API,
``/live``, form posts) or a redirect to the login page (pages). On SQLite: the gate does not
depend on the back end.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.routing import Mount

from microfab.app import create_app
from microfab.http.auth import ROUTE_PERMISSIONS, openapi_path
from microfab.model.identity import Role
from microfab.store import EventStore, open_store
from webapp import CNC1, api_token, fill, serving

DOC = Path(__file__).resolve().parents[1] / "docs" / "security.md"
ANONYMOUS = "anonymous"


def _section(title: str) -> str:
    return DOC.read_text("utf-8").split(title, 1)[1].split("\n#", 1)[0]


def documented_routes() -> dict[tuple[str, str], str]:
    """(method, path) → permission or ``public``, from the docs' route table."""
    rows: dict[tuple[str, str], str] = {}
    for line in _section("### Routes and permissions").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0] in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            key = (cells[0], cells[1].strip("`"))
            assert key not in rows, f"{key} is in the table twice"
            rows[key] = cells[2].strip("`")
    return rows


def documented_roles() -> dict[str, set[str]]:
    """role → permissions, from the docs' role table."""
    roles: dict[str, set[str]] = {}
    for line in _section("## Users and roles").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`"):
            roles[cells[0].strip("`")] = set(re.findall(r"`([a-z_.]+)`", cells[1]))
    return roles


def app_routes(routes: list[Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    """Every (method, path) the app serves, HTML pages included (walking included routers)."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from app_routes(included.routes, prefix + route.include_context.prefix)
        elif isinstance(route, Mount):
            yield "GET", f"{prefix}{route.path}/{{path:path}}"
        else:
            for method in sorted(set(getattr(route, "methods", ())) - {"HEAD"}):
                yield method, prefix + route.path


def test_the_route_table_in_the_docs_is_the_code_and_the_spec(tmp_path: Path) -> None:
    documented = documented_routes()
    in_code = {k: "public" if v is None else v.value for k, v in ROUTE_PERMISSIONS.items()}
    assert documented == in_code
    with open_store(f"sqlite:///{tmp_path}/spec.db") as store:
        app = create_app(store)
        served = set(app_routes(app.routes))
        spec = app.openapi()
    missing = sorted(served - set(documented))
    assert not missing, f"routes with no row in docs/security.md: {missing}"
    assert not sorted(set(documented) - served), "rows for routes the app does not have"
    by_spec = {(m, openapi_path(p)): v for (m, p), v in documented.items()}
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            assert operation["x-microfab-permission"] == by_spec[(method.upper(), path)]
    permissions = {p for perms in documented_roles().values() for p in perms}
    assert set(documented.values()) - {"public"} <= permissions


def concrete(path: str) -> str:
    """A path with its parameters filled in with things the test plant has."""
    return (
        path.replace("{machine:path}", CNC1)
        .replace("{order}", "WO-1")
        .replace("{kind}", "evidence")
        .replace("{path:path}", "favicon.svg")
        .replace("{site}", "kt")
    )


PROBES: dict[tuple[str, str], dict[str, Any]] = {
    # writes are probed with a body the route refuses (so nothing slow or lasting happens)
    ("POST", "/api/v1/plan"): {"json": {"time_limit": 0}},
    ("POST", "/plan"): {"data": {"time_limit": "soon"}},
    ("POST", "/api/v1/orders"): {"json": {"quantity": 0}},
    ("POST", "/api/v1/orders/{order}/release"): {},
    ("POST", "/auth/token"): {"data": {}},  # 422: no login attempt counted against the client
}


def call(client: httpx.Client, method: str, path: str) -> httpx.Response:
    url = concrete(path)
    if path == "/live":
        with client.stream("GET", url) as response:
            if response.status_code != 200:
                response.read()
            return response  # the status is known; an open stream is closed here
    options = PROBES.get((method, path))
    if options is None:
        options = {"json": {"probe": True}} if path.startswith("/api/") else {"data": {}}
        if method == "GET":
            options = {}
    return client.request(method, url, **options)


@pytest.fixture(scope="module")
def plant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EventStore, str]]:
    folder = tmp_path_factory.mktemp("matrix")
    with open_store(f"sqlite:///{folder}/store.db") as store, serving(fill(store)) as (url, _):
        yield store, url


@pytest.mark.parametrize("who", [ANONYMOUS, *[role.value for role in Role]])
def test_every_route_as_every_role(
    who: str, plant: tuple[EventStore, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MICROFAB_CHROMIUM", str(tmp_path / "no-browser"))  # PDFs answer 501 fast
    store, url = plant
    headers = {} if who == ANONYMOUS else {"Authorization": f"Bearer {api_token(store, Role(who))}"}
    granted = set() if who == ANONYMOUS else documented_roles()[who]
    wrong: list[str] = []
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        for (method, path), permission in documented_routes().items():
            response = call(client, method, path)
            status = response.status_code
            to_login = status == 303 and response.headers["location"].startswith("/login?next=")
            key = _error_key(response)
            if permission == "public":
                gate = key in ("not_authenticated", "forbidden")
                ok = not gate and not to_login and status < 500
                expected = "public"
            elif who == ANONYMOUS:
                api = path.startswith(("/api/", "/3/")) or path == "/live"
                page = not api and method == "GET"
                ok = to_login if page else status == 401 and key == "not_authenticated"
                expected = "login redirect" if page else "401"
            elif permission in granted:
                served = status < 500 or key == "pdf_unavailable"  # no chromium: 501, on purpose
                ok = status not in (401, 403) and not to_login and served
                expected = "allowed"
            else:
                ok = status == 403 and key == "forbidden"
                expected = "403"
            if not ok:
                wrong.append(f"{method} {path}: expected {expected}, got {status} {key or ''}")
    assert not wrong, f"as {who}:\n" + "\n".join(wrong)


PACT_CODES = {"TokenExpired": "not_authenticated", "AccessDenied": "forbidden"}
"""The PACT endpoints (``/3/…``) answer the gate's 401 and 403 in PACT's shape, with these codes."""


def _error_key(response: httpx.Response) -> str | None:
    """The error's key: microfab's ``error.key``, or a PACT error's code as that key."""
    if not response.headers.get("content-type", "").startswith("application/json"):
        return None
    body = response.json()
    if not isinstance(body, dict):
        return None
    if isinstance(body.get("error"), dict):
        return str(body["error"]["key"])
    if "code" in body and "message" in body:
        return PACT_CODES.get(str(body["code"]), str(body["code"]))
    return None
