"""The MQTT options shared by ``demo``, ``sim``, ``ingest``, ``broker`` and ``connect sparkplug``."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from microfab.errors import InputError

if TYPE_CHECKING:
    from microfab.connect.mqtt_client import BrokerSettings

BrokerOption = Annotated[
    str | None,
    typer.Option(
        "--broker",
        help="MQTT broker URL mqtt://\\[USER@]HOST:PORT or mqtts://… \\[default: $MICROFAB_BROKER or "
        "mqtt://127.0.0.1:1883]",
        show_default=False,
    ),
]
UsernameOption = Annotated[str | None, typer.Option("--username", help="MQTT user name")]
PasswordOption = Annotated[
    str | None,
    typer.Option(
        "--password", help="MQTT password \\[default: $MICROFAB_MQTT_PASSWORD]", show_default=False
    ),
]
TlsCaOption = Annotated[
    Path | None, typer.Option("--tls-ca", help="CA certificate file; turns TLS on")
]
MqttVersionOption = Annotated[
    str, typer.Option("--mqtt-version", help="MQTT protocol version: 5 or 3.1.1")
]


def check_tls_ca(tls_ca: Path | None) -> None:
    """Refuse an unreadable CA file before anything starts (paho would raise deep inside)."""
    if tls_ca is None:
        return
    try:
        ssl.create_default_context(cafile=str(tls_ca))
    except (OSError, ssl.SSLError) as exc:
        raise InputError(f"--tls-ca {tls_ca}: not a readable CA certificate ({exc})") from None


def broker_settings(
    broker: str | None,
    username: str | None,
    password: str | None,
    tls_ca: Path | None,
    mqtt_version: str = "5",
) -> BrokerSettings:
    """The broker to connect to, from the MQTT options (and ``$MICROFAB_BROKER``,
    ``$MICROFAB_MQTT_PASSWORD`` for what they leave out)."""
    from microfab.connect.mqtt_client import parse_broker_url

    check_tls_ca(tls_ca)
    return parse_broker_url(
        broker,
        username=username,
        password=password,
        tls_ca=str(tls_ca) if tls_ca else None,
        protocol=mqtt_version,
    )
