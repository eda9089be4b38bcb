"""Read machines over OPC UA: subscribe to their mapped nodes and publish the changes as events.

Every machine whose factory entry has ``connect.opcua`` is read from that server. Machines on the
same endpoint share one client, one session and one subscription; each machine has its own
:class:`~microfab.connect.mapping.PointMapper`, keyed by the node id string as written in the
factory file (``ns=2;s=Press1.State``). Values carry the server's source timestamp (else its
server timestamp, else the time they arrived).

One supervising task per endpoint owns the link. When the link is lost (the socket drops, the
keep-alive probe fails, the server restarts) it publishes ``offline`` with reason ``LINK-DOWN`` for
each machine of the endpoint that has a state point, once, reports the endpoint down in
:meth:`OpcUaConnector.health`, and tries again every ``reconnect_s`` seconds. Once back it
subscribes afresh: counters re-baseline and the current state is reported again. The first value
of each node after subscribing is the value the server holds (``held``): a non-cumulative count in
it is not counted again. A value the server still holds from before the loss is stamped with the
time the link came back, so the machine is not left ``offline``. No asyncua or socket error leaves
the supervising task; asyncua's own log lines about the same closed connection (a publish
traceback, "connection is closed" warnings) are filtered out, the loss is logged once (INFO: the
status line of :func:`~microfab.connect.connector.run_until_interrupted` shows it).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from asyncua import ua
from asyncua.client.client import Client
from asyncua.client.ua_client import UaClientState
from asyncua.common.node import Node
from asyncua.common.subscription import DataChangeEvent, StatusChangeEvent
from asyncua.ua.uaerrors import UaError, UaStatusCodeError

from microfab.connect.connector import CountingPublisher, Health, LinkStatus
from microfab.connect.mapping import PointMapper
from microfab.connect.polling import Device
from microfab.connect.publisher import Publisher
from microfab.errors import InputError
from microfab.model.events import Event
from microfab.model.factory import Factory

logger = logging.getLogger(__name__)

SOURCE = "opcua"
"""Source name in event ids and in the connector's health."""

_OLDEST_TIMESTAMP = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
"""Timestamps before this are taken as unset (OPC UA's null time is 1601-01-01)."""

_FLUSH_AFTER_S = 0.2
"""Hand queued events on once the subscription has been quiet this long."""

_FLUSH_EVERY = 200
"""… or once this many events are queued."""


@dataclass
class _Binding:
    """One mapped point of one machine."""

    mapper: PointMapper
    point: str


@dataclass
class _Link(Device):
    """One OPC UA server and the machines read from it (``label`` is the endpoint); its link
    bookkeeping (status, ``offline`` once per loss, reconnects) is
    :class:`~microfab.connect.polling.Device`'s."""

    publishing_interval_ms: int = 500
    bindings: dict[ua.NodeId, list[_Binding]] = field(default_factory=dict)
    initial: set[ua.NodeId] = field(default_factory=set)
    """Nodes whose first value since subscribing has not arrived yet (it will be a held value)."""
    offline_at: dt.datetime | None = None
    last_event: dt.datetime | None = None
    settled: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def endpoint(self) -> str:
        return self.label


