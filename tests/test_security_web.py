"""Signing in to the web app: the login page, the session cookie, CSRF on every form post, bearer
tokens for scripts, login throttling, who the audit log names for changes made through the web,
and `microfab serve` refusing a store nobody can sign in to."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from microfab.model.identity import Permission, Role
from microfab.store import EventStore, open_store
from microfab.store.audit import audit_records, verify_audit
from microfab.store.identity import create_token, revoke_token
from webapp import CNC2, add_test_user, api_token, fill, serving

HTML = {"accept": "text/html"}


@pytest.fixture
def plant(tmp_path: Path) -> Iterator[tuple[EventStore, str]]:
    with open_store(f"sqlite:///{tmp_path}/store.db") as store, serving(fill(store)) as (url, _):
        yield store, url


def login_token(client: httpx.Client) -> str:
    """The login form's own CSRF token (its cookie is set on the client)."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert found, "the login form carries no CSRF token"
    return found[1]


@contextmanager
def sign_in(url: str, name: str, password: str, next_url: str = "/") -> Iterator[httpx.Client]:
    """A browser-like client that has signed in on the login page."""
    with httpx.Client(base_url=url, timeout=30, headers=HTML) as client:
        answer = client.post(
            "/login",
            data={
                "name": name,
                "password": password,
                "next": next_url,
                "csrf_token": login_token(client),
            },
        )
        assert answer.status_code == 303, answer.text
        assert answer.headers["location"] == next_url
        yield client


def csrf_of(page: str) -> str:
    found = re.search(r'<meta name="csrf-token" content="([^"]+)"', page)
    assert found, "the page carries no CSRF token"
    return found[1]


def test_pages_redirect_to_login_and_come_back_after_it(plant: tuple[EventStore, str]) -> None:
    store, url = plant
    name, password = add_test_user(store, Role.VIEWER)
    with httpx.Client(base_url=url, timeout=30, headers=HTML) as anonymous:
        away = anonymous.get("/operator/kt/plant/line1/utility/cnc-2?x=1")
        assert away.status_code == 303
        assert (
            away.headers["location"]
            == "/login?next=%2Foperator%2Fkt%2Fplant%2Fline1%2Futility%2Fcnc-2%3Fx%3D1"
        )
        login = anonymous.get(away.headers["location"])
        assert "Sign in" in login.text and "登入" in login.text  # both languages
        assert 'value="/operator/kt/plant/line1/utility/cnc-2?x=1"' in login.text
        assert anonymous.get("/api/v1/status").status_code == 401  # the API: no redirect

    with sign_in(url, name, password, "/operator") as browser:
        assert browser.cookies.get("microfab_session")
        page = browser.get("/operator")
        assert page.status_code == 200 and f'data-user="{name}"' in page.text
        assert browser.get("/login?next=/plan").headers["location"] == "/plan"  # signed in

    for foreign in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        with httpx.Client(base_url=url, timeout=30, headers=HTML) as client:
            answer = client.post(
                "/login",
                data={
                    "name": name,
                    "password": password,
                    "next": foreign,
                    "csrf_token": login_token(client),
                },
            )
            assert (answer.status_code, answer.headers["location"]) == (303, "/"), foreign


def _session_cookie(response: httpx.Response) -> str:
    return next(
        v for k, v in response.headers.multi_items() if k == "set-cookie" and "session=" in v
    )


def test_the_session_cookie_is_httponly_and_samesite(plant: tuple[EventStore, str]) -> None:
    store, url = plant
    name, password = add_test_user(store, Role.VIEWER)
    with httpx.Client(base_url=url, timeout=30) as client:
        form = {"name": name, "password": password, "csrf_token": login_token(client)}
        cookie = _session_cookie(client.post("/login", data=form))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Secure" not in cookie  # plain http: a Secure cookie would never come back
    with httpx.Client(base_url=url, timeout=30) as client:
        form = {"name": name, "password": password, "csrf_token": login_token(client)}
        # a client claims https, but no proxy is trusted (MICROFAB_TRUSTED_PROXIES unset): the
        # header is ignored (tests/test_security_proxies.py: from a trusted proxy it counts)
        claimed = client.post("/login", data=form, headers={"x-forwarded-proto": "https"})
    assert claimed.status_code == 303
    assert "Secure" not in _session_cookie(claimed)


