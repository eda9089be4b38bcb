"""A simulated Sparkplug B edge node, for connector tests, demos and docs.

:class:`SimulatedEdgeNode` is a real MQTT client (paho-mqtt, its own network thread) that behaves
as a Sparkplug B v1.0 edge node: it registers its NDEATH (with ``bdSeq``) as its MQTT will,
publishes NBIRTH on every connect and, when it has a device, a DBIRTH; it publishes NDATA or DDATA
with the running ``seq`` (0-255) and a timestamp per metric, and answers an NCMD
``Node Control/Rebirth`` with fresh births. One machine's metrics live on the device (or, with
``device=None``, on the node itself):

    State        Int32    1 running, 2 idle, 3 unplanned stop, 4 planned stop
    Good         UInt64   running total of good parts
    Scrap        UInt64   running total of scrap parts
    Temperature  Double   °C
    EnergyKwh    Double   cumulative energy, kWh

Births declare an alias for each metric and data messages carry only the alias, as bandwidth-wise
edge nodes do. For tests, :meth:`SimulatedEdgeNode.skip_seq` leaves a gap in ``seq``,
:meth:`SimulatedEdgeNode.device_death` publishes DDEATH and :meth:`SimulatedEdgeNode.die` ends the
session (with an explicit NDEATH, or by dropping the connection so the broker sends the will).
:func:`sparkplug_machine_points` returns the matching ``connect.sparkplug.points`` of a factory
file.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from typing import Any

import paho.mqtt.client as paho

from microfab.connect.mqtt_client import BrokerSettings, connect_blocking
from microfab.connect.sparkplug import (
    BDSEQ_METRIC,
    NAMESPACE,
    REBIRTH_METRIC,
    DataType,
    Payload,
    add_metric,
    decode_payload,
    metric_value,
    new_payload,
    now_ms,
    sparkplug_client,
)

logger = logging.getLogger(__name__)

Value = float | int | bool | str

STATE_CODES: dict[int, str] = {1: "running", 2: "idle", 3: "unplanned_stop", 4: "planned_stop"}
"""Raw values of the ``State`` metric and the microfab state each one means."""

MACHINE_METRICS: dict[str, DataType] = {
    "State": DataType.INT32,
    "Good": DataType.UINT64,
    "Scrap": DataType.UINT64,
    "Temperature": DataType.DOUBLE,
    "EnergyKwh": DataType.DOUBLE,
}
"""The metrics of one simulated machine and their Sparkplug data types."""

INITIAL_VALUES: dict[str, Value] = {
    "State": 1,
    "Good": 0,
    "Scrap": 0,
    "Temperature": 21.5,
    "EnergyKwh": 1000.0,
}


def sparkplug_machine_points() -> list[dict[str, Any]]:
    """``connect.sparkplug.points`` entries (plain dicts, as in a factory file) for this node."""
    return [
        {
            "point": "State",
            "stream": "state",
            "states": {str(code): state for code, state in STATE_CODES.items()},
        },
        {"point": "Good", "stream": "count", "field": "good"},
        {"point": "Scrap", "stream": "count", "field": "scrap"},
        {"point": "Temperature", "stream": "telemetry", "metric": "temperature_c"},
        {"point": "EnergyKwh", "stream": "energy"},
    ]


def _infer_type(value: Value) -> DataType:
    if isinstance(value, bool):
        return DataType.BOOLEAN
    if isinstance(value, int):
        return DataType.INT64
    if isinstance(value, float):
        return DataType.DOUBLE
    return DataType.STRING


class SimulatedEdgeNode:
    """One Sparkplug B edge node with one machine; see the module docstring.

    ``start`` and ``stop`` are blocking (they wait for the broker), as are the publishing
    methods; the node answers rebirth requests on its own network thread.
    """

    def __init__(
        self,
        settings: BrokerSettings,
        group: str,
        edge_node: str,
        device: str | None = "machine",
        *,
        values: dict[str, Value] | None = None,
        use_aliases: bool = True,
    ) -> None:
        self.settings = settings
        self.group = group
        self.edge_node = edge_node
        self.device = device
        self.use_aliases = use_aliases
        self.values: dict[str, Value] = {**INITIAL_VALUES, **(values or {})}
        self.types: dict[str, DataType] = dict(MACHINE_METRICS)
        for name, value in self.values.items():
            self.types.setdefault(name, _infer_type(value))
        self.bd_seq = -1
        """The bdSeq of the current (or last) MQTT session; the first session has 0."""
        self.births = 0
        """NBIRTH messages published."""
        self.rebirths = 0
        """Rebirth requests (NCMD ``Node Control/Rebirth``) answered."""
        self._aliases: dict[str, int] = {}
        self._seq = 0
        self._last_ts = 0
        self._lock = threading.RLock()
        self._client: paho.Client | None = None
        self._stopping = False
        self._born = threading.Event()
        self._last_birth: paho.MQTTMessageInfo | None = None

    # ------------------------------------------------------------------ topics

    def topic(self, kind: str, device: str | None = None) -> str:
        """``spBv1.0/GROUP/KIND/EDGE_NODE[/DEVICE]``."""
        tail = f"/{device}" if device is not None else ""
        return f"{NAMESPACE}/{self.group}/{kind}/{self.edge_node}{tail}"

    @property
    def connected(self) -> bool:
        return self._client is not None and self._client.is_connected()

    # ------------------------------------------------------------------ session

    def start(self, timeout_s: float = 10.0) -> None:
        """Connect (a new session: bdSeq + 1), register the NDEATH will, publish the births;
        return once they are sent."""
        if self._client is not None:
            return
        self._stopping = False
        self._born.clear()
        client = sparkplug_client(self.settings, f"microfab-sim-{self.group}-{self.edge_node}"[:64])
        client.reconnect_delay_set(min_delay=1, max_delay=5)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        self._next_session(client)
        self._client = client
        try:
            if self.settings.protocol == 5:  # Sparkplug: a clean session every time
                connect_blocking(client, self.settings, clean_start=True)
            else:
                connect_blocking(client, self.settings)
        except Exception:
            self._client = None
            raise
        if self._born.wait(timeout_s) and self._last_birth is not None:
            with contextlib.suppress(RuntimeError, ValueError):
                self._last_birth.wait_for_publish(timeout_s)

    def stop(self) -> None:
        """End the session gracefully: NDEATH, then disconnect."""
        self.die(graceful=True)

    def die(self, graceful: bool = True) -> None:
        """End the session: publish NDEATH and disconnect, or (``graceful=False``) drop the TCP
        connection without a word, so that the broker publishes the NDEATH will."""
        client, self._client = self._client, None
        if client is None:
            return
        self._stopping = True
        if graceful:
            with contextlib.suppress(Exception):
                info = client.publish(
                    self.topic("NDEATH"), self._death_payload(), qos=1, retain=False
                )
                info.wait_for_publish(timeout=5.0)
            with contextlib.suppress(Exception):
                client.disconnect()
            client.loop_stop()
            return
        client.loop_stop()
        sock = client.socket()
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    # ------------------------------------------------------------------ messages

    def rebirth(self) -> None:
        """Publish NBIRTH (seq 0, same bdSeq) and DBIRTH with the current values."""
        client = self._client
        if client is None:
            raise RuntimeError("the edge node is not started")
        self._publish_births(client)

    def publish_data(self, metrics: dict[str, Value]) -> None:
        """Publish new values as DDATA (or NDATA without a device), one timestamp per metric."""
        client = self._client
        if client is None:
            raise RuntimeError("the edge node is not started")
        with self._lock:
            ts = self._timestamp()
            payload = new_payload(ts, self._next_seq())
            for name, value in metrics.items():
                self.values[name] = value
                datatype = self.types.setdefault(name, _infer_type(value))
                alias = self._aliases.get(name) if self.use_aliases else None
                add_metric(
                    payload,
                    None if alias is not None else name,
                    value,
                    datatype,
                    alias=alias,
                    timestamp_ms=ts,
                )
            kind = "DDATA" if self.device is not None else "NDATA"
            client.publish(self.topic(kind, self.device), payload.SerializeToString(), qos=0)

    def skip_seq(self) -> None:
        """Advance ``seq`` without publishing: the next message shows the host a gap."""
        with self._lock:
            self._next_seq()

    def device_death(self) -> None:
        """Publish DDEATH for the device (its metrics become stale at the host)."""
        client = self._client
        if client is None or self.device is None:
            raise RuntimeError("the edge node is not started or has no device")
        with self._lock:
            payload = new_payload(self._timestamp(), self._next_seq())
            client.publish(self.topic("DDEATH", self.device), payload.SerializeToString(), qos=0)

    # ------------------------------------------------------------------ internals

    def _next_session(self, client: paho.Client) -> None:
        """A new MQTT session: next bdSeq, and the NDEATH carrying it as the will."""
        self.bd_seq = (self.bd_seq + 1) % 256
        client.will_set(self.topic("NDEATH"), self._death_payload(), qos=1, retain=False)

    def _death_payload(self) -> bytes:
        payload = new_payload()
        add_metric(payload, BDSEQ_METRIC, self.bd_seq, DataType.INT64)
        data: bytes = payload.SerializeToString()
        return data

    def _next_seq(self) -> int:
        seq = self._seq
        self._seq = (self._seq + 1) % 256
        return seq

    def _timestamp(self) -> int:
        """Now, in ms, strictly after the last timestamp this node used."""
        self._last_ts = max(now_ms(), self._last_ts + 1)
        return self._last_ts

    def _publish_births(self, client: paho.Client) -> None:
        with self._lock:
            self._seq = 0
            ts = self._timestamp()
            self._aliases = {name: i for i, name in enumerate(self.values, start=1)}
            nbirth = new_payload(ts, self._next_seq())
            add_metric(nbirth, BDSEQ_METRIC, self.bd_seq, DataType.INT64, timestamp_ms=ts)
            add_metric(nbirth, REBIRTH_METRIC, False, DataType.BOOLEAN, timestamp_ms=ts)
            machine = nbirth
            if self.device is not None:
                machine = new_payload(ts, None)
            self._add_machine_metrics(machine, ts)
            info = client.publish(self.topic("NBIRTH"), nbirth.SerializeToString(), qos=0)
            self.births += 1
            if self.device is not None:
                machine.seq = self._next_seq()
                info = client.publish(
                    self.topic("DBIRTH", self.device), machine.SerializeToString(), qos=0
                )
            self._last_birth = info
        self._born.set()

    def _add_machine_metrics(self, payload: Payload, ts: int) -> None:
        for name, value in self.values.items():
            add_metric(
                payload,
                name,
                value,
                self.types[name],
                alias=self._aliases[name] if self.use_aliases else None,
                timestamp_ms=ts,
            )

    # ------------------------------------------------------------------ paho callbacks

    def _on_connect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        if reason.is_failure:
            return
        client.subscribe(self.topic("NCMD"), qos=1)
        self._publish_births(client)

    def _on_disconnect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        if not self._stopping:
            self._next_session(client)  # paho reconnects: a new session needs a new bdSeq

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        try:
            payload = decode_payload(bytes(message.payload))
        except ValueError:
            logger.warning("simulated edge node %s: bad NCMD ignored", self.edge_node)
            return
        for metric in payload.metrics:
            if metric.name == REBIRTH_METRIC and metric_value(metric) is True:
                self.rebirths += 1
                self._publish_births(client)
                return
