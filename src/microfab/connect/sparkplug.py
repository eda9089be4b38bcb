"""A Sparkplug B host application: edge-node metrics mapped to microfab events.

Every machine whose factory entry has ``connect.sparkplug`` names the metrics of one edge node
(``group``/``edge_node``) or of one device behind it (``device``). :class:`SparkplugHost` connects
to the MQTT broker with paho-mqtt (its own network thread), subscribes to ``spBv1.0/GROUP/#`` for
every mapped group and decodes payloads with Eclipse Tahu's generated protobuf module. Decoding,
the session bookkeeping and the mapping run on the asyncio loop that called :meth:`start`, so the
publisher is only ever called from that loop's thread.

Per edge node it keeps what the Sparkplug B specification asks a host to keep:

- the **birth/death sequence** ``bdSeq`` of the node's MQTT session, from the ``bdSeq`` metric of
  its NBIRTH; an NDEATH whose ``bdSeq`` differs is the will of an older session and is ignored;
- the **message sequence** ``seq`` (0-255, wrapping), which runs across the node's NBIRTH, DBIRTH,
  NDATA, DDATA and DDEATH messages;
- the **aliases** the NBIRTH and DBIRTH messages declare, so data that carries only an alias is
  resolved to the metric name the factory file maps.

Data that arrives before a birth, with an unknown alias, or after a gap in ``seq`` is not used:
the host publishes an NCMD with ``Node Control/Rebirth = true`` to the node and ignores its data
until the fresh NBIRTH (requests are repeated at most every ``rebirth_retry_s`` seconds). Birth
metrics are current values and are mapped like data, as values the node only restates
(``held``): a non-cumulative count in a birth is not counted again.

NDEATH (or the loss of the broker) makes every metric of the node and its devices *stale*, DDEATH
those of one device: :meth:`SparkplugHost.stale_metrics` lists them, :meth:`SparkplugHost.health`
names the nodes, and each machine mapped to them gets one ``offline`` event with reason
``LINK-DOWN`` (if it has a state point). The next birth makes them current again. A payload that
is not a Sparkplug B protobuf is logged and counted (:attr:`SparkplugHost.malformed`), never fatal.

The host announces itself as Sparkplug 3.0 asks: ``spBv1.0/STATE/HOST_ID`` retained, JSON
``{"online": true, "timestamp": MS}``, with the matching ``online: false`` as its MQTT will. It
reconnects by itself (paho's reconnect delay, 1 to 10 s) and subscribes again. A broker that
refuses the CONNECT, or accepts the TCP connection but never answers it (an MQTT 3.1.1-only
broker given an MQTT 5 CONNECT), makes the link ``down`` with the reason, and the host keeps
trying.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import enum
import json
import logging
import re
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import paho.mqtt.client as paho
from google.protobuf.message import DecodeError

from microfab.connect import sparkplug_b_pb2
from microfab.connect.connector import (
    CONNECTOR_STOPPED,
    LINK_DOWN,
    CountingPublisher,
    Health,
    LinkStatus,
)
from microfab.connect.mapping import PointMapper
from microfab.connect.mqtt_client import BrokerSettings, new_client
from microfab.connect.publisher import Publisher
from microfab.errors import InputError
from microfab.model.events import Event
from microfab.model.factory import Factory

logger = logging.getLogger(__name__)

SOURCE = "sparkplug"
"""Source name in event ids and in the connector's health."""

NAMESPACE = "spBv1.0"
"""First topic level of every Sparkplug B message."""

REBIRTH_METRIC = "Node Control/Rebirth"
BDSEQ_METRIC = "bdSeq"

_FLUSH_EVERY = 200
"""Hand events on to the publisher after this many messages, or when no more are waiting."""

_TOPIC_LEVEL = re.compile(r"^[^/+#]+$")

_MQTT_VERSIONS = {"5": 5, "5.0": 5, "3.1.1": 4, "311": 4, "4": 4}

Scope = tuple[str, str, str | None]
"""(group, edge node, device or None for the node's own metrics)."""

StaleMetric = tuple[str, str, str | None, str]
"""(group, edge node, device or None, metric name)."""

Payload = Any
"""A ``sparkplug_b_pb2.Payload`` (the generated protobuf classes carry no type information)."""

Metric = Any
"""A ``sparkplug_b_pb2.Payload.Metric``."""


