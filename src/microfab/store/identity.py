"""Users, API tokens, sign-in sessions and login attempts, stored beside the event log.

Passwords are hashed with argon2id (argon2-cffi, its default cost) and re-hashed when that cost
rises. Tokens and session ids are random (256 bits), shown once, and stored only as SHA-256: a
copy of the database gives no usable credential. Every change to users and tokens is written to
the audit log in the same transaction (:func:`microfab.store.audit.append_audit`).

What the API calls:

- :func:`verify_password` — a login form: checks throttling, records the attempt, returns a
  :class:`LoginResult` (a principal, or why not and until when). Throttling is per (user,
  address) with looser ceilings per user and per address (:class:`LoginPolicy`);
  :func:`login_lock` shows a user's locks and :func:`unlock_user` lifts them. A name that is no
  user's is recorded only as a keyed digest (:func:`login_name_digest`).
- :func:`create_session`, :func:`session_principal`, :func:`end_session` — cookie sessions with
  a CSRF token each.
- :func:`verify_token` — ``Authorization: Bearer …``: the token's principal, or None.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from functools import cache
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from microfab.errors import InputError, NotFoundError
from microfab.model.events import format_ts
from microfab.model.identity import (
    ROLE_PERMISSIONS,
    LoginPolicy,
    Permission,
    Principal,
    Role,
    check_name,
    check_password,
    login_blocked_until,
    token_permissions,
    user_principal,
)
from microfab.store import schema
from microfab.store.audit import append_audit
from microfab.store.event_store import EventStore

TOKEN_PREFIX = "mfb_"
"""Every API token starts with this, so secret scanners and people can recognise one."""
SESSION_TTL = dt.timedelta(hours=12)
"""How long a sign-in lasts (one shift and then some)."""
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)
"""A token's or session's last-used time is written at most this often (not on every call)."""


@cache
def _hasher() -> PasswordHasher:
    return PasswordHasher()


@cache
def _decoy_hash() -> str:
    """A hash to verify against when the user does not exist, so that a wrong name takes as long
    as a wrong password and the answer does not tell which names exist."""
    return _hasher().hash(secrets.token_urlsafe(16))


def _now(now: dt.datetime | None) -> dt.datetime:
    return (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)


def _secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else format_ts(value)


def generate_password() -> str:
    """A one-time password: 20 URL-safe characters (120 bits)."""
    return secrets.token_urlsafe(15)


# ---------------------------------------------------------------------------- users


@dataclass(frozen=True, slots=True)
class User:
    """A stored user (never with the password hash)."""

    name: str
    role: Role
    created_at: dt.datetime
    password_changed_at: dt.datetime

    def audit_view(self) -> dict[str, Any]:
        return {"name": self.name, "role": self.role.value}


def _user(row: Any) -> User:
    created = row["created_at"]
    changed = row["password_changed_at"]
    assert created is not None and changed is not None
    return User(row["name"], Role(row["role"]), created, changed)


def add_user(
    store: EventStore,
    name: str,
    role: Role,
    password: str,
    *,
    actor: str,
    now: dt.datetime | None = None,
) -> User:
    """Store a new user with an argon2 hash of ``password``; InputError when the name is taken
    or the password too short."""
    check_name(name)
    check_password(password)
    when = _now(now)
    password_hash = _hasher().hash(password)
    user = User(name, role, when, when)
    table = schema.users
    try:
        with store.transaction() as conn:
            if conn.scalar(select(table.c.name).where(table.c.name == name)) is not None:
                raise InputError(f"user {name!r} already exists; choose another name")
            conn.execute(
                insert(table).values(
                    name=name,
                    role=role.value,
                    password_hash=password_hash,
                    created_at=when,
                    password_changed_at=when,
                )
            )
            append_audit(
                conn,
                actor=actor,
                action="users.add",
                target=f"user:{name}",
                after=user.audit_view(),
            )
    except IntegrityError:
        raise InputError(f"user {name!r} already exists; choose another name") from None
    return user


def get_user(store: EventStore, name: str) -> User | None:
    table = schema.users
    with store.engine.connect() as conn:
        row = conn.execute(select(table).where(table.c.name == name)).mappings().first()
    return None if row is None else _user(row)


def list_users(store: EventStore) -> list[User]:
    table = schema.users
    with store.engine.connect() as conn:
        rows = conn.execute(select(table).order_by(table.c.name)).mappings().all()
    return [_user(row) for row in rows]


def remove_user(store: EventStore, name: str, *, actor: str) -> User:
    """Delete a user and end their sessions; the last admin cannot be removed."""
    table = schema.users
    with store.transaction() as conn:
        row = conn.execute(select(table).where(table.c.name == name)).mappings().first()
        if row is None:
            raise NotFoundError(f"no user named {name!r}; 'microfab users list' shows them")
        user = _user(row)
        if user.role is Role.ADMIN:
            admins = conn.execute(
                select(table.c.name).where(table.c.role == Role.ADMIN.value)
            ).all()
            if len(admins) <= 1:
                raise InputError(
                    f"{name!r} is the last admin; add another admin before removing this one"
                )
        conn.execute(delete(table).where(table.c.name == name))
        conn.execute(delete(schema.user_sessions).where(schema.user_sessions.c.user_name == name))
        append_audit(
            conn,
            actor=actor,
            action="users.remove",
            target=f"user:{name}",
            before=user.audit_view(),
        )
    return user


def set_password(
    store: EventStore, name: str, password: str, *, actor: str, now: dt.datetime | None = None
) -> None:
    """Replace a user's password and end their sessions."""
    check_password(password)
    when = _now(now)
    password_hash = _hasher().hash(password)
    table = schema.users
    with store.transaction() as conn:
        done = conn.execute(
            update(table)
            .where(table.c.name == name)
            .values(password_hash=password_hash, password_changed_at=when)
        ).rowcount
        if not done:
            raise NotFoundError(f"no user named {name!r}; 'microfab users list' shows them")
        conn.execute(delete(schema.user_sessions).where(schema.user_sessions.c.user_name == name))
        append_audit(
            conn,
            actor=actor,
            action="users.password",
            target=f"user:{name}",
            after={"password_changed_at": _iso(when)},
        )


