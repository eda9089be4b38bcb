"""Where the simulator and the connectors send events: anything with ``publish`` and ``flush``.

The simulator never writes to the store itself. In-process runs hand it a sink that appends to the
store in batches; the MQTT adapter implements the same interface to publish on the broker.
:class:`ClockCheckedPublisher` puts the clock policy in front of any of them.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable
from typing import Protocol

from microfab.model.clock_policy import DRIFT_SHOWN, ClockPolicy
from microfab.model.dead_letter import DeadLetter, payload_text
from microfab.model.events import Event, event_to_dict

log = logging.getLogger(__name__)


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


class ClockCheckedPublisher:
    """Passes on the events whose time passes the clock policy; the others become ``bad_time``
    dead letters handed to ``reject`` (the store's ``append_dead_letters``), with the event kept
    as the payload so ``microfab deadletters replay`` can store it once the device is fixed.

    For connectors that stamp events with the device's time (an OPC UA source timestamp, a
    Sparkplug metric timestamp) and store them without MQTT ingest in between. Each machine's
    clock offset (newest event time minus the receiving clock) is kept in :attr:`clock_offsets`;
    an offset beyond 30 s is logged once as "clock off by N s"."""

    def __init__(
        self,
        publisher: Publisher,
        reject: Callable[[list[DeadLetter]], object],
        *,
        source: str,
        policy: ClockPolicy | None = None,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self.publisher = publisher
        self.reject = reject
        self.source = source
        self.policy = policy or ClockPolicy()
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self.rejected = 0
        self.clock_offsets: dict[str, float] = {}
        self._dead: list[DeadLetter] = []
        self._drift_told: set[str] = set()

    def publish(self, event: Event) -> None:
        now = self.clock()
        verdict = self.policy.judge(event.ts, now)
        if not verdict.accepted:
            self.rejected += 1
            payload = payload_text(json.dumps(event_to_dict(event), ensure_ascii=False))
            topic = f"microfab/v1/{event.machine}/{event.stream}"
            self._dead.append(DeadLetter(self.source, topic, payload, verdict.reason, now))
            if len(self._dead) >= 100:
                self._reject_held()
            return
        offset = (event.ts - now).total_seconds()
        self.clock_offsets[event.machine] = offset
        if abs(offset) > DRIFT_SHOWN.total_seconds() and event.machine not in self._drift_told:
            self._drift_told.add(event.machine)
            log.warning("%s: clock off by %s s: %s", self.source, f"{offset:+,.0f}", event.machine)
        self.publisher.publish(event)

    def flush(self) -> None:
        self.publisher.flush()
        self._reject_held()

    def _reject_held(self) -> None:
        if self._dead:
            held, self._dead = self._dead, []
            self.reject(held)
