"""The one contract every shop-floor connector keeps: start, stop, health.

A connector reads a protocol (OPC UA, Sparkplug B, Modbus TCP, …), maps what it reads to microfab
events with :mod:`microfab.connect.mapping`, and hands them to a publisher. When its link is down
it reports so in :meth:`Connector.health` and marks its machines ``offline`` (reason ``LINK-DOWN``):
a failing device makes its values unavailable, it never crashes the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

LINK_DOWN = "LINK-DOWN"
"""Reason code on the ``offline`` state event a connector emits when it loses its link."""


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


class Connector(Protocol):
    """A running link to shop-floor equipment."""

    name: str

    async def start(self) -> None:
        """Connect and begin delivering events; return once running (reconnects are internal)."""

    async def stop(self) -> None:
        """Disconnect and release everything; pending events are flushed to the publisher."""

    def health(self) -> Health:
        """Current link status."""


async def run_until_interrupted(
    connector: Connector,
    log: Callable[[str], None] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Start ``connector``, report link changes through ``log``, stop on Ctrl-C or ``stop``."""
    stop = stop or asyncio.Event()
    await connector.start()
    last: LinkStatus | None = None
    try:
        while not stop.is_set():
            health = connector.health()
            if health.status != last and log is not None:
                log(
                    f"{health.connector}: {health.status.value}{' - ' + health.detail if health.detail else ''}"
                )
                last = health.status
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=0.5)
    except (KeyboardInterrupt, asyncio.CancelledError):
        pass
    finally:
        await connector.stop()