def test_the_login_form_refuses_a_post_without_its_own_token(
    plant: tuple[EventStore, str],
) -> None:
    store, url = plant
    name, password = add_test_user(store, Role.VIEWER)
    forged = httpx.post(f"{url}login", data={"name": name, "password": password}, headers=HTML)
    assert forged.status_code == 403 and "microfab_session" not in forged.headers.get(
        "set-cookie", ""
    )


def test_every_form_post_needs_the_sessions_csrf_token(store: EventStore) -> None:
    """On both back ends: sessions, CSRF and the audit trail of a signed-in user."""
    name, password = add_test_user(fill(store), Role.ADMIN)
    with serving(store) as (url, _), sign_in(url, name, password) as browser:
        page = browser.get("/operator/" + CNC2)
        token = csrf_of(page.text)
        assert f'name="csrf_token" value="{token}"' in page.text  # the forms carry it
        form = {"good": "2", "scrap": "0"}
        for posted in (
            form,
            {**form, "csrf_token": "not-the-token"},
        ):
            refused = browser.post(f"/operator/{CNC2}/counts", data=posted)
            assert refused.status_code == 403
            assert "csrf_failed" in refused.text
        saved = browser.post(f"/operator/{CNC2}/counts", data={**form, "csrf_token": token})
        assert saved.status_code == 303
        # the entry is the signed-in user's; the audit log names the user
        entry = browser.get(f"/api/v1/machines/{CNC2}/counts").json()[0]
        assert entry["by"] == name
        last = audit_records(store)[-1]
        assert (last.actor, last.action, last.target) == (
            f"user:{name}",
            "operator.count",
            f"machine:{CNC2}",
        )
        # someone else's name is refused, not silently replaced
        other = browser.post(
            f"/operator/{CNC2}/counts", data={**form, "by": "somebody", "csrf_token": token}
        )
        assert other.status_code == 400 and "signed in as" in other.text
        # the other forms too: without the token nothing happens
        for path, data in (
            ("/orders/new", {"product": "BRKT-1", "quantity": "5"}),
            ("/orders/WO-3/cancel", {"confirm": "1"}),
            ("/plan", {"time_limit": "2"}),
            ("/funding/match", {"profile": "company: x"}),
            (f"/operator/{CNC2}/reason", {"event": "s-21", "reason": "UB-MECH"}),
            (f"/operator/{CNC2}/correction", {"event": "c-20", "good": "1", "scrap": "0"}),
            ("/logout", {}),
        ):
            assert browser.post(path, data=data).status_code == 403, path
        # the API with the cookie: the header carries the token
        body = {"product": "BRKT-1", "quantity": 5, "order": "WO-77"}
        assert browser.post("/api/v1/orders", json=body).status_code == 403
        made = browser.post("/api/v1/orders", json=body, headers={"x-csrf-token": token})
        assert made.status_code == 201
        # sign out: the session ends on the server, the old cookie is worthless
        cookie = browser.cookies.get("microfab_session")
        out = browser.post("/logout", data={"csrf_token": token})
        assert (out.status_code, out.headers["location"]) == (303, "/login")
        stale = httpx.get(
            f"{url}api/v1/status", cookies={"microfab_session": cookie or ""}, timeout=30
        )
        assert stale.status_code == 401


def test_a_bearer_for_scripts_from_a_password(plant: tuple[EventStore, str]) -> None:
    store, url = plant
    name, password = add_test_user(store, Role.PLANNER)
    answer = httpx.post(f"{url}auth/token", data={"username": name, "password": password})
    assert answer.status_code == 200
    grant = answer.json()
    assert grant["token_type"] == "bearer" and 43000 < grant["expires_in"] <= 43200
    auth = {"Authorization": f"Bearer {grant['access_token']}"}
    made = httpx.post(
        f"{url}api/v1/orders",
        json={"product": "BRKT-1", "quantity": 3, "order": "WO-50", "release": True},
        headers=auth,
    )
    assert made.status_code == 201  # no CSRF token: a bearer is never sent by a browser alone
    last = audit_records(store)[-1]
    assert (last.actor, last.action, last.target) == (
        f"user:{name}",
        "orders.create",
        "order:WO-50",
    )
    assert last.after is not None and '"status":"released"' in last.after
    # a planner may not read funding records
    assert httpx.get(f"{url}funding", headers=auth).status_code == 403
    wrong = httpx.post(f"{url}auth/token", data={"username": name, "password": "not it at all"})
    assert wrong.status_code == 401 and wrong.json()["error"]["key"] == "bad_credentials"
    assert (
        httpx.get(f"{url}api/v1/status", headers={"Authorization": "Bearer nonsense"}).status_code
        == 401
    )