# ---------------------------------------------------------------------------- logins


@dataclass(frozen=True, slots=True)
class LoginResult:
    """The answer to a login: a principal, or ``outcome`` (``bad_credentials``, ``throttled``)
    and, when throttled, the time attempts may start again."""

    principal: Principal | None
    outcome: str
    retry_after: dt.datetime | None = None

    @property
    def ok(self) -> bool:
        return self.principal is not None


LOGIN_NAME_KEY = "login_names"
"""The ``store_secrets`` row holding the HMAC key for unknown user names (revision 0006)."""
HASHED_NAME_PREFIX = "hmac:"
"""How a hashed user name in ``login_attempts`` starts (never a valid user name: no ':')."""
FAILED = "bad_credentials"
"""The outcome of a wrong name or password: the only one that counts towards a lock."""
UNLOCKED = "unlocked"
"""The outcome of an admin lifting a lock: failures before it no longer count for that user."""


def login_name_digest(key: str, name: str) -> str:
    """How ``login_attempts`` records a user name that is no user's: ``hmac:`` and the first
    40 hex digits of HMAC-SHA-256 under the store's key. The same text always gives the same
    digest (so throttling still counts it), and a copy of the table does not reveal a password
    typed into the name field."""
    mac = hmac.new(key.encode("utf-8"), name.encode("utf-8"), hashlib.sha256)
    return HASHED_NAME_PREFIX + mac.hexdigest()[:40]


