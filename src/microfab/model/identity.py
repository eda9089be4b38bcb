"""Roles, permissions and the rules for user names, token scopes and login throttling (pure).

Every user has one role; a role grants a fixed set of permissions (:data:`ROLE_PERMISSIONS`).
An API token carries its own set of permissions: all of a role's, or a narrower scope. The API
asks one question per route — does this principal hold permission P? — through :func:`allows`.

==================  ==============================================================
role                may
==================  ==============================================================
viewer              read the plant, orders, plans, OEE, reports
operator            viewer + record operator entries (state, reason, counts, scrap), alerts,
                    stock movements
planner             viewer + create/release/cancel orders, make and commit plans, stock
engineer            viewer + operator entries, apply the factory model, append events, stock
funding_officer     viewer + read and change funding records, read the audit log
admin               everything, including users, tokens and the audit log
hq_manager          viewer + HQ's roll-up of every site
site_manager        HQ's roll-up of the sites granted to them, nothing else
technician          viewer + operator entries, maintenance work orders, safety reports
==================  ==============================================================

``footprints.read`` (the PACT API for customers) belongs to no role but admin: it is given to a
customer's token alone (``microfab tokens create NAME --scope footprints.read``).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from microfab.errors import InputError


class Role(StrEnum):
    """What a person (or a token made for a role) is in the plant."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    PLANNER = "planner"
    ENGINEER = "engineer"
    FUNDING_OFFICER = "funding_officer"
    ADMIN = "admin"
    # multi-site (issue 20)
    HQ_MANAGER = "hq_manager"
    """Reads the plant and HQ's roll-up of every site."""
    SITE_MANAGER = "site_manager"
    """Reads HQ's roll-up of the sites granted to them only (``microfab hq grant``)."""
    TECHNICIAN = "technician"


class Permission(StrEnum):
    """One thing a principal may do; each API route needs exactly one."""

    PLANT_READ = "plant.read"
    """Read machines, events, orders, WIP, plans, OEE, downtime, carbon and shift reports."""
    OPERATOR_RECORD = "operator.record"
    """Record operator entries at a machine: state and reason, good and scrap counts; acknowledge
    and close alerts."""
    ORDERS_WRITE = "orders.write"
    """Create, release and cancel work orders."""
    PLAN_WRITE = "plan.write"
    """Make, change and commit production plans."""
    FACTORY_WRITE = "factory.write"
    """Apply a new factory model."""
    EVENTS_WRITE = "events.write"
    """Append machine events through the API (scripts, edge gateways)."""
    FUNDING_READ = "funding.read"
    """Read funding projects, the ledger and evidence."""
    FUNDING_WRITE = "funding.write"
    """Change funding records (ledger entries, claims)."""
    AUDIT_READ = "audit.read"
    """Read the audit log and its verification."""
    USERS_MANAGE = "users.manage"
    """Add and remove users, create and revoke tokens."""
    FOOTPRINTS_READ = "footprints.read"
    """Read the PACT product footprints (``/3/footprints``) and nothing else: for a customer's
    system, through a token made with ``--scope footprints.read``."""
    INSPECTION_WRITE = "inspection.write"
    """Send images to a vision inspection station to be judged (a camera gateway's token)."""
    HQ_READ = "hq.read"
    """Read HQ's roll-up of the sites (``/hq``): every site's, or with no ``plant.read`` (a site
    manager) only the sites granted to the principal."""
    MAINT_WRITE = "maint.write"
    """Create, schedule, start and finish maintenance work orders; issue spare parts."""
    SAFETY_WRITE = "safety.write"
    """Report safety incidents and near misses; move them on and close them."""
    STOCK_WRITE = "stock.write"
    """Record stock movements: receipts, issues, transfers, counts, adjustments, holds (reading
    stock is ``plant.read``)."""


_P = Permission
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.VIEWER: frozenset({_P.PLANT_READ}),
    Role.OPERATOR: frozenset({_P.PLANT_READ, _P.OPERATOR_RECORD, _P.STOCK_WRITE}),
    Role.PLANNER: frozenset({_P.PLANT_READ, _P.ORDERS_WRITE, _P.PLAN_WRITE, _P.STOCK_WRITE}),
    Role.ENGINEER: frozenset(
        {
            _P.PLANT_READ,
            _P.OPERATOR_RECORD,
            _P.FACTORY_WRITE,
            _P.EVENTS_WRITE,
            _P.INSPECTION_WRITE,
            _P.STOCK_WRITE,
        }
    ),
    Role.FUNDING_OFFICER: frozenset(
        {_P.PLANT_READ, _P.FUNDING_READ, _P.FUNDING_WRITE, _P.AUDIT_READ}
    ),
    Role.ADMIN: frozenset(Permission),
    Role.HQ_MANAGER: frozenset({_P.PLANT_READ, _P.HQ_READ}),
    Role.SITE_MANAGER: frozenset({_P.HQ_READ}),
    Role.TECHNICIAN: frozenset(
        {_P.PLANT_READ, _P.OPERATOR_RECORD, _P.MAINT_WRITE, _P.SAFETY_WRITE}
    ),
}
# maintenance and safety (issue 21): engineers run maintenance too; anyone at a machine reports
ROLE_PERMISSIONS[Role.ENGINEER] |= {_P.MAINT_WRITE, _P.SAFETY_WRITE}
ROLE_PERMISSIONS[Role.OPERATOR] |= {_P.SAFETY_WRITE}
"""The permission table: what each role may do. docs/security.md carries the same table."""

