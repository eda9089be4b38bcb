"""The MQTT ingest worker: subscribe to the microfab topics and store every event exactly once.

How nothing is lost or doubled:

- QoS 1 on a persistent session (MQTT 5 ``clean_start=False`` with a session expiry, or MQTT 3.1.1
  ``clean_session=False``), so the broker keeps what it has not seen acknowledged;
- manual acknowledgement: a message is acknowledged only after the transaction holding its events
  (or its dead letters) has committed; if the database is down nothing is acknowledged, the batch
  is retried with back-off, and the broker holds the rest;
- idempotent append: a redelivered message maps to the same event ids, which the store counts as
  duplicates; an id reused with different content is dead-lettered as ``id_conflict``;
- an event the database itself refuses (a count beyond its integer range, say) is found by
  storing the batch's events one by one and dead-lettered as ``store_rejected``, so one bad
  event never blocks the stream;
- several workers share the load through the MQTT 5 shared subscription ``$share/microfab/…``;
  the broker gives each message to one of them.

Malformed messages never stop the worker: :func:`microfab.connect.decode.decode_message` turns each
one (each element of a batch) into an event or a dead letter with the reason.

Event times are judged by the clock policy (:mod:`microfab.model.clock_policy`) against the time
each message was received by the worker's ``clock`` (the wall clock; the simulation's clock in the
demo): a time too far ahead, too old or before 2000 is a ``bad_time`` dead letter, so the plant
clock never runs ahead of the receiving clock. The offset of each machine's newest accepted event
is kept in :attr:`IngestStats.clock_offsets`; one beyond 30 s shows as "clock off by N s".
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import logging
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any, NamedTuple, Protocol, TypeVar

import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from microfab.connect.decode import DEFAULT_MAX_PAYLOAD, decode_message
from microfab.connect.mqtt_client import BrokerSettings, connect_blocking, new_client
from microfab.connect.site_check import claimed_site, site_refusal, status_topic_site
from microfab.connect.topics import SUBSCRIPTION, remembered, shared
from microfab.errors import StoreError
from microfab.model.clock_policy import DRIFT_SHOWN, ClockPolicy
from microfab.model.dead_letter import DeadLetter, payload_text
from microfab.model.events import Event, event_to_dict


class IngestTarget(Protocol):
    """What the worker needs from the store (EventStore provides it); keeps connect/ free of store/."""

    def append(self, events: Iterable[Event]) -> AppendOutcome: ...

    def append_dead_letters(self, letters: Iterable[DeadLetter]) -> int: ...

    def flag_unknown_machines(
        self, seen: dict[str, tuple[dt.datetime, dt.datetime, int]]
    ) -> None: ...


class AppendOutcome(Protocol):
    inserted: int
    duplicates: int

    @property
    def conflicts(self) -> Sequence[Conflict]: ...


class Conflict(Protocol):
    @property
    def id(self) -> str: ...


log = logging.getLogger(__name__)

_T = TypeVar("_T")

_TRANSIENT_ERRORS = {"OperationalError", "InterfaceError", "DisconnectionError"}
"""Names of database-driver exception classes that mean "cannot reach the database now"."""


def _transient(exc: BaseException) -> bool:
    """Whether a store failure means the database is unreachable for now (retry, acknowledge
    nothing) rather than that it refuses this data (dead-letter it). Judged by duck typing, so
    connect/ stays free of store/ and the database drivers."""
    if isinstance(exc, StoreError | ConnectionError | TimeoutError):
        return True
    if getattr(exc, "connection_invalidated", False):
        return True
    return any(cls.__name__ in _TRANSIENT_ERRORS for cls in type(exc).__mro__)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class _Stopping(Exception):
    """Stopping while the database is down: leave everything unacknowledged."""


class _Rejected(Exception):
    """The database refused a write for its content; retrying would not help."""


SESSION_EXPIRY_S = 7 * 24 * 3600
"""How long the broker keeps our session (and unacknowledged messages) while we are away."""


class _Message(NamedTuple):
    generation: int
    mid: int
    qos: int
    topic: str
    payload: bytes
    received_at: dt.datetime
    site: str | None = None
    """The MQTT 5 user property ``microfab-site`` (set by ``microfab uplink``), if any."""


class _Inbox:
    """Messages handed from paho's network thread to the worker: a deque and a wake-up flag,
    several times cheaper per message than :class:`queue.Queue`. One producer, one consumer."""

    def __init__(self) -> None:
        self._items: deque[_Message] = deque()
        self._ready = threading.Event()

    def put(self, message: _Message) -> None:
        self._items.append(message)
        if not self._ready.is_set():
            self._ready.set()

    def take(self, limit: int, timeout: float) -> list[_Message]:
        """Up to ``limit`` messages, waiting up to ``timeout`` seconds for the first one."""
        items = self._items
        if not items:
            self._ready.clear()
            if not items:  # (one may have come in before the flag was cleared)
                self._ready.wait(timeout)
        return [items.popleft() for _ in range(min(limit, len(items)))]

    def empty(self) -> bool:
        return not self._items

    def __len__(self) -> int:
        return len(self._items)


_status_topic_site = remembered(status_topic_site)

MAX_CLOCKS_TRACKED = 10_000
"""Machines whose clock offset the statistics keep, at most."""


@dataclass
class IngestStats:
    received: int = 0
    stored: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    bad_time: int = 0
    """Dead letters among ``dead_letters`` whose event time broke the clock policy."""
    unknown_machine_events: int = 0
    unknown_reasons: int = 0
    """State events stored with ``unknown:<code>``: their reason is not one of the factory's."""
    store_retries: int = 0
    batches: int = 0
    site_refused: int = 0
    """Messages refused at HQ (``--hq``): ``unknown_site`` or ``site_mismatch`` dead letters."""
    clock_offsets: dict[str, float] = field(default_factory=dict)
    """Machine path → seconds its newest accepted event was ahead of the receiving clock
    (negative: behind)."""

    def summary(self) -> str:
        """One line of progress: what was received, stored, doubled and dead-lettered."""
        drift = describe_drift(self.drifting_clocks())
        return (
            f"received {self.received:,}, stored {self.stored:,}, duplicates {self.duplicates:,}, "
            f"dead letters {self.dead_letters:,} ({self.bad_time:,} bad_time)"
            + (f", unknown reasons {self.unknown_reasons:,}" if self.unknown_reasons else "")
            + (f", refused by site {self.site_refused:,}" if self.site_refused else "")
            + (f"; {drift}" if drift else "")
        )

    def drifting_clocks(self, beyond: dt.timedelta = DRIFT_SHOWN) -> dict[str, float]:
        """The machines whose clock is off by more than ``beyond``, with their offsets."""
        limit = beyond.total_seconds()
        return {m: s for m, s in sorted(self.clock_offsets.items()) if abs(s) > limit}


