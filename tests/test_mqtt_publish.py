"""MQTT publishing: spool, store-and-forward publisher against a private Mosquitto, embedded broker."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import select
import socket
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from microfab.connect.broker import EmbeddedBroker
from microfab.connect.mqtt_client import BrokerError, parse_broker_url
from microfab.connect.mqtt_publish import MqttPublisher, mqtt_messages
from microfab.connect.publisher import ListPublisher
from microfab.connect.spool import MemorySpool, Spool, SpoolError
from microfab.connect.topics import SUBSCRIPTION, event_topic, parse_topic
from microfab.model.events import Event, PartCount, event_from_dict
from microfab.sim.engine import FactorySimulation
from microfab.sim.scenario import load_scenario
from services import MosquittoServer, free_port

DEADLINE_S = 20.0


def sim_events(n: int) -> list[Event]:
    """The first ``n`` events of the food-line scenario (every stream, several machines)."""
    sink = ListPublisher()
    sim = FactorySimulation(load_scenario("food-line"), sink, seed=7)
    hours = 1.0
    while len(sink.events) < n:
        sim.run_until(hours * 3600)
        hours += 1
    return sink.events[:n]


def decode(topic: str, payload: bytes) -> list[Event]:
    """Events of one message, validated against the contract (machine and stream from the topic)."""
    machine, stream = parse_topic(topic)
    body = json.loads(payload)
    items = body if isinstance(body, list) else [body]
    return [event_from_dict({**item, "machine": machine, "stream": stream}) for item in items]


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = DEADLINE_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(0.05)


class Subscriber:
    """A plain paho subscriber to every microfab topic, QoS 1; reconnects on its own."""

    def __init__(
        self, port: int, client_id: str, *, persistent: bool = False, protocol: int = 5
    ) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self.subscribed = threading.Event()
        version = paho.MQTTv5 if protocol == 5 else paho.MQTTv311
        kwargs: dict[str, Any] = {"client_id": client_id, "protocol": version}
        if version == paho.MQTTv311:
            kwargs["clean_session"] = not persistent
        self.client = paho.Client(CallbackAPIVersion.VERSION2, **kwargs)
        self.client.reconnect_delay_set(min_delay=1, max_delay=1)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        if version == paho.MQTTv5:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            if persistent:
                props.SessionExpiryInterval = 600
            self.client.connect("127.0.0.1", port, clean_start=not persistent, properties=props)
        else:
            self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        if not self.subscribed.wait(DEADLINE_S):
            self.close()
            raise AssertionError("the test subscriber did not get its SUBACK")

    def _on_connect(self, client: paho.Client, *args: Any) -> None:
        client.subscribe(SUBSCRIPTION, qos=1)

    def _on_subscribe(self, *args: Any) -> None:
        self.subscribed.set()

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((message.topic, bytes(message.payload)))

    def received(self) -> list[tuple[str, bytes]]:
        with self._lock:
            return list(self.messages)

    def events(self) -> list[Event]:
        return [e for topic, payload in self.received() for e in decode(topic, payload)]

    def unique_ids(self) -> list[str]:
        """Event ids in order of first arrival (QoS 1 may deliver twice after a reconnect)."""
        return list(dict.fromkeys(e.id for e in self.events()))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class TcpProxy:
    """A loopback TCP relay to ``target`` whose connections can be cut (a network outage)."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.up = True
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._lock = threading.Lock()
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen()
        self._listener.settimeout(0.1)
        self.port = int(self._listener.getsockname()[1])
        self._closed = threading.Event()
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if not self.up:
                client.close()
                continue
            upstream = socket.create_connection(("127.0.0.1", self.target))
            with self._lock:
                self._pairs.append((client, upstream))
            relay = threading.Thread(target=self._relay, args=(client, upstream), daemon=True)
            self._threads.append(relay)
            relay.start()

    def _relay(self, a: socket.socket, b: socket.socket) -> None:
        try:
            while not self._closed.is_set():
                readable, _, _ = select.select([a, b], [], [], 0.1)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    (b if sock is a else a).sendall(data)
        except (OSError, ValueError):
            return
        finally:
            a.close()
            b.close()

    def cut(self) -> None:
        """Refuse new connections and sever the open ones, mid-packet if need be."""
        self.up = False
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            for sock in pair:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.cut()
        self._closed.set()
        self._listener.close()
        for thread in self._threads:
            thread.join(5)