USER_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
"""User and token names: lower-case letters, digits, '.', '_', '-'; 1–64 characters."""

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024


def parse_role(text: str) -> Role:
    """A role from its name; InputError naming the roles when it is not one."""
    try:
        return Role(text.strip().lower())
    except ValueError:
        names = ", ".join(r.value for r in Role)
        raise InputError(f"unknown role {text!r}; expected one of {names}") from None


def parse_permission(text: str) -> Permission:
    """A permission from its name; InputError naming the permissions when it is not one."""
    try:
        return Permission(text.strip().lower())
    except ValueError:
        names = ", ".join(p.value for p in Permission)
        raise InputError(f"unknown scope {text!r}; expected one of {names}") from None


def check_name(name: str, what: str = "user name") -> str:
    """``name`` when it is a valid user or token name; InputError otherwise."""
    if not USER_NAME.fullmatch(name):
        raise InputError(
            f"{what} {name!r} is not valid; expected 1–64 lower-case letters, digits, "
            "'.', '_' or '-', starting with a letter or digit"
        )
    return name


def check_password(password: str) -> str:
    """``password`` when it is long enough to keep; InputError otherwise."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InputError(
            f"the password has {len(password)} characters; expected at least {MIN_PASSWORD_LENGTH}"
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InputError(f"the password is longer than {MAX_PASSWORD_LENGTH} characters")
    return password


def token_permissions(
    role: Role | None, scopes: Sequence[Permission] | None
) -> frozenset[Permission]:
    """The permissions a new token carries: its role's, narrowed to ``scopes`` when given.

    A scope outside the role is refused (a token never holds more than its role); with no role,
    the scopes are the permissions. At least one of the two is needed.
    """
    if role is None and not scopes:
        raise InputError("a token needs --role ROLE or at least one --scope PERMISSION")
    if role is None:
        return frozenset(scopes or ())
    granted = ROLE_PERMISSIONS[role]
    if not scopes:
        return granted
    outside = sorted(p.value for p in scopes if p not in granted)
    if outside:
        raise InputError(
            f"scope {', '.join(outside)} is not granted to role {role.value}; expected some of "
            + ", ".join(sorted(p.value for p in granted))
        )
    return frozenset(scopes)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking: a signed-in user or an API token, with what it may do."""

    kind: str
    """``user`` or ``token``."""
    name: str
    role: Role | None
    permissions: frozenset[Permission]

    @property
    def actor(self) -> str:
        """How the audit log names this principal: ``user:NAME`` or ``token:NAME``."""
        return f"{self.kind}:{self.name}"

    def allows(self, permission: Permission) -> bool:
        return permission in self.permissions


def allows(principal: Principal | None, permission: Permission) -> bool:
    """True when ``principal`` (None: nobody signed in) holds ``permission``."""
    return principal is not None and permission in principal.permissions


def user_principal(name: str, role: Role) -> Principal:
    return Principal("user", name, role, ROLE_PERMISSIONS[role])


@dataclass(frozen=True, slots=True)
class LoginPolicy:
    """Login throttling, over failed attempts (wrong name or password) within ``window``:

    - ``max_failures`` for one user name from one client address lock that pair;
    - ``max_failures_per_user`` for one user name from any address lock the name (a looser
      ceiling, so that guessing from many addresses is slowed without one address locking the
      user out);
    - ``max_failures_per_client`` from one address for any names lock the address.

    Attempts refused while locked are not failures: they never extend a lock. A lock ends when
    enough failures have left the window, or when an admin lifts it (``microfab users unlock``).
    """

    max_failures: int = 5
    max_failures_per_user: int = 50
    max_failures_per_client: int = 50
    window: dt.timedelta = dt.timedelta(minutes=15)


def login_blocked_until(
    failure_times: Iterable[dt.datetime],
    now: dt.datetime,
    policy: LoginPolicy,
    limit: int | None = None,
) -> dt.datetime | None:
    """When attempts may start again, or None when they may now: the time the oldest failure
    that still counts leaves the window, once ``limit`` (default ``policy.max_failures``)
    failures are in it."""
    most = policy.max_failures if limit is None else limit
    recent = sorted(t for t in failure_times if now - policy.window < t <= now)
    if len(recent) < most:
        return None
    return recent[-most] + policy.window
