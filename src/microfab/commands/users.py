"""``microfab users …`` (add, list, show, remove, password, unlock) and ``microfab tokens …`` (create, list,
revoke).

Passwords come from a twice-typed prompt, from standard input (``--password-stdin``), or are
generated and printed once; no default password exists. Token secrets are printed once and stored
only as a hash. Every change is written to the audit log with the actor ``cli:OSUSER``.
"""

from __future__ import annotations

import datetime as dt
import getpass
import re
import sys
import zoneinfo
from typing import Annotated

import typer
from rich import box
from rich.table import Table

from microfab.commands.common import DbOption, JsonOption, err, out, print_json
from microfab.errors import InputError, NotFoundError
from microfab.model.events import format_ts
from microfab.model.identity import ROLE_PERMISSIONS, check_password, parse_permission, parse_role
from microfab.model.timerange import parse_time
from microfab.store import open_store
from microfab.store.identity import (
    ApiToken,
    LoginLock,
    add_user,
    create_token,
    generate_password,
    get_user,
    list_tokens,
    list_users,
    login_lock,
    remove_user,
    revoke_token,
    set_password,
    unlock_user,
)

users_app = typer.Typer(
    help="People who sign in to the dashboard and API, with their roles.", no_args_is_help=True
)
tokens_app = typer.Typer(
    help="API tokens for machines and scripts: scoped, revocable, stored hashed.",
    no_args_is_help=True,
)

SITE_ZONE = zoneinfo.ZoneInfo("Asia/Hong_Kong")
_DURATION = re.compile(r"(\d+)\s*([hdw])")
_UNITS = {"h": dt.timedelta(hours=1), "d": dt.timedelta(days=1), "w": dt.timedelta(weeks=1)}

NameArgument = Annotated[str, typer.Argument(help="User name, e.g. may.chan", metavar="NAME")]
PasswordStdinOption = Annotated[
    bool,
    typer.Option(
        "--password-stdin", help="Read the password from the first line of standard input"
    ),
]