def test_logins_are_throttled_with_retry_after(plant: tuple[EventStore, str]) -> None:
    store, url = plant
    name, password = add_test_user(store, Role.VIEWER)
    for _ in range(5):
        bad = httpx.post(f"{url}auth/token", data={"username": name, "password": "x" * 12})
        assert bad.status_code == 401
    refused = httpx.post(f"{url}auth/token", data={"username": name, "password": password})
    assert refused.status_code == 429
    assert refused.json()["error"]["key"] == "too_many_attempts"
    assert 0 < int(refused.headers["retry-after"]) <= 15 * 60
    with httpx.Client(base_url=url, timeout=30, headers=HTML) as page:
        form = {"name": name, "password": password, "csrf_token": login_token(page)}
        answer = page.post("/login", data=form)
    assert answer.status_code == 429 and "retry-after" in answer.headers


def test_tokens_revoked_or_scoped_are_refused(plant: tuple[EventStore, str]) -> None:
    store, url = plant
    scanner, scanner_secret = create_token(
        store,
        "line1-scanner",
        role=Role.ENGINEER,
        scopes=[Permission.OPERATOR_RECORD],
        actor="cli:t",
    )
    auth = {"Authorization": f"Bearer {scanner_secret}"}
    body = {"good": 4, "by": "Ho Wing"}
    assert (
        httpx.post(f"{url}api/v1/machines/{CNC2}/counts", json=body, headers=auth).status_code
        == 201
    )
    last = audit_records(store)[-1]
    assert (last.actor, last.action) == ("token:line1-scanner", "operator.count")
    assert last.after is not None and '"by":"Ho Wing"' in last.after
    # scoped to operator entries: reading the plant is not in its scope
    assert httpx.get(f"{url}api/v1/machines", headers=auth).status_code == 403
    revoke_token(store, scanner.id, actor="cli:t")
    gone = httpx.get(f"{url}api/v1/machines", headers=auth)
    assert gone.status_code == 401 and "not valid" in gone.json()["error"]["message"]


def test_changes_through_the_api_are_in_the_audit_log(plant: tuple[EventStore, str]) -> None:
    store, url = plant
    auth = {"Authorization": f"Bearer {api_token(store, Role.PLANNER)}"}
    with httpx.Client(base_url=url, headers=auth, timeout=60) as api:
        assert (
            api.post(
                "/api/v1/orders", json={"product": "BRKT-1", "quantity": 9, "order": "WO-60"}
            ).status_code
            == 201
        )
        assert (
            api.post(
                "/api/v1/orders", json={"product": "BRKT-1", "quantity": 9, "order": "WO-60"}
            ).status_code
            == 200
        )
        assert api.post("/api/v1/orders/WO-60/release").status_code == 201
        assert api.post("/api/v1/orders/WO-60/cancel").status_code == 201
    records = [r for r in audit_records(store) if r.target == "order:WO-60"]
    assert [r.action for r in records] == ["orders.create", "orders.release", "orders.cancel"]
    assert all(r.actor.startswith("token:test-planner-") for r in records)
    assert (
        records[1].before == '{"status":"created"}' and records[1].after == '{"status":"released"}'
    )
    assert verify_audit(store).ok


def test_serve_refuses_a_store_without_users(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/nobody.db"
    with open_store(url) as store:
        fill(store)
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from microfab.cli import main; main()",
            "serve",
            "--port",
            "0",
            "--db",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "no users" in done.stderr and "microfab users add NAME --role admin" in done.stderr
    assert "Traceback" not in done.stderr
