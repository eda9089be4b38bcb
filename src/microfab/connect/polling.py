"""The machinery every polling connector shares: link bookkeeping, the polling loop, back-off.

A polling connector (Modbus TCP, Siemens S7, Mitsubishi MC, EtherNet/IP, MTConnect) reads one or
more *devices*; each device feeds the :class:`~microfab.connect.mapping.PointMapper` of every
machine read from it. A subclass of :class:`PollingConnector` says only how to open a session
with a device, read it and close it; this module does the rest, the same way for all of them:

- **Link bookkeeping** (:class:`Device`): when a device cannot be reached (the session cannot be
  opened, or a read fails with a link error) its status is ``down`` with the reason as detail, and
  one ``offline`` event with reason ``LINK-DOWN`` is published per machine with a state point on
  it; repeated failures add none. Once the device answers again the status is ``connected`` and
  :attr:`Health.reconnects <microfab.connect.connector.Health>` counts the return.
- **Retry with back-off**: after a failure the connector waits ``reconnect_s``, doubling after
  every further failure up to ``max_reconnect_s`` (S7, MC, EtherNet/IP, MTConnect: 1 s up to
  10 s; Modbus keeps its fixed 2 s: its ``max_reconnect_s`` is ``reconnect_s``), and never stops
  trying while it runs. No exception leaves a device's task.
- **Back to the last state on return**: the mappers forget their last state when the link returns,
  so the state the device reports then is stored at once and ends the ``offline``.
- **Cumulative counts**: a running total becomes increments in the mapper; a drop is a counter
  reset (counted from zero). On a return the mappers also re-baseline their counters
  (:meth:`~microfab.connect.mapping.PointMapper.forget_link`), so nothing is counted twice; a
  source that can replay the gap exactly (MTConnect's sequence numbers) says so with
  ``resumed=True`` and keeps its baselines.
- **The polling loop**: every ``poll_s`` seconds (not catching up after a slow read), the
  device's readings are mapped and published; the publisher is flushed after every poll, and a
  failing publisher is reported in health, not raised. A state or count is stored when it changes;
  a telemetry or energy reading when it changes (telemetry: by more than its ``deadband``) and
  otherwise at most every ``heartbeat_s`` of its machine, so a steady value is still seen; the
  first readings after (re)connecting are stored.
- **Stopping**: every machine whose state was reported gets ``offline`` with reason
  ``CONNECTOR-STOPPED``.

A point the device refuses makes only that value unavailable: the subclass notes it in
:attr:`Device.problems`, which :meth:`PollingConnector.health` shows.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from microfab.connect.connector import (
    CONNECTOR_STOPPED,
    LINK_DOWN,
    CountingPublisher,
    Health,
    LinkStatus,
)
from microfab.connect.mapping import PointMapper
from microfab.connect.publisher import Publisher
from microfab.errors import InputError
from microfab.model.events import EnergyReading, Event, TelemetrySample
from microfab.model.factory import Factory


class LinkLost(Exception):
    """The device cannot be read any more (the message says why, in plain words)."""


def now_ms() -> dt.datetime:
    """The current UTC time, to the millisecond (the time stamped on polled values)."""
    now = dt.datetime.now(dt.UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


@dataclass(frozen=True, slots=True)
class Reading:
    """One value read from a device for a point of one of its machines."""

    machine: int
    """Index into :attr:`Device.mappers`."""
    point: str
    value: object
    ts: dt.datetime | None = None
    """The device's time of the value; None: the poll time."""
    held: bool = False
    """The device only restates a value it holds (see :mod:`microfab.connect.mapping`)."""


