"""Login locks (issue 15, findings 3 and 10): attempts refused while locked never extend a lock,
locks are per (user, address) with a looser per-user ceiling, admins see and lift them, and a
name that is no user's is stored only as a keyed digest — on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest
from alembic import command
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from conftest import pg_create_database, pg_drop_database
from microfab.cli import app
from microfab.errors import NotFoundError
from microfab.model.identity import LoginPolicy, Role
from microfab.store import EventStore, open_store
from microfab.store.audit import audit_records, verify_audit
from microfab.store.database import MIGRATIONS, alembic_config
from microfab.store.identity import (
    add_user,
    login_blocked,
    login_lock,
    login_name_digest,
    unlock_user,
    verify_password,
)
from microfab.store.url import engine_url


def _migration_0006() -> ModuleType:
    path = MIGRATIONS / "versions" / "0006_login_name_key.py"
    spec = importlib.util.spec_from_file_location("migration_0006", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


runner = CliRunner()
PASSWORD = "correct horse battery"
T0 = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)
POLICY = LoginPolicy()  # the shipped policy: 5 per (user, address), 50 per user and per address


def _minutes(n: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=n)


def test_attempts_while_locked_do_not_extend_the_lock(store: EventStore) -> None:
    """The reported lock-out: about 5 requests per 15 minutes kept the admin out for good."""
    add_user(store, "admin", Role.ADMIN, PASSWORD, actor="cli:test")
    for n in range(5):
        verify_password(store, "admin", "guess", client="10.0.0.9", now=_minutes(n))
    assert login_blocked(store, "admin", "10.0.0.9", now=_minutes(5)) == _minutes(15)
    # the attacker keeps knocking through the lock, once every three minutes
    for n in range(6, 15, 3):
        refused = verify_password(store, "admin", "guess", client="10.0.0.9", now=_minutes(n))
        assert refused.outcome == "throttled"
        assert refused.retry_after == _minutes(15)  # unchanged: not restarted by the knock
    # when the window has passed, the right password works from that address too
    assert verify_password(store, "admin", PASSWORD, client="10.0.0.9", now=_minutes(15.1)).ok


def test_one_address_never_locks_the_user_out_elsewhere(store: EventStore) -> None:
    add_user(store, "admin", Role.ADMIN, PASSWORD, actor="cli:test")
    for n in range(12):
        verify_password(store, "admin", "guess", client="10.0.0.9", now=_minutes(n / 10))
    assert verify_password(store, "admin", PASSWORD, client="10.0.0.2", now=_minutes(5)).ok


def test_the_per_user_ceiling_locks_guessing_from_many_addresses(store: EventStore) -> None:
    assert POLICY.max_failures_per_user > POLICY.max_failures  # the shipped ceiling is looser
    policy = LoginPolicy(max_failures=3, max_failures_per_user=8)  # fewer slow argon2 checks
    add_user(store, "admin", Role.ADMIN, PASSWORD, actor="cli:test")
    for n in range(8):
        verify_password(
            store, "admin", "guess", client=f"10.0.1.{n}", now=_minutes(n / 10), policy=policy
        )
    refused = verify_password(
        store, "admin", PASSWORD, client="10.0.0.2", now=_minutes(6), policy=policy
    )
    assert refused.outcome == "throttled"
    assert refused.retry_after == _minutes(15)
    lock = login_lock(store, "admin", now=_minutes(6), policy=policy)
    assert lock.until == _minutes(15) and lock.failures == 8 and not lock.clients


def test_admin_sees_and_lifts_a_lock(db_url: str, store: EventStore) -> None:
    add_user(store, "ho.wing", Role.OPERATOR, PASSWORD, actor="cli:test")
    now = dt.datetime.now(dt.UTC)
    for n in range(5):
        verify_password(
            store, "ho.wing", "guess", client="10.0.0.9", now=now - dt.timedelta(seconds=50 - n)
        )
    assert login_lock(store, "ho.wing").clients.keys() == {"10.0.0.9"}

    shown = runner.invoke(app, ["users", "show", "ho.wing", "--db", db_url])
    assert shown.exit_code == 0, shown.output
    assert "LOCKED from 10.0.0.9 until" in shown.output
    assert "microfab users unlock ho.wing" in shown.output
    as_json = runner.invoke(app, ["users", "show", "ho.wing", "--db", db_url, "--json"])
    view = json.loads(as_json.output)
    assert view["failures"] == 5 and list(view["locked_clients"]) == ["10.0.0.9"]
    assert view["locked_until"] is None

    unlocked = runner.invoke(app, ["users", "unlock", "ho.wing", "--db", db_url])
    assert unlocked.exit_code == 0, unlocked.output
    assert "logins of ho.wing unlocked" in unlocked.output
    assert not login_lock(store, "ho.wing").locked
    assert verify_password(store, "ho.wing", PASSWORD, client="10.0.0.9").ok
    shown = runner.invoke(app, ["users", "show", "ho.wing", "--db", db_url])
    assert "not locked" in shown.output

    record = audit_records(store)[-1]
    assert (record.action, record.target) == ("users.unlock", "user:ho.wing")
    assert record.actor.startswith("cli:")
    assert record.before_value()["locked_clients"].keys() == {"10.0.0.9"}
    assert verify_audit(store).ok

    missing = runner.invoke(app, ["users", "unlock", "ghost", "--db", db_url])
    assert isinstance(missing.exception, NotFoundError)
    assert "no user named 'ghost'" in str(missing.exception)
    with pytest.raises(NotFoundError):
        unlock_user(store, "ghost", actor="cli:test")


def test_a_password_typed_as_the_name_is_never_stored(store: EventStore) -> None:
    typed = "Tr0ub4dor&3-secret"
    for n in range(5):
        result = verify_password(store, typed, "x", client="10.0.0.9", now=_minutes(n))
        assert result.outcome == "bad_credentials"
    with store.engine.connect() as conn:
        names = conn.execute(text("SELECT user_name FROM login_attempts")).scalars().all()
        dumped = " ".join(
            str(v) for row in conn.execute(text("SELECT * FROM login_attempts")) for v in row
        )
        key = conn.execute(
            text("SELECT value FROM store_secrets WHERE name = 'login_names'")
        ).scalar_one()
    assert typed not in dumped
    assert set(names) == {login_name_digest(key, typed)}
    assert login_name_digest(key, typed) != login_name_digest("another key", typed)
    # the digest still counts towards the lock on that text
    refused = verify_password(store, typed, "x", client="10.0.0.9", now=_minutes(5))
    assert refused.outcome == "throttled"


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_migration_0006_hashes_stored_unknown_names(backend: str, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/old.db" if backend == "sqlite" else pg_create_database()
    try:
        engine = create_engine(engine_url(url))
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), "0005")
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO users (name, role, password_hash, created_at, "
                    "password_changed_at) VALUES ('may.chan', 'viewer', 'x', :t, :t)"
                ),
                {"t": T0},
            )
            for name in ("may.chan", "hunter2-password", "hunter2-password"):
                conn.execute(
                    text(
                        "INSERT INTO login_attempts (at, user_name, client, outcome) "
                        "VALUES (:t, :n, '10.0.0.9', 'bad_credentials')"
                    ),
                    {"t": T0, "n": name},
                )
        engine.dispose()
        with open_store(url) as store:  # opening upgrades to the newest revision
            with store.engine.connect() as conn:
                names = (
                    conn.execute(text("SELECT user_name FROM login_attempts ORDER BY seq"))
                    .scalars()
                    .all()
                )
                key = conn.execute(text("SELECT value FROM store_secrets")).scalar_one()
            digest = login_name_digest(key, "hunter2-password")
            assert names == ["may.chan", digest, digest]
            frozen_digest = _migration_0006().name_digest
            assert frozen_digest(key, "x") == login_name_digest(key, "x")
            # the migrated rows still count for throttling that text
            assert login_lock(store, "may.chan", now=_minutes(1)).failures == 1
    finally:
        if backend == "postgresql":
            pg_drop_database(url)
