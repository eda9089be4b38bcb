"""Topics with the wrong number of levels reach ingest and become ``bad_topic`` dead letters
(issue 15, finding 11: they used to miss the subscription and vanish); microfab's own alerts
topic is passed by. Against a real Mosquitto and a real store."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from microfab.connect.decode import decode_message
from microfab.connect.mqtt_client import parse_broker_url
from microfab.connect.mqtt_ingest import IngestWorker
from microfab.connect.topics import SUBSCRIPTION, is_alerts_topic
from microfab.store import EventStore
from services import MosquittoServer

MACHINE = "hk/kt/line1/fill/filler-1"
COUNT = {"id": "c-1", "ts": "2026-11-23T00:00:00.000Z", "good": 1, "scrap": 0}


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(0.02)


class Sender:
    """A QoS 1 publisher that counts the broker's PUBACKs."""

    def __init__(self, port: int) -> None:
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:8]}"
        )
        self.acked = 0
        self.sent = 0
        self._lock = threading.Lock()
        connected = threading.Event()
        self.client.on_connect = lambda *a: connected.set()
        self.client.on_publish = self._on_publish
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert connected.wait(10), "the test publisher could not connect"

    def _on_publish(self, *args: Any) -> None:
        with self._lock:
            self.acked += 1

    def send(self, topic: str, body: Any) -> None:
        self.client.publish(topic, json.dumps(body), qos=1)
        self.sent += 1

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def sender(mosquitto: MosquittoServer) -> Iterator[Sender]:
    pub = Sender(mosquitto.port)
    try:
        yield pub
    finally:
        pub.close()


WRONG_LEVELS = [
    f"microfab/v1/{MACHINE}/extra/count",  # one level too many
    "microfab/v1/hk/kt/filler-1/count",  # levels missing
    "microfab/v1/count",
    "microfab/v1",
]


def test_ingest_subscribes_to_everything_under_the_root() -> None:
    assert SUBSCRIPTION == "microfab/v1/#"
    assert is_alerts_topic("microfab/v1/hk/alerts")
    assert not is_alerts_topic(f"microfab/v1/{MACHINE}/count")
    assert not is_alerts_topic("microfab/v1/hk/kt/alerts")


def test_wrong_level_topics_are_dead_lettered_as_bad_topic(
    store: EventStore, mosquitto: MosquittoServer, sender: Sender
) -> None:
    worker = IngestWorker(
        store,
        parse_broker_url(mosquitto.url, protocol="5"),
        client_id=f"ingest-test-{uuid.uuid4().hex[:10]}",
    )
    worker.start()
    try:
        assert worker.wait_subscribed(10), "the ingest worker got no SUBACK"
        for topic in WRONG_LEVELS:
            sender.send(topic, COUNT)
        sender.send("microfab/v1/hk/alerts", {"event": "raised", "id": 1})  # our own alerts
        sender.send(f"microfab/v1/{MACHINE}/count", COUNT)
        wait_until(lambda: sender.acked >= sender.sent, "PUBACKs")
        total = len(WRONG_LEVELS) + 2
        wait_until(lambda: worker.stats.received >= total, f"{total} messages committed")
    finally:
        worker.stop()
    letters = store.dead_letters()
    assert sorted(d.topic for d in letters) == sorted(WRONG_LEVELS)
    assert all(d.reason.startswith("bad_topic: ") for d in letters)
    assert all(json.loads(d.payload) == COUNT for d in letters)  # payload kept for a replay
    assert store.count() == 1  # the well-formed event, and no alert taken for an event


def test_the_alerts_topic_is_neither_event_nor_dead_letter() -> None:
    decoded = decode_message(
        "microfab/v1/hk/alerts", b'{"event":"raised"}', received_at=dt.datetime.now(dt.UTC)
    )
    assert decoded.events == [] and decoded.dead == []