@dataclass
class Device:
    """One device a polling connector reads and the bookkeeping of its link."""

    label: str
    poll_s: float
    mappers: list[PointMapper] = field(default_factory=list)
    status: LinkStatus = LinkStatus.CONNECTING
    detail: str = ""
    problems: dict[str, str] = field(default_factory=dict)
    """Points the device refused, by key: shown in health, each once."""
    ever_connected: bool = False
    offline_sent: bool = False
    reconnects: int = 0
    failures: int = 0
    """Failed attempts since the link was last up (drives the back-off)."""
    heartbeats: list[float] = field(default_factory=list)
    """``heartbeat_s`` of each machine (same index as ``mappers``; missing: 60 s)."""
    deadbands: dict[tuple[int, str], float] = field(default_factory=dict)
    """Telemetry deadband per (machine, point); missing: 0, any change is stored."""
    stored: dict[tuple[int, str], tuple[float, dt.datetime]] = field(default_factory=dict)
    """Last telemetry/energy value stored per (machine, point), and when."""
    polls: int = 0
    """Polls completed (every point read once), for ``microfab bench connect``."""
    values: int = 0
    """Values read in those polls."""

    def add_machine(self, mapper: PointMapper, heartbeat_s: float = 60.0) -> int:
        """Read ``mapper``'s machine from this device; its index in :attr:`mappers`."""
        self.mappers.append(mapper)
        self.heartbeats.append(heartbeat_s)
        return len(self.mappers) - 1

    def worth_storing(self, machine: int, point: str, event: Event, ts: dt.datetime) -> bool:
        """A state or count event always; a telemetry or energy reading when it changed (beyond
        the deadband) or the machine's heartbeat has passed since the last one stored."""
        value: float | None = None
        if isinstance(event, TelemetrySample):
            value = next(iter(event.metrics.values()))
        elif isinstance(event, EnergyReading):
            value = event.kwh
        if value is None:
            return True
        key = (machine, point)
        deadband = self.deadbands.get(key, 0.0)
        last = self.stored.get(key)
        if last is not None:
            last_value, last_ts = last
            changed = abs(value - last_value) > deadband or (deadband == 0 and value != last_value)
            heartbeat = self.heartbeats[machine] if machine < len(self.heartbeats) else 60.0
            due = (ts - last_ts).total_seconds() >= heartbeat
            if not changed and not due:
                return False
        self.stored[key] = (value, ts)
        return True

    def link_up(self, *, resumed: bool = False) -> None:
        """The device answers: connected; after a loss the mappers forget their last state (and,
        unless ``resumed``, their counter baselines)."""
        if self.ever_connected:
            self.reconnects += 1
        if self.ever_connected or self.offline_sent:
            for mapper in self.mappers:
                if resumed:
                    mapper.forget_state()
                else:
                    mapper.forget_link()
        self.ever_connected = True
        self.offline_sent = False
        self.failures = 0
        self.stored.clear()  # the first readings after (re)connecting are stored
        self.status = LinkStatus.CONNECTED
        self.detail = ""

    def link_down(self, reason: str, now: dt.datetime) -> list[Event]:
        """The device cannot be read: down; the ``offline`` events, the first time only."""
        self.status = LinkStatus.DOWN
        self.detail = reason
        self.failures += 1
        if self.offline_sent:
            return []
        self.offline_sent = True
        offline = [mapper.offline(now, LINK_DOWN) for mapper in self.mappers]
        return [event for event in offline if event is not None]

    def stopped(self, now: dt.datetime) -> list[Event]:
        """The connector stops: ``offline`` (``CONNECTOR-STOPPED``) for machines still live."""
        self.status = LinkStatus.STOPPED
        events = [mapper.offline(now, CONNECTOR_STOPPED) for mapper in self.mappers if mapper.live]
        return [event for event in events if event is not None]


D = TypeVar("D", bound=Device)
S = TypeVar("S")


def backoff_s(failures: int, reconnect_s: float, max_reconnect_s: float) -> float:
    """Seconds to wait after ``failures`` failed attempts in a row (1: ``reconnect_s``), doubling
    each time, at most ``max_reconnect_s``."""
    if failures <= 1:
        return float(min(reconnect_s, max_reconnect_s))
    return float(min(reconnect_s * 2 ** min(failures - 1, 30), max(reconnect_s, max_reconnect_s)))


def combined_health(
    name: str,
    devices: list[D],
    *,
    stopped: bool,
    publisher: CountingPublisher,
    last_event: dt.datetime | None,
    publish_error: str = "",
) -> Health:
    """One status for all devices: ``down`` if any is down, each device's detail and problems."""
    statuses = [d.status for d in devices]
    if stopped or all(s is LinkStatus.STOPPED for s in statuses):
        status = LinkStatus.STOPPED
    elif LinkStatus.DOWN in statuses:
        status = LinkStatus.DOWN
    elif LinkStatus.CONNECTING in statuses:
        status = LinkStatus.CONNECTING
    else:
        status = LinkStatus.CONNECTED
    notes = [f"{d.label}: {d.detail}" for d in devices if d.detail]
    notes += [f"{d.label}: {problem}" for d in devices for problem in d.problems.values()]
    if publish_error:
        notes.append(publish_error)
    return Health(
        connector=name,
        status=status,
        detail="; ".join(notes),
        last_event=last_event,
        reconnects=sum(d.reconnects for d in devices),
        events=publisher.count,
    )