def describe_drift(offsets: dict[str, float]) -> str:
    """``clock off by 42 s: kt/…/filler-1; clock off by -3,600 s: …`` (empty when none)."""
    return "; ".join(f"clock off by {s:+,.0f} s: {m}" for m, s in offsets.items())


class IngestWorker:
    """One ingest worker; run it with :meth:`run_forever` or :meth:`start`/:meth:`stop`."""

    def __init__(
        self,
        store: IngestTarget,
        settings: BrokerSettings,
        *,
        known_machines: Collection[str] | None = None,
        strict: bool = False,
        shared: bool = True,
        client_id: str | None = None,
        batch_size: int = 2000,
        max_payload: int = DEFAULT_MAX_PAYLOAD,
        clock: Callable[[], dt.datetime] | None = None,
        clock_policy: ClockPolicy | None = None,
        reason_codes: Collection[str] | None = None,
        known_sites: Collection[str] | None = None,
    ) -> None:
        """``reason_codes`` are the factory's downtime reason codes: a state event with another
        reason is stored as ``unknown:<code>`` and counted (None: not checked). ``clock`` is the receiving clock (default the wall clock; the demo passes its
        simulation's clock); ``clock_policy`` judges event times against it. ``microfab ingest``
        passes its ``--max-future``/``--max-age`` policy and the demo
        :data:`~microfab.model.clock_policy.UNLIMITED_AGE`; None (for tools that store any
        time on purpose) judges nothing."""
        self.store = store
        self.known_sites = frozenset(known_sites) if known_sites is not None else None
        """At HQ (``--hq``): the registered sites; others are refused (see connect/site_check.py)."""
        self.clock = clock or _wall_clock
        self.clock_policy = clock_policy
        self.settings = settings
        self.known_machines = frozenset(known_machines) if known_machines is not None else None
        self.reason_codes = frozenset(reason_codes) if reason_codes else None
        self._reasons_logged: set[str] = set()
        self.strict = strict
        self.shared = shared and settings.protocol == 5
        self.client_id = client_id or f"microfab-ingest-{socket.gethostname()}"
        self.batch_size = batch_size
        self.max_payload = max_payload
        self.stats = IngestStats()
        self._inbox = _Inbox()
        self._generation = 0
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self._stopping = threading.Event()
        self._paused_collection = False
        self._retiring = False
        self.session_present = False
        """Whether the broker still held this client id's session at the last connect."""
        self._thread: threading.Thread | None = None
        self._client = new_client(settings, self.client_id, manual_ack=True)
        self._client.reconnect_delay_set(min_delay=1, max_delay=10)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe

    # ------------------------------------------------------------------ MQTT callbacks (network thread)

    @property
    def subscription(self) -> str:
        return shared(SUBSCRIPTION) if self.shared else SUBSCRIPTION

    def _on_connect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        if reason.is_failure:
            return
        self._generation += 1
        self.session_present = bool(getattr(flags, "session_present", False))
        if self._retiring:  # take in what is queued on the session, nothing new
            client.unsubscribe([SUBSCRIPTION, shared(SUBSCRIPTION)])  # whichever it held
            self._connected.set()
            return
        client.subscribe(self.subscription, qos=1)
        self._connected.set()
        log.info("connected to %s, subscribed to %s", self.settings.display, self.subscription)

    def _on_subscribe(
        self, client: paho.Client, userdata: Any, mid: int, reasons: Any, props: Any
    ) -> None:
        if all(not reason.is_failure for reason in reasons):
            self._subscribed.set()
        else:
            log.error("the broker refused the subscription %s: %s", self.subscription, reasons)

    def wait_subscribed(self, timeout_s: float = 10.0) -> bool:
        """Wait until the broker has confirmed the subscription (SUBACK); whether it did."""
        return self._subscribed.wait(timeout_s)

    def _on_disconnect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        self._connected.clear()
        self._subscribed.clear()
        self._generation += 1  # unacknowledged messages will be redelivered on the new session
        if not self._stopping.is_set():
            log.warning("lost the broker at %s (%s); reconnecting", self.settings.display, reason)

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        props = getattr(message, "properties", None)
        self._inbox.put(
            _Message(
                self._generation,
                message.mid,
                message.qos,
                message.topic,
                bytes(message.payload),
                self.clock(),
                claimed_site(getattr(props, "UserProperty", None))
                if self.known_sites is not None
                else None,
            )
        )

    # ------------------------------------------------------------------ lifecycle

    def connect(self) -> None:
        """Connect with a persistent session; raises BrokerError with one clear sentence."""
        if self.settings.protocol == 5:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = SESSION_EXPIRY_S
            connect_blocking(self._client, self.settings, clean_start=False, properties=props)
        else:
            connect_blocking(self._client, self.settings)

    def start(self) -> None:
        """Connect and process messages on a background thread."""
        self.connect()
        self._thread = threading.Thread(
            target=self._process_loop, name="microfab-ingest", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Finish and acknowledge the batch in hand, then disconnect (the session stays)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self._client.disconnect()
        self._client.loop_stop()

    def retire(self, idle_s: float = 2.0) -> int:
        """End this client id's persistent session without losing what the broker queued on it:
        connect, leave the subscription (so nothing new is queued on it; a shared subscription's
        share goes to the other members), store and acknowledge what was queued until nothing
        has come for ``idle_s``, then disconnect with session expiry 0, which ends the session.
        For an ingest process that is no longer run (``microfab ingest --processes`` lowered):
        the broker would otherwise keep giving it its share until the session expired, and then
        drop what it held. Returns how many messages it took in (0: no session was held).
        MQTT 5 only (session expiry)."""
        if self.settings.protocol != 5:
            raise ValueError("retiring a session needs MQTT 5")
        self._retiring = True
        self.start()
        if self.session_present:
            last, quiet_since = -1, time.monotonic()
            while time.monotonic() - quiet_since < idle_s:
                time.sleep(0.1)
                seen = self.stats.received + len(self._inbox)
                if seen != last:
                    last, quiet_since = seen, time.monotonic()
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        props = Properties(PacketTypes.DISCONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 0
        self._client.disconnect(properties=props)
        self._client.loop_stop()
        return self.stats.received

    def run_forever(
        self, log: Callable[[str], None] | None = None, report_every_s: float = 10.0
    ) -> None:
        """Run in the foreground until Ctrl-C, reporting progress through ``log``: once
        subscribed, every ``report_every_s`` seconds, and the totals when it stops."""
        self.start()
        if log is not None and self.wait_subscribed():
            log(f"subscribed to {self.subscription} as {self.client_id}")
        last = time.monotonic()
        try:
            while self._thread is not None and self._thread.is_alive():
                self._thread.join(timeout=0.5)
                if log is not None and time.monotonic() - last >= report_every_s:
                    log(self.stats.summary())
                    last = time.monotonic()
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()
            if log is not None:
                log("stopped: " + self.stats.summary())

    # ------------------------------------------------------------------ processing (worker thread)

    def _process_loop(self) -> None:
        while not self._stopping.is_set() or not self._inbox.empty():
            batch = self._take_batch()
            if batch:
                try:
                    with self._collection_paused():
                        self._commit(batch)
                except Exception:  # a bug; the batch stays unacknowledged, the worker goes on
                    log.exception("ingest failed on a batch of %d messages", len(batch))

    @contextmanager
    def _collection_paused(self) -> Iterator[None]:
        """Pause the cyclic garbage collector while a batch is processed.

        A batch builds thousands of objects (events, export dicts, rows) that live until it is
        committed. Their allocation keeps triggering the collector, which scans them, and in full
        collections every other live object too, again and again, although reference counting
        frees them all the moment the batch is done; resuming only then leaves it little to do.
        This made batched ingest about 1.5 times faster. Collection resumes during a retry's
        back-off (see _collection_resumed), and is left alone if something else turned it off.
        """
        if not gc.isenabled():
            yield
            return
        gc.disable()
        self._paused_collection = True
        try:
            yield
        finally:
            self._paused_collection = False
            gc.enable()

    @contextmanager
    def _collection_resumed(self) -> Iterator[None]:
        """Let the collector run again for a while (a back-off), if this worker paused it."""
        if not self._paused_collection:
            yield
            return
        gc.enable()
        try:
            yield
        finally:
            gc.disable()

    def _take_batch(self) -> list[_Message]:
        """Whatever has arrived, up to batch_size: no waiting once the first message is in hand
        (the broker sends only so many unacknowledged messages, so waiting for more would stall)."""
        return self._inbox.take(self.batch_size, 0.2)

    def _commit(self, batch: list[_Message]) -> None:
        events: list[Event] = []
        dead: list[DeadLetter] = []
        unknown: dict[str, tuple[dt.datetime, dt.datetime, int]] = {}
        offsets: dict[str, float] = {}
        unknown_reasons = 0
        site_refused = 0
        statuses: dict[str, dict[str, Any]] = {}
        for message in batch:
            if self.known_sites is not None:
                refusal = site_refusal(message.topic, message.site, self.known_sites)
                if refusal is not None:
                    site_refused += 1
                    if refusal.startswith("site_mismatch") and site_refused == 1:
                        log.error("%s: %s", _ascii(message.topic), refusal)
                    dead.append(
                        DeadLetter(
                            "mqtt",
                            _ascii(message.topic),
                            payload_text(message.payload),
                            refusal,
                            message.received_at,
                        )
                    )
                    continue
            status_site = _status_topic_site(message.topic)
            if status_site is not None:  # an uplink's status: recorded where the store can
                status = _uplink_status(message.payload)
                if status is not None:
                    statuses[status_site] = {**status, "received_at": message.received_at}
                continue
            decoded = decode_message(
                message.topic,
                message.payload,
                received_at=message.received_at,
                known_machines=self.known_machines,
                strict=self.strict,
                max_payload=self.max_payload,
                clock_policy=self.clock_policy,
                reason_codes=self.reason_codes,
            )
            events += decoded.events
            unknown_reasons += len(decoded.unknown_reasons)
            for code in decoded.unknown_reasons:
                if code not in self._reasons_logged and len(self._reasons_logged) < 1000:
                    self._reasons_logged.add(code)  # once per code: a device repeats itself
                    log.warning(
                        "%s: downtime reason %r is not in the factory model; stored as unknown:%s",
                        _ascii(message.topic),
                        _ascii(code),
                        _ascii(code),
                    )
            dead += decoded.dead
            if decoded.events:
                newest = decoded.events[-1]
                offsets[newest.machine] = (newest.ts - message.received_at).total_seconds()
            if decoded.unknown_machine:
                for ev in decoded.events:
                    first, last, n = unknown.get(ev.machine, (ev.ts, ev.ts, 0))
                    unknown[ev.machine] = (min(first, ev.ts), max(last, ev.ts), n + 1)
        try:
            inserted, duplicates = self._store_events(events, dead)
            self._store_dead_letters(dead)
            record = getattr(self.store, "record_uplink_status", None)
            if statuses and record is not None:
                try:
                    self._retrying(partial(record, statuses))
                except _Rejected as exc:
                    log.error("could not record uplink statuses %s: %s", sorted(statuses), exc)
            if unknown:
                try:
                    self._retrying(lambda: self.store.flag_unknown_machines(unknown))
                except _Rejected as exc:
                    log.error("could not record unknown machines %s: %s", sorted(unknown), exc)
        except _Stopping:
            return  # stopping while the database is down: leave everything unacknowledged
        stats = self.stats
        stats.received += len(batch)
        stats.stored += inserted
        stats.duplicates += duplicates
        stats.dead_letters += len(dead)
        stats.bad_time += sum(1 for letter in dead if letter.reason.startswith("bad_time:"))
        clocks = stats.clock_offsets
        for machine, offset in offsets.items():  # bounded: topics are chosen by the senders
            if machine in clocks or len(clocks) < MAX_CLOCKS_TRACKED:
                clocks[machine] = offset
        stats.unknown_machine_events += sum(n for _, _, n in unknown.values())
        stats.unknown_reasons += unknown_reasons
        stats.site_refused += site_refused
        stats.batches += 1
        generation = self._generation
        for message in batch:
            if message.generation == generation and message.qos > 0:
                self._client.ack(message.mid, message.qos)

    def _retrying(self, write: Callable[[], _T]) -> _T:
        """Run one store write; while the database is unreachable retry with back-off."""
        delay = 0.5
        while True:
            try:
                return write()
            except Exception as exc:
                if not _transient(exc):
                    raise _Rejected(_first_line(exc)) from exc
                self.stats.store_retries += 1
                log.warning(
                    "store unavailable (%s); retrying in %.1f s, nothing acknowledged",
                    _first_line(exc),
                    delay,
                )
                with self._collection_resumed():  # the outage may last: collect meanwhile
                    stopping = self._stopping.wait(delay)
                if stopping and delay >= 5:
                    raise _Stopping from exc
                delay = min(delay * 2, 5.0)

    def _store_events(self, events: list[Event], dead: list[DeadLetter]) -> tuple[int, int]:
        """Append the events (one transaction); returns (inserted, duplicates) and adds a dead
        letter to ``dead`` for each id conflict and each event the database refuses."""
        inserted = duplicates = 0
        for result, batch in self._append_isolating(events, dead):
            inserted += result.inserted
            duplicates += result.duplicates
            by_id = {ev.id: ev for ev in batch} if result.conflicts else {}
            for conflict in result.conflicts:
                reason = f"id_conflict: event '{conflict.id}' is stored with different content"
                if conflict.id in by_id:
                    dead.append(self._event_letter(by_id[conflict.id], reason))
                else:
                    dead.append(
                        DeadLetter("mqtt", "", conflict.id, reason, dt.datetime.now(dt.UTC))
                    )
        return inserted, duplicates

    def _append_isolating(
        self, events: list[Event], dead: list[DeadLetter]
    ) -> list[tuple[AppendOutcome, list[Event]]]:
        """Append ``events``; if the database refuses the batch, halve it until the events it
        refuses are found alone, and dead-letter those as ``store_rejected``."""
        try:
            return [(self._retrying(partial(self.store.append, events)), events)]
        except _Rejected as exc:
            if len(events) == 1:
                log.warning("the store refused event '%s': %s", events[0].id, exc)
                dead.append(self._event_letter(events[0], f"store_rejected: {exc}"))
                return []
        half = len(events) // 2
        return self._append_isolating(events[:half], dead) + self._append_isolating(
            events[half:], dead
        )

    def _store_dead_letters(self, dead: list[DeadLetter]) -> None:
        try:
            self._retrying(lambda: self.store.append_dead_letters(dead))
            return
        except _Rejected as exc:
            log.warning("the store refused dead letters (%s); storing them one by one", exc)
        for letter in dead:
            try:
                self._retrying(partial(self.store.append_dead_letters, [letter]))
            except _Rejected:
                plain = DeadLetter(
                    letter.source,
                    _ascii(letter.topic),
                    _ascii(letter.payload),
                    _ascii(letter.reason),
                    letter.received_at,
                )
                try:
                    self._retrying(partial(self.store.append_dead_letters, [plain]))
                except _Rejected as exc:
                    log.error("lost a dead letter the store refuses (%s): %r", exc, letter)

    @staticmethod
    def _event_letter(ev: Event, reason: str) -> DeadLetter:
        return DeadLetter(
            "mqtt",
            f"microfab/v1/{ev.machine}/{ev.stream}",
            payload_text(json.dumps(event_to_dict(ev))),
            reason,
            dt.datetime.now(dt.UTC),
        )


def _uplink_status(payload: bytes) -> dict[str, Any] | None:
    """An uplink's status message (``microfab/v1/{site}/uplink``), or None when it is not one."""
    try:
        body = json.loads(payload)
        return {
            "checkpoint": int(body["checkpoint"]),
            "lag_events": int(body["lag_events"]),
            "lag_s": float(body["lag_s"]),
            "reported_at": dt.datetime.fromisoformat(str(body["at"]).replace("Z", "+00:00")),
        }
    except (ValueError, TypeError, KeyError, OverflowError):
        return None


def _wall_clock() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _ascii(text: str) -> str:
    return text.encode("ascii", "backslashreplace").decode("ascii").replace("\x00", "\\x00")