def _login_name_key(store: EventStore) -> str:
    table = schema.store_secrets
    with store.engine.connect() as conn:
        key = conn.scalar(select(table.c.value).where(table.c.name == LOGIN_NAME_KEY))
    if key is not None:
        return str(key)
    try:
        with store.transaction() as conn:
            conn.execute(insert(table).values(name=LOGIN_NAME_KEY, value=secrets.token_hex(32)))
    except IntegrityError:
        pass  # made at the same moment by another process: use theirs
    with store.engine.connect() as conn:
        return str(conn.scalar(select(table.c.value).where(table.c.name == LOGIN_NAME_KEY)))


def _recorded_name(store: EventStore, name: str) -> str:
    """The name a login attempt is recorded and throttled under: a user's own name, or the
    keyed digest of any other text."""
    table = schema.users
    with store.engine.connect() as conn:
        known = conn.scalar(select(table.c.name).where(table.c.name == name))
    return name if known is not None else login_name_digest(_login_name_key(store), name)


@dataclass(frozen=True, slots=True)
class LoginLock:
    """Locks on a user's logins right now: ``until`` for the user name from every address
    (its per-user ceiling), ``clients`` for single addresses (address → until), and the failed
    attempts counted in the window."""

    user: str
    until: dt.datetime | None
    clients: dict[str, dt.datetime]
    failures: int

    @property
    def locked(self) -> bool:
        return self.until is not None or bool(self.clients)

    def view(self) -> dict[str, Any]:
        return {
            "locked_until": _iso(self.until),
            "locked_clients": {c: _iso(t) for c, t in sorted(self.clients.items())},
            "failures": self.failures,
        }


def _failures(
    store: EventStore, key: str | None, client: str | None, since: dt.datetime, now: dt.datetime
) -> list[tuple[dt.datetime, str]]:
    """Failed attempts after ``since`` for a recorded name (and/or a client): (time, client).
    For a name, failures before the newest unlock of that name are left out."""
    table = schema.login_attempts
    stmt = select(table.c.at, table.c.client).where(
        table.c.at > since, table.c.at <= now, table.c.outcome == FAILED
    )
    with store.engine.connect() as conn:
        if key is not None:
            unlocked = conn.scalar(
                select(func.max(table.c.at)).where(
                    table.c.user_name == key, table.c.outcome == UNLOCKED, table.c.at <= now
                )
            )
            if unlocked is not None and unlocked >= since:
                stmt = stmt.where(table.c.at > unlocked)
            stmt = stmt.where(table.c.user_name == key)
        if client is not None:
            stmt = stmt.where(table.c.client == client[:64])
        return [(at, c) for at, c in conn.execute(stmt).all() if at is not None]


def _user_lock(store: EventStore, key: str, now: dt.datetime, policy: LoginPolicy) -> LoginLock:
    failures = _failures(store, key, None, now - policy.window, now)
    until = login_blocked_until([t for t, _ in failures], now, policy, policy.max_failures_per_user)
    by_client: dict[str, list[dt.datetime]] = {}
    for at, client in failures:
        by_client.setdefault(client, []).append(at)
    clients = {}
    for client, times in by_client.items():
        client_until = login_blocked_until(times, now, policy)
        if client_until is not None:
            clients[client] = client_until
    return LoginLock(key, until, clients, len(failures))


def _blocked(
    store: EventStore, key: str, client: str, now: dt.datetime, policy: LoginPolicy
) -> dt.datetime | None:
    lock = _user_lock(store, key, now, policy)
    by_client = _failures(store, None, client, now - policy.window, now)
    candidates = [
        lock.until,
        lock.clients.get(client[:64]),
        login_blocked_until([t for t, _ in by_client], now, policy, policy.max_failures_per_client),
    ]
    until = [t for t in candidates if t is not None]
    return max(until) if until else None


def login_blocked(
    store: EventStore,
    name: str,
    client: str,
    *,
    now: dt.datetime | None = None,
    policy: LoginPolicy = LoginPolicy(),
) -> dt.datetime | None:
    """Until when logins for ``name`` from ``client`` are refused, or None when they are not:
    too many recent failures for the pair, for the name from anywhere, or from the address
    (see :class:`LoginPolicy`)."""
    return _blocked(store, _recorded_name(store, name), client, _now(now), policy)


