"""Users, roles, passwords, login throttling, sessions and API tokens, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from microfab.cli import app
from microfab.errors import InputError, NotFoundError
from microfab.model.identity import (
    ROLE_PERMISSIONS,
    LoginPolicy,
    Permission,
    Role,
    allows,
    login_blocked_until,
    parse_role,
    token_permissions,
)
from microfab.store import EventStore
from microfab.store.audit import audit_records, verify_audit
from microfab.store.identity import (
    add_user,
    create_session,
    create_token,
    end_session,
    get_user,
    list_tokens,
    list_users,
    remove_user,
    revoke_token,
    session_principal,
    set_password,
    verify_password,
    verify_token,
)

runner = CliRunner()
PASSWORD = "correct horse battery"
T0 = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)


# ---------------------------------------------------------------------------- the role table


def test_every_role_reads_the_plant_and_only_admin_manages_users() -> None:
    for role, granted in ROLE_PERMISSIONS.items():
        # a site manager reads HQ's roll-up of their own sites and not the (all-site) plant pages
        assert Permission.PLANT_READ in granted or role is Role.SITE_MANAGER, role
        assert (Permission.USERS_MANAGE in granted) == (role is Role.ADMIN), role
    assert ROLE_PERMISSIONS[Role.ADMIN] == frozenset(Permission)
    assert ROLE_PERMISSIONS[Role.VIEWER] == {Permission.PLANT_READ}
    assert Permission.ORDERS_WRITE in ROLE_PERMISSIONS[Role.PLANNER]
    assert Permission.ORDERS_WRITE not in ROLE_PERMISSIONS[Role.OPERATOR]
    assert Permission.FUNDING_WRITE in ROLE_PERMISSIONS[Role.FUNDING_OFFICER]
    assert Permission.FUNDING_READ not in ROLE_PERMISSIONS[Role.ENGINEER]
    assert not allows(None, Permission.PLANT_READ)
    assert ROLE_PERMISSIONS[Role.SITE_MANAGER] == {Permission.HQ_READ}


def test_the_role_table_in_the_docs_is_what_the_code_grants() -> None:
    """docs/security.md's role table is written by hand; the code must grant exactly that."""
    doc = (Path(__file__).resolve().parents[1] / "docs" / "security.md").read_text("utf-8")
    section = doc.split("## Users and roles", 1)[1].split("\n## ", 1)[0]
    documented: dict[str, set[str]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`"):
            documented[cells[0].strip("`")] = set(re.findall(r"`([a-z_.]+)`", cells[1]))
    granted = {role.value: {p.value for p in perms} for role, perms in ROLE_PERMISSIONS.items()}
    assert documented == granted


def test_role_and_scope_parsing() -> None:
    assert parse_role("Funding_Officer") is Role.FUNDING_OFFICER
    with pytest.raises(InputError, match="unknown role 'boss'; expected one of viewer"):
        parse_role("boss")
    assert token_permissions(Role.ENGINEER, [Permission.EVENTS_WRITE]) == {Permission.EVENTS_WRITE}
    assert token_permissions(None, [Permission.PLANT_READ]) == {Permission.PLANT_READ}
    with pytest.raises(InputError, match=r"scope orders\.write is not granted to role viewer"):
        token_permissions(Role.VIEWER, [Permission.ORDERS_WRITE])
    with pytest.raises(InputError, match="needs --role"):
        token_permissions(None, None)


def test_login_blocked_until_counts_failures_in_the_window() -> None:
    policy = LoginPolicy(max_failures=3, window=dt.timedelta(minutes=10))
    fails = [T0, T0 + dt.timedelta(minutes=1), T0 + dt.timedelta(minutes=2)]
    assert login_blocked_until(fails[:2], T0 + dt.timedelta(minutes=3), policy) is None
    assert login_blocked_until(fails, T0 + dt.timedelta(minutes=3), policy) == T0 + dt.timedelta(
        minutes=10
    )
    assert login_blocked_until(fails, T0 + dt.timedelta(minutes=10), policy) is None


# ---------------------------------------------------------------------------- users


def test_user_password_is_argon2_and_verifies(store: EventStore) -> None:
    user = add_user(store, "may.chan", Role.PLANNER, PASSWORD, actor="cli:test")
    assert user.role is Role.PLANNER
    with store.engine.connect() as conn:
        stored = conn.execute(text("SELECT password_hash FROM users")).scalar_one()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    ok = verify_password(store, "may.chan", PASSWORD, client="10.0.0.5")
    assert ok.ok and ok.principal is not None
    assert ok.principal.actor == "user:may.chan"
    assert ok.principal.permissions == ROLE_PERMISSIONS[Role.PLANNER]
    assert verify_password(store, "may.chan", PASSWORD + "x").outcome == "bad_credentials"
    assert verify_password(store, "nobody", PASSWORD).outcome == "bad_credentials"
    with store.engine.connect() as conn:
        outcomes = conn.execute(
            text("SELECT user_name, outcome FROM login_attempts ORDER BY seq")
        ).all()
    assert [tuple(r) for r in outcomes[:2]] == [("may.chan", "ok"), ("may.chan", "bad_credentials")]
    # a name that is no user's is kept only as a keyed digest (issue 15: it may be a password)
    assert outcomes[2][0].startswith("hmac:") and "nobody" not in outcomes[2][0]
    assert outcomes[2][1] == "bad_credentials"


def test_user_rules(store: EventStore) -> None:
    add_user(store, "admin", Role.ADMIN, PASSWORD, actor="cli:test")
    with pytest.raises(InputError, match="user 'admin' already exists"):
        add_user(store, "admin", Role.VIEWER, PASSWORD, actor="cli:test")
    with pytest.raises(InputError, match="at least 12"):
        add_user(store, "short", Role.VIEWER, "secret", actor="cli:test")
    with pytest.raises(InputError, match="user name 'May Chan' is not valid"):
        add_user(store, "May Chan", Role.VIEWER, PASSWORD, actor="cli:test")
    with pytest.raises(InputError, match="'admin' is the last admin"):
        remove_user(store, "admin", actor="cli:test")
    with pytest.raises(NotFoundError, match="no user named 'ghost'"):
        remove_user(store, "ghost", actor="cli:test")
    add_user(store, "ho.wing", Role.OPERATOR, PASSWORD, actor="cli:test")
    assert [u.name for u in list_users(store)] == ["admin", "ho.wing"]
    remove_user(store, "ho.wing", actor="user:admin")
    assert get_user(store, "ho.wing") is None
    assert [(r.action, r.target, r.actor) for r in audit_records(store)] == [
        ("users.add", "user:admin", "cli:test"),
        ("users.add", "user:ho.wing", "cli:test"),
        ("users.remove", "user:ho.wing", "user:admin"),
    ]
    assert audit_records(store)[2].before_value() == {"name": "ho.wing", "role": "operator"}


def test_logins_are_throttled_per_user_and_client_with_looser_ceilings(
    store: EventStore,
) -> None:
    add_user(store, "ho.wing", Role.OPERATOR, PASSWORD, actor="cli:test")
    policy = LoginPolicy(
        max_failures=3,
        max_failures_per_user=5,
        max_failures_per_client=5,
        window=dt.timedelta(minutes=15),
    )
    for minute in range(3):
        when = T0 + dt.timedelta(minutes=minute)
        result = verify_password(store, "ho.wing", "guess", client="a", now=when, policy=policy)
        assert result.outcome == "bad_credentials"
    # the right password is refused too from the guessing address …
    blocked = verify_password(
        store, "ho.wing", PASSWORD, client="a", now=T0 + dt.timedelta(minutes=5), policy=policy
    )
    assert blocked.outcome == "throttled" and blocked.principal is None
    assert blocked.retry_after == T0 + dt.timedelta(minutes=15)
    # … but not from another address: one address cannot lock the user out
    assert verify_password(
        store, "ho.wing", PASSWORD, client="b", now=T0 + dt.timedelta(minutes=5), policy=policy
    ).ok
    later = verify_password(
        store, "ho.wing", PASSWORD, client="a", now=T0 + dt.timedelta(minutes=16), policy=policy
    )
    assert later.ok
    # one client guessing many names is throttled as a client at its own ceiling
    for n in range(5):
        verify_password(store, f"name{n}", "guess", client="c", now=T0, policy=policy)
    from_c = verify_password(store, "ho.wing", PASSWORD, client="c", now=T0, policy=policy)
    assert from_c.outcome == "throttled"


def test_password_change_ends_sessions(store: EventStore) -> None:
    add_user(store, "ho.wing", Role.OPERATOR, PASSWORD, actor="cli:test")
    session = create_session(store, "ho.wing")
    set_password(store, "ho.wing", "another long password", actor="user:ho.wing")
    assert session_principal(store, session.token) is None
    assert verify_password(store, "ho.wing", "another long password").ok
    assert not verify_password(store, "ho.wing", PASSWORD).ok


# ---------------------------------------------------------------------------- sessions


def test_sessions(store: EventStore) -> None:
    add_user(store, "may.chan", Role.PLANNER, PASSWORD, actor="cli:test")
    add_user(store, "admin", Role.ADMIN, PASSWORD, actor="cli:test")
    new = create_session(store, "may.chan", ttl=dt.timedelta(hours=8), now=T0)
    found = session_principal(store, new.token, now=T0 + dt.timedelta(hours=1))
    assert found is not None
    assert found.principal.name == "may.chan" and found.principal.role is Role.PLANNER
    assert found.csrf_token == new.csrf_token and new.csrf_token != new.token
    assert session_principal(store, new.token, now=T0 + dt.timedelta(hours=8)) is None
    assert session_principal(store, "forged", now=T0) is None
    with store.engine.connect() as conn:
        stored = conn.execute(text("SELECT secret_hash FROM user_sessions")).scalar_one()
    assert new.token not in stored
    assert end_session(store, new.token)
    assert session_principal(store, new.token, now=T0) is None
    other = create_session(store, "may.chan")
    remove_user(store, "may.chan", actor="user:admin")
    assert session_principal(store, other.token) is None


# ---------------------------------------------------------------------------- tokens


def test_tokens_are_scoped_hashed_revocable(store: EventStore) -> None:
    _, secret = create_token(
        store,
        "line1-scanner",
        role=Role.ENGINEER,
        scopes=[Permission.EVENTS_WRITE],
        actor="cli:test",
        now=T0,
    )
    assert secret.startswith("mfb_") and len(secret) > 40
    with store.engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM api_tokens")).mappings().all()
    assert secret not in json.dumps([dict(r) for r in rows], default=str)
    principal = verify_token(store, secret, now=T0 + dt.timedelta(minutes=1))
    assert principal is not None
    assert principal.actor == "token:line1-scanner"
    assert principal.permissions == {Permission.EVENTS_WRITE}
    assert not principal.allows(Permission.FACTORY_WRITE)
    (listed,) = list_tokens(store)
    assert listed.last_used_at == T0 + dt.timedelta(minutes=1)
    assert verify_token(store, secret[:-1] + ("A" if secret[-1] != "A" else "B")) is None
    assert verify_token(store, "not a token") is None
    with pytest.raises(InputError, match="an active token is already named"):
        create_token(store, "line1-scanner", role=Role.VIEWER, actor="cli:test")
    revoke_token(store, "line1-scanner", actor="cli:test")
    assert verify_token(store, secret) is None
    with pytest.raises(NotFoundError):
        revoke_token(store, "line1-scanner", actor="cli:test")
    # the name is free again once revoked
    create_token(store, "line1-scanner", role=Role.VIEWER, actor="cli:test")
    assert [t.state() for t in list_tokens(store)] == ["revoked", "active"]
    assert [r.action for r in audit_records(store)] == [
        "tokens.create",
        "tokens.revoke",
        "tokens.create",
    ]


def test_expired_tokens_are_refused(store: EventStore) -> None:
    _, secret = create_token(
        store,
        "visitor-tablet",
        role=Role.VIEWER,
        expires_at=T0 + dt.timedelta(days=1),
        actor="cli:test",
        now=T0,
    )
    assert verify_token(store, secret, now=T0 + dt.timedelta(hours=23)) is not None
    assert verify_token(store, secret, now=T0 + dt.timedelta(days=1)) is None
    with pytest.raises(InputError, match="in the past"):
        create_token(store, "late", role=Role.VIEWER, expires_at=T0, actor="cli:test", now=T0)


# ---------------------------------------------------------------------------- CLI


def run(*args: str, stdin: str | None = None) -> str:
    result = runner.invoke(app, list(args), input=stdin)
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result.stdout


def test_cli_users_and_tokens(db_url: str, store: EventStore) -> None:
    out = run(
        "users",
        "add",
        "may.chan",
        "--role",
        "admin",
        "--password-stdin",
        "--db",
        db_url,
        stdin=PASSWORD + "\n",
    )
    assert "user may.chan added with role admin" in out
    assert verify_password(store, "may.chan", PASSWORD).ok
    # no terminal and no --password-stdin: a generated one-time password, printed once
    out = run("users", "add", "ho.wing", "--role", "operator", "--db", db_url)
    generated = out.split("one-time password (shown only now): ")[1].split()[0]
    assert verify_password(store, "ho.wing", generated).ok
    listed = json.loads(run("users", "list", "--json", "--db", db_url))
    assert [(u["name"], u["role"]) for u in listed] == [
        ("ho.wing", "operator"),
        ("may.chan", "admin"),
    ]
    assert "user ho.wing (operator) removed" in flat(
        run("users", "remove", "ho.wing", "--db", db_url)
    )

    out = run(
        "tokens",
        "create",
        "line1-scanner",
        "--scope",
        "events.write",
        "--expires",
        "90d",
        "--db",
        db_url,
    )
    secret = next(line for line in out.splitlines() if line.startswith("mfb_"))
    principal = verify_token(store, secret)
    assert principal is not None and principal.permissions == {Permission.EVENTS_WRITE}
    assert "line1-scanner  active  events.write" in run("tokens", "list", "--db", db_url)
    run("tokens", "revoke", "line1-scanner", "--db", db_url)
    assert verify_token(store, secret) is None
    assert verify_audit(store).ok
    actions = [r.action for r in audit_records(store)]
    assert actions == ["users.add", "users.add", "users.remove", "tokens.create", "tokens.revoke"]
    assert all(r.actor.startswith("cli:") for r in audit_records(store))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["users", "add", "x", "--role", "boss"], "unknown role 'boss'"),
        (["tokens", "create", "t", "--role", "viewer", "--scope", "orders.write"], "not granted"),
        (["tokens", "create", "t", "--scope", "everything"], "unknown scope 'everything'"),
        (["tokens", "create", "t", "--role", "viewer", "--expires", "soon"], "--expires"),
        (["users", "remove", "ghost"], "no user named 'ghost'"),
    ],
)
def test_cli_bad_input_exits_2(tmp_path: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, [*args, "--db", f"sqlite:///{tmp_path}/x.db"])
    assert isinstance(result.exception, InputError) and result.exception.exit_code == 2
    assert message in str(result.exception)


def flat(text: str) -> str:
    return " ".join(text.split())
