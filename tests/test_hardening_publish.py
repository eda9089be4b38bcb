"""Issue 15, finding 12: publishing more QoS 1 messages than paho can hold unacknowledged.

paho numbers unacknowledged messages with 16-bit ids: the 65,536th message published without
waiting is refused with ``ERR_QUEUE_SIZE`` (``wait_for_publish`` raises ``ValueError``), which
crashed ``microfab bench ingest --events 200000``. Publishers apply back-pressure instead: against
a real Mosquitto, every message of more than 65,535 is acknowledged and nothing raises.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from microfab.connect.mqtt_client import parse_broker_url
from microfab.connect.mqtt_publish import AckWindow, MqttPublisher
from microfab.model.events import TelemetrySample
from services import MosquittoServer

MORE_THAN_PAHO_HOLDS = 70_000
"""Above paho's 65,535 message ids."""

TOPIC = "microfab/v1/bench/plant/line1/cell1/machine-1/telemetry"


def _client(port: int) -> paho.Client:
    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    client.max_inflight_messages_set(0)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


def test_unpaced_publishing_runs_out_of_message_ids(mosquitto: MosquittoServer) -> None:
    """The failure, reproduced: publishing without waiting hits ERR_QUEUE_SIZE."""
    client = _client(mosquitto.port)
    client.loop_stop()  # the network loop is held back, so no acknowledgement frees an id
    try:
        codes = {client.publish(TOPIC, b"{}", qos=1).rc for _ in range(65_600)}
    finally:
        client.disconnect()
    assert MQTTErrorCode.MQTT_ERR_QUEUE_SIZE in codes


def test_ack_window_publishes_more_than_paho_holds(mosquitto: MosquittoServer) -> None:
    client = _client(mosquitto.port)
    window = AckWindow(client, size=5_000)
    peak = 0
    try:
        for i in range(MORE_THAN_PAHO_HOLDS):
            info = window.publish(TOPIC, b'{"n": %d}' % i, qos=1)
            assert info.rc in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN)
            peak = max(peak, window.outstanding)
        assert window.wait_all(timeout_s=120)
    finally:
        client.disconnect()
        client.loop_stop()
    assert window.outstanding == 0
    assert peak <= 5_000


def test_mqtt_publisher_delivers_more_than_paho_holds(mosquitto: MosquittoServer) -> None:
    start = dt.datetime(2026, 11, 23, tzinfo=dt.UTC)
    publisher = MqttPublisher(parse_broker_url(mosquitto.url))
    try:
        for i in range(MORE_THAN_PAHO_HOLDS):
            publisher.publish(
                TelemetrySample(
                    id=f"p-{i}",
                    ts=start + dt.timedelta(milliseconds=i),
                    machine="bench/plant/line1/cell1/machine-1",
                    metrics={"n": float(i)},
                )
            )
        publisher.flush()
        deadline = time.monotonic() + 180
        while publisher.pending() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        publisher.close(timeout_s=30)
    stats: Any = publisher.stats
    assert (stats.queued, stats.delivered, stats.rejected) == (MORE_THAN_PAHO_HOLDS,) * 2 + (0,)
    assert publisher.pending() == 0
