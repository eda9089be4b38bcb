"""Issue 15, finding 1: an event with an extreme ``ts`` must not become the plant clock.

Reproductions on both paths (REST operator input, MQTT ingest against a real Mosquitto), the
``bad_time`` dead letter and its replay after the device is fixed, devices whose clock drifts, the
simulation's clock as the demo's receiving clock, and every page and route answering 200 over
extreme times stored before the clock policy existed.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from typer.testing import CliRunner

from microfab.cli import app
from microfab.connect.mqtt_client import parse_broker_url
from microfab.connect.mqtt_ingest import IngestWorker
from microfab.errors import InputError
from microfab.model.clock_policy import UNLIMITED_AGE, ClockPolicy
from microfab.model.identity import Role
from microfab.store import EventStore, open_store
from microfab.store.dead_letter_replay import waiting_dead_letters
from services import MosquittoServer
from webapp import CNC1, CNC2, METER, event, fill, serving

PAGES = [
    "/",
    "/api/v1/oee",
    "/api/v1/orders",
    "/api/v1/downtime",
    "/api/v1/carbon/intensity",
    "/api/v1/dashboard",
    "/api/v1/wip",
    "/api/v1/status",
]
"""The dashboard and the routes the audit found answering 500 over one extreme time."""

NOW = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.UTC)
"""The receiving clock of the MQTT tests (injected, as the demo injects its simulation's)."""


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@pytest.fixture
def plant(tmp_path: Path) -> Iterator[EventStore]:
    with open_store(f"sqlite:///{tmp_path}/plant.db") as store:
        yield fill(store)


# ---------------------------------------------------------------------------- REST


@pytest.mark.parametrize(
    "ts", ["9999-12-31", "9999-12-31T23:59:59.999Z", "2300-01-01T00:00:00Z", "0001-01-01T00:00Z"]
)
def test_rest_count_with_an_extreme_time_is_refused_naming_ts(plant: EventStore, ts: str) -> None:
    before = plant.count()
    with serving(plant, role=Role.OPERATOR) as (_, api):
        clock = api.get("/api/v1/status").json()["clock"]
        answer = api.post(
            f"/api/v1/machines/{CNC1}/counts", json={"good": 1, "scrap": 0, "ts": ts, "by": "x"}
        )
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["message"].startswith("ts: ")
        assert api.get("/api/v1/status").json()["clock"] == clock  # the plant clock stayed
        for page in PAGES:
            assert api.get(page).status_code == 200, page
    assert plant.count() == before


def test_rest_count_at_a_believable_time_is_stored(plant: EventStore) -> None:
    with serving(plant, role=Role.OPERATOR) as (_, api):
        answer = api.post(
            f"/api/v1/machines/{CNC1}/counts",
            json={"good": 2, "ts": "2026-11-23T15:30+08:00", "by": "Ho"},
        )
    assert answer.status_code == 201, answer.text


def test_rest_count_ahead_of_the_simulation_clock_is_refused(plant: EventStore) -> None:
    """The demo's receiving clock is its simulation's: a time ahead of it is refused."""
    sim_now = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.UTC)
    with serving(plant, role=Role.OPERATOR, clock=lambda: sim_now) as (_, api):
        ahead = api.post(
            f"/api/v1/machines/{CNC1}/counts",
            json={"good": 1, "ts": "2026-11-23T09:00:00Z", "by": "x"},
        )
        inside = api.post(
            f"/api/v1/machines/{CNC1}/counts",
            json={"good": 1, "ts": "2026-11-23T07:59:00Z", "by": "x"},
        )
    assert ahead.status_code == 400 and "ahead of the receiving clock" in ahead.text
    assert inside.status_code == 201, inside.text


# ---------------------------------------------------------------------------- stored already


