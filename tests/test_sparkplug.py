"""Sparkplug B host application against a private Mosquitto and a simulated edge node."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
import yaml

from microfab.connect.broker import EmbeddedBroker
from microfab.connect.connector import CONNECTOR_STOPPED, LINK_DOWN, LinkStatus
from microfab.connect.mqtt_client import BrokerSettings, connect_blocking, new_client
from microfab.connect.publisher import ListPublisher
from microfab.connect.sparkplug import (
    BDSEQ_METRIC,
    REBIRTH_METRIC,
    DataType,
    SparkplugHost,
    add_metric,
    decode_payload,
    metric_value,
    new_payload,
    now_ms,
)
from microfab.errors import InputError
from microfab.model.events import (
    EnergyReading,
    Event,
    MachineState,
    PartCount,
    StateChange,
    TelemetrySample,
)
from microfab.model.factory import Factory
from microfab.sim.sparkplug_edge import SimulatedEdgeNode, sparkplug_machine_points
from services import MosquittoServer, free_port

DATA = Path(__file__).parent / "data"
CNC1 = "kt/plant/line1/machining/cnc-1"
GROUP = "kt-plant"
NODE = "cnc-gw"
DEVICE = "cnc1"
DEADLINE_S = 15.0


def factory_with_sparkplug(
    device: str | None = DEVICE, points: list[dict[str, Any]] | None = None
) -> Factory:
    """The small test factory with cnc-1 read from GROUP/NODE[/DEVICE]."""
    data = yaml.safe_load((DATA / "factory-small.yaml").read_text(encoding="utf-8"))
    cnc1 = data["sites"][0]["areas"][0]["lines"][0]["cells"][0]["machines"][0]
    cnc1["connect"] = {
        "sparkplug": {
            "group": GROUP,
            "edge_node": NODE,
            "device": device,
            "points": points or sparkplug_machine_points(),
        }
    }
    return Factory.model_validate(data)


async def until(
    condition: Callable[[], bool], what: str | Callable[[], str], timeout_s: float = DEADLINE_S
) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            text = what if isinstance(what, str) else what()
            raise AssertionError(f"timed out after {timeout_s} s waiting for {text}")
        await asyncio.sleep(0.02)


def of_kind(events: list[Event], kind: type[Any]) -> list[Any]:
    return [e for e in events if isinstance(e, kind)]


def states(events: list[Event]) -> list[MachineState]:
    return [e.state for e in of_kind(events, StateChange)]


def good(events: list[Event]) -> int:
    return sum(e.good for e in of_kind(events, PartCount))


class Watcher:
    """A plain MQTT client: records what arrives on ``topic`` and publishes raw payloads."""

    def __init__(self, settings: BrokerSettings, topic: str) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self._subscribed = threading.Event()
        self.client = new_client(settings, f"test-watcher-{uuid.uuid4().hex[:8]}")
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *args: self._subscribed.set()
        connect_blocking(self.client, settings)
        self.client.subscribe(topic, qos=1)
        assert self._subscribed.wait(DEADLINE_S)

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        self.messages.append((message.topic, bytes(message.payload), bool(message.retain)))

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(DEADLINE_S)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@contextmanager
def watching(settings: BrokerSettings, topic: str) -> Iterator[Watcher]:
    watcher = Watcher(settings, topic)
    try:
        yield watcher
    finally:
        watcher.close()


def rebirth_requests(watcher: Watcher) -> int:
    found = 0
    for topic, data, _ in watcher.messages:
        assert topic == f"spBv1.0/{GROUP}/NCMD/{NODE}"
        metrics = {m.name: metric_value(m) for m in decode_payload(data).metrics}
        found += metrics.get(REBIRTH_METRIC) is True
    return found


@dataclass
class Rig:
    """A started host and edge node, what the host published, and a plain MQTT client that
    watches the rebirth requests (NCMD) and can publish raw payloads."""

    host: SparkplugHost
    edge: SimulatedEdgeNode
    out: ListPublisher
    ncmd: Watcher

    @property
    def events(self) -> list[Event]:
        return self.out.events


def run(
    mosquitto: MosquittoServer,
    scenario: Callable[[Rig], Coroutine[Any, Any, None]],
    *,
    device: str | None = DEVICE,
    points: list[dict[str, Any]] | None = None,
    values: dict[str, Any] | None = None,
    **host_options: Any,
) -> Rig:
    """Start a host, wait for its rebirth request on connecting (so the edge node, started next,
    cannot receive it late), start the edge node, run ``scenario``; stop both."""
    settings = BrokerSettings("127.0.0.1", mosquitto.port)
    published = ListPublisher()
    factory = factory_with_sparkplug(device, points)
    host = SparkplugHost(factory, published, settings, **host_options)
    edge = SimulatedEdgeNode(settings, GROUP, NODE, device, values=values)
    with watching(settings, f"spBv1.0/{GROUP}/NCMD/#") as ncmd:
        rig = Rig(host, edge, published, ncmd)

        async def main() -> None:
            await host.start()
            try:
                assert host.health().status is LinkStatus.CONNECTED, host.health()
                await until(lambda: rebirth_requests(ncmd) == 1, "the rebirth request on connect")
                edge.start()
                await scenario(rig)
            finally:
                edge.stop()
                await host.stop()

        asyncio.run(main())
    return rig


# ---------------------------------------------------------------------------- tests


def test_birth_and_data_become_events_of_the_mapped_machine(mosquitto: MosquittoServer) -> None:
    async def scenario(rig: Rig) -> None:
        await until(lambda: states(rig.events) == [MachineState.RUNNING], "the birth's state")
        rig.edge.publish_data({"Good": 5, "Scrap": 1, "Temperature": 30.25})
        rig.edge.publish_data({"Good": 8, "State": 3, "EnergyKwh": 1000.5})
        await until(lambda: good(rig.events) == 8, "8 good parts")
        await until(lambda: len(states(rig.events)) == 2, "the second state")
        health = rig.host.health()
        assert health.status is LinkStatus.CONNECTED
        assert "1/1 edge node(s) born" in health.detail
        assert health.last_event is not None
        assert rig.host.stale_metrics() == set()
        assert rig.host.malformed == 0

    rig = run(mosquitto, scenario)
    events = rig.events
    assert rig.edge.births == 1 and rig.edge.rebirths == 0
    assert {e.machine for e in events} == {CNC1}
    # the edge node stopped first, with an NDEATH: its machine went offline
    assert states(events) == [
        MachineState.RUNNING,
        MachineState.UNPLANNED_STOP,
        MachineState.OFFLINE,
    ]
    counts = [(e.good, e.scrap) for e in of_kind(events, PartCount)]
    assert counts == [(5, 0), (0, 1), (3, 0)]  # running totals became increments
    temperatures = [e.metrics["temperature_c"] for e in of_kind(events, TelemetrySample)]
    assert temperatures == [21.5, 30.25]  # the birth's value, then the data's
    assert [e.kwh for e in of_kind(events, EnergyReading)] == [1000.0, 1000.5]
    first_state, first_count = of_kind(events, StateChange)[0], of_kind(events, PartCount)[0]
    assert first_state.ts < first_count.ts  # metric timestamps, not arrival times
    assert len({e.id for e in events}) == len(events)
    assert rig.host.health().status is LinkStatus.STOPPED


def test_node_metrics_without_a_device_and_the_host_state(mosquitto: MosquittoServer) -> None:
    settings = BrokerSettings("127.0.0.1", mosquitto.port)
    topic = "spBv1.0/STATE/mes-1"
    with watching(settings, "spBv1.0/STATE/#") as state:

        def announced() -> list[bool]:
            return [json.loads(data)["online"] for _, data, _ in state.messages]

        async def scenario(rig: Rig) -> None:
            await until(lambda: len(states(rig.events)) == 1, "the NBIRTH's state")
            rig.edge.publish_data({"Good": 2})
            await until(lambda: good(rig.events) == 2, "2 good parts from NDATA")
            await until(lambda: announced() == [True], "the host's STATE birth")
            # someone says this host is offline: it says it is online again
            rig.ncmd.publish(topic, json.dumps({"online": False, "timestamp": now_ms()}).encode())
            await until(lambda: announced() == [True, False, True], "the STATE birth again")

        rig = run(mosquitto, scenario, device=None, host_id="mes-1")
        deadline = time.monotonic() + DEADLINE_S
        while len(state.messages) < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
    assert {e.machine for e in rig.events} == {CNC1}
    assert [t for t, _, _ in state.messages] == [topic] * 4
    assert announced() == [True, False, True, False]  # the last: the host stopping
    stamps = [json.loads(data)["timestamp"] for _, data, _ in state.messages]
    assert stamps[0] == stamps[2] == stamps[3]  # the will's timestamp, as Sparkplug 3.0 wants


def test_a_seq_gap_makes_the_host_ask_for_a_rebirth(mosquitto: MosquittoServer) -> None:
    async def scenario(rig: Rig) -> None:
        edge = rig.edge
        await until(lambda: len(states(rig.events)) == 1, "the birth")
        edge.publish_data({"Good": 5})
        await until(lambda: good(rig.events) == 5, "5 good parts")
        edge.skip_seq()
        edge.publish_data({"Good": 10, "Temperature": 99.0})  # not used: out of sequence
        await until(lambda: rebirth_requests(rig.ncmd) == 2, "an NCMD rebirth request")
        await until(lambda: edge.rebirths == 1 and edge.births == 2, "the edge node's rebirth")
        await until(lambda: good(rig.events) == 10, "the count from the new birth")
        edge.publish_data({"Good": 12})
        await until(lambda: good(rig.events) == 12, "data after the new birth")

    rig = run(mosquitto, scenario)
    assert rig.host.rebirth_requests == 2  # one on connecting, one for the gap
    assert [(e.good, e.scrap) for e in of_kind(rig.events, PartCount)] == [(5, 0), (5, 0), (2, 0)]
    temperatures = [e.metrics["temperature_c"] for e in of_kind(rig.events, TelemetrySample)]
    assert temperatures == [21.5, 99.0]  # 99.0 arrives with the rebirth, not the gapped DDATA
    # the rebirth repeats no state (the NDEATH at the end is the edge node stopping)
    assert states(rig.events) == [MachineState.RUNNING, MachineState.OFFLINE]


def test_a_host_that_joins_late_asks_for_a_rebirth(mosquitto: MosquittoServer) -> None:
    """Births are not retained: a host that connects after them asks for them."""
    settings = BrokerSettings("127.0.0.1", mosquitto.port)
    published = ListPublisher()
    edge = SimulatedEdgeNode(settings, GROUP, NODE, DEVICE)
    host = SparkplugHost(factory_with_sparkplug(), published, settings)

    async def main() -> None:
        edge.start()
        try:
            edge.publish_data({"Good": 3})  # nobody listens yet
            await host.start()
            await until(lambda: edge.rebirths == 1, "the rebirth request answered")
            await until(lambda: len(states(published.events)) == 1, "the state after the rebirth")
            before = good(published.events)
            edge.publish_data({"Good": 7})
            await until(lambda: good(published.events) == before + 4, "4 more good parts")
        finally:
            edge.stop()
            await host.stop()

    asyncio.run(main())
    assert {e.machine for e in published.events} == {CNC1}


def test_data_before_a_birth_is_ignored_and_a_rebirth_requested(
    mosquitto: MosquittoServer,
) -> None:
    settings = BrokerSettings("127.0.0.1", mosquitto.port)
    published = ListPublisher()
    host = SparkplugHost(factory_with_sparkplug(), published, settings, rebirth_retry_s=0.05)
    data = new_payload(seq=7)
    add_metric(data, "Good", 100, DataType.UINT64)

    async def main() -> None:
        with watching(settings, f"spBv1.0/{GROUP}/NCMD/#") as ncmd:
            await host.start()
            try:
                await until(lambda: rebirth_requests(ncmd) == 1, "the request on connecting")
                await asyncio.sleep(0.1)  # past rebirth_retry_s
                ncmd.publish(f"spBv1.0/{GROUP}/DDATA/{NODE}/{DEVICE}", data.SerializeToString())
                await until(lambda: rebirth_requests(ncmd) == 2, "a request for the data")
            finally:
                await host.stop()

    asyncio.run(main())
    assert published.events == []
    assert host.rebirth_requests == 2


def test_deaths_mark_metrics_stale_and_machines_offline(mosquitto: MosquittoServer) -> None:
    device_metrics = {(GROUP, NODE, DEVICE, name) for name in ("State", "Good", "Temperature")}

    def offline(rig: Rig) -> list[StateChange]:
        return [e for e in of_kind(rig.events, StateChange) if e.state is MachineState.OFFLINE]

    async def scenario(rig: Rig) -> None:
        host, edge = rig.host, rig.edge
        await until(lambda: len(states(rig.events)) == 1, "the birth")
        # DDEATH: the device's metrics are stale, its machine offline
        edge.device_death()
        await until(lambda: len(offline(rig)) == 1, "offline after DDEATH")
        assert device_metrics <= host.stale_metrics()
        assert f"stale: {GROUP}/{NODE}/{DEVICE}" in host.health().detail
        edge.rebirth()
        await until(lambda: not host.stale_metrics(), "a birth to clear the staleness")
        await until(lambda: states(rig.events)[-1] is MachineState.RUNNING, "running again")

        # the NDEATH of an older session (another bdSeq) is ignored
        old_death = new_payload()
        add_metric(old_death, BDSEQ_METRIC, edge.bd_seq + 7, DataType.INT64)
        rig.ncmd.publish(f"spBv1.0/{GROUP}/NDEATH/{NODE}", old_death.SerializeToString())
        edge.publish_data({"Temperature": 40.0})
        await until(lambda: len(of_kind(rig.events, TelemetrySample)) == 3, "40 °C")
        assert len(offline(rig)) == 1 and not host.stale_metrics()

        # the broker sends the will (NDEATH, current bdSeq) when the node drops off the network
        edge.die(graceful=False)
        await until(lambda: len(offline(rig)) == 2, "offline after NDEATH")
        stale = host.stale_metrics()
        assert device_metrics <= stale
        assert (GROUP, NODE, None, REBIRTH_METRIC) in stale
        assert f"stale: {GROUP}/{NODE}" in host.health().detail
        assert host.health().status is LinkStatus.CONNECTED  # the broker link is fine

        edge.start()  # a new session: bdSeq + 1, NBIRTH, DBIRTH
        await until(lambda: not host.stale_metrics(), "the new session's births")
        await until(lambda: states(rig.events)[-1] is MachineState.RUNNING, "running again")
        assert "stale" not in host.health().detail

    rig = run(mosquitto, scenario)
    assert rig.edge.bd_seq == 1
    assert states(rig.events) == [MachineState.RUNNING, MachineState.OFFLINE] * 3
    assert all(e.reason == LINK_DOWN for e in offline(rig))


def test_a_malformed_payload_is_counted_not_fatal(mosquitto: MosquittoServer) -> None:
    async def scenario(rig: Rig) -> None:
        raw = rig.ncmd
        await until(lambda: len(states(rig.events)) == 1, "the birth")
        raw.publish(f"spBv1.0/{GROUP}/DDATA/{NODE}/{DEVICE}", b"\xff\xff\xff")
        raw.publish(f"spBv1.0/{GROUP}/NDATA/{NODE}", b'{"not": "protobuf"}')
        raw.publish(f"spBv1.0/{GROUP}/DDATA/{NODE}", new_payload().SerializeToString())
        raw.publish(f"spBv1.0/{GROUP}/DDATA/other-node/x", b"\xff")  # not mapped: ignored
        await until(lambda: rig.host.malformed == 3, "3 malformed payloads counted")
        rig.edge.publish_data({"Good": 4})
        await until(lambda: good(rig.events) == 4, "data after the garbage")
        health = rig.host.health()
        assert health.status is LinkStatus.CONNECTED
        assert "3 malformed payload(s)" in health.detail

    rig = run(mosquitto, scenario)
    assert rig.host.malformed == 3


def test_broker_restart_marks_offline_then_reconnects_and_resubscribes(
    mosquitto: MosquittoServer,
) -> None:
    async def scenario(rig: Rig) -> None:
        host = rig.host
        await until(lambda: len(states(rig.events)) == 1, "the birth")
        mosquitto.restart()
        await until(lambda: MachineState.OFFLINE in states(rig.events), "offline (LINK-DOWN)")
        assert host.stale_metrics()
        await until(lambda: host.health().status is LinkStatus.CONNECTED, "reconnected")
        await until(lambda: not host.stale_metrics(), "births after the reconnect")
        await until(lambda: states(rig.events)[-1] is MachineState.RUNNING, "running again")
        assert host.health().reconnects == 1
        rig.edge.publish_data({"Good": 6})
        await until(lambda: good(rig.events) == 6, "data after the reconnect")

    rig = run(mosquitto, scenario)
    offline = [e for e in of_kind(rig.events, StateChange) if e.state is MachineState.OFFLINE]
    assert len(offline) == 2  # the broker restart, then the edge node's NDEATH at the end
    assert all(e.reason == LINK_DOWN for e in offline)


def test_unreachable_broker_at_start_is_down_not_an_error() -> None:
    published = ListPublisher()
    host = SparkplugHost(
        factory_with_sparkplug(), published, BrokerSettings("127.0.0.1", 1), timeout_s=3.0
    )

    async def main() -> None:
        await host.start()
        try:
            await until(lambda: host.health().status is LinkStatus.DOWN, "down")
            await until(lambda: bool(published.events), "the offline event")
            assert "cannot reach the broker at mqtt://127.0.0.1:1" in host.health().detail
        finally:
            await host.stop()

    asyncio.run(main())
    assert states(published.events) == [MachineState.OFFLINE]


def test_a_pulse_count_in_a_birth_is_not_counted_again(mosquitto: MosquittoServer) -> None:
    """``cumulative: false``: a birth restates the node's current values, it reports no parts."""
    points = [
        {"point": "State", "stream": "state", "states": {"1": "running"}},
        {"point": "Good", "stream": "count", "field": "good", "cumulative": False},
    ]

    async def scenario(rig: Rig) -> None:
        await until(lambda: len(states(rig.events)) == 1, "the birth")  # Good = 3 in it
        rig.edge.publish_data({"Good": 5})  # a report of 5 parts
        await until(lambda: good(rig.events) >= 5, "5 good parts")
        rig.edge.rebirth()  # Good = 5 again, in the birth
        rig.edge.publish_data({"Good": 2})  # the next report
        await until(lambda: good(rig.events) >= 7, "2 more good parts")

    rig = run(mosquitto, scenario, points=points, values={"Good": 3})
    assert [e.good for e in of_kind(rig.events, PartCount)] == [5, 2]


