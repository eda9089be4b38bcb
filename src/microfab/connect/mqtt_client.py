"""MQTT connection settings and paho-mqtt client construction, shared by every MQTT adapter.

A broker is named by a URL: ``mqtt://[USER[:PASSWORD]@]HOST[:PORT]`` (plain, port 1883) or
``mqtts://…`` (TLS, port 8883). ``--username``/``--password`` and ``MICROFAB_MQTT_PASSWORD``
override what the URL carries; passwords are masked wherever a URL is shown.
"""

from __future__ import annotations

import ssl
import threading
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from microfab.errors import InputError, MicrofabError

DEFAULT_BROKER = "mqtt://127.0.0.1:1883"


class BrokerError(MicrofabError):
    """The MQTT broker refused us or cannot be reached."""

    key = "broker_unavailable"


@dataclass(frozen=True)
class BrokerSettings:
    """Where and how to connect to an MQTT broker."""

    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = None
    tls_ca: str | None = None
    protocol: int = 5  # 5 or 4 (= MQTT 3.1.1)

    @property
    def display(self) -> str:
        scheme = "mqtts" if self.tls else "mqtt"
        user = (
            f"{self.username}:***@"
            if self.username and self.password
            else (f"{self.username}@" if self.username else "")
        )
        return f"{scheme}://{user}{self.host}:{self.port}"

    def with_credentials(self, username: str | None, password: str | None) -> BrokerSettings:
        return replace(self, username=username or self.username, password=password or self.password)


def parse_broker_url(
    url: str | None,
    *,
    username: str | None = None,
    password: str | None = None,
    tls_ca: str | None = None,
    protocol: str = "5",
) -> BrokerSettings:
    """Read a broker URL (see the module docstring) into :class:`BrokerSettings`."""
    from microfab.settings import load_settings, secret

    environment = load_settings()
    text = url or environment.broker or DEFAULT_BROKER
    parts = urlsplit(text)
    if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl") or not parts.hostname:
        raise InputError(f"--broker: '{text}' is not a broker URL such as mqtt://127.0.0.1:1883")
    tls = parts.scheme in ("mqtts", "ssl") or tls_ca is not None
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError:
        raise InputError(f"--broker: '{text}' has an invalid port") from None
    versions = {"5": 5, "5.0": 5, "3.1.1": 4, "311": 4, "4": 4}
    if protocol not in versions:
        raise InputError(f"--mqtt-version: '{protocol}' is not 5 or 3.1.1")
    return BrokerSettings(
        host=parts.hostname,
        port=port,
        tls=tls,
        username=username or (unquote(parts.username) if parts.username else None),
        password=password
        or secret(environment.mqtt_password)
        or (unquote(parts.password) if parts.password else None),
        tls_ca=tls_ca,
        protocol=versions[protocol],
    )


def new_client(
    settings: BrokerSettings, client_id: str, *, manual_ack: bool = False, clean: bool = False
) -> paho.Client:
    """A paho client (callback API 2) configured for ``settings``; not yet connected.

    This is the one place microfab builds a paho client. The session is persistent unless
    ``clean``: on MQTT 3.1.1 that sets the clean-session flag here; on MQTT 5 the caller passes
    ``clean_start=True`` to ``connect`` (see :func:`connect_blocking`)."""
    version = paho.MQTTv5 if settings.protocol == 5 else paho.MQTTv311
    kwargs: dict[str, object] = {
        "client_id": client_id,
        "protocol": version,
        "manual_ack": manual_ack,
    }
    if version != paho.MQTTv5:
        kwargs["clean_session"] = clean
    client = paho.Client(CallbackAPIVersion.VERSION2, **kwargs)  # type: ignore[arg-type]
    if settings.username:
        client.username_pw_set(settings.username, settings.password)
    if settings.tls:
        context = ssl.create_default_context(cafile=settings.tls_ca)
        client.tls_set_context(context)
    return client


def connect_blocking(
    client: paho.Client, settings: BrokerSettings, timeout_s: float = 10.0, **kwargs: object
) -> None:
    """Connect and wait for the broker's answer; raise :class:`BrokerError` with one clear sentence."""
    answered = threading.Event()
    outcome: dict[str, object] = {}
    previous: Any = client.on_connect

    def on_connect(c: paho.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        outcome["reason"] = reason
        answered.set()
        if previous is not None:
            previous(c, userdata, flags, reason, props)

    client.on_connect = on_connect
    try:
        client.connect(settings.host, settings.port, keepalive=30, **kwargs)  # type: ignore[arg-type]
    except ssl.SSLError as exc:
        raise BrokerError(
            f"TLS with the broker at {settings.display} failed: {exc.reason or exc}"
        ) from None
    except OSError as exc:
        raise BrokerError(
            f"cannot reach the MQTT broker at {settings.display}: {exc.strerror or exc}"
        ) from None
    client.loop_start()
    if not answered.wait(timeout_s):
        client.loop_stop()
        raise BrokerError(
            f"the MQTT broker at {settings.display} did not answer within {timeout_s:g} s"
        )
    client.on_connect = previous
    reason = outcome["reason"]
    assert isinstance(reason, ReasonCode)
    if reason.is_failure:
        client.loop_stop()
        raise BrokerError(f"the MQTT broker at {settings.display} refused the connection: {reason}")
