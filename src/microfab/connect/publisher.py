"""Where the simulator sends its events: anything with ``publish`` and ``flush``.

The simulator never writes to the store itself. In-process runs hand it a sink that appends to the
store in batches; the MQTT adapter implements the same interface to publish on the broker.
"""

from __future__ import annotations

from typing import Protocol

from microfab.model.events import Event


class Publisher(Protocol):
    """Receives events in the order the simulator produces them."""

    def publish(self, event: Event) -> None:
        """Queue one event for delivery."""

    def flush(self) -> None:
        """Deliver everything queued so far."""


class ListPublisher:
    """Keeps every event in memory (tests, exports, dry runs)."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def publish(self, event: Event) -> None:
        self.events.append(event)

    def flush(self) -> None:
        return None