def test_stopping_the_host_marks_its_machines_offline(mosquitto: MosquittoServer) -> None:
    settings = BrokerSettings("127.0.0.1", mosquitto.port)
    published = ListPublisher()
    edge = SimulatedEdgeNode(settings, GROUP, NODE, DEVICE)
    host = SparkplugHost(factory_with_sparkplug(), published, settings)

    async def main() -> None:
        edge.start()
        try:
            await host.start()
            await until(lambda: len(states(published.events)) == 1, "the state of a rebirth")
            await host.stop()
        finally:
            edge.stop()

    asyncio.run(main())
    stopped = of_kind(published.events, StateChange)[-1]
    assert (stopped.state, stopped.reason) == (MachineState.OFFLINE, CONNECTOR_STOPPED)
    assert host.health().events == len(published.events)


def test_a_3_1_1_broker_is_down_with_the_reason_and_retried_then_read_with_3_1_1() -> None:
    """The embedded broker speaks only MQTT 3.1.1 and leaves an MQTT 5 CONNECT unanswered."""
    broker = EmbeddedBroker("127.0.0.1", free_port())
    broker.start()
    settings = BrokerSettings("127.0.0.1", broker.port)
    try:
        published = ListPublisher()
        host = SparkplugHost(factory_with_sparkplug(), published, settings, timeout_s=1.0)

        async def refused() -> str:
            await host.start()
            try:
                await until(lambda: host.health().status is LinkStatus.DOWN, "down")
                await until(lambda: host.connect_attempts >= 2, "a second attempt")
                return host.health().detail
            finally:
                await host.stop()

        detail = asyncio.run(refused())
        assert detail.startswith(
            "the broker did not answer the MQTT 5 CONNECT within 1 s (a broker that speaks only "
            "MQTT 3.1.1, such as 'microfab broker', needs --mqtt-version 3.1.1); reconnecting"
        )
        assert states(published.events) == [MachineState.OFFLINE]

        host = SparkplugHost(
            factory_with_sparkplug(), ListPublisher(), settings, mqtt_version="3.1.1"
        )
        assert host.mqtt_version == "3.1.1"

        async def accepted() -> LinkStatus:
            await host.start()
            try:
                await until(lambda: host.health().status is LinkStatus.CONNECTED, "connected")
                return host.health().status
            finally:
                await host.stop()

        assert asyncio.run(accepted()) is LinkStatus.CONNECTED
    finally:
        broker.stop()
    with pytest.raises(InputError, match=r"--mqtt-version: '4\.0' is not 5 or 3\.1\.1"):
        SparkplugHost(factory_with_sparkplug(), ListPublisher(), settings, mqtt_version="4.0")