class PollingConnector(ABC, Generic[D, S]):
    """A connector that polls devices of type ``D`` through sessions of type ``S``.

    Subclasses set :attr:`name` and :attr:`noun` (``"Modbus device"``, used in log lines),
    and implement :meth:`_open`, :meth:`_read`, :meth:`_close` and :meth:`_describe`.
    """

    name = "polling"
    noun = "device"
    logger = logging.getLogger(__name__)
    link_errors: tuple[type[BaseException], ...] = (OSError, TimeoutError)
    """Exceptions that mean the link failed (others are logged as internal errors)."""

    def __init__(
        self,
        publisher: Publisher,
        devices: list[D],
        *,
        reconnect_s: float = 2.0,
        max_reconnect_s: float | None = None,
        timeout_s: float = 2.0,
    ) -> None:
        """``max_reconnect_s``: longest wait between attempts (None: ``reconnect_s``, no
        back-off)."""
        if reconnect_s <= 0 or timeout_s <= 0:
            raise ValueError("reconnect_s and timeout_s must be positive")
        self.publisher = CountingPublisher(publisher)
        self.reconnect_s = reconnect_s
        self.max_reconnect_s = reconnect_s if max_reconnect_s is None else max_reconnect_s
        self.timeout_s = timeout_s
        self._devices = devices
        self._tasks: list[asyncio.Task[None]] = []
        self._started = False
        self._stopped = False
        self._last_event: dt.datetime | None = None
        self._publish_error = ""

    @property
    def devices(self) -> list[D]:
        return self._devices

    # ------------------------------------------------------------------ what a protocol does

    @abstractmethod
    async def _open(self, device: D) -> S:
        """Connect to the device (raise :class:`LinkLost` or a link error when it cannot)."""

    @abstractmethod
    async def _read(self, device: D, session: S) -> list[Reading]:
        """Every readable value of the device; refused points are left out (and noted)."""

    @abstractmethod
    async def _close(self, device: D, session: S | None) -> None:
        """Release the session (``None``: opening failed half-way; drop what there is)."""

    def _describe(self, exc: BaseException) -> str:
        """One line on why the link failed, in plain words."""
        return describe_link_error(exc)

    def _resumed(self, device: D, session: S) -> bool:
        """Whether the session replays what happened during the gap (no re-baseline)."""
        return False

    def _keep(self, device: D, reading: Reading, event: Event, ts: dt.datetime) -> bool:
        """Whether a mapped event is stored: :meth:`Device.worth_storing`."""
        return device.worth_storing(reading.machine, reading.point, event, ts)

    def _on_link_up(self, device: D) -> None:
        """Hook after the link came up (before the first read)."""

    # ------------------------------------------------------------------ Connector

    async def start(self) -> None:
        """Start one polling task per device; returns at once (the tasks connect)."""
        if self._started:
            return
        self._started = True
        self._stopped = False
        for device in self._devices:
            device.status = LinkStatus.CONNECTING
            task = asyncio.create_task(self._run(device), name=f"{self.name} {device.label}")
            self._tasks.append(task)

    async def stop(self) -> None:
        """Stop polling, close every session, mark the machines whose state was reported
        ``offline`` (``CONNECTOR-STOPPED``) and flush the publisher."""
        self._stopped = True
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        now = now_ms()
        events: list[Event] = []
        for device in self._devices:
            events += device.stopped(now)
        self._started = False
        self._deliver(events)

    def health(self) -> Health:
        """``connected`` when every device answers, ``down`` when any does not (named in detail)."""
        return combined_health(
            self.name,
            self._devices,
            stopped=self._stopped,
            publisher=self.publisher,
            last_event=self._last_event,
            publish_error=self._publish_error,
        )

    # ------------------------------------------------------------------ one device

    async def _run(self, device: D) -> None:
        """Connect, poll until the link fails, mark it down, wait (backing off), repeat."""
        while not self._stopped:
            session: S | None = None
            try:
                session = await self._open(device)
                device.link_up(resumed=self._resumed(device, session))
                self.logger.info(
                    "%s %s: %s",
                    self.noun,
                    device.label,
                    "reconnected" if device.reconnects else "connected",
                )
                self._on_link_up(device)
                await self._poll(device, session)
            except asyncio.CancelledError:
                raise
            except LinkLost as exc:
                self._link_down(device, str(exc))
            except self.link_errors as exc:
                self._link_down(device, self._describe(exc))
            except Exception as exc:  # a bug must not end the polling of a device
                self.logger.exception("%s polling of %s failed", self.name, device.label)
                self._link_down(device, f"internal error: {exc!r}")
            finally:
                await asyncio.shield(self._close_quietly(device, session))
            if self._stopped:
                break
            await asyncio.sleep(backoff_s(device.failures, self.reconnect_s, self.max_reconnect_s))

    async def _close_quietly(self, device: D, session: S | None) -> None:
        try:
            await self._close(device, session)
        except Exception:  # closing a dead link may fail too; nothing more to do
            self.logger.debug("%s %s: closing failed", self.noun, device.label, exc_info=True)

    def _link_down(self, device: D, reason: str) -> None:
        if device.status is not LinkStatus.DOWN:
            self.logger.info("%s %s: down: %s", self.noun, device.label, reason)
        elif device.detail != reason:
            self.logger.debug("%s %s: still down: %s", self.noun, device.label, reason)
        self._deliver(device.link_down(reason, now_ms()))

    async def _poll(self, device: D, session: S) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        # stopped is checked as well as cancellation: on Python 3.11, asyncio.wait_for (used
        # around reads) may swallow a cancel that arrives just as its answer does
        while not self._stopped:
            ts = now_ms()
            readings = await self._read(device, session)
            device.polls += 1
            device.values += len(readings)
            self._deliver(self._map(device, readings, ts))
            due += device.poll_s
            delay = due - loop.time()
            if delay < 0:  # a slow device: poll again now, do not try to catch up
                due = loop.time()
                delay = 0.0
            await asyncio.sleep(delay)

    def _map(self, device: D, readings: list[Reading], ts: dt.datetime) -> list[Event]:
        events: list[Event] = []
        for reading in readings:
            mapper = device.mappers[reading.machine]
            when = reading.ts or ts
            try:
                event = mapper.map(reading.point, reading.value, when, held=reading.held)
            except ValueError as exc:  # the value makes no valid event: skip it, keep going
                self.logger.warning(
                    "%s %s: %s of %s: value %r skipped (%s)",
                    self.noun,
                    device.label,
                    reading.point,
                    mapper.machine,
                    reading.value,
                    exc,
                )
                continue
            if event is not None and self._keep(device, reading, event, when):
                events.append(event)
        return events

    # ------------------------------------------------------------------ publishing

    def _deliver(self, events: list[Event]) -> None:
        """Publish and flush; a failing publisher is reported in health, never raised."""
        try:
            for event in events:
                self.publisher.publish(event)
            self.publisher.flush()
        except Exception as exc:
            error = f"publishing failed: {exc}"
            if error != self._publish_error:  # log each new failure once, not at every poll
                self.logger.exception("publishing %s events failed", self.name)
            self._publish_error = error
            return
        self._publish_error = ""
        if events:
            self._last_event = max(e.ts for e in events)