class OpcUaConnector:
    """Subscribes to the OPC UA nodes mapped in a factory model; see the module docstring."""

    name = SOURCE

    def __init__(
        self,
        factory: Factory,
        publisher: Publisher,
        endpoint: str | None = None,
        *,
        reconnect_s: float = 2.0,
        timeout_s: float = 4.0,
        watchdog_s: float = 1.0,
    ) -> None:
        if reconnect_s <= 0 or timeout_s <= 0 or watchdog_s <= 0:
            raise ValueError("reconnect_s, timeout_s and watchdog_s must be positive")
        self._publisher = CountingPublisher(publisher)
        self._reconnect_s = reconnect_s
        self._timeout_s = timeout_s
        self._watchdog_s = watchdog_s
        self._links = _links_of(factory, endpoint)
        _quiet_asyncua_link_loss()
        self._tasks: list[asyncio.Task[None]] = []
        self._stopped = False

    @property
    def endpoints(self) -> list[str]:
        """The OPC UA servers this connector reads, in factory order."""
        return [link.endpoint for link in self._links]

    # ------------------------------------------------------------------ Connector protocol

    async def start(self) -> None:
        """Start one supervising task per endpoint; wait (briefly) for each first attempt.

        An unreachable server is not an error here: its machines are marked ``offline`` and the
        connector keeps trying; :meth:`health` says so.
        """
        if self._tasks:
            return
        self._stopped = False
        for link in self._links:
            link.settled = asyncio.Event()
            task = asyncio.create_task(self._supervise(link), name=f"opcua {link.endpoint}")
            self._tasks.append(task)
        settle = [asyncio.create_task(link.settled.wait()) for link in self._links]
        _, pending = await asyncio.wait(settle, timeout=self._timeout_s * 2 + 1)
        for waiter in pending:
            waiter.cancel()

    async def stop(self) -> None:
        """Cancel the supervising tasks, close every session, mark the machines whose state was
        reported ``offline`` (``CONNECTOR-STOPPED``), flush the publisher."""
        self._stopped = True
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        now = _now()
        for link in self._links:
            for event in link.stopped(now):
                self._publisher.publish(event)
        self._flush()

    def health(self) -> Health:
        """One status for all endpoints: down if any is down, naming which and why."""
        reconnects = sum(link.reconnects for link in self._links)
        seen = [link.last_event for link in self._links if link.last_event is not None]
        last_event = max(seen) if seen else None

        def report(status: LinkStatus, detail: str) -> Health:
            return Health(
                SOURCE,
                status,
                detail,
                last_event=last_event,
                reconnects=reconnects,
                events=self._publisher.count,
            )

        if self._stopped:
            return report(LinkStatus.STOPPED, "")
        down = [link for link in self._links if link.status is LinkStatus.DOWN]
        if down:
            return report(
                LinkStatus.DOWN, "; ".join(f"{link.endpoint}: {link.detail}" for link in down)
            )
        connecting = [link for link in self._links if link.status is LinkStatus.CONNECTING]
        if connecting:
            return report(
                LinkStatus.CONNECTING,
                "connecting to " + ", ".join(link.endpoint for link in connecting),
            )
        machines = sum(len(link.mappers) for link in self._links)
        notes = [f"{link.endpoint}: {link.detail}" for link in self._links if link.detail]
        summary = f"{len(self._links)} endpoint(s), {machines} machine(s)"
        return report(LinkStatus.CONNECTED, "; ".join([summary, *notes]))

    # ------------------------------------------------------------------ one endpoint

    async def _supervise(self, link: _Link) -> None:
        """Keep one endpoint subscribed for as long as the connector runs; never raises."""
        while True:
            try:
                await self._session(link)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug in the session's own clean-up: still not the app's end
                logger.exception("OPC UA %s: unexpected error", link.endpoint)
                self._link_down(link, "internal error (see the log)")
            await asyncio.sleep(self._reconnect_s)

    async def _session(self, link: _Link) -> None:
        """Connect, subscribe and deliver values until the link is lost; report it, clean up.

        The loss is reported (offline events, health) before the session is closed, since closing
        a session on a server that stopped answering waits for the request timeout.
        """
        client = Client(link.endpoint, timeout=self._timeout_s, watchdog_intervall=self._watchdog_s)
        client.session_timeout = 60_000  # ms; the server may drop our session a minute after us
        client.name = client.description = "microfab"
        client.application_uri = "urn:microfab:connect:opcua"
        lost: list[Exception] = []

        async def on_connection_lost(exc: Exception) -> None:  # asyncua's keep-alive found it
            lost.append(exc)

        def loss(fallback: str) -> ConnectionError:
            if not lost:
                return ConnectionError(fallback)
            if isinstance(lost[0], TimeoutError):
                return ConnectionError(
                    f"the server stopped answering (keep-alive, {self._watchdog_s:g} s)"
                )
            if type(lost[0]) is ConnectionError:  # asyncua saw the socket close
                return ConnectionError("the server closed the connection")
            return ConnectionError(f"connection lost ({_describe(lost[0], self._timeout_s)})")

        client.connection_lost_callback = on_connection_lost
        connected = False
        try:
            await asyncio.wait_for(client.connect(), timeout=self._timeout_s * 2)
            connected = True
            subscription = await client.create_subscription(link.publishing_interval_ms, None)
            for mapper in link.mappers:
                mapper.forget_link()
            link.initial = set(link.bindings)
            nodes = [client.get_node(node_id) for node_id in link.bindings]
            results = await subscription.subscribe_data_change(nodes)
            self._link_up(link, _refused(nodes, results))
            queued = 0
            while True:
                if client.state is not UaClientState.CONNECTED:
                    raise loss(f"connection lost ({client.state.value})")
                item = await subscription.next_event(timeout=_FLUSH_AFTER_S if queued else 0.5)
                if item is None or queued >= _FLUSH_EVERY:
                    if queued:
                        self._flush()
                        queued = 0
                    if item is None:
                        continue
                if isinstance(item, DataChangeEvent):
                    queued += self._on_change(link, item)
                elif isinstance(item, StatusChangeEvent):
                    status = item.notification.Status
                    if not status.is_good():
                        raise loss(f"subscription ended by the server ({status.name})")
        except StopAsyncIteration:
            self._link_down(link, "the subscription was closed")
        except Exception as exc:  # asyncua, OSError, or a bug: the link goes down, not the app
            if not _is_link_error(exc):
                logger.exception("OPC UA %s: unexpected error", link.endpoint)
            self._link_down(link, _describe(exc, self._timeout_s))
        finally:
            self._flush()
            if connected:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(client.disconnect(), timeout=self._timeout_s)
            else:  # a failed connect has no session; drop a half-open socket, if any
                client.disconnect_socket()

    def _on_change(self, link: _Link, item: DataChangeEvent) -> int:
        """Map one data change for every machine bound to the node; return events published."""
        node_id = item.node.nodeid
        held = node_id in link.initial  # the value held at subscribing, not a change
        link.initial.discard(node_id)
        bindings = link.bindings.get(node_id)
        value = item.data.monitored_item.Value
        if not bindings or value is None:
            return 0
        if value.StatusCode is not None and not value.StatusCode.is_good():
            logger.info(
                "OPC UA %s: %s has status %s; value not used",
                link.endpoint,
                bindings[0].point,
                value.StatusCode.name,
            )
            return 0
        now = _now()
        ts = _aware(value.SourceTimestamp) or _aware(value.ServerTimestamp) or now
        if link.offline_at is not None and ts <= link.offline_at:
            ts = now  # held over from before the link loss: the machine is in it now
        events: list[Event] = []
        for binding in bindings:
            try:
                event = binding.mapper.map(binding.point, item.value, ts, held=held)
            except ValueError as exc:  # the value does not make a valid event: skip it, keep going
                logger.warning(
                    "OPC UA %s: %s of %s: value %r skipped (%s)",
                    link.endpoint,
                    binding.point,
                    binding.mapper.machine,
                    item.value,
                    exc,
                )
                continue
            if event is not None:
                events.append(event)
        for event in events:
            self._publisher.publish(event)
        if events:
            link.last_event = now
        return len(events)

    def _link_up(self, link: _Link, refused: list[str]) -> None:
        link.link_up()
        link.detail = f"{len(refused)} node(s) refused: {', '.join(refused)}" if refused else ""
        link.settled.set()
        logger.info(
            "OPC UA %s: %s, %d node(s) subscribed%s",
            link.endpoint,
            "reconnected" if link.reconnects else "connected",
            len(link.bindings) - len(refused),
            f"; {link.detail}" if refused else "",
        )

    def _link_down(self, link: _Link, reason: str) -> None:
        was = link.status
        now = _now()
        offline = link.link_down(f"{reason}; retrying every {self._reconnect_s:g} s", now)
        link.settled.set()
        if was is LinkStatus.DOWN:
            logger.debug("OPC UA %s: still down: %s", link.endpoint, reason)
            return
        logger.info("OPC UA %s: down: %s", link.endpoint, reason)
        link.offline_at = now
        try:
            for event in offline:
                self._publisher.publish(event)
            self._publisher.flush()
        except Exception:
            logger.exception("OPC UA %s: could not publish the offline events", link.endpoint)
        link.last_event = now

    def _flush(self) -> None:
        try:
            self._publisher.flush()
        except Exception:
            logger.exception("OPC UA: the publisher failed to flush")