def test_two_hosts_with_their_own_ids_share_a_broker(mosquitto: MosquittoServer) -> None:
    settings = BrokerSettings("127.0.0.1", mosquitto.port)
    outs = [ListPublisher(), ListPublisher()]
    hosts = [
        SparkplugHost(factory_with_sparkplug(), out, settings, host_id=name)
        for out, name in zip(outs, ("line-a", "line-b"), strict=True)
    ]
    edge = SimulatedEdgeNode(settings, GROUP, NODE, DEVICE)

    async def main() -> None:
        for host in hosts:
            await host.start()
        try:
            edge.start()
            for out in outs:
                await until(lambda o=out: len(states(o.events)) >= 1, "a state at each host")
            assert [h.health().status for h in hosts] == [LinkStatus.CONNECTED] * 2
            assert [h.health().reconnects for h in hosts] == [0, 0]  # neither pushed the other off
        finally:
            edge.stop()
            for host in hosts:
                await host.stop()

    asyncio.run(main())
    assert [h.state_topic for h in hosts] == ["spBv1.0/STATE/line-a", "spBv1.0/STATE/line-b"]


def test_a_factory_without_sparkplug_machines_is_refused() -> None:
    data = yaml.safe_load((DATA / "factory-small.yaml").read_text(encoding="utf-8"))
    with pytest.raises(InputError, match=r"connect\.sparkplug"):
        SparkplugHost(
            Factory.model_validate(data), ListPublisher(), BrokerSettings("127.0.0.1", 1883)
        )


def test_signed_and_float_metric_values_round_trip() -> None:
    payload = new_payload(seq=0)
    add_metric(payload, "a", -5, DataType.INT32)
    add_metric(payload, "b", -7, DataType.INT64)
    add_metric(payload, "c", 21.3, DataType.FLOAT)
    add_metric(payload, "d", None, DataType.DOUBLE)
    add_metric(payload, "e", "x", DataType.STRING)
    decoded = decode_payload(payload.SerializeToString())
    assert [metric_value(m) for m in decoded.metrics] == [-5, -7, 21.3, None, "x"]
    with pytest.raises(ValueError, match="not a Sparkplug B payload"):
        decode_payload(b"\xff\xff")