def login_lock(
    store: EventStore,
    name: str,
    *,
    now: dt.datetime | None = None,
    policy: LoginPolicy = LoginPolicy(),
) -> LoginLock:
    """The locks on a user's logins now (``microfab users show``); NotFoundError for no user."""
    if get_user(store, name) is None:
        raise NotFoundError(f"no user named {name!r}; 'microfab users list' shows them")
    return _user_lock(store, name, _now(now), policy)


def unlock_user(
    store: EventStore,
    name: str,
    *,
    actor: str,
    now: dt.datetime | None = None,
    policy: LoginPolicy = LoginPolicy(),
) -> LoginLock:
    """Lift every lock on a user's logins: failures so far stop counting for the name (the
    per-address ceiling still applies to an address guessing many names). Audited as
    ``users.unlock``; returns the locks that were lifted."""
    when = _now(now)
    lock = login_lock(store, name, now=when, policy=policy)
    with store.transaction() as conn:
        _record_attempt(conn, name, actor, UNLOCKED, when)
        append_audit(
            conn,
            actor=actor,
            action="users.unlock",
            target=f"user:{name}",
            before=lock.view(),
            after={"locked_until": None, "locked_clients": {}, "failures": 0},
        )
    return lock


def _record_attempt(
    conn: Connection, name: str, client: str, outcome: str, when: dt.datetime
) -> None:
    conn.execute(
        insert(schema.login_attempts).values(
            at=when, user_name=name[:64], client=client[:64], outcome=outcome
        )
    )


def verify_password(
    store: EventStore,
    name: str,
    password: str,
    *,
    client: str = "-",
    now: dt.datetime | None = None,
    policy: LoginPolicy = LoginPolicy(),
) -> LoginResult:
    """Check a login (user name, password, client address): refused while throttled, else
    verified against the argon2 hash. Every attempt is recorded (an unknown name as its keyed
    digest, see :func:`login_name_digest`); refusals while throttled are recorded as
    ``throttled`` and never extend the lock. Old hashes are upgraded."""
    when = _now(now)
    table = schema.users
    with store.engine.connect() as conn:
        row = conn.execute(select(table).where(table.c.name == name)).mappings().first()
    recorded = name if row is not None else login_name_digest(_login_name_key(store), name)
    blocked = _blocked(store, recorded, client, when, policy)
    if blocked is not None:
        with store.transaction() as conn:
            _record_attempt(conn, recorded, client, "throttled", when)
        return LoginResult(None, "throttled", blocked)
    stored_hash = row["password_hash"] if row is not None else _decoy_hash()
    try:
        matched = _hasher().verify(stored_hash, password) and row is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        matched = False
    with store.transaction() as conn:
        _record_attempt(conn, recorded, client, "ok" if matched else FAILED, when)
        if matched and row is not None and _hasher().check_needs_rehash(stored_hash):
            conn.execute(
                update(table)
                .where(table.c.name == name)
                .values(password_hash=_hasher().hash(password))
            )
    if not matched or row is None:
        return LoginResult(None, "bad_credentials")
    return LoginResult(user_principal(name, Role(row["role"])), "ok")


def forget_login_attempts(store: EventStore, before: dt.datetime) -> int:
    """Delete login attempts older than ``before``; returns how many."""
    table = schema.login_attempts
    with store.transaction() as conn:
        return int(conn.execute(delete(table).where(table.c.at < before)).rowcount or 0)


# ---------------------------------------------------------------------------- sessions


@dataclass(frozen=True, slots=True)
class NewSession:
    """A session just created: ``token`` goes into the cookie, ``csrf_token`` into forms."""

    token: str
    csrf_token: str
    expires_at: dt.datetime


@dataclass(frozen=True, slots=True)
class Session:
    """A live session: who it belongs to and the CSRF token its form posts must carry."""

    principal: Principal
    csrf_token: str
    expires_at: dt.datetime


