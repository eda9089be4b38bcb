"""Issue 15: generated timestamps and numbers on every way in, then every page still answers.

Hypothesis draws times from year 1 to 9999 (with offsets that push them past either end), text
that is no time at all, and numbers from 0 to 2⁷⁰, ±1e308, NaN and infinity, and sends them

- to the REST operator input (``POST …/counts``): every answer is 2xx or 4xx, never 5xx;
- as MQTT count, energy and telemetry messages through a real Mosquitto to an ingest worker with
  the clock policy: every message becomes a stored event or a dead letter, and every stored event
  keeps the policy's bounds;

and afterwards the dashboard and the API routes the audit found failing answer 200.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import paho.mqtt.client as paho
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion

from microfab.connect.mqtt_client import parse_broker_url
from microfab.connect.mqtt_ingest import IngestWorker
from microfab.model.clock_policy import EARLIEST, ClockPolicy
from microfab.model.identity import Role
from microfab.store import EventStore, open_store
from services import MosquittoServer
from webapp import CNC1, CNC2, METER, api_token, fill, serving

ROUTES = [
    "/",
    "/api/v1/oee",
    "/api/v1/orders",
    "/api/v1/downtime",
    "/api/v1/carbon/intensity",
    "/api/v1/dashboard",
]

RECEIVED = dt.datetime(2026, 11, 23, 16, 0, tzinfo=dt.UTC)
"""The ingest worker's receiving clock (injected)."""
POLICY = ClockPolicy()

ZONES = st.sampled_from(
    [dt.UTC, dt.timezone(dt.timedelta(hours=8)), dt.timezone(dt.timedelta(hours=14)),
     dt.timezone(dt.timedelta(hours=-12))]
)  # fmt: skip

near_receipt = st.datetimes(
    min_value=dt.datetime(2026, 10, 25), max_value=dt.datetime(2026, 11, 23, 16), timezones=ZONES
).map(lambda t: t.isoformat())
"""Times the policy accepts (within 30 days before the receiving clock)."""

times = st.one_of(
    near_receipt,
    near_receipt,
    st.datetimes(timezones=ZONES).map(lambda t: t.isoformat()),
    st.datetimes(
        min_value=dt.datetime(2026, 10, 1), max_value=dt.datetime(2026, 12, 31), timezones=ZONES
    ).map(lambda t: t.isoformat()),
    st.sampled_from(
        [
            "9999-12-31",
            "9999-12-31T23:59:59.999Z",
            "0001-01-01T00:00:00Z",
            "2300-01-01T00:00:00Z",
            "1970-01-01T00:00:00Z",
            "2000-01-01T00:00:00Z",
            "2026-11-23T15:00",
            "2026-13-01T00:00:00Z",
            "",
            "now",
        ]
    ),
    st.text(max_size=24),
)
"""Event time text: anywhere in the calendar, near the receiving clock, extremes, and nonsense."""

numbers = st.one_of(
    st.integers(1, 1000),
    st.integers(0, 10**6 + 10),
    st.integers(-(2**70), 2**70),
    st.floats(),
    st.sampled_from([1e308, -1e308, 1e12, 1e12 + 1, 1e15, 1e16, math.nan, math.inf, -math.inf]),
)
"""Numbers: in range, far out of it, and not finite."""


@pytest.fixture(scope="module")
def plant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EventStore, str]]:
    folder = tmp_path_factory.mktemp("fuzz")
    with open_store(f"sqlite:///{folder}/plant.db") as store, serving(fill(store)) as (url, _):
        yield store, url


def _json(value: Any) -> bytes:
    return json.dumps(value, allow_nan=True).encode()  # NaN and Infinity go out as written


def test_generated_times_and_numbers_never_break_the_product(
    plant: tuple[EventStore, str], mosquitto: MosquittoServer
) -> None:
    store, url = plant
    headers = {
        "Authorization": f"Bearer {api_token(store, Role.OPERATOR)}",
        "content-type": "application/json",
    }
    statuses: list[int] = []
    with httpx.Client(base_url=url, headers=headers, timeout=120) as api:

        @settings(
            max_examples=120,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
            derandomize=True,
        )
        @given(ts=st.none() | times, good=numbers, scrap=st.none() | numbers)
        def rest(ts: str | None, good: Any, scrap: Any) -> None:
            body: dict[str, Any] = {"good": good, "by": "fuzz"}
            if ts is not None:
                body["ts"] = ts
            if scrap is not None:
                body["scrap"] = scrap
            answer = api.post(f"/api/v1/machines/{CNC1}/counts", content=_json(body))
            statuses.append(answer.status_code)
            assert 200 <= answer.status_code < 500, (body, answer.text)

        rest()
    assert any(s == 201 for s in statuses) and any(s >= 400 for s in statuses), statuses

    worker = IngestWorker(
        store,
        parse_broker_url(mosquitto.url),
        client_id=f"fuzz-{uuid.uuid4().hex[:8]}",
        shared=False,
        clock=lambda: RECEIVED,
        clock_policy=POLICY,
    )
    worker.start()
    assert worker.wait_subscribed(10)
    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    client.connect("127.0.0.1", mosquitto.port)
    client.loop_start()
    sent: list[str] = []
    try:
        messages = st.tuples(
            st.sampled_from(
                [
                    (CNC1, "count", "good"),
                    (CNC2, "count", "scrap"),
                    (METER, "energy", "kwh"),
                    (CNC1, "telemetry", "metrics"),
                ]
            ),
            times,
            numbers,
        )

        @settings(
            max_examples=8,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
            derandomize=True,
        )
        @given(batch=st.lists(messages, min_size=1, max_size=40))
        def mqtt(batch: list[tuple[tuple[str, str, str], str, Any]]) -> None:
            for (machine, stream, field), ts, number in batch:
                event_id = f"z-{uuid.uuid4().hex[:12]}"
                body: dict[str, Any] = {"id": event_id, "ts": ts}
                if field == "metrics":
                    body["metrics"] = {"temp_c": number}
                elif field == "scrap":
                    body.update(good=1, scrap=number)
                else:
                    body[field] = number
                topic = f"microfab/v1/{machine}/{stream}"
                client.publish(topic, _json(body), qos=1).wait_for_publish(10)
                sent.append(event_id)

        mqtt()
        deadline = time.monotonic() + 60
        while worker.stats.received < len(sent) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        client.disconnect()
        client.loop_stop()
        worker.stop()
    s = worker.stats
    assert s.received == len(sent)
    assert s.stored + s.duplicates + s.dead_letters == len(sent)  # an event or a dead letter each
    stored = {row.event.id: row.event.ts for row in store.events() if row.event.id in set(sent)}
    dead = [x for x in store.dead_letters() if x.topic.startswith("microfab/v1/")]
    dead_ids = {i for i in sent if any(f'"{i}"' in x.payload for x in dead)}
    assert set(sent) == set(stored) | dead_ids and not set(stored) & dead_ids
    for ts in stored.values():
        assert ts >= EARLIEST and POLICY.judge(ts, RECEIVED).accepted
    assert s.bad_time > 0 and s.stored > 0

    with httpx.Client(base_url=url, headers=headers, timeout=120) as api:
        for route in ROUTES:
            answer = api.get(route)
            assert answer.status_code == 200, (route, answer.text[:300])
        clock = dt.datetime.fromisoformat(api.get("/api/v1/status").json()["clock"])
    assert clock <= dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)  # never ahead
