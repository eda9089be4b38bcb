"""Store-and-forward MQTT publishing of microfab events: the simulator's (or a gateway's) way out.

:class:`MqttPublisher` is a :class:`~microfab.connect.publisher.Publisher`. ``publish`` only
appends to a buffer and ``flush`` only moves the buffer into the outbox (a SQLite spool file, or
memory), so the producer never waits for the network. A background thread sends the outbox to the
broker in its original order at QoS 1 and deletes each message once the broker has acknowledged it
(PUBACK). While the broker is away the outbox grows; when it returns (paho reconnects with backoff)
the messages it had not acknowledged go again first, then the rest, in order. Nothing is dropped
and nothing is reordered; a message may arrive twice after a reconnect, which is harmless because
event ids make the store idempotent.

With ``batch > 1``, consecutive events on the same topic travel as one JSON array payload of up to
``batch`` events (see :func:`microfab.connect.topics.encode`).

Back-pressure, never an error: paho numbers the messages it holds with 16-bit ids, so a client
that hands it more than 65,535 unacknowledged QoS 1 messages gets ``ERR_QUEUE_SIZE`` (and
``wait_for_publish`` raises ``ValueError``). :class:`MqttPublisher` keeps at most ``max_inflight``
messages unacknowledged and takes a refused message again later; :class:`AckWindow` does the
same for code that drives a paho client itself (the ingest benchmark's publisher): ``publish``
waits for acknowledgements while the window is full.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode

from microfab.connect.mqtt_client import BrokerSettings, new_client
from microfab.connect.spool import MemorySpool, Outbox, Spool
from microfab.connect.topics import encode, event_topic
from microfab.model.events import Event

log = logging.getLogger(__name__)

DEFAULT_MAX_INFLIGHT = 1000
"""Messages handed to the broker and not yet acknowledged, at most (lower if the broker says so)."""

AUTO_FLUSH = 10_000
"""``publish`` flushes by itself when this many events wait in the buffer."""

_REMOVE_EVERY_S = 0.25
_REMOVE_BATCH = 500
_TICK_S = 0.2


@dataclass
class PublishStats:
    """What the publisher has done so far (read from any thread; updated by its own threads)."""

    queued: int = 0
    """Messages put into the outbox."""
    delivered: int = 0
    """Messages the broker acknowledged."""
    rejected: int = 0
    """Messages the broker refused (MQTT 5 PUBACK failure code): logged and removed."""
    connects: int = 0
    """Successful connections to the broker (reconnects included)."""


class AckWindow:
    """At most ``size`` QoS 1/2 messages unacknowledged on one paho client: :meth:`publish`
    waits for room, so a fast producer is slowed to the broker's pace instead of failing.

    It takes over the client's ``on_publish`` callback; publish QoS 1/2 messages on that client
    through it only. ``size`` must stay below paho's 65,535 message ids."""

    def __init__(self, client: paho.Client, size: int = DEFAULT_MAX_INFLIGHT) -> None:
        if not 1 <= size < 65_535:
            raise ValueError("size must be from 1 to 65,534")
        self.size = size
        self._client = client
        self._sent = 0
        self._acked = 0
        self._changed = threading.Condition()
        client.on_publish = self._on_publish

    @property
    def outstanding(self) -> int:
        """Messages published through the window and not yet acknowledged."""
        return self._sent - self._acked

    def _on_publish(
        self, client: paho.Client, userdata: Any, mid: int, reason: Any, props: Any
    ) -> None:
        with self._changed:
            self._acked += 1
            self._changed.notify_all()

    def publish(self, topic: str, payload: bytes | str, qos: int = 1) -> paho.MQTTMessageInfo:
        """Publish once fewer than ``size`` messages are unacknowledged; a message paho refuses
        for want of room (``ERR_QUEUE_SIZE``) is offered again as acknowledgements come in."""
        if qos not in (1, 2):
            raise ValueError("AckWindow is for QoS 1 or 2 messages")
        while True:
            with self._changed:
                while self._sent - self._acked >= self.size:
                    self._changed.wait(0.5)
                self._sent += 1  # before publishing: its acknowledgement may come at once
            info = self._client.publish(topic, payload, qos=qos)
            if info.rc != MQTTErrorCode.MQTT_ERR_QUEUE_SIZE:
                return info
            with self._changed:  # not taken: no acknowledgement will come for it
                self._sent -= 1
                self._changed.wait(0.05)

    def wait_all(self, timeout_s: float | None = None) -> bool:
        """Wait until every message published through the window is acknowledged; whether
        that happened within ``timeout_s``."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._changed:
            while self._sent > self._acked:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._changed.wait(0.5 if left is None else min(left, 0.5))
        return True


def mqtt_messages(events: list[Event], batch: int = 1) -> Iterator[tuple[str, bytes]]:
    """``(topic, payload)`` of each message, in order; runs of one topic grouped up to ``batch``."""
    group: list[Event] = []
    topic = ""
    for event in events:
        this = event_topic(event)
        if group and (this != topic or len(group) >= batch):
            yield topic, encode(group)
            group = []
        topic = this
        group.append(event)
    if group:
        yield topic, encode(group)


class MqttPublisher:
    """Publishes events to an MQTT broker through a spool; never blocks, never drops, keeps order."""

    def __init__(
        self,
        settings: BrokerSettings,
        *,
        client_id: str | None = None,
        spool_path: Path | None = None,
        batch: int = 1,
        qos: int = 1,
        max_inflight: int = DEFAULT_MAX_INFLIGHT,
    ) -> None:
        if batch < 1:
            raise ValueError("batch must be at least 1")
        if qos not in (0, 1, 2):
            raise ValueError("qos must be 0, 1 or 2")
        if max_inflight < 1:
            raise ValueError("max_inflight must be at least 1")
        self.settings = settings
        self.client_id = client_id or f"microfab-pub-{uuid.uuid4().hex[:10]}"
        self.batch = batch
        self.qos = qos
        self.max_inflight = max_inflight
        self.stats = PublishStats()
        self._store: Outbox = Spool(spool_path) if spool_path is not None else MemorySpool()
        self._buffer: list[Event] = []
        # Shared with paho's network thread: only atomic operations (Event, deque, int rebinding).
        self._connected = threading.Event()
        self._generation = 0
        self._window = max_inflight
        self._acks: deque[tuple[int, bool]] = deque()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._closed = False
        # Owned by the drain thread (and by close() once that thread has ended).
        self._inflight: dict[int, int] = {}  # paho mid -> spool seq
        self._early: dict[int, bool] = {}  # acknowledgements that overtook their publish() return
        self._cursor = 0  # highest seq handed to paho
        self._seen_generation = 0
        self._resync = False
        self._done: list[int] = []  # acknowledged seqs not yet deleted from the outbox
        self._last_removal = time.monotonic()
        self._warned_down = False

        self._client = new_client(settings, self.client_id)
        self._client.max_inflight_messages_set(max_inflight)
        self._client.reconnect_delay_set(min_delay=1, max_delay=10)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_connect_fail = self._on_connect_fail
        self._client.on_publish = self._on_publish
        self._client.connect_async(settings.host, settings.port, keepalive=30)
        self._client.loop_start()  # retries the first connection too: the broker may be down
        self._thread = threading.Thread(
            target=self._drain_loop, name=f"microfab-publish-{self.client_id}", daemon=True
        )
        self._thread.start()
        if len(self._store):
            log.info("%d messages waiting in the spool from an earlier run", len(self._store))

    # ------------------------------------------------------------------ Publisher

    def publish(self, event: Event) -> None:
        """Queue one event (in memory until the next :meth:`flush`)."""
        if self._closed:
            raise ValueError("the MQTT publisher is closed")
        self._buffer.append(event)
        if len(self._buffer) >= AUTO_FLUSH:
            self.flush()

    def flush(self) -> None:
        """Move everything queued into the outbox; the background thread sends it (no network wait)."""
        if not self._buffer:
            return
        events, self._buffer = self._buffer, []
        try:
            self.stats.queued += self._store.put_many(mqtt_messages(events, self.batch))
        except BaseException:
            self._buffer[:0] = events
            raise
        self._wake.set()

    # ------------------------------------------------------------------ lifecycle

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def pending(self) -> int:
        """Messages (and buffered events) the broker has not acknowledged yet."""
        return len(self._buffer) + max(0, len(self._store) - len(self._done))

    def close(self, timeout_s: float = 10.0) -> None:
        """Flush, wait up to ``timeout_s`` for the broker to take everything, then disconnect.

        What is still unacknowledged stays in the spool file for the next run.
        """
        if self._closed:
            return
        self.flush()
        self._closed = True
        deadline = time.monotonic() + timeout_s
        while self.pending() and time.monotonic() < deadline:
            self._wake.set()
            time.sleep(0.02)
        self._stopping.set()
        self._wake.set()
        self._thread.join()
        self._client.disconnect()
        self._client.loop_stop()
        self._settle(force=True)
        left = self.pending()
        self._store.close()
        if left:
            where = (
                f"in the spool {self._store.path}"
                if isinstance(self._store, Spool)
                else "(in memory: lost)"
            )
            log.warning(
                "closed with %d messages not acknowledged by %s %s",
                left,
                self.settings.display,
                where,
            )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ paho callbacks (network thread)

    def _on_connect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        if reason.is_failure:
            hint = (
                " (it may speak MQTT 3.1.1 only: try --mqtt-version 3.1.1)"
                if self.settings.protocol == 5 and reason == "Unsupported protocol version"
                else ""
            )
            log.warning(
                "the MQTT broker at %s refused us: %s%s", self.settings.display, reason, hint
            )
            return
        receive_max = (
            getattr(props, "ReceiveMaximum", None) if self.settings.protocol == 5 else None
        )
        self._window = min(self.max_inflight, int(receive_max or self.max_inflight))
        self._generation += 1
        self.stats.connects += 1
        self._warned_down = False
        self._connected.set()
        self._wake.set()
        log.info("connected to %s as %s", self.settings.display, self.client_id)

    def _on_disconnect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        was = self._connected.is_set()
        self._connected.clear()
        if was and not self._stopping.is_set():
            log.warning(
                "lost the MQTT broker at %s (%s); spooling and reconnecting",
                self.settings.display,
                reason,
            )

    def _on_connect_fail(self, client: paho.Client, userdata: Any) -> None:
        if not self._warned_down:
            self._warned_down = True
            log.warning(
                "cannot reach the MQTT broker at %s; spooling and retrying", self.settings.display
            )

    def _on_publish(
        self, client: paho.Client, userdata: Any, mid: int, reason: Any, props: Any
    ) -> None:
        # Called with paho's message lock held: hand over, never wait for our own state here.
        self._acks.append((mid, not reason.is_failure))
        self._wake.set()

    # ------------------------------------------------------------------ drain thread

    def _drain_loop(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(_TICK_S)
            self._wake.clear()
            try:
                self._settle()
                if self._stopping.is_set():
                    break
                self._send_more()
            except Exception:  # a spool I/O error must not end the thread: retry next tick
                log.exception("the MQTT publisher's outbox failed; retrying")
                time.sleep(1.0)
        try:
            self._settle(force=True)
        except Exception:
            log.exception("the MQTT publisher's outbox failed while closing")

    def _settle(self, force: bool = False) -> None:
        """Match acknowledgements to spooled messages; delete those from the outbox in batches."""
        while self._acks:
            mid, ok = self._acks.popleft()
            self._early[mid] = ok
        for mid in [m for m in self._early if m in self._inflight]:
            ok = self._early.pop(mid)
            seq = self._inflight.pop(mid)
            if ok:
                self.stats.delivered += 1
            else:
                self.stats.rejected += 1
                log.error("the MQTT broker refused message %d of the spool; dropped", seq)
            self._done.append(seq)
        now = time.monotonic()
        due = (
            force or len(self._done) >= _REMOVE_BATCH or now - self._last_removal >= _REMOVE_EVERY_S
        )
        if self._done and due:
            done, self._done = self._done, []
            self._store.remove(done)
            self._last_removal = now

    def _send_more(self) -> None:
        """Hand the next spooled messages to paho, in seq order, within the in-flight window."""
        if not self._connected.is_set():
            return
        generation = self._generation
        if generation != self._seen_generation:
            self._seen_generation = generation
            # paho sends again what the last connection left unacknowledged, oldest first; newer
            # messages wait until those are through, so the broker sees one ordered stream.
            self._resync = bool(self._inflight)
        if self._resync:
            if self._inflight:
                return
            self._resync = False
        room = self._window - len(self._inflight)
        while room > 0:
            rows = self._store.peek(min(room, 500), after=self._cursor)
            if not rows:
                return
            for seq, topic, payload in rows:
                if not self._connected.is_set() or self._generation != generation:
                    return
                try:
                    info = self._client.publish(topic, payload, qos=self.qos)
                except ValueError as exc:  # cannot be sent at all (e.g. too large)
                    log.error(
                        "cannot publish spooled message %d on %s: %s; dropped", seq, topic, exc
                    )
                    self.stats.rejected += 1
                    self._cursor = seq
                    self._done.append(seq)
                    continue
                if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
                    log.warning("paho did not take spooled message %d: %s", seq, info.rc)
                    return  # not queued by paho: try it again later
                # NO_CONN: paho keeps the message and sends it after the reconnect, in order.
                self._inflight[info.mid] = seq
                self._cursor = seq
                room -= 1