def create_session(
    store: EventStore,
    user_name: str,
    *,
    ttl: dt.timedelta = SESSION_TTL,
    now: dt.datetime | None = None,
) -> NewSession:
    """Start a session for a user who has just logged in."""
    when = _now(now)
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    expires = when + ttl
    with store.transaction() as conn:
        conn.execute(
            insert(schema.user_sessions).values(
                secret_hash=_secret_hash(token),
                user_name=user_name,
                csrf_token=csrf,
                created_at=when,
                expires_at=expires,
                last_seen_at=when,
            )
        )
    return NewSession(token, csrf, expires)


def session_principal(
    store: EventStore, token: str, *, now: dt.datetime | None = None
) -> Session | None:
    """The session for a cookie value, or None when it is unknown, expired or its user gone
    (the user's current role applies, so a role change takes effect at once)."""
    when = _now(now)
    sessions = schema.user_sessions
    users = schema.users
    stmt = (
        select(sessions, users.c.role)
        .join(users, users.c.name == sessions.c.user_name)
        .where(sessions.c.secret_hash == _secret_hash(token))
    )
    with store.engine.connect() as conn:
        row = conn.execute(stmt).mappings().first()
    if row is None:
        return None
    expires = row["expires_at"]
    seen = row["last_seen_at"]
    assert expires is not None and seen is not None
    if expires <= when:
        return None
    if when - seen >= LAST_USED_RESOLUTION:
        with store.transaction() as conn:
            conn.execute(
                update(sessions)
                .where(sessions.c.secret_hash == row["secret_hash"])
                .values(last_seen_at=when)
            )
    return Session(user_principal(row["user_name"], Role(row["role"])), row["csrf_token"], expires)


def end_session(store: EventStore, token: str) -> bool:
    """Log out: forget the session; True when there was one."""
    table = schema.user_sessions
    with store.transaction() as conn:
        done = conn.execute(delete(table).where(table.c.secret_hash == _secret_hash(token)))
        return bool(done.rowcount)


# ---------------------------------------------------------------------------- tokens