class DataType(enum.IntEnum):
    """The scalar Sparkplug B metric data types (values as in the protobuf ``DataType`` enum)."""

    INT8 = 1
    INT16 = 2
    INT32 = 3
    INT64 = 4
    UINT8 = 5
    UINT16 = 6
    UINT32 = 7
    UINT64 = 8
    FLOAT = 9
    DOUBLE = 10
    BOOLEAN = 11
    STRING = 12
    DATETIME = 13
    TEXT = 14
    UUID = 15


_SIGNED_BITS = {DataType.INT8: 8, DataType.INT16: 16, DataType.INT32: 32, DataType.INT64: 64}
_INT_FIELD = {DataType.INT8, DataType.INT16, DataType.INT32}
_INT_FIELD |= {DataType.UINT8, DataType.UINT16, DataType.UINT32}
_LONG_FIELD = {DataType.INT64, DataType.UINT64, DataType.DATETIME}
_STRING_FIELD = {DataType.STRING, DataType.TEXT, DataType.UUID}


# ---------------------------------------------------------------------------- payload codec


def now_ms() -> int:
    """The current time as Sparkplug writes it: milliseconds since the Unix epoch (UTC)."""
    return time.time_ns() // 1_000_000


def new_payload(timestamp_ms: int | None = None, seq: int | None = None) -> Payload:
    """An empty Sparkplug B payload with its timestamp (default: now) and, if given, ``seq``."""
    payload = sparkplug_b_pb2.Payload()
    payload.timestamp = now_ms() if timestamp_ms is None else timestamp_ms
    if seq is not None:
        payload.seq = seq
    return payload


def add_metric(
    payload: Payload,
    name: str | None,
    value: float | int | bool | str | None,
    datatype: DataType,
    *,
    alias: int | None = None,
    timestamp_ms: int | None = None,
) -> Metric:
    """Append a scalar metric to ``payload``; signed integers are stored in two's complement."""
    metric = payload.metrics.add()
    if name is not None:
        metric.name = name
    if alias is not None:
        metric.alias = alias
    if timestamp_ms is not None:
        metric.timestamp = timestamp_ms
    metric.datatype = int(datatype)
    if value is None:
        metric.is_null = True
    elif datatype in _INT_FIELD:
        metric.int_value = _to_unsigned(int(value), _SIGNED_BITS.get(datatype, 32))
    elif datatype in _LONG_FIELD:
        metric.long_value = _to_unsigned(int(value), _SIGNED_BITS.get(datatype, 64))
    elif datatype is DataType.FLOAT:
        metric.float_value = float(value)
    elif datatype is DataType.DOUBLE:
        metric.double_value = float(value)
    elif datatype is DataType.BOOLEAN:
        metric.boolean_value = bool(value)
    else:
        metric.string_value = str(value)
    return metric


def metric_value(metric: Metric, datatype: int = 0) -> float | int | bool | str | None:
    """The scalar value of ``metric`` (None: null, or a kind this host does not map).

    ``datatype`` is what the birth declared, used when the metric itself does not say.
    """
    if metric.HasField("is_null") and metric.is_null:
        return None
    kind = metric.WhichOneof("value")
    declared = metric.datatype if metric.HasField("datatype") and metric.datatype else datatype
    if kind == "int_value" or kind == "long_value":
        raw = int(metric.int_value if kind == "int_value" else metric.long_value)
        known = _data_type(declared)
        bits = _SIGNED_BITS.get(known) if known is not None else None
        return _to_signed(raw, bits) if bits else raw
    if kind == "float_value":
        return float(f"{metric.float_value:.7g}")  # the 7 digits a float32 carries
    if kind == "double_value":
        return float(metric.double_value)
    if kind == "boolean_value":
        return bool(metric.boolean_value)
    if kind == "string_value":
        return str(metric.string_value)
    return None  # bytes, data sets, templates, extensions


def decode_payload(data: bytes) -> Payload:
    """Parse a Sparkplug B payload; raise ``ValueError`` if ``data`` is not one."""
    payload = sparkplug_b_pb2.Payload()
    try:
        payload.ParseFromString(data)
    except DecodeError as exc:
        raise ValueError(f"not a Sparkplug B payload ({exc})") from None
    return payload


def _data_type(code: int) -> DataType | None:
    try:
        return DataType(code)
    except ValueError:
        return None


def _to_unsigned(value: int, bits: int) -> int:
    return value + (1 << bits) if value < 0 else value


