"""Stock movements arrive over MQTT like every event: published on microfab/v1/{path}/stock,
stored by the ingest worker, and on hand follows."""

from __future__ import annotations

import json
import time
import uuid

import paho.mqtt.client as paho

from microfab.connect.mqtt_client import parse_broker_url
from microfab.connect.mqtt_ingest import IngestWorker
from microfab.store import EventStore
from microfab.store.stock import on_hand
from services import MosquittoServer


def test_stock_events_over_mqtt_reach_the_stock_read_model(
    store: EventStore, mosquitto: MosquittoServer
) -> None:
    scale = f"s{uuid.uuid4().hex[:6]}/stores/wh/receiving/scale-1"
    worker = IngestWorker(
        store, parse_broker_url(mosquitto.url), client_id=f"ingest-{uuid.uuid4().hex[:8]}"
    )
    worker.start()
    publisher = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"pub-{scale[:8]}")
    try:
        assert worker.wait_subscribed(10)
        publisher.connect("127.0.0.1", mosquitto.port)
        publisher.loop_start()
        body = [
            {"id": "sc-1", "ts": "2026-12-01T00:00:00Z", "kind": "receipt", "item": "RICE",
             "lot": "R1", "qty": 25.0, "unit": "kg", "to_location": "bin-a1"},
            {"id": "sc-2", "ts": "2026-12-01T01:00:00Z", "kind": "transfer", "item": "RICE",
             "lot": "R1", "qty": 10.0, "unit": "kg", "from_location": "bin-a1",
             "to_location": "ls-1", "by": "agv-1"},
        ]  # fmt: skip
        info = publisher.publish(f"microfab/v1/{scale}/stock", json.dumps(body), qos=1)
        info.wait_for_publish(10)
        deadline = time.monotonic() + 20
        while worker.stats.received < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        publisher.loop_stop()
        publisher.disconnect()
        worker.stop()
    assert worker.stats.stored == 2 and worker.stats.dead_letters == 0
    assert {(r.location, r.qty) for r in on_hand(store, item="RICE")} == {
        ("bin-a1", 15.0),
        ("ls-1", 10.0),
    }
