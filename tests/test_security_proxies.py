"""Who the client is, and what the status shows (issue 15, finding 11): X-Forwarded-For is
believed only from the proxies in MICROFAB_TRUSTED_PROXIES (default none), and the store's
location in /api/v1/status is for admins only. Served by the real uvicorn."""

from __future__ import annotations

import re

import httpx
import pytest

from microfab.model.identity import LoginPolicy, Role
from microfab.settings import SettingsError, load_settings
from microfab.store import EventStore
from microfab.store.identity import add_user, login_lock
from webapp import add_test_user, api_token, fill, serving

PASSWORD = "correct horse battery"
FORWARDED = {"X-Forwarded-For": "203.0.113.7"}


def login_token(client: httpx.Client) -> str:
    """The login form's own CSRF token (its cookie is set on the client)."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert found, "the login form carries no CSRF token"
    return found[1]


def test_forwarded_for_is_ignored_without_trusted_proxies(
    store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MICROFAB_TRUSTED_PROXIES", raising=False)
    monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)
    with serving(store, role=None) as (url, _):
        add_user(store, "may.chan", Role.VIEWER, PASSWORD, actor="cli:test")
        assert _attempt_client(url, store) == "127.0.0.1"


def test_forwarded_for_is_believed_from_a_trusted_proxy(
    store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MICROFAB_TRUSTED_PROXIES", "10.9.0.0/16, 127.0.0.1")
    with serving(store, role=None) as (url, _):
        add_user(store, "may.chan", Role.VIEWER, PASSWORD, actor="cli:test")
        assert _attempt_client(url, store) == "203.0.113.7"


def _attempt_client(url: str, store: EventStore) -> str:
    """Fail one login for may.chan with a forged X-Forwarded-For; the address it was counted
    against (a lock needs 5, so the policy is asked with a ceiling of 1)."""
    with httpx.Client(base_url=url, timeout=30) as client:
        answer = client.post(
            "/auth/token", data={"username": "may.chan", "password": "guess"}, headers=FORWARDED
        )
    assert answer.status_code == 401
    lock = login_lock(store, "may.chan", policy=LoginPolicy(max_failures=1))
    assert lock.failures == 1 and len(lock.clients) == 1
    return next(iter(lock.clients))


def test_trusted_proxies_must_be_addresses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MICROFAB_TRUSTED_PROXIES", "proxy.local")
    with pytest.raises(SettingsError, match=r"MICROFAB_TRUSTED_PROXIES.*not an IP address"):
        load_settings()
    monkeypatch.setenv("MICROFAB_TRUSTED_PROXIES", "10.0.0.1, ::1")
    assert load_settings().trusted_proxy_list() == ["10.0.0.1", "::1"]


def test_status_shows_the_store_only_to_admins(store: EventStore) -> None:
    fill(store)
    with serving(store, role=Role.VIEWER) as (_, viewer):
        seen = viewer.get("/api/v1/status")
        assert seen.status_code == 200
        assert "store" not in seen.json() and seen.json()["backend"] == store.dialect
        admin = viewer.get(
            "/api/v1/status", headers={"Authorization": f"Bearer {api_token(store, Role.ADMIN)}"}
        )
        assert admin.json()["store"] == store.display_url


def test_the_cookie_is_secure_when_a_trusted_proxy_says_https(
    store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MICROFAB_TRUSTED_PROXIES", "127.0.0.1")
    with serving(store, role=None) as (url, _):
        name, password = add_test_user(store, Role.VIEWER)
        with httpx.Client(base_url=url, timeout=30) as client:
            form = {"name": name, "password": password, "csrf_token": login_token(client)}
            answer = client.post("/login", data=form, headers={"x-forwarded-proto": "https"})
    assert answer.status_code == 303
    cookie = next(
        v for k, v in answer.headers.multi_items() if k == "set-cookie" and "session=" in v
    )
    assert "Secure" in cookie