# ---------------------------------------------------------------------------- helpers


def _links_of(factory: Factory, endpoint: str | None) -> list[_Link]:
    """Group the factory's OPC UA machines by endpoint; raise InputError if there are none."""
    wanted = _same_endpoint_key(endpoint) if endpoint is not None else None
    links: dict[str, _Link] = {}
    known: list[str] = []
    for ref in factory.machines():
        source = ref.machine.connect.opcua if ref.machine.connect is not None else None
        if source is None:
            continue
        known.append(source.endpoint)
        key = _same_endpoint_key(source.endpoint)
        if wanted is not None and key != wanted:
            continue
        link = links.get(key)
        if link is None:
            link = links[key] = _Link(
                label=source.endpoint,
                poll_s=source.publishing_interval_ms / 1000,
                publishing_interval_ms=source.publishing_interval_ms,
            )
        link.publishing_interval_ms = min(
            link.publishing_interval_ms, source.publishing_interval_ms
        )
        mapper = PointMapper(source=SOURCE, machine=ref.path, points=list(source.points))
        link.mappers.append(mapper)
        for point in source.points:
            try:
                node_id = ua.NodeId.from_string(point.point)
            except (UaError, ValueError):
                raise InputError(
                    f"machine {ref.path}: OPC UA point '{point.point}' is not a node id such as "
                    "ns=2;s=Press1.State or ns=3;i=1001"
                ) from None
            link.bindings.setdefault(node_id, []).append(_Binding(mapper, point.point))
    if not links:
        if endpoint is None:
            raise InputError(
                "no machine in the factory model has connect.opcua; map its nodes in the factory "
                "file (see docs/connectors.md) and run 'microfab factory apply'"
            )
        raise InputError(
            f"no machine in the factory model is mapped to {endpoint}; mapped endpoints: "
            + (", ".join(sorted(set(known))) or "none")
        )
    return list(links.values())


