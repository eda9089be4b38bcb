"""Downtime reason codes checked at ingest (issue 15, finding 6): a state event whose reason is
not one of the factory's codes is stored with ``unknown:<code>`` — its time still counts — and
the downtime Pareto shows it flagged, never as a reason the factory defined. Real Mosquitto,
real store."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import uuid
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from conftest import DATA
from microfab.connect.decode import decode_message, flag_reason
from microfab.connect.mqtt_client import parse_broker_url
from microfab.connect.mqtt_ingest import IngestWorker
from microfab.model.factory_file import parse_factory
from microfab.store import EventStore
from microfab.track.oee import downtime_pareto
from services import MosquittoServer

CNC2 = "kt/plant/line1/utility/cnc-2"
CODES = ["PB", "PM", "UB", "UB-MECH"]
FORMULA = '=HYPERLINK("http://x")'


def at(hhmm: str) -> str:
    return f"2026-11-23T{hhmm}:00+08:00"


def test_flag_reason_keeps_known_codes_and_marks_the_rest() -> None:
    assert flag_reason("UB-MECH", CODES) == "UB-MECH"
    assert flag_reason("ZZ", CODES) == "unknown:ZZ"
    assert flag_reason("unknown:ZZ", CODES) == "unknown:ZZ"  # a replay stays the same
    assert len(flag_reason("x" * 64, CODES)) == 64


def test_decode_flags_unknown_reasons_only_when_codes_are_given() -> None:
    payload = json.dumps(
        [
            {"id": "s-1", "ts": at("10:00"), "state": "unplanned_stop", "reason": FORMULA},
            {"id": "s-2", "ts": at("10:30"), "state": "unplanned_stop", "reason": "UB-MECH"},
            {"id": "s-3", "ts": at("11:00"), "state": "running"},
        ]
    ).encode()
    now = dt.datetime.now(dt.UTC)
    topic = f"microfab/v1/{CNC2}/state"
    checked = decode_message(topic, payload, received_at=now, reason_codes=CODES)
    assert [getattr(e, "reason", None) for e in checked.events] == [
        f"unknown:{FORMULA}",
        "UB-MECH",
        None,
    ]
    assert checked.unknown_reasons == [FORMULA] and not checked.dead
    unchecked = decode_message(topic, payload, received_at=now)
    assert [getattr(e, "reason", None) for e in unchecked.events] == [FORMULA, "UB-MECH", None]


def test_unknown_reasons_arrive_flagged_on_the_downtime_pareto(
    store: EventStore, mosquitto: MosquittoServer
) -> None:
    factory = parse_factory((DATA / "factory-small.yaml").read_text())
    store.apply_factory(factory, "small.yaml")
    assert set(CODES) <= set(factory.downtime_reasons.codes())
    worker = IngestWorker(
        store,
        parse_broker_url(mosquitto.url, protocol="5"),
        client_id=f"ingest-test-{uuid.uuid4().hex[:10]}",
        known_machines={ref.path for ref in factory.machines()},
        reason_codes=factory.downtime_reasons.codes(),
    )
    worker.start()
    acked = threading.Semaphore(0)
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:8]}")
    client.on_publish = lambda *a: acked.release()
    try:
        assert worker.wait_subscribed(10)
        client.connect("127.0.0.1", mosquitto.port)
        client.loop_start()
        states: list[dict[str, Any]] = [
            {"id": "s-1", "ts": at("09:00"), "state": "running"},
            {"id": "s-2", "ts": at("10:00"), "state": "unplanned_stop", "reason": "ZZ-FAKE"},
            {"id": "s-3", "ts": at("10:30"), "state": "running"},
            {"id": "s-4", "ts": at("11:00"), "state": "unplanned_stop", "reason": "UB-MECH"},
            {"id": "s-5", "ts": at("11:15"), "state": "running"},
        ]
        client.publish(f"microfab/v1/{CNC2}/state", json.dumps(states), qos=1)
        assert acked.acquire(timeout=30)
        deadline = time.monotonic() + 60
        while worker.stats.stored < len(states):
            assert time.monotonic() < deadline, "the events were not stored"
            time.sleep(0.05)
    finally:
        client.disconnect()
        client.loop_stop()
        worker.stop()
    assert worker.stats.unknown_reasons == 1 and worker.stats.dead_letters == 0
    rows = downtime_pareto(
        store,
        factory,
        machine=CNC2,
        start=dt.datetime.fromisoformat(at("08:00")),
        end=dt.datetime.fromisoformat(at("16:00")),
    )
    by_reason = {row.reason: row for row in rows if row.state == "unplanned_stop"}
    assert set(by_reason) == {"unknown:ZZ-FAKE", "UB-MECH"}
    assert by_reason["unknown:ZZ-FAKE"].seconds == 1800  # the stop still counts as downtime
    assert by_reason["unknown:ZZ-FAKE"].category == "unplanned"  # from its state, not a code
    assert by_reason["UB-MECH"].seconds == 900