def reconnected(publisher: MqttPublisher, connects: int) -> bool:
    return publisher.stats.connects > connects


def has_messages(sub: Subscriber, n: int) -> bool:
    return len(sub.received()) >= n


def publish_all(publisher: MqttPublisher, events: list[Event], flush_every: int = 50) -> None:
    for i, event in enumerate(events, 1):
        publisher.publish(event)
        if i % flush_every == 0:
            publisher.flush()
    publisher.flush()


# ---------------------------------------------------------------------------- spool


@pytest.mark.parametrize("kind", ["sqlite", "memory"])
def test_spool_keeps_order_and_removes_what_was_acknowledged(kind: str, tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db") if kind == "sqlite" else MemorySpool()
    assert len(spool) == 0
    assert spool.put_many([(f"t/{i}", f"p{i}".encode()) for i in range(10)]) == 10
    first = spool.peek(3)
    assert [(t, p) for _, t, p in first] == [("t/0", b"p0"), ("t/1", b"p1"), ("t/2", b"p2")]
    seqs = [s for s, _, _ in spool.peek(100)]
    assert seqs == sorted(seqs) and len(seqs) == 10
    assert [s for s, _, _ in spool.peek(2, after=seqs[4])] == seqs[5:7]
    assert spool.remove([seqs[1], seqs[3]]) == 2
    assert spool.remove_through(seqs[2]) == 2
    assert len(spool) == 6
    assert [s for s, _, _ in spool.peek(100)] == [seqs[4], *seqs[5:]]
    spool.put_many([("t/new", b"new")])
    assert spool.peek(100)[-1][0] > seqs[-1]  # never reuses a number
    spool.close()


def test_spool_file_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    with Spool(path) as spool:
        spool.put_many([("a", b"1"), ("b", b"2"), ("c", b"3")])
        spool.remove_through(spool.peek(1)[0][0])
    with Spool(path) as again:
        assert len(again) == 2
        assert [(t, p) for _, t, p in again.peek(10)] == [("b", b"2"), ("c", b"3")]
        again.remove_through(again.peek(10)[-1][0])
        again.put_many([("d", b"4")])
    with Spool(path) as third:
        assert [(t, p) for _, t, p in third.peek(10)] == [("d", b"4")]


def test_spool_that_cannot_be_opened_says_so(tmp_path: Path) -> None:
    with pytest.raises(SpoolError, match="cannot open the MQTT spool"):
        Spool(tmp_path)  # a directory, not a database file


# ---------------------------------------------------------------------------- publisher


def test_publisher_delivers_every_event_in_order(mosquitto: MosquittoServer) -> None:
    events = sim_events(1200)
    sub = Subscriber(mosquitto.port, "test-sub-a")
    try:
        with MqttPublisher(parse_broker_url(mosquitto.url)) as publisher:
            publish_all(publisher, events)
        assert publisher.pending() == 0
        assert publisher.stats.delivered == len(events)
        wait_until(lambda: len(sub.received()) >= len(events), "every event at the subscriber")
        received = sub.received()
        assert [topic for topic, _ in received] == [event_topic(e) for e in events]
        assert sub.events() == events
    finally:
        sub.close()


def test_store_and_forward_across_a_broker_outage_and_a_restart(
    mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    events = sim_events(600)
    settings = parse_broker_url(mosquitto.url)
    spool_path = tmp_path / "outbox" / "spool.db"
    # The subscriber's persistent session outlives the broker restart (Mosquitto persistence).
    sub = Subscriber(mosquitto.port, "test-sub-b", persistent=True)
    try:
        mosquitto.stop()
        first = MqttPublisher(settings, spool_path=spool_path)  # broker down: must not fail
        began = time.monotonic()
        publish_all(first, events[:500])
        assert time.monotonic() - began < 10, "publish/flush waited for the broker"
        assert first.pending() == 500
        assert not first.connected
        first.close(timeout_s=0)  # the "process" ends with everything still spooled

        with Spool(spool_path) as spool:
            assert len(spool) == 500
            oldest = spool.peek(1)[0]
            assert oldest[1] == event_topic(events[0])
            assert decode(oldest[1], oldest[2]) == [events[0]]

        second = MqttPublisher(settings, spool_path=spool_path)  # the restarted process
        try:
            assert second.pending() == 500
            publish_all(second, events[500:])  # newer events queue behind the old ones
            assert second.pending() == 600
            mosquitto.start()
            wait_until(
                lambda: len(sub.unique_ids()) >= len(events),
                "the spooled events after the broker came back",
            )
            assert sub.unique_ids() == [e.id for e in events]
            assert {e.id: e for e in sub.events()} == {e.id: e for e in events}
        finally:
            second.close(timeout_s=DEADLINE_S)
        assert second.pending() == 0
        with Spool(spool_path) as spool:
            assert len(spool) == 0
    finally:
        sub.close()


def test_batches_group_consecutive_events_of_one_topic(mosquitto: MosquittoServer) -> None:
    start = dt.datetime(2026, 11, 23, tzinfo=dt.UTC)
    a, b = "kt/food/line1/fill/filler-1", "kt/food/line1/pack/sealer-1"
    plan = [a] * 5 + [b] * 3 + [a] * 2 + [b]
    events: list[Event] = [
        PartCount(id=f"batch-{i:03d}", ts=start + dt.timedelta(seconds=i), machine=machine, good=i)
        for i, machine in enumerate(plan)
    ]
    messages = list(mqtt_messages(events, batch=3))
    shapes = [
        (topic, len(body) if isinstance(body := json.loads(payload), list) else None)
        for topic, payload in messages
    ]
    topic_a, topic_b = event_topic(events[0]), event_topic(events[5])
    assert shapes == [(topic_a, 3), (topic_a, 2), (topic_b, 3), (topic_a, 2), (topic_b, None)]

    sub = Subscriber(mosquitto.port, "test-sub-c")
    try:
        with MqttPublisher(parse_broker_url(mosquitto.url), batch=3) as publisher:
            publish_all(publisher, events, flush_every=len(events))
        wait_until(lambda: len(sub.received()) >= len(messages), "the batched messages")
        assert sub.received() == messages
        assert sub.events() == events
    finally:
        sub.close()


def test_order_survives_network_cuts_with_messages_in_flight(mosquitto: MosquittoServer) -> None:
    events = sim_events(6000)
    proxy = TcpProxy(mosquitto.port)
    sub = Subscriber(mosquitto.port, "test-sub-cut")  # direct: it never loses the broker
    try:
        settings = parse_broker_url(f"mqtt://127.0.0.1:{proxy.port}")
        with MqttPublisher(settings, max_inflight=200) as publisher:
            wait_until(lambda: publisher.connected, "the first connection")
            for chunk in range(0, len(events), 1000):
                publish_all(publisher, events[chunk : chunk + 1000], flush_every=100)
                if chunk in (1000, 3000):  # cut while the drain thread is busy with this chunk
                    connects = publisher.stats.connects
                    proxy.cut()
                    time.sleep(0.3)
                    proxy.up = True
                    wait_until(partial(reconnected, publisher, connects), "a reconnect")
            wait_until(lambda: publisher.pending() == 0, "the publisher to drain")
            assert publisher.stats.connects >= 3
        wait_until(lambda: len(sub.unique_ids()) >= len(events), "every event after the cuts")
        assert sub.unique_ids() == [e.id for e in events]  # duplicates allowed, reordering not
    finally:
        sub.close()
        proxy.close()


# ---------------------------------------------------------------------------- embedded broker


def test_embedded_broker_serves_mqtt_311_and_restarts() -> None:
    broker = EmbeddedBroker(port=free_port())
    events = sim_events(60)
    for round_ in range(2):
        broker.start()
        try:
            assert broker.running
            sub = Subscriber(broker.port, f"test-sub-d{round_}", protocol=4)
            try:
                settings = parse_broker_url(broker.url, protocol="3.1.1")
                with MqttPublisher(settings, client_id=f"test-pub-d{round_}") as publisher:
                    publish_all(publisher, events, flush_every=25)
                assert publisher.pending() == 0
                wait_until(partial(has_messages, sub, len(events)), "events via amqtt")
                assert sub.events() == events
            finally:
                sub.close()
        finally:
            broker.stop()
        assert not broker.running
        with socket.socket() as probe:  # the port is free again
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(("127.0.0.1", broker.port))


def test_embedded_broker_reports_a_busy_port() -> None:
    with socket.socket() as busy:
        busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        broker = EmbeddedBroker(port=busy.getsockname()[1])
        with pytest.raises(BrokerError, match="cannot listen"):
            broker.start()
        assert not broker.running
