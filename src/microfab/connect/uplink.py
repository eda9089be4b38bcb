"""The uplink: a site's stored events, forwarded in store order to the HQ broker (``microfab uplink``).

Each site runs microfab on its own (its own store and broker) and keeps running while the link to
HQ is down. The uplink reads the site store in ingest-sequence order after its checkpoint and
publishes each event on its usual UNS topic (:mod:`microfab.connect.topics`) to the HQ broker at
QoS 1 over MQTT 5, where HQ's ``microfab ingest`` stores it. How nothing is lost or doubled:

- **checkpoint after PUBACK.** The checkpoint (in the site store, ``uplink_checkpoints``) moves
  only to the last event that the broker acknowledged *together with every event before it*.
  After any outage — the link, the HQ broker, HQ's ingest, the uplink killed with -9 — the uplink
  starts again from the checkpoint, so at worst it sends again what was in flight: at-least-once.
- **exactly-once storage at HQ.** Event ids are global; HQ's ingest appends idempotently by id,
  so a repeated event is counted as a duplicate and stored once.
- **somebody must be listening.** A broker acknowledges a message nobody subscribed to with
  reason 0x10 (no matching subscribers) and drops it; the uplink treats that as *not* delivered,
  waits and sends again, so events published before HQ's ingest ever subscribed are not lost
  (once it has subscribed, its persistent session keeps messages while it is away).
- **refusals stop the uplink.** A PUBACK with a failure reason (0x87 not authorised: the broker's
  ACL lets a site's login write only ``microfab/v1/<its site>/#``) is an error, never skipped.
- **back-pressure.** At most ``window`` events are in flight; the store is read only as fast as
  the broker acknowledges. ``max_rate`` caps events per second for a thin link.

Every message carries the MQTT 5 user property ``microfab-site`` naming the sending site; HQ's
ingest (``--hq``) refuses one whose topic names another site (``site_mismatch``). With each
status line the uplink publishes its status (checkpoint, lag in events and seconds), retained, on
``microfab/v1/{site}/uplink``; HQ's ingest records it and HQ's site tile shows it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from microfab.connect.mqtt_client import BrokerError, BrokerSettings, new_client
from microfab.connect.topics import encode, event_topic
from microfab.model.events import Event

log = logging.getLogger(__name__)

SITE_PROPERTY = "microfab-site"
"""MQTT 5 user property naming the site an uplinked message comes from."""
NO_MATCHING_SUBSCRIBERS = 0x10
DEFAULT_WINDOW = 1000
RESEND_PAUSE_S = 1.0


class StoredLike(Protocol):
    @property
    def seq(self) -> int: ...

    @property
    def ingest_ts(self) -> dt.datetime: ...

    @property
    def event(self) -> Event: ...


class BacklogLike(Protocol):
    @property
    def events(self) -> int: ...

    @property
    def oldest_ingest_ts(self) -> dt.datetime | None: ...


class UplinkSource(Protocol):
    """What the uplink needs from the site store (``store.uplink.UplinkLog`` provides it)."""

    def acknowledged_seq(self) -> int: ...

    def pending(self, after_seq: int, limit: int) -> Sequence[StoredLike]: ...

    def advance(
        self, seq: int, event_ts: dt.datetime, ingest_ts: dt.datetime, acknowledged: int
    ) -> None: ...

    def backlog(self, after_seq: int) -> BacklogLike: ...


@dataclass
class UplinkStatus:
    """What the status line shows."""

    checkpoint: int = 0
    sent: int = 0
    acknowledged: int = 0
    in_flight: int = 0
    lag_events: int = 0
    lag_s: float = 0.0
    connected: bool = False
    resends: int = 0
    """Times the uplink went back to its checkpoint (nobody subscribed at HQ)."""

    def line(self, site: str, broker: str) -> str:
        link = "up" if self.connected else "DOWN"
        return (
            f"uplink {site} -> {broker} [{link}]: checkpoint seq {self.checkpoint:,}, "
            f"lag {self.lag_events:,} events / {self.lag_s:,.1f} s, in flight {self.in_flight:,}, "
            f"sent {self.sent:,}, acknowledged {self.acknowledged:,}"
        )


@dataclass
class _Sent:
    seq: int
    event_ts: dt.datetime
    ingest_ts: dt.datetime
    acked: bool = False


class Uplink:
    """Forward a site store's events to the HQ broker; run with :meth:`run` until ``stop``."""

    def __init__(
        self,
        source: UplinkSource,
        settings: BrokerSettings,
        *,
        site: str,
        client_id: str | None = None,
        window: int = DEFAULT_WINDOW,
        max_rate: float | None = None,
        read_batch: int = 500,
        save_every_s: float = 0.5,
    ) -> None:
        if window < 1:
            raise ValueError("window must be at least 1")
        if max_rate is not None and max_rate <= 0:
            raise ValueError("max_rate must be above 0")
        self.source = source
        self.settings = settings
        self.site = site
        self.window = window
        self.max_rate = max_rate
        # at a bounded rate, read what goes out in about half a second at a time, so that the
        # checkpoint is saved and the status reported on time
        self.read_batch = (
            read_batch if max_rate is None else max(1, min(read_batch, int(max_rate / 2)))
        )
        self.save_every_s = save_every_s
        self.status = UplinkStatus()
        self._lock = threading.Lock()
        self._acked = threading.Condition(self._lock)
        self._queue: deque[_Sent] = deque()
        self._by_mid: dict[int, _Sent] = {}
        self._early: dict[int, tuple[Any, float]] = {}
        self._connected = threading.Event()
        self._fatal: str | None = None
        self._closing = False
        self._resend = False
        self._done_seq = 0  # acknowledged with all before it (in memory)
        self._done: _Sent | None = None
        self._done_unsaved = 0
        self._sent_upto = 0
        self._props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        self._props.UserProperty = (SITE_PROPERTY, site)
        self._client = new_client(settings, client_id or f"microfab-uplink-{site}", clean=True)
        self._client.max_inflight_messages_set(window)
        self._client.reconnect_delay_set(min_delay=1, max_delay=5)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish

    # ------------------------------------------------------------------ network thread

    def _on_connect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        if reason.is_failure:
            if reason.value in (0x86, 0x87, 0x8C):  # bad user name or password, not authorised
                self._fatal = f"the HQ broker at {self.settings.display} refused us: {reason}"
            log.warning(
                "the HQ broker at %s refused the connection: %s", self.settings.display, reason
            )
            return
        self._connected.set()
        self.status.connected = True
        log.info("connected to the HQ broker at %s", self.settings.display)

    def _on_disconnect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        self._connected.clear()
        self.status.connected = False
        if self._closing:
            return
        log.warning("lost the HQ broker at %s (%s); reconnecting", self.settings.display, reason)

    def _on_publish(
        self, client: paho.Client, userdata: Any, mid: int, reason: Any, props: Any
    ) -> None:
        with self._lock:
            sent = self._by_mid.pop(mid, None)
            if sent is None:  # acknowledged before _publish noted its mid, or sent before a
                # resend from the checkpoint (then never claimed, or too old to be claimed)
                self._early[mid] = (reason, time.monotonic())
                while len(self._early) > 2 * self.window:
                    del self._early[next(iter(self._early))]
                return
            self._settle(sent, reason)

    def _settle(self, sent: _Sent, reason: Any) -> None:
        """The broker answered ``sent`` (the lock is held)."""
        if reason is not None and reason.value == NO_MATCHING_SUBSCRIBERS:
            self._resend = True  # dropped by the broker: nobody at HQ subscribed yet
            return
        if reason is not None and reason.is_failure:
            self._fatal = (
                f"the HQ broker at {self.settings.display} refused event seq {sent.seq} "
                f"of site '{self.site}': {reason} (is this login allowed to publish "
                f"microfab/v1/{self.site}/#?)"
            )
            self._acked.notify_all()
            return
        sent.acked = True
        queue = self._queue
        while queue and queue[0].acked:
            self._done = queue.popleft()
            self._done_seq = self._done.seq
            self._done_unsaved += 1
        self._acked.notify_all()

    # ------------------------------------------------------------------ running

    def run(
        self,
        stop: threading.Event,
        *,
        report: Callable[[UplinkStatus], None] | None = None,
        report_every_s: float = 10.0,
    ) -> None:
        """Forward events until ``stop`` is set; raise :class:`BrokerError` on a refusal."""
        start = self.source.acknowledged_seq()
        self._done_seq = self._sent_upto = start
        self.status.checkpoint = start
        if self.settings.protocol == 5:
            self._client.connect_async(
                self.settings.host, self.settings.port, keepalive=30, clean_start=True
            )
        else:
            self._client.connect_async(self.settings.host, self.settings.port, keepalive=30)
        self._client.loop_start()
        last_save = last_report = time.monotonic()
        next_slot = time.monotonic()
        try:
            while not stop.is_set():
                if self._fatal is not None:
                    raise BrokerError(self._fatal)
                now = time.monotonic()
                if now - last_report >= report_every_s:
                    self._save()  # the line shows the durable checkpoint, up to date
                    last_save = now
                    status = self.refresh_status()
                    self._publish_status(status)
                    if report is not None:
                        report(status)
                    last_report = now
                if self._done_unsaved and (now - last_save >= self.save_every_s or not self._queue):
                    self._save()
                    last_save = now
                if self._resend:
                    stop.wait(RESEND_PAUSE_S)
                    self._back_to_checkpoint()
                    continue
                if not self._connected.is_set():
                    stop.wait(0.2)
                    continue
                free = self.window - len(self._queue)
                if free <= 0:
                    with self._lock:
                        self._acked.wait(0.2)
                    continue
                batch = self.source.pending(self._sent_upto, min(free, self.read_batch))
                if not batch:
                    stop.wait(0.1 if self._queue else 0.25)
                    continue
                for stored in batch:
                    if self.max_rate is not None:  # a steady pace, never a burst
                        next_slot = max(next_slot, time.monotonic())
                        delay = next_slot - time.monotonic()
                        if delay > 0 and stop.wait(delay):
                            break
                        next_slot += 1.0 / self.max_rate
                    if self._resend or not self._connected.is_set() or self._fatal:
                        break
                    self._publish(stored)
        finally:
            self._save()
            self._closing = True
            self._client.disconnect()
            self._client.loop_stop()

    def _publish(self, stored: StoredLike) -> None:
        event = stored.event
        began = time.monotonic()
        # not under our lock: paho holds its own lock while it calls on_publish, which takes ours
        info = self._client.publish(
            event_topic(event), encode([event]), qos=1, properties=self._props
        )
        with self._lock:
            sent = _Sent(stored.seq, event.ts, stored.ingest_ts)
            self._queue.append(sent)
            self._sent_upto = stored.seq
            self.status.sent += 1
            early = self._early.pop(info.mid, None)
            if early is not None and early[1] >= began:  # the broker was quicker than us
                self._settle(sent, early[0])
            else:  # (an answer from before this publish is a stale one for a reused mid)
                self._by_mid[info.mid] = sent

    def _publish_status(self, status: UplinkStatus) -> None:
        """The status, retained on ``microfab/v1/{site}/uplink`` for HQ (its tile shows it)."""
        if not self._connected.is_set():
            return
        body = {
            "site": self.site,
            "checkpoint": status.checkpoint,
            "lag_events": status.lag_events,
            "lag_s": round(status.lag_s, 3),
            "sent": status.sent,
            "acknowledged": status.acknowledged,
            "at": dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z"),
        }
        self._client.publish(
            f"microfab/v1/{self.site}/uplink",
            json.dumps(body).encode(),
            qos=1,
            retain=True,
            properties=self._props,
        )

    def _back_to_checkpoint(self) -> None:
        """Forget what is in flight and send again from the last event acknowledged in order."""
        with self._lock:
            self._queue.clear()
            self._by_mid.clear()
            self._early.clear()
            self._sent_upto = self._done_seq
            self._resend = False
            self.status.resends += 1
        if self.status.resends % 60 != 1:  # once a minute is enough while nobody listens
            return
        log.warning(
            "the HQ broker at %s has no subscriber for site %s's events (is HQ's ingest "
            "running?); sending again from seq %d (every second, said once a minute)",
            self.settings.display,
            self.site,
            self._done_seq,
        )

    def _save(self) -> None:
        with self._lock:
            done, count = self._done, self._done_unsaved
            self._done_unsaved = 0
        if done is None or count == 0:
            return
        self.source.advance(done.seq, done.event_ts, done.ingest_ts, count)
        self.status.checkpoint = done.seq
        self.status.acknowledged += count

    def refresh_status(self) -> UplinkStatus:
        """The status with the backlog read from the store (lag in events and seconds)."""
        backlog = self.source.backlog(self._done_seq)
        status = self.status
        status.in_flight = len(self._queue)
        status.lag_events = backlog.events
        oldest = backlog.oldest_ingest_ts
        status.lag_s = (
            max((dt.datetime.now(dt.UTC) - oldest).total_seconds(), 0.0) if oldest else 0.0
        )
        return status