def _to_signed(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >= 1 << (bits - 1) else value


def sparkplug_client(settings: BrokerSettings, client_id: str) -> paho.Client:
    """A paho client for a Sparkplug session: :func:`new_client` with a clean session (on MQTT 5
    pass ``clean_start=True`` to ``connect``)."""
    return new_client(settings, client_id, clean=True)


# ---------------------------------------------------------------------------- host state


@dataclass
class _Binding:
    """One machine read from one scope."""

    mapper: PointMapper
    scope: Scope
    offline: bool = False


@dataclass
class _Node:
    """What the host knows about one mapped edge node's current session."""

    group: str
    edge_node: str
    born: bool = False
    bd_seq: int | None = None
    seq: int | None = None
    devices: set[str] = field(default_factory=set)
    aliases: dict[tuple[str | None, int], str] = field(default_factory=dict)
    types: dict[tuple[str | None, str], int] = field(default_factory=dict)
    known: dict[str | None, set[str]] = field(default_factory=dict)
    rebirth_sent: float | None = None

    @property
    def label(self) -> str:
        return f"{self.group}/{self.edge_node}"

    def reset(self) -> None:
        """Forget the session: nothing is used until the next NBIRTH."""
        self.born = False
        self.seq = None
        self.devices.clear()
        self.aliases.clear()
        self.types.clear()


@dataclass(frozen=True)
class _Message:
    topic: str
    payload: bytes
    received: dt.datetime


@dataclass(frozen=True)
class _LinkUp:
    refused: tuple[str, ...] = ()


@dataclass(frozen=True)
class _LinkDown:
    reason: str


_Item = _Message | _LinkUp | _LinkDown


class SparkplugHost:
    """A Sparkplug B host application for the machines mapped in a factory model.

    See the module docstring. ``host_id`` names the host in its STATE topic
    (``spBv1.0/STATE/HOST_ID``) and MQTT client id: two hosts on one broker need different ids.
    ``mqtt_version`` (``"5"`` or ``"3.1.1"``; default: ``settings.protocol``) is the MQTT protocol
    spoken to the broker. ``rebirth_retry_s`` is the least time between two rebirth requests to
    one edge node; ``timeout_s`` bounds the wait for the broker's answer to a CONNECT.
    """

    name = SOURCE

    def __init__(
        self,
        factory: Factory,
        publisher: Publisher,
        settings: BrokerSettings,
        *,
        host_id: str = "microfab",
        mqtt_version: str | None = None,
        rebirth_retry_s: float = 5.0,
        timeout_s: float = 5.0,
    ) -> None:
        if not _TOPIC_LEVEL.match(host_id):
            raise InputError(f"Sparkplug host id '{host_id}' must not contain '/', '+' or '#'")
        if rebirth_retry_s <= 0 or timeout_s <= 0:
            raise ValueError("rebirth_retry_s and timeout_s must be positive")
        if mqtt_version is not None:
            protocol = _MQTT_VERSIONS.get(mqtt_version.strip())
            if protocol is None:
                raise InputError(f"--mqtt-version: '{mqtt_version}' is not 5 or 3.1.1")
            settings = replace(settings, protocol=protocol)
        self.settings = settings
        self.host_id = host_id
        self.malformed = 0
        """Payloads of mapped edge nodes that were not Sparkplug B protobuf (or had a bad topic)."""
        self.rebirth_requests = 0
        """NCMD ``Node Control/Rebirth`` messages sent."""
        self._publisher = CountingPublisher(publisher)
        self._rebirth_retry_s = rebirth_retry_s
        self._timeout_s = timeout_s
        self._bindings, self._nodes = _bindings_of(factory)
        self._groups = sorted({group for group, _ in self._nodes})
        self._stale: set[StaleMetric] = set()
        self._status = LinkStatus.STOPPED
        self._detail = ""
        self._connects = 0
        self._last_event: dt.datetime | None = None
        self._stopping = False
        self._client: paho.Client | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._inbox: asyncio.Queue[_Item] | None = None
        self._pump: asyncio.Task[None] | None = None
        self._settled: asyncio.Event | None = None
        self._state_ts = now_ms()
        self._subscribe_mid: int | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._attempt_started: float | None = None
        """When the CONNECT now waiting for the broker's answer went out (monotonic), if any."""
        self.connect_attempts = 0
        """Connections tried (TCP connect and MQTT CONNECT), including the first."""

    # ------------------------------------------------------------------ public views

    @property
    def mqtt_version(self) -> str:
        """The MQTT protocol spoken to the broker: ``"5"`` or ``"3.1.1"``."""
        return "5" if self.settings.protocol == 5 else "3.1.1"

    @property
    def state_topic(self) -> str:
        return f"{NAMESPACE}/STATE/{self.host_id}"

    @property
    def edge_nodes(self) -> list[str]:
        """The mapped edge nodes as ``group/edge_node``, sorted."""
        return sorted(node.label for node in self._nodes.values())

    def stale_metrics(self) -> set[StaleMetric]:
        """Metrics whose last value is no longer current (their node or device died)."""
        return set(self._stale)

    # ------------------------------------------------------------------ Connector protocol

    async def start(self) -> None:
        """Connect in the background; return once connected and subscribed (or the first failure).

        An unreachable broker is not an error here: the machines are marked ``offline``, paho
        keeps trying and :meth:`health` says so.
        """
        if self._client is not None:
            return
        self._stopping = False
        self._loop = asyncio.get_running_loop()
        self._inbox = asyncio.Queue()
        self._settled = asyncio.Event()
        self._status = LinkStatus.CONNECTING
        self._detail = f"connecting to {self.settings.display}"
        self._pump = asyncio.create_task(self._run_pump(), name="sparkplug host")
        client = sparkplug_client(self.settings, f"microfab-spb-{self.host_id}")
        client.reconnect_delay_set(min_delay=1, max_delay=10)
        client.on_pre_connect = self._on_pre_connect
        client.on_socket_open = self._on_socket_open
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        self._set_will(client)
        self._client = client
        try:
            if self.settings.protocol == 5:  # Sparkplug: a clean session every time
                client.connect_async(
                    self.settings.host, self.settings.port, keepalive=30, clean_start=True
                )
            else:
                client.connect_async(self.settings.host, self.settings.port, keepalive=30)
        except ValueError as exc:  # a host name paho refuses outright
            raise InputError(f"--broker: {exc}") from None
        client.loop_start()
        self._watchdog = asyncio.create_task(self._watch_connect(), name="sparkplug connect")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._settled.wait(), timeout=self._timeout_s + 1)

    async def stop(self) -> None:
        """Announce the host offline, disconnect, hand on what is queued, flush the publisher."""
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None:
            watchdog.cancel()
            await asyncio.gather(watchdog, return_exceptions=True)
        self._stopping = True
        client, self._client = self._client, None
        if client is not None:
            await asyncio.to_thread(self._goodbye, client)
        pump, self._pump = self._pump, None
        if pump is not None:
            pump.cancel()
            await asyncio.gather(pump, return_exceptions=True)
        if self._inbox is not None:
            while not self._inbox.empty():
                self._handle(self._inbox.get_nowait())
        now = _now()
        for bindings in self._bindings.values():
            for binding in bindings:
                if binding.mapper.live:
                    self._emit([binding.mapper.offline(now, CONNECTOR_STOPPED)])
        self._flush()
        self._status = LinkStatus.STOPPED
        self._detail = ""

    def health(self) -> Health:
        """CONNECTED or DOWN for the broker link; the detail names stale edge nodes."""
        notes = [self._detail] if self._detail else []
        if self._status is LinkStatus.CONNECTED:
            born = sum(1 for node in self._nodes.values() if node.born)
            notes = [
                f"{self.settings.display}, {born}/{len(self._nodes)} edge node(s) born",
                *notes,
            ]
        stale = sorted({"/".join(filter(None, (g, n, d))) for g, n, d, _ in self._stale})
        if stale and self._status is not LinkStatus.STOPPED:
            notes.append("stale: " + ", ".join(stale))
        if self.malformed and self._status is not LinkStatus.STOPPED:
            notes.append(f"{self.malformed} malformed payload(s)")
        return Health(
            SOURCE,
            self._status,
            "; ".join(notes),
            last_event=self._last_event,
            reconnects=max(self._connects - 1, 0),
            events=self._publisher.count,
        )

    # ------------------------------------------------------------------ paho callbacks (network thread)

    def _on_pre_connect(self, client: paho.Client, userdata: Any) -> None:
        self.connect_attempts += 1

    def _on_socket_open(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        self._attempt_started = time.monotonic()  # connected; the CONNECT goes out now

    def _on_connect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        self._attempt_started = None
        if reason.is_failure:
            why = f"the broker refused the connection: {str(reason).lower()}"
            if "protocol" in str(reason).lower():
                other = "3.1.1" if self.settings.protocol == 5 else "5"
                why += f" (it does not speak MQTT {self.mqtt_version}: try --mqtt-version {other})"
            self._post(_LinkDown(why))
            return
        topics = [(f"{NAMESPACE}/{group}/#", 1) for group in self._groups]
        topics.append((self.state_topic, 1))
        _, self._subscribe_mid = client.subscribe(topics)

    def _on_subscribe(
        self, client: paho.Client, userdata: Any, mid: int, reasons: list[Any], props: Any
    ) -> None:
        if mid != self._subscribe_mid:
            return
        topics = [f"{NAMESPACE}/{group}/#" for group in self._groups]
        refused = tuple(t for t, r in zip(topics, reasons, strict=False) if r.is_failure)
        # Sparkplug 3.0: the STATE birth goes out once the subscriptions stand, with the
        # timestamp of the will registered for this connection.
        client.publish(self.state_topic, self._state_json(online=True), qos=1, retain=True)
        self._post(_LinkUp(refused))

    def _on_disconnect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        self._attempt_started = None
        if self._stopping:
            return
        self._set_will(client)  # a fresh STATE will (and timestamp) for the next connection
        if getattr(flags, "is_disconnect_packet_from_server", False):
            why = f"the broker closed the connection: {str(reason).lower()}"
        elif "keep alive" in str(reason).lower():
            why = "the broker stopped answering (keep-alive)"
        else:
            why = "the connection to the broker was lost"
        self._post(_LinkDown(why))

    def _on_connect_fail(self, client: paho.Client, userdata: Any) -> None:
        self._attempt_started = None
        if not self._stopping:
            self._post(_LinkDown(f"cannot reach the broker at {self.settings.display}"))

    async def _watch_connect(self) -> None:
        """A CONNECT the broker does not answer within ``timeout_s`` makes the link ``down``, and
        the connection is dropped so that paho tries again (an MQTT 3.1.1-only broker such as
        amqtt keeps an MQTT 5 CONNECT waiting without a word)."""
        while True:
            await asyncio.sleep(min(0.5, self._timeout_s / 4))
            started, client = self._attempt_started, self._client
            if started is None or client is None:
                continue
            if time.monotonic() - started < self._timeout_s:
                continue
            self._attempt_started = None
            why = (
                f"the broker did not answer the MQTT {self.mqtt_version} CONNECT within "
                f"{self._timeout_s:g} s"
            )
            if self.settings.protocol == 5:
                why += (
                    " (a broker that speaks only MQTT 3.1.1, such as 'microfab broker', "
                    "needs --mqtt-version 3.1.1)"
                )
            self._link_down(why)
            sock = client.socket()
            if isinstance(sock, socket.socket):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)  # paho sees the connection end, reconnects

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        self._post(_Message(message.topic, bytes(message.payload), _now()))

    def _post(self, item: _Item) -> None:
        loop, inbox = self._loop, self._inbox
        if loop is None or inbox is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop has closed: we are shutting down
            loop.call_soon_threadsafe(inbox.put_nowait, item)

    def _set_will(self, client: paho.Client) -> None:
        self._state_ts = now_ms()
        client.will_set(self.state_topic, self._state_json(online=False), qos=1, retain=True)

    def _state_json(self, *, online: bool) -> str:
        return json.dumps({"online": online, "timestamp": self._state_ts})

    def _goodbye(self, client: paho.Client) -> None:
        """Publish the STATE death (as the will would), then disconnect (blocking)."""
        if client.is_connected():
            with contextlib.suppress(Exception):
                info = client.publish(
                    self.state_topic, self._state_json(online=False), qos=1, retain=True
                )
                info.wait_for_publish(timeout=2.0)
        with contextlib.suppress(Exception):
            client.disconnect()
        client.loop_stop()

    # ------------------------------------------------------------------ processing (asyncio loop)

    async def _run_pump(self) -> None:
        assert self._inbox is not None
        inbox = self._inbox
        while True:
            self._handle(await inbox.get())
            handled = 1
            while not inbox.empty() and handled < _FLUSH_EVERY:
                self._handle(inbox.get_nowait())
                handled += 1
            self._flush()

    def _handle(self, item: _Item) -> None:
        """Process one item from the network thread; never raises."""
        try:
            if isinstance(item, _Message):
                self._on_sparkplug(item)
            elif isinstance(item, _LinkUp):
                self._link_up(item.refused)
            else:
                self._link_down(item.reason)
        except Exception:
            logger.exception("Sparkplug: unexpected error while handling %r", item)

    def _link_up(self, refused: tuple[str, ...]) -> None:
        self._connects += 1
        self._status = LinkStatus.CONNECTED
        self._detail = f"subscription refused: {', '.join(refused)}" if refused else ""
        if self._settled is not None:
            self._settled.set()
        logger.info(
            "Sparkplug: %s %s, subscribed to %s",
            "reconnected to" if self._connects > 1 else "connected to",
            self.settings.display,
            ", ".join(f"{NAMESPACE}/{g}/#" for g in self._groups),
        )
        if refused:
            logger.warning("Sparkplug: the broker refused %s", ", ".join(refused))
        # Births are not retained: ask every mapped node for its current values now.
        for node in self._nodes.values():
            node.reset()
            node.rebirth_sent = None
            self._request_rebirth(node, "host (re)connected")

    def _link_down(self, reason: str) -> None:
        if self._stopping:
            return
        if self._settled is not None:
            self._settled.set()
        if self._status is LinkStatus.DOWN:  # keep the first reason: it says the most
            logger.debug("Sparkplug: still down: %s", reason)
            return
        self._status = LinkStatus.DOWN
        self._detail = f"{reason}; reconnecting"
        logger.info("Sparkplug: %s down: %s", self.settings.display, reason)
        now = _now()
        for node in self._nodes.values():
            self._node_died(node, now)

    def _on_sparkplug(self, message: _Message) -> None:
        if message.topic == self.state_topic:
            self._on_own_state(message.payload)
            return
        parts = message.topic.split("/")
        if len(parts) not in (4, 5) or parts[0] != NAMESPACE:
            return
        group, kind, edge_node = parts[1], parts[2], parts[3]
        device = parts[4] if len(parts) == 5 else None
        node = self._nodes.get((group, edge_node))
        if node is None or kind in ("NCMD", "DCMD"):
            return  # not ours, or a command (ours or another host's)
        if kind not in ("NBIRTH", "NDEATH", "NDATA", "DBIRTH", "DDEATH", "DDATA") or (
            kind.startswith("D") != (device is not None)
        ):
            self._count_malformed(message.topic, "not a Sparkplug B message topic")
            return
        try:
            payload = decode_payload(message.payload)
        except ValueError as exc:
            self._count_malformed(message.topic, str(exc))
            return
        if kind == "NDEATH":
            self._on_ndeath(node, payload, message.received)
            return
        if kind == "NBIRTH":
            self._on_nbirth(node, payload, message.received)
            return
        assert kind == "NDATA" or device is not None
        if kind == "DDEATH":
            assert device is not None
            self._on_ddeath(node, device, payload, message.received)
            return
        if not node.born or (
            kind != "DBIRTH" and device is not None and device not in node.devices
        ):
            self._request_rebirth(node, f"{kind} before a birth")
            return
        if not self._in_sequence(node, payload, kind):
            return
        if kind == "DBIRTH":
            assert device is not None
            self._on_dbirth(node, device, payload, message.received)
        else:
            self._on_data(node, device, payload, message.received)

    def _on_own_state(self, data: bytes) -> None:
        """Sparkplug 3.0: a STATE death for this host while it is online is answered with a birth
        (another client used our host id, or the broker delivered our will late)."""
        try:
            state = json.loads(data)
            online, ts = state["online"], int(state["timestamp"])
        except (ValueError, TypeError, KeyError):
            logger.warning("Sparkplug: %s holds no STATE JSON: %r", self.state_topic, data[:80])
            return
        client = self._client
        if (
            online is False
            and ts >= self._state_ts
            and client is not None
            and self._status is LinkStatus.CONNECTED
        ):
            logger.info("Sparkplug: %s said offline; announcing online", self.state_topic)
            client.publish(self.state_topic, self._state_json(online=True), qos=1, retain=True)

    def _on_nbirth(self, node: _Node, payload: Payload, received: dt.datetime) -> None:
        node.reset()
        node.born = True
        node.rebirth_sent = None
        node.seq = int(payload.seq) if payload.HasField("seq") else 0
        node.bd_seq = None
        for metric in payload.metrics:
            if metric.name == BDSEQ_METRIC:
                value = metric_value(metric)
                node.bd_seq = value if isinstance(value, int) else None
        self._learn(node, None, payload)
        logger.info("Sparkplug: NBIRTH of %s (bdSeq %s)", node.label, node.bd_seq)
        self._revive(node, None)
        self._map(node, None, payload, received, held=True)

    def _on_dbirth(self, node: _Node, device: str, payload: Payload, received: dt.datetime) -> None:
        for key in [k for k in node.aliases if k[0] == device]:
            del node.aliases[key]
        for tkey in [k for k in node.types if k[0] == device]:
            del node.types[tkey]
        node.devices.add(device)
        self._learn(node, device, payload)
        logger.info("Sparkplug: DBIRTH of %s/%s", node.label, device)
        self._revive(node, device)
        self._map(node, device, payload, received, held=True)

    def _on_data(
        self, node: _Node, device: str | None, payload: Payload, received: dt.datetime
    ) -> None:
        self._map(node, device, payload, received)

    def _on_ndeath(self, node: _Node, payload: Payload, received: dt.datetime) -> None:
        bd_seq: int | None = None
        for metric in payload.metrics:
            if metric.name == BDSEQ_METRIC:
                value = metric_value(metric)
                bd_seq = value if isinstance(value, int) else None
        if node.bd_seq is not None and bd_seq is not None and bd_seq != node.bd_seq:
            logger.info(
                "Sparkplug: NDEATH of %s with bdSeq %s ignored (the current session is %s)",
                node.label,
                bd_seq,
                node.bd_seq,
            )
            return
        logger.info("Sparkplug: NDEATH of %s (bdSeq %s)", node.label, bd_seq)
        node.bd_seq = None
        node.rebirth_sent = None
        # The will was registered when the node connected: its timestamp is not the time of death.
        self._node_died(node, received)

    def _on_ddeath(self, node: _Node, device: str, payload: Payload, received: dt.datetime) -> None:
        if node.born:
            self._in_sequence(node, payload, "DDEATH")  # a gap asks for a rebirth; still honoured
        node.devices.discard(device)
        logger.info("Sparkplug: DDEATH of %s/%s", node.label, device)
        ts = _ms_to_datetime(payload.timestamp) if payload.HasField("timestamp") else None
        self._scope_died(node, device, ts or received)

    # ------------------------------------------------------------------ session helpers

    def _in_sequence(self, node: _Node, payload: Payload, kind: str) -> bool:
        """Check ``seq`` continuity; on a gap ask for a rebirth and return False."""
        seq = int(payload.seq) if payload.HasField("seq") else None
        expected = ((node.seq if node.seq is not None else -1) + 1) % 256
        if seq != expected:
            self._request_rebirth(
                node,
                f"{kind} with seq {seq if seq is not None else 'missing'}, expected {expected}",
            )
            return False
        node.seq = seq
        return True

    def _request_rebirth(self, node: _Node, why: str) -> None:
        """Ignore the node until its next NBIRTH; send ``Node Control/Rebirth`` (rate-limited)."""
        node.reset()
        client = self._client
        now = time.monotonic()
        if client is None or (
            node.rebirth_sent is not None and now - node.rebirth_sent < self._rebirth_retry_s
        ):
            return
        node.rebirth_sent = now
        payload = new_payload()
        add_metric(payload, REBIRTH_METRIC, True, DataType.BOOLEAN, timestamp_ms=payload.timestamp)
        topic = f"{NAMESPACE}/{node.group}/NCMD/{node.edge_node}"
        client.publish(topic, payload.SerializeToString(), qos=0, retain=False)
        self.rebirth_requests += 1
        logger.info("Sparkplug: asked %s to rebirth (%s)", node.label, why)

    def _learn(self, node: _Node, device: str | None, payload: Payload) -> None:
        """Record the names, aliases and data types a birth declares."""
        names = node.known.setdefault(device, set())
        for metric in payload.metrics:
            if not metric.name or metric.name == BDSEQ_METRIC:
                continue
            names.add(metric.name)
            if metric.HasField("alias"):
                node.aliases[(device, int(metric.alias))] = metric.name
            if metric.HasField("datatype"):
                node.types[(device, metric.name)] = int(metric.datatype)

    def _revive(self, node: _Node, device: str | None) -> None:
        """A birth: the scope's metrics are current again."""
        self._stale = {s for s in self._stale if s[:3] != (node.group, node.edge_node, device)}
        for binding in self._bindings.get((node.group, node.edge_node, device), []):
            binding.offline = False

    def _node_died(self, node: _Node, ts: dt.datetime) -> None:
        node.reset()
        devices = {
            scope[2] for scope in self._bindings if scope[:2] == (node.group, node.edge_node)
        }
        for device in {None, *devices, *(d for d in node.known if d is not None)}:
            self._scope_died(node, device, ts)

    def _scope_died(self, node: _Node, device: str | None, ts: dt.datetime) -> None:
        """Mark the metrics of one node or device stale and its machines offline (once)."""
        scope = (node.group, node.edge_node, device)
        bindings = self._bindings.get(scope, [])
        names = set(node.known.get(device, set()))
        names.update(p.point for b in bindings for p in b.mapper.points)
        self._stale.update((node.group, node.edge_node, device, name) for name in names)
        for binding in bindings:
            if binding.offline:
                continue
            binding.offline = True
            binding.mapper.forget_link()
            self._emit([binding.mapper.offline(ts, LINK_DOWN)])

    def _map(
        self,
        node: _Node,
        device: str | None,
        payload: Payload,
        received: dt.datetime,
        *,
        held: bool = False,
    ) -> None:
        bindings = self._bindings.get((node.group, node.edge_node, device), [])
        if not bindings:
            return
        default_ts = (
            _ms_to_datetime(payload.timestamp) if payload.HasField("timestamp") else None
        ) or received
        events: list[Event] = []
        for metric in payload.metrics:
            if metric.name:
                name = str(metric.name)
            elif metric.HasField("alias"):
                found = node.aliases.get((device, int(metric.alias)))
                if found is None:
                    self._request_rebirth(node, f"unknown alias {metric.alias}")
                    return
                name = found
            else:
                continue
            if not any(b.mapper.knows(name) for b in bindings):
                continue
            value = metric_value(metric, node.types.get((device, name), 0))
            ts = (
                _ms_to_datetime(metric.timestamp) if metric.HasField("timestamp") else None
            ) or default_ts
            for binding in bindings:
                try:
                    event = binding.mapper.map(name, value, ts, held=held)
                except ValueError as exc:
                    logger.warning(
                        "Sparkplug %s: %s of %s: value %r skipped (%s)",
                        node.label,
                        name,
                        binding.mapper.machine,
                        value,
                        exc,
                    )
                    continue
                if event is not None:
                    events.append(event)
        self._emit(events)

    def _emit(self, events: Iterable[Event | None]) -> None:
        published = False
        for event in events:
            if event is None:
                continue
            self._publisher.publish(event)
            published = True
        if published:
            self._last_event = _now()

    def _count_malformed(self, topic: str, why: str) -> None:
        self.malformed += 1
        if self.malformed <= 10 or self.malformed % 1000 == 0:
            logger.warning(
                "Sparkplug: %s skipped: %s (%d malformed so far)", topic, why, self.malformed
            )

    def _flush(self) -> None:
        try:
            self._publisher.flush()
        except Exception:
            logger.exception("Sparkplug: the publisher failed to flush")