def cli_actor() -> str:
    """How the audit log names whoever runs the command line: ``cli:OSUSER``."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"


def _password(password_stdin: bool) -> tuple[str, bool]:
    """The new password and whether it was generated (then it must be shown once)."""
    if password_stdin:
        line = sys.stdin.readline()
        password = line.rstrip("\r\n")
        if not password:
            raise InputError("--password-stdin read an empty line; expected the password")
        return check_password(password), False
    if sys.stdin.isatty():
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
        return check_password(password), False
    return generate_password(), True


@users_app.command("add")
def users_add(
    name: NameArgument,
    role: Annotated[
        str,
        typer.Option(
            "--role",
            help="viewer, operator, planner, engineer, funding_officer or admin",
            show_default=False,
        ),
    ],
    password_stdin: PasswordStdinOption = False,
    db: DbOption = None,
) -> None:
    """Add a user; prompts for the password twice, or prints a generated one-time password."""
    parsed_role = parse_role(role)
    password, generated = _password(password_stdin)
    with open_store(db) as store:
        user = add_user(store, name, parsed_role, password, actor=cli_actor())
    out.print(f"user {user.name} added with role {user.role.value}", highlight=False)
    if generated:
        out.print(f"one-time password (shown only now): {password}", highlight=False)
        err.print(
            f"give it to {user.name} privately; change it with "
            f"'microfab users password {user.name}'",
            style="dim",
        )


@users_app.command("password")
def users_password(
    name: NameArgument, password_stdin: PasswordStdinOption = False, db: DbOption = None
) -> None:
    """Set a new password for a user (prompted twice, from stdin, or generated) and sign them out."""
    password, generated = _password(password_stdin)
    with open_store(db) as store:
        set_password(store, name, password, actor=cli_actor())
    out.print(f"password of {name} changed; their sessions are ended", highlight=False)
    if generated:
        out.print(f"one-time password (shown only now): {password}", highlight=False)


@users_app.command("list")
def users_list(db: DbOption = None, as_json: JsonOption = False) -> None:
    """List users and their roles."""
    with open_store(db) as store:
        users = list_users(store)
    if as_json:
        print_json(
            [
                {
                    "name": u.name,
                    "role": u.role.value,
                    "created_at": format_ts(u.created_at),
                    "password_changed_at": format_ts(u.password_changed_at),
                }
                for u in users
            ]
        )
        return
    if not users:
        out.print("no users yet; add the first with 'microfab users add NAME --role admin'")
        return
    table = Table(box=box.SIMPLE_HEAD)
    for column in ("user", "role", "created (UTC)", "password changed (UTC)"):
        table.add_column(column, overflow="fold")
    for u in users:
        table.add_row(u.name, u.role.value, _minute(u.created_at), _minute(u.password_changed_at))
    out.print(table)


@users_app.command("remove")
def users_remove(name: NameArgument, db: DbOption = None) -> None:
    """Remove a user and end their sessions (the last admin stays)."""
    with open_store(db) as store:
        user = remove_user(store, name, actor=cli_actor())
    out.print(f"user {user.name} ({user.role.value}) removed", highlight=False)


def _lock_lines(lock: LoginLock) -> list[str]:
    failed = f"{lock.failures} failed sign-ins in the last 15 minutes"
    if not lock.locked:
        return [f"logins: not locked ({failed})"]
    lines = []
    if lock.until is not None:
        lines.append(f"logins: LOCKED from every address until {_minute(lock.until)} UTC")
    for client, until in sorted(lock.clients.items()):
        lines.append(f"logins: LOCKED from {client} until {_minute(until)} UTC")
    lines.append(f"{failed}; lift with 'microfab users unlock {lock.user}'")
    return lines


@users_app.command("show")
def users_show(name: NameArgument, db: DbOption = None, as_json: JsonOption = False) -> None:
    """Show a user: role, dates, and whether their logins are locked (and from where)."""
    with open_store(db) as store:
        user = get_user(store, name)
        if user is None:
            raise NotFoundError(f"no user named {name!r}; 'microfab users list' shows them")
        lock = login_lock(store, name)
    if as_json:
        print_json(
            {
                "name": user.name,
                "role": user.role.value,
                "created_at": format_ts(user.created_at),
                "password_changed_at": format_ts(user.password_changed_at),
                **lock.view(),
            }
        )
        return
    out.print(f"user: {user.name}", highlight=False)
    out.print(f"role: {user.role.value}", highlight=False)
    out.print(f"created: {_minute(user.created_at)} UTC", highlight=False)
    out.print(f"password changed: {_minute(user.password_changed_at)} UTC", highlight=False)
    for line in _lock_lines(lock):
        out.print(line, highlight=False)


@users_app.command("unlock")
def users_unlock(name: NameArgument, db: DbOption = None) -> None:
    """Lift the login locks on a user (audited); their failed attempts so far stop counting."""
    with open_store(db) as store:
        lifted = unlock_user(store, name, actor=cli_actor())
    if lifted.locked:
        out.print(f"logins of {name} unlocked", highlight=False)
    else:
        out.print(f"logins of {name} were not locked; failed attempts reset", highlight=False)


# ---------------------------------------------------------------------------- tokens


def parse_expiry(text: str, now: dt.datetime) -> dt.datetime:
    """``90d``, ``12h``, ``4w`` from now, or a time (``2027-03-31`` is site midnight)."""
    match = _DURATION.fullmatch(text.strip().lower())
    if match:
        amount = int(match.group(1))
        if amount == 0:
            raise InputError(f"--expires {text!r} is zero; expected e.g. 90d, 12h or 4w")
        return now + amount * _UNITS[match.group(2)]
    return parse_time(text, SITE_ZONE, field="--expires")


def _minute(value: dt.datetime | None) -> str:
    return "" if value is None else value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M")


def _token_dict(token: ApiToken) -> dict[str, object]:
    return {
        "id": token.id,
        "name": token.name,
        "role": None if token.role is None else token.role.value,
        "permissions": sorted(p.value for p in token.permissions),
        "state": token.state(),
        "created_at": format_ts(token.created_at),
        "created_by": token.created_by,
        "expires_at": None if token.expires_at is None else format_ts(token.expires_at),
        "revoked_at": None if token.revoked_at is None else format_ts(token.revoked_at),
        "last_used_at": None if token.last_used_at is None else format_ts(token.last_used_at),
    }


@tokens_app.command("create")
def tokens_create(
    name: Annotated[
        str, typer.Argument(help="What uses the token, e.g. line1-scanner", metavar="NAME")
    ],
    role: Annotated[
        str | None,
        typer.Option("--role", help="Grant this role's permissions", show_default=False),
    ] = None,
    scope: Annotated[
        list[str] | None,
        typer.Option(
            "--scope",
            help="Only this permission (e.g. events.write); repeat it; within --role if given",
            show_default=False,
        ),
    ] = None,
    expires: Annotated[
        str | None,
        typer.Option(
            "--expires",
            help="90d, 12h, 4w from now, or a time such as 2027-03-31 \\[default: never]",
            show_default=False,
        ),
    ] = None,
    db: DbOption = None,
) -> None:
    """Create an API token and print it once (send it as 'Authorization: Bearer TOKEN')."""
    parsed_role = None if role is None else parse_role(role)
    scopes = [parse_permission(s) for item in scope or [] for s in item.split(",") if s.strip()]
    now = dt.datetime.now(dt.UTC)
    expires_at = None if expires is None else parse_expiry(expires, now)
    with open_store(db) as store:
        token, secret = create_token(
            store,
            name,
            role=parsed_role,
            scopes=scopes or None,
            expires_at=expires_at,
            actor=cli_actor(),
            now=now,
        )
    until = (
        "never expires" if token.expires_at is None else f"expires {_minute(token.expires_at)} UTC"
    )
    out.print(
        f"token {token.id} ({token.name}) created: "
        f"{' '.join(sorted(p.value for p in token.permissions))}; {until}",
        highlight=False,
    )
    out.print(secret, highlight=False)
    err.print("shown only now: store it in the machine's secret store", style="dim")


@tokens_app.command("list")
def tokens_list(db: DbOption = None, as_json: JsonOption = False) -> None:
    """List tokens (never their secrets): scope, state, expiry, last use."""
    with open_store(db) as store:
        tokens = list_tokens(store)
    if as_json:
        print_json([_token_dict(t) for t in tokens])
        return
    if not tokens:
        out.print("no tokens yet; create one with 'microfab tokens create NAME --role ROLE'")
        return
    for t in tokens:
        full = t.role is not None and t.permissions == ROLE_PERMISSIONS[t.role]
        scope = " ".join(sorted(p.value for p in t.permissions))
        scope = f"role {t.role.value}" if full and t.role is not None else scope
        expires = "never" if t.expires_at is None else t.expires_at.strftime("%Y-%m-%d")
        used = "never" if t.last_used_at is None else f"{_minute(t.last_used_at)} UTC"
        out.print(
            f"{t.id}  {t.name}  {t.state()}  {scope}  expires {expires}  last used {used}",
            highlight=False,
        )


@tokens_app.command("revoke")
def tokens_revoke(
    name_or_id: Annotated[
        str, typer.Argument(help="Token name or id, as 'tokens list' shows", metavar="TOKEN")
    ],
    db: DbOption = None,
) -> None:
    """Revoke a token at once; calls with it are refused from then on."""
    with open_store(db) as store:
        token = revoke_token(store, name_or_id, actor=cli_actor())
    out.print(f"token {token.id} ({token.name}) revoked", highlight=False)
