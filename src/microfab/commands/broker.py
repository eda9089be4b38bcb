"""``microfab broker``: run the embedded MQTT broker."""

from __future__ import annotations

from typing import Annotated

import typer

from microfab.commands.mqtt_options import PasswordOption
from microfab.console import err
from microfab.errors import InputError


def broker(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 1883,
    username: Annotated[
        str | None, typer.Option("--username", help="The one MQTT user clients log in as")
    ] = None,
    password: PasswordOption = None,
    insecure_dev: Annotated[
        bool,
        typer.Option(
            "--insecure-dev",
            help="Accept anonymous clients (development on one machine only)",
        ),
    ] = False,
) -> None:
    """Run the embedded MQTT 3.1.1 broker (for the demo and small sites; use Mosquitto/EMQX in production)."""
    from microfab.connect.broker import run_broker
    from microfab.settings import load_settings, secret

    password = password or secret(load_settings().mqtt_password)
    if insecure_dev and (username or password):
        raise InputError("--insecure-dev accepts anonymous clients: give it without --username")
    if not insecure_dev and not (username and password):
        raise InputError(
            "the broker requires credentials: give --username and --password (or "
            "$MICROFAB_MQTT_PASSWORD), or --insecure-dev to accept anonymous clients on a "
            "development machine"
        )
    users = {username: password} if username and password else None
    who = f"user {username} only" if users else "ANONYMOUS clients (--insecure-dev)"
    err.print(
        f"embedded MQTT broker on mqtt://{host}:{port}, accepting {who}; Ctrl-C to stop",
        highlight=False,
    )
    try:
        run_broker(host, port, users)
    except ValueError as exc:
        raise InputError(f"--username: {exc}") from None
