"""``microfab broker``: run the embedded MQTT broker; ``microfab broker acl``: per-device logins."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from microfab.commands.mqtt_options import PasswordOption
from microfab.console import err, out
from microfab.errors import InputError

broker_app = typer.Typer(no_args_is_help=False)


@broker_app.callback(invoke_without_command=True)
def broker(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 1883,
    username: Annotated[
        str | None,
        typer.Option(
            "--username",
            help="The one MQTT user clients log in as (with --access: a service login that may "
            "use every topic)",
        ),
    ] = None,
    password: PasswordOption = None,
    access: Annotated[
        Path | None,
        typer.Option(
            "--access",
            help="Access file from 'microfab broker acl': one login per device, each limited "
            "to its own topics",
        ),
    ] = None,
    insecure_dev: Annotated[
        bool,
        typer.Option(
            "--insecure-dev",
            help="Accept anonymous clients (development on one machine only)",
        ),
    ] = False,
) -> None:
    """Run the embedded MQTT 3.1.1 broker (for the demo and small sites; use Mosquitto/EMQX in
    production). `microfab broker acl` writes per-device logins for it and for Mosquitto."""
    if ctx.invoked_subcommand is not None:
        return
    from microfab.connect.broker import run_broker
    from microfab.settings import load_settings, secret

    password = password or secret(load_settings().mqtt_password)
    if insecure_dev and (username or password or access):
        raise InputError(
            "--insecure-dev accepts anonymous clients: give it without --username or --access"
        )
    if username and not password:
        raise InputError(
            "the broker requires credentials: give --username and --password (or "
            "$MICROFAB_MQTT_PASSWORD), or --insecure-dev to accept anonymous clients on a "
            "development machine"
        )
    if not insecure_dev and not access and not (username and password):
        raise InputError(
            "the broker requires credentials: give --access FILE (per-device logins, "
            "'microfab broker acl'), or --username and --password (or $MICROFAB_MQTT_PASSWORD), "
            "or --insecure-dev to accept anonymous clients on a development machine"
        )
    users = {username: password} if username and password else None
    if access is not None:
        who = "the logins of " + str(access) + (f" and user {username}" if users else "")
    else:
        who = f"user {username} only" if users else "ANONYMOUS clients (--insecure-dev)"
    if access is not None:
        from microfab.connect.broker_acl import read_access_file

        try:
            read_access_file(access)
        except ValueError as exc:
            raise InputError(f"--access: {exc}") from None
    err.print(
        f"embedded MQTT broker on mqtt://{host}:{port}, accepting {who}; Ctrl-C to stop",
        highlight=False,
    )
    try:
        run_broker(host, port, users, access)
    except ValueError as exc:
        raise InputError(f"--username: {exc}") from None


@broker_app.command("acl")
def acl(
    factory_file: Annotated[
        Path, typer.Option("--factory", help="Factory file (YAML): one login per machine")
    ],
    out_file: Annotated[
        Path | None,
        typer.Option("--out", help="Access file for 'microfab broker --access' (YAML, mode 600)"),
    ] = None,
    mosquitto: Annotated[
        Path | None,
        typer.Option(
            "--mosquitto", help="Folder for Mosquitto's password_file and acl_file (mode 600)"
        ),
    ] = None,
    passwords_file: Annotated[
        Path | None,
        typer.Option(
            "--passwords",
            help="Write the new passwords to this file (mode 600) instead of printing them",
        ),
    ] = None,
    service_user: Annotated[
        str,
        typer.Option("--service-user", help="The login of microfab itself (ingest, connectors)"),
    ] = "microfab",
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Replace existing files (every device needs its new password)"
        ),
    ] = False,
    hq: Annotated[
        bool,
        typer.Option(
            "--hq",
            help="HQ's broker: one uplink login per site of the factory (it may publish only "
            "microfab/v1/SITE/#) instead of one per machine",
        ),
    ] = False,
) -> None:
    """Create one MQTT login per machine with a topic ACL: for the embedded broker and Mosquitto."""
    from microfab.connect.broker_acl import (
        logins_for_factory,
        logins_for_hq,
        mosquitto_conf_lines,
        new_password,
        write_access_file,
        write_mosquitto_files,
        write_private_file,
    )
    from microfab.model.factory_file import load_factory

    if out_file is None and mosquitto is None:
        raise InputError("give --out FILE (embedded broker), --mosquitto DIR, or both")
    targets = [p for p in (out_file, passwords_file) if p is not None]
    if mosquitto is not None:
        targets += [mosquitto / "password_file", mosquitto / "acl_file"]
    existing = [str(p) for p in targets if p.exists()]
    if existing and not force:
        raise InputError(
            f"{', '.join(existing)} already {'exists' if len(existing) == 1 else 'exist'}: give "
            "--force to replace (every device then needs its new password)"
        )
    try:
        chosen = logins_for_hq if hq else logins_for_factory
        logins = chosen(load_factory(factory_file), service_user)
    except ValueError as exc:
        raise InputError(f"--factory: {exc}") from None
    passwords = {login.user: new_password() for login in logins}
    if out_file is not None:
        write_access_file(out_file, logins, passwords)
        err.print(
            f"wrote {out_file}: {len(logins)} logins, argon2 hashes, mode 600", highlight=False
        )
    if mosquitto is not None:
        password_file, acl_file = write_mosquitto_files(mosquitto, logins, passwords)
        err.print(
            f"wrote {password_file} and {acl_file} (mode 600); in mosquitto.conf:", highlight=False
        )
        for line in mosquitto_conf_lines(mosquitto):
            err.print(f"  {line}", highlight=False, markup=False)
        err.print(
            "Mosquitto reads them as the user it runs as: chown mosquitto: "
            f"{password_file} {acl_file}",
            highlight=False,
        )
    rows = [f"{login.user}\t{login.kind}\t{passwords[login.user]}" for login in logins]
    if passwords_file is not None:
        write_private_file(passwords_file, "user\tkind\tpassword\n" + "\n".join(rows) + "\n")
        err.print(f"wrote the passwords to {passwords_file} (mode 600)", highlight=False)
        return
    err.print("the passwords, shown only now:", highlight=False)
    out.print("user\tkind\tpassword", highlight=False, markup=False)
    for row in rows:
        out.print(row, highlight=False, markup=False, soft_wrap=True)
