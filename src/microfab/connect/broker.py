"""The embedded MQTT broker (amqtt, MQTT 3.1.1): for the demo and small sites without Mosquitto.

:class:`EmbeddedBroker` runs amqtt's broker on a thread of its own with its own asyncio loop, so
synchronous code (the demo, tests) can start and stop it like any object. Given ``users`` (name →
password) it accepts only those clients: the passwords are hashed with argon2 into a password file
readable by this process only, for amqtt's file authentication, and the file is removed on stop.
Given an ``access_file`` (``microfab broker acl``) it also admits one login per device, each
limited to its own topics by :class:`~microfab.connect.broker_topic_check.DeviceTopicAcl`; the
``users`` then are service logins that may use every topic. Without either it accepts anonymous
clients (``microfab broker --insecure-dev``; the library default that tests use). It speaks MQTT
3.1.1 only: clients must connect with ``--mqtt-version 3.1.1``. Production sites should run
Mosquitto or EMQX (MQTT 5, TLS), with the same ACLs (``microfab broker acl --mosquitto DIR``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from microfab.connect.broker_acl import read_access_file
from microfab.connect.mqtt_client import BrokerError

log = logging.getLogger(__name__)


def broker_config(
    host: str,
    port: int,
    password_file: Path | None = None,
    access_file: Path | None = None,
    service_users: Iterable[str] = (),
) -> dict[str, Any]:
    """amqtt's configuration: one plain TCP listener, no $SYS topics; clients authenticated
    against ``password_file`` (``user:argon2-hash`` lines), or anonymous without one; with an
    ``access_file``, each device limited to its topics (``service_users`` to none)."""
    auth: dict[str, Any] = (
        {"amqtt.plugins.authentication.FileAuthPlugin": {"password_file": str(password_file)}}
        if password_file is not None
        else {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}}
    )
    if access_file is not None:
        auth["microfab.connect.broker_topic_check.DeviceTopicAcl"] = {
            "access_file": str(access_file),
            "service_users": list(service_users),
        }
    # Plugins named here replace amqtt's defaults (which add $SYS topics and packet logging).
    return {"listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}}, "plugins": auth}


def write_password_file(
    folder: Path, users: Mapping[str, str], hashed: Mapping[str, str] | None = None
) -> Path:
    """``user:argon2-hash`` lines in ``folder/passwords`` (mode 0600), as amqtt reads them:
    ``users`` (name → password) hashed here, ``hashed`` (name → argon2 hash) as they are."""
    from argon2 import PasswordHasher

    hasher = PasswordHasher()
    hashed = hashed or {}
    for name in users:
        if not name or ":" in name or any(c.isspace() for c in name):
            raise ValueError(f"MQTT user name {name!r} must be non-empty, without ':' or spaces")
        if name in hashed:
            raise ValueError(f"MQTT user name {name!r} is also a login of the access file")
    path = folder / "passwords"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        for name, password in users.items():
            file.write(f"{name}:{hasher.hash(password)}\n")
        for name, password_hash in hashed.items():
            file.write(f"{name}:{password_hash}\n")
    return path


class EmbeddedBroker:
    """An amqtt broker on ``host:port``, served from a background thread; start/stop repeatable."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 1883,
        *,
        users: Mapping[str, str] | None = None,
        access_file: Path | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.users = dict(users) if users else None
        self.access_file = access_file
        # read now, so that a bad file is a ValueError here rather than a failed start
        self._device_hashes = (
            {entry.login.user: entry.password_hash for entry in read_access_file(access_file)}
            if access_file is not None
            else {}
        )
        self._folder: Path | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_requested: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, timeout_s: float = 10.0) -> None:
        """Start serving; return once the port accepts connections (BrokerError if it cannot)."""
        if self.running:
            return
        self._ready.clear()
        self._error = None
        if (self.users or self._device_hashes) and self._folder is None:
            self._folder = Path(tempfile.mkdtemp(prefix="microfab-broker-"))
            write_password_file(self._folder, self.users or {}, self._device_hashes)
        amqtt_log = logging.getLogger("amqtt.broker")
        if _QUIET not in amqtt_log.filters:
            amqtt_log.addFilter(_QUIET)
        self._thread = threading.Thread(target=self._run, name="microfab-broker", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout_s):
            self.stop()
            raise BrokerError(f"the embedded MQTT broker did not start within {timeout_s:g} s")
        if self._error is not None:
            self._thread.join(timeout_s)
            self._thread = None
            self._remove_password_file()
            raise BrokerError(
                f"the embedded MQTT broker cannot listen on {self.host}:{self.port}: "
                f"{_reason(self._error)}"
            )
        log.info("embedded MQTT broker listening on %s", self.url)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Disconnect every client, close the listener and end the thread."""
        thread, loop, stop = self._thread, self._loop, self._stop_requested
        if thread is None:
            return
        if loop is not None and stop is not None and thread.is_alive():
            with contextlib.suppress(RuntimeError):  # the loop has already closed
                loop.call_soon_threadsafe(stop.set)
        thread.join(timeout_s)
        if thread.is_alive():
            raise BrokerError(f"the embedded MQTT broker did not stop within {timeout_s:g} s")
        self._thread = None
        self._remove_password_file()

    def _remove_password_file(self) -> None:
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ broker thread

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported by start(); never lost in the thread
            if not self._ready.is_set():
                self._error = exc
                self._ready.set()
            else:
                log.exception("the embedded MQTT broker failed")
        finally:
            self._loop = None
            self._stop_requested = None

    async def _serve(self) -> None:
        from amqtt.broker import Broker  # type: ignore[import-untyped]

        self._loop = asyncio.get_running_loop()
        self._stop_requested = asyncio.Event()
        password_file = self._folder / "passwords" if self._folder is not None else None
        config = broker_config(
            self.host, self.port, password_file, self.access_file, (self.users or {}).keys()
        )

        class ClosingBroker(Broker):  # type: ignore[misc]
            """amqtt's broker, closing each client's socket when its handler ends: amqtt leaves
            the socket of a connection whose first packet it cannot read (an MQTT 5 CONNECT)
            open, to be found unclosed after the loop has gone."""

            async def stream_connected(
                self,
                reader: asyncio.StreamReader,
                writer: asyncio.StreamWriter,
                listener_name: str,
            ) -> None:
                try:
                    await super().stream_connected(reader, writer, listener_name)
                finally:
                    writer.close()

        broker = ClosingBroker(config)
        try:
            await broker.start()
        except BaseException as exc:
            self._error = exc.__cause__ or exc
            self._ready.set()
            await broker.plugins_manager.close()
            return
        self._ready.set()
        try:
            await self._stop_requested.wait()
        finally:
            await broker.shutdown()


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno)
    return str(exc) or type(exc).__name__


class _QuietStartupFailure(logging.Filter):
    """amqtt logs a traceback when it cannot bind; start() raises one clear BrokerError instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != "Broker startup failed"


_QUIET = _QuietStartupFailure()


def run_broker(
    host: str = "127.0.0.1",
    port: int = 1883,
    users: Mapping[str, str] | None = None,
    access_file: Path | None = None,
) -> None:
    """Serve in the foreground until Ctrl-C."""
    broker = EmbeddedBroker(host, port, users=users, access_file=access_file)
    broker.start()
    try:
        while broker.running:
            threading.Event().wait(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        broker.stop()
