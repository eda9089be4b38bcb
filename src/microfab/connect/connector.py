"""The one contract every shop-floor connector keeps: start, stop, health.

A connector reads a protocol (OPC UA, Sparkplug B, Modbus TCP, …), maps what it reads to microfab
events with :mod:`microfab.connect.mapping`, and hands them to a publisher. When its link is down
it reports so in :meth:`Connector.health` and marks its machines ``offline`` (reason ``LINK-DOWN``):
a failing device makes its values unavailable, it never crashes the process. When it is stopped it
marks the machines whose state it reported ``offline`` with reason ``CONNECTOR-STOPPED``.

Reporting is split in two: :func:`run_until_interrupted` prints a *status line* whenever a
connector's status or its detail changes (every link loss, return and refused point shows there,
once), and the connectors' loggers carry the rest. Link changes are logged at INFO by every
connector (they are already on the status line); WARNING is kept for what the status line does not
show: values that were skipped, malformed payloads, a publisher that fails.
:func:`microfab.logs.configure_connector_logging` shows those log lines on stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import enum
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from microfab.connect.publisher import Publisher
from microfab.model.events import Event

LINK_DOWN = "LINK-DOWN"
"""Reason code on the ``offline`` state event a connector emits when it loses its link."""

CONNECTOR_STOPPED = "CONNECTOR-STOPPED"
"""Reason code on the ``offline`` state event a connector emits when it is stopped."""


class LinkStatus(enum.StrEnum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    DOWN = "down"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class Health:
    """What a connector reports about its link."""

    connector: str
    status: LinkStatus
    detail: str = ""
    last_event: dt.datetime | None = None
    reconnects: int = 0
    events: int = 0
    """Events handed to the publisher since the connector was made."""


class Connector(Protocol):
    """A running link to shop-floor equipment."""

    name: str

    async def start(self) -> None:
        """Connect and begin delivering events; return once running (reconnects are internal)."""

    async def stop(self) -> None:
        """Disconnect and release everything; pending events are flushed to the publisher."""

    def health(self) -> Health:
        """Current link status."""


class CountingPublisher:
    """Passes events on to ``publisher`` and counts them (for :attr:`Health.events`)."""

    def __init__(self, publisher: Publisher) -> None:
        self.publisher = publisher
        self.count = 0

    def publish(self, event: Event) -> None:
        self.publisher.publish(event)
        self.count += 1

    def flush(self) -> None:
        self.publisher.flush()


def status_line(health: Health, now: float | None = None) -> str:
    """``HH:MM:SS NAME: STATUS - DETAIL`` (local time), as :func:`run_until_interrupted` prints."""
    stamp = time.strftime("%H:%M:%S", time.localtime(now))
    detail = f" - {health.detail}" if health.detail else ""
    return f"{stamp} {health.connector}: {health.status.value}{detail}"


async def run_until_interrupted(
    connector: Connector,
    log: Callable[[str], None] | None = None,
    stop: asyncio.Event | None = None,
) -> str:
    """Start ``connector`` and run it until Ctrl-C or ``stop``; return a one-line summary.

    Through ``log`` goes a status line (:func:`status_line`) each time the connector's status or
    detail changes, and, once stopped, the summary: ``HH:MM:SS NAME: stopped after 5 min 3 s;
    57 events sent to the store``. The summary is also returned (a caller that passed ``log`` has
    already shown it).
    """
    stop = stop or asyncio.Event()
    started = time.monotonic()
    await connector.start()
    last: tuple[LinkStatus, str] | None = None
    try:
        while not stop.is_set():
            health = connector.health()
            if (health.status, health.detail) != last:
                last = (health.status, health.detail)
                if log is not None:
                    log(status_line(health))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=0.25)
    except (KeyboardInterrupt, asyncio.CancelledError):
        pass
    finally:
        await connector.stop()
    health = connector.health()
    stamp = time.strftime("%H:%M:%S")
    noun = "event" if health.events == 1 else "events"
    summary = (
        f"{stamp} {health.connector}: stopped after {_duration(time.monotonic() - started)}; "
        f"{health.events} {noun} sent to the store"
    )
    if log is not None:
        log(summary)
    return summary


def _duration(seconds: float) -> str:
    """``42 s``, ``5 min 3 s``, ``2 h 5 min``."""
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"