@pytest.mark.parametrize(
    "ts", ["9999-12-31T23:59:59.999Z", "0001-01-01T00:00:00Z", "2300-01-01T00:00:00Z"]
)
def test_pages_answer_over_extreme_times_stored_before_the_policy(
    plant: EventStore, ts: str
) -> None:
    plant.append(
        [
            event("x-1", ts, CNC1, "count", good=1),
            event("x-2", ts, CNC2, "state", state="unplanned_stop"),
            event("x-3", ts, METER, "energy", kwh=5000.0),
        ]
    )
    with serving(plant) as (_, api):
        # (the default windows then run from 2000: slow, but they answer)
        for page in [*PAGES, "/api/v1/oee.csv", "/api/v1/downtime.csv"]:
            answer = api.get(page, timeout=180)
            assert answer.status_code == 200, (page, answer.text[:300])


# ---------------------------------------------------------------------------- MQTT


class _Publisher:
    def __init__(self, port: int) -> None:
        self.client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def send(self, machine: str, stream: str, body: object) -> None:
        info = self.client.publish(f"microfab/v1/{machine}/{stream}", json.dumps(body), qos=1)
        info.wait_for_publish(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _worker(store: EventStore, url: str, **options: object) -> IngestWorker:
    worker = IngestWorker(
        store,
        parse_broker_url(url),
        client_id=f"hard-{uuid.uuid4().hex[:8]}",
        shared=False,
        **options,  # type: ignore[arg-type]
    )
    worker.start()
    assert worker.wait_subscribed(10)
    return worker


def test_mqtt_event_with_an_extreme_time_is_a_bad_time_dead_letter_and_replays(
    plant: EventStore, mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    db = f"sqlite:///{tmp_path}/plant.db"
    worker = _worker(plant, mosquitto.url, clock=lambda: NOW, clock_policy=ClockPolicy())
    pub = _Publisher(mosquitto.port)
    bodies = {
        "far": {"id": "m-far", "ts": "9999-12-31T23:59:59.999Z", "good": 1},
        "reset": {"id": "m-reset", "ts": "1970-01-01T00:00:07.000Z", "good": 2},
        "ahead": {"id": "m-ahead", "ts": "2026-11-23T09:00:00.000Z", "good": 3},  # 1 h ahead
        "fine": {"id": "m-fine", "ts": "2026-11-23T07:59:00.000Z", "good": 4},
    }
    try:
        for body in bodies.values():
            pub.send(CNC1, "count", body)
        wait_until(lambda: worker.stats.received == 4, "four messages")
    finally:
        pub.close()
        worker.stop()
    assert worker.stats.stored == 1 and worker.stats.bad_time == 3
    letters = waiting_dead_letters(plant, "bad_time")
    assert {json.loads(letter.payload)["id"] for letter in letters} == {
        "m-far",
        "m-reset",
        "m-ahead",
    }
    assert all(json.loads(letter.payload) in bodies.values() for letter in letters)  # kept whole
    assert "before 2000" in next(x.reason for x in letters if "m-reset" in x.payload)
    with serving(plant) as (_, api):
        assert api.get("/api/v1/status").json()["clock"] <= "2026-11-23T08:00:00.000Z"
        for page in PAGES:
            assert api.get(page).status_code == 200, page

    # the device's clock was an hour ahead: replay those letters an hour back
    runner = CliRunner()
    shifted = runner.invoke(
        app, ["deadletters", "replay", "--reason", "bad_time", "--shift-ts", "-3600", "--db", db]
    )
    assert shifted.exit_code == 0, shifted.output
    assert "replayed 1 of 3" in shifted.output and "2 still rejected" in shifted.output
    moved = next(s for s in plant.events() if s.event.id == "m-ahead")
    assert moved.event.ts == dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.UTC)
    again = runner.invoke(app, ["deadletters", "replay", "--reason", "bad_time", "--db", db])
    assert again.exit_code == 0, again.output
    assert "replayed 0 of 2" in again.output  # the replayed letter is marked, not offered again
    assert sum(1 for s in plant.events() if s.event.id == "m-ahead") == 1
    assert {json.loads(x.payload)["id"] for x in waiting_dead_letters(plant, "bad_time")} == {
        "m-far",
        "m-reset",
    }
    marked = [x for x in plant.dead_letters() if x.reason.startswith("replayed ")]
    assert len(marked) == 1 and "bad_time: " in marked[0].reason


def test_drifting_clocks_are_recorded_per_machine(
    plant: EventStore, mosquitto: MosquittoServer
) -> None:
    worker = _worker(plant, mosquitto.url, clock=lambda: NOW, clock_policy=UNLIMITED_AGE)
    pub = _Publisher(mosquitto.port)
    try:
        pub.send(CNC1, "count", {"id": "d-1", "ts": "2026-11-23T07:58:00Z", "good": 1})  # -120 s
        pub.send(CNC2, "count", {"id": "d-2", "ts": "2026-11-23T07:59:50Z", "good": 1})  # -10 s
        wait_until(lambda: worker.stats.received == 2, "two messages")
    finally:
        pub.close()
        worker.stop()
    assert worker.stats.clock_offsets == {CNC1: -120.0, CNC2: -10.0}
    assert worker.stats.drifting_clocks() == {CNC1: -120.0}


def test_the_simulation_clock_judges_the_demo_ingest(
    plant: EventStore, mosquitto: MosquittoServer
) -> None:
    """A simulation days ahead of the wall clock: its events are judged by its own clock."""
    sim_now = dt.datetime.now(dt.UTC) + dt.timedelta(days=3)
    worker = _worker(plant, mosquitto.url, clock=lambda: sim_now, clock_policy=UNLIMITED_AGE)
    pub = _Publisher(mosquitto.port)
    stamp = (sim_now - dt.timedelta(seconds=1)).isoformat()
    try:
        pub.send(CNC1, "count", {"id": "sim-1", "ts": stamp, "good": 1})
        wait_until(lambda: worker.stats.received == 1, "the message")
    finally:
        pub.close()
        worker.stop()
    assert worker.stats.stored == 1 and worker.stats.dead_letters == 0


def test_ingest_options_are_checked() -> None:
    answer = CliRunner().invoke(app, ["ingest", "--max-age", "forever", "--db", "sqlite://"])
    assert isinstance(answer.exception, InputError) and "--max-age" in str(answer.exception)


# ---------------------------------------------------------------------------- connectors


def test_connector_device_times_are_judged_and_replayable(
    plant: EventStore, caplog: pytest.LogCaptureFixture
) -> None:
    """Connectors store without MQTT ingest in between: the clock policy sits in front of them."""
    from microfab.connect.publisher import ClockCheckedPublisher, ListPublisher
    from microfab.connect.replay import replay
    from microfab.store.dead_letter_replay import mark_replayed

    inner = ListPublisher()
    checked = ClockCheckedPublisher(
        inner, plant.append_dead_letters, source="opcua", clock=lambda: NOW
    )
    stamps = {
        "ok": "2026-11-23T07:59:59Z",
        "drift": "2026-11-23T07:58:00Z",  # accepted, but two minutes behind
        "reset": "1970-01-01T00:00:00Z",
        "ahead": "2026-11-23T10:00:00Z",
    }
    machines = {"ok": CNC1, "drift": CNC2, "reset": CNC1, "ahead": CNC1}
    with caplog.at_level("WARNING"):
        for key, ts in stamps.items():
            checked.publish(event(f"o-{key}", ts, machines[key], "count", good=1))
        checked.flush()
    assert [e.id for e in inner.events] == ["o-ok", "o-drift"]
    assert checked.rejected == 2 and checked.clock_offsets[CNC2] == -120.0
    assert f"clock off by -120 s: {CNC2}" in caplog.text
    letters = waiting_dead_letters(plant, "bad_time")
    assert sorted(x.source for x in letters) == ["opcua", "opcua"]
    outcome = replay(
        letters,
        plant,
        lambda done: mark_replayed(plant, done, NOW),
        received_at=NOW,
        shift_s=-7200,  # the clock of the one ahead was two hours fast
    )
    assert (outcome.replayed, outcome.stored, len(outcome.still_rejected)) == (1, 1, 1)
    assert "before 2000" in outcome.still_rejected[0][1]
    assert next(s for s in plant.events() if s.event.id == "o-ahead").event.ts == dt.datetime(
        2026, 11, 23, 8, 0, tzinfo=dt.UTC
    )