class _LinkLossNoise(logging.Filter):
    """Drops asyncua's own reports of a closed connection; the connector reports the loss once."""

    _MESSAGES = (
        "Publish iteration crashed",
        "close_session was called but connection is closed",
        "close_secure_channel was called but connection is closed",
    )

    def filter(self, record: logging.LogRecord) -> bool:
        if not isinstance(record.msg, str) or not record.msg.startswith(self._MESSAGES):
            return True
        error = record.exc_info[1] if record.exc_info else None
        return not (error is None or isinstance(error, ConnectionError))


_NOISY_LOGGERS = ("asyncua.client.ua_session.UaSession", "asyncua.client.ua_client.UaClient")


def _quiet_asyncua_link_loss() -> None:
    for name in _NOISY_LOGGERS:
        target = logging.getLogger(name)
        if not any(isinstance(f, _LinkLossNoise) for f in target.filters):
            target.addFilter(_LinkLossNoise())


def _same_endpoint_key(endpoint: str) -> str:
    return endpoint.strip().rstrip("/").lower()


def _refused(nodes: list[Node], results: Iterable[object]) -> list[str]:
    """Node ids the server would not monitor (unknown node, no access, …), with the reason."""
    return [
        f"{node.nodeid.to_string()} ({result.name})"
        for node, result in zip(nodes, results, strict=False)
        if isinstance(result, ua.StatusCode)
    ]


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value if value >= _OLDEST_TIMESTAMP else None


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _is_link_error(exc: BaseException) -> bool:
    return isinstance(exc, OSError | TimeoutError | UaError)


def _describe(exc: BaseException, timeout_s: float) -> str:
    """One line on why the link failed, in terms of the network and the server."""
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is the OPC UA server running?)"
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout_s:g} s"
    if isinstance(exc, UaStatusCodeError):
        return f"server answered {ua.StatusCode(exc.code).name}"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror[0].lower() + exc.strerror[1:]
    text = str(exc).strip()
    if isinstance(exc, ConnectionError) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