# ---------------------------------------------------------------------------- helpers


def _bindings_of(
    factory: Factory,
) -> tuple[dict[Scope, list[_Binding]], dict[tuple[str, str], _Node]]:
    """One mapper per mapped machine, grouped by scope; raise InputError if there are none."""
    bindings: dict[Scope, list[_Binding]] = {}
    nodes: dict[tuple[str, str], _Node] = {}
    for ref in factory.machines():
        source = ref.machine.connect.sparkplug if ref.machine.connect is not None else None
        if source is None:
            continue
        for what, level in (
            ("group", source.group),
            ("edge_node", source.edge_node),
            ("device", source.device),
        ):
            if level is not None and not _TOPIC_LEVEL.match(level):
                raise InputError(
                    f"machine {ref.path}: Sparkplug {what} '{level}' must not contain "
                    "'/', '+' or '#'"
                )
        scope: Scope = (source.group, source.edge_node, source.device)
        mapper = PointMapper(source=SOURCE, machine=ref.path, points=list(source.points))
        bindings.setdefault(scope, []).append(_Binding(mapper, scope))
        key = (source.group, source.edge_node)
        nodes.setdefault(key, _Node(source.group, source.edge_node))
    if not bindings:
        raise InputError(
            "no machine in the factory model has connect.sparkplug; map its metrics in the "
            "factory file (see docs/connectors.md) and run 'microfab factory apply'"
        )
    return bindings, nodes


def _ms_to_datetime(ms: int) -> dt.datetime | None:
    """A Sparkplug timestamp as an aware UTC datetime; None if unset or absurd."""
    if ms <= 0:
        return None
    try:
        return _EPOCH + dt.timedelta(milliseconds=ms)
    except OverflowError:
        return None


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