def refused(exc: BaseException) -> bool:
    """Whether ``exc``, or an exception it was raised from, is a refused connection (libraries
    wrap it: "All connection attempts failed", "failed to open a connection")."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ConnectionRefusedError) or "Errno 111" in str(current):
            return True
        current = current.__cause__ or current.__context__
    return False


def describe_link_error(exc: BaseException) -> str:
    """One line on why a link failed: refused, timed out, or the OS's words."""
    if refused(exc):
        return "connection refused"
    if isinstance(exc, TimeoutError):
        return "no answer (timed out)"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror[0].lower() + exc.strerror[1:]
    text = str(exc).strip()
    return text or type(exc).__name__


class PlcConnector(PollingConnector[D, S]):
    """A polling connector whose devices are the PLCs the factory model maps in its machines'
    ``connect.<block>`` blocks (S7, MC, EtherNet/IP): the same construction, one place.

    Subclasses set :attr:`block` and :attr:`mapped` (what a point names: ``"addresses"``,
    ``"tags"``…) and implement :meth:`_devices_of`."""

    block = "plc"
    mapped = "points"

    def __init__(
        self,
        factory: Factory,
        publisher: Publisher,
        *,
        reconnect_s: float = 1.0,
        max_reconnect_s: float = 10.0,
        timeout_s: float = 2.0,
        poll_s: float | None = None,
    ) -> None:
        devices = self._devices_of(factory, poll_s)
        if not devices:
            raise InputError(
                f"no machine of the factory model has connect.{self.block}; map its "
                f"{self.mapped} in the factory file (see docs/connectors.md) and run "
                "'microfab factory apply' again"
            )
        super().__init__(
            publisher,
            devices,
            reconnect_s=reconnect_s,
            max_reconnect_s=max_reconnect_s,
            timeout_s=timeout_s,
        )

    @classmethod
    @abstractmethod
    def _devices_of(cls, factory: Factory, poll_s: float | None) -> list[D]:
        """The PLCs of ``factory`` (``poll_s`` overrides each one's polling interval)."""