@dataclass(frozen=True, slots=True)
class ApiToken:
    """A stored API token (never its secret)."""

    id: str
    name: str
    role: Role | None
    permissions: frozenset[Permission]
    created_at: dt.datetime
    created_by: str
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None
    last_used_at: dt.datetime | None

    def state(self, now: dt.datetime | None = None) -> str:
        """``active``, ``expired`` or ``revoked``."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= _now(now):
            return "expired"
        return "active"

    def audit_view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "role": None if self.role is None else self.role.value,
            "permissions": sorted(p.value for p in self.permissions),
            "expires_at": _iso(self.expires_at),
        }


def _token(row: Any) -> ApiToken:
    created = row["created_at"]
    assert created is not None
    return ApiToken(
        id=row["id"],
        name=row["name"],
        role=None if row["role"] is None else Role(row["role"]),
        permissions=frozenset(Permission(p) for p in row["permissions"].split()),
        created_at=created,
        created_by=row["created_by"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
        last_used_at=row["last_used_at"],
    )


def create_token(
    store: EventStore,
    name: str,
    *,
    role: Role | None,
    scopes: list[Permission] | None = None,
    expires_at: dt.datetime | None = None,
    actor: str,
    now: dt.datetime | None = None,
) -> tuple[ApiToken, str]:
    """Make a token; returns it and its secret text, which is not stored and cannot be shown
    again. A name may be reused only once the token that had it is revoked or expired."""
    check_name(name, "token name")
    permissions = token_permissions(role, scopes)
    when = _now(now)
    if expires_at is not None:
        expires_at = expires_at.astimezone(dt.UTC)
    if expires_at is not None and expires_at <= when:
        raise InputError(f"expiry {expires_at.isoformat()} is in the past; expected a later time")
    token_id = secrets.token_hex(4)
    secret = f"{TOKEN_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
    token = ApiToken(token_id, name, role, permissions, when, actor, expires_at, None, None)
    table = schema.api_tokens
    with store.transaction() as conn:
        for row in conn.execute(select(table).where(table.c.name == name)).mappings():
            if _token(row).state(when) == "active":
                raise InputError(
                    f"an active token is already named {name!r}; revoke it first or choose "
                    "another name"
                )
        conn.execute(
            insert(table).values(
                id=token_id,
                name=name,
                secret_hash=_secret_hash(secret),
                role=None if role is None else role.value,
                permissions=" ".join(sorted(p.value for p in permissions)),
                created_at=when,
                created_by=actor,
                expires_at=token.expires_at,
            )
        )
        append_audit(
            conn,
            actor=actor,
            action="tokens.create",
            target=f"token:{token_id}",
            after=token.audit_view(),
        )
    return token, secret


def list_tokens(store: EventStore) -> list[ApiToken]:
    table = schema.api_tokens
    with store.engine.connect() as conn:
        rows = conn.execute(select(table).order_by(table.c.name, table.c.created_at)).mappings()
        return [_token(row) for row in rows]


def revoke_token(
    store: EventStore, name_or_id: str, *, actor: str, now: dt.datetime | None = None
) -> ApiToken:
    """Revoke the active token with this name (or any token with this id)."""
    when = _now(now)
    table = schema.api_tokens
    with store.transaction() as conn:
        rows = conn.execute(
            select(table).where((table.c.id == name_or_id) | (table.c.name == name_or_id))
        ).mappings()
        found = [_token(row) for row in rows]
        by_id = [t for t in found if t.id == name_or_id]
        active = [t for t in found if t.state(when) == "active"]
        candidates = by_id or active
        if not candidates:
            raise NotFoundError(
                f"no active token with name or id {name_or_id!r}; 'microfab tokens list' shows them"
            )
        token = candidates[0]
        if token.revoked_at is not None:
            raise InputError(f"token {token.id} ({token.name}) is already revoked")
        conn.execute(update(table).where(table.c.id == token.id).values(revoked_at=when))
        append_audit(
            conn,
            actor=actor,
            action="tokens.revoke",
            target=f"token:{token.id}",
            before={"name": token.name, "revoked_at": None},
            after={"name": token.name, "revoked_at": _iso(when)},
        )
    return ApiToken(
        token.id,
        token.name,
        token.role,
        token.permissions,
        token.created_at,
        token.created_by,
        token.expires_at,
        when,
        token.last_used_at,
    )


def verify_token(
    store: EventStore, secret: str, *, now: dt.datetime | None = None
) -> Principal | None:
    """The principal of a bearer token, or None when it is unknown, revoked or expired; the
    token's last-used time is updated (at most once a minute)."""
    if not secret.startswith(TOKEN_PREFIX):
        return None
    when = _now(now)
    table = schema.api_tokens
    with store.engine.connect() as conn:
        row = (
            conn.execute(select(table).where(table.c.secret_hash == _secret_hash(secret)))
            .mappings()
            .first()
        )
    if row is None:
        return None
    token = _token(row)
    if token.state(when) != "active":
        return None
    if token.last_used_at is None or when - token.last_used_at >= LAST_USED_RESOLUTION:
        with store.transaction() as conn:
            conn.execute(update(table).where(table.c.id == token.id).values(last_used_at=when))
    return Principal("token", token.name, token.role, token.permissions)


__all__ = [
    "ROLE_PERMISSIONS",
    "ApiToken",
    "LoginLock",
    "LoginResult",
    "NewSession",
    "Session",
    "User",
    "add_user",
    "create_session",
    "create_token",
    "end_session",
    "generate_password",
    "get_user",
    "list_tokens",
    "list_users",
    "login_blocked",
    "login_lock",
    "login_name_digest",
    "remove_user",
    "revoke_token",
    "session_principal",
    "set_password",
    "unlock_user",
    "verify_password",
    "verify_token",
]
