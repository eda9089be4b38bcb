"""The MQTT ingest worker against a real, private Mosquitto: happy path, malformed messages, dead
letters on the command line, shared subscriptions, MQTT 3.1.1, and an unreachable broker."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import func, select

from microfab.connect.mqtt_client import parse_broker_url
from microfab.connect.mqtt_ingest import IngestTarget, IngestWorker
from microfab.model.events import event_from_dict, event_to_dict
from microfab.store import EventStore
from microfab.store import schema as store_schema
from microfab.store.jsonl import export_jsonl
from services import MosquittoServer, free_port

DEADLINE_S = 60.0
MACHINE = "hk/kt/line1/fill/filler-1"
OTHER = "hk/kt/line1/pack/packer-2"
BASE_TS = dt.datetime(2026, 11, 23, 0, 0, tzinfo=dt.UTC)


# ---------------------------------------------------------------------------- helpers


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = DEADLINE_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(0.02)


def topic(machine: str, stream: str) -> str:
    return f"microfab/v1/{machine}/{stream}"


def ts(i: int) -> str:
    return (BASE_TS + dt.timedelta(milliseconds=i)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def telemetry(i: int, prefix: str = "t") -> dict[str, Any]:
    """A telemetry payload (no machine/stream: those come from the topic) with a unique id."""
    return {"id": f"{prefix}-{i:06d}", "ts": ts(i), "metrics": {"temp_c": 20.0 + i % 50}}


def dumps(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class Publisher:
    """A fast QoS 1 publisher (unlimited in-flight window) that counts the broker's PUBACKs.

    paho keeps unacknowledged QoS 1 messages and sends them again after a reconnect, so
    everything handed to :meth:`publish` eventually reaches the broker."""

    def __init__(self, port: int, client_id: str | None = None) -> None:
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"pub-{uuid.uuid4().hex[:8]}",
            protocol=paho.MQTTv5,
        )
        self.client.max_inflight_messages_set(0)  # no window: publish as fast as we can
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(min_delay=1, max_delay=1)
        self._lock = threading.Lock()
        self.sent = 0
        self.acked = 0
        self.refused: list[str] = []  # PUBACK reason codes other than Success
        self.connected = threading.Event()
        self.client.on_connect = lambda *a: self.connected.set()
        self.client.on_publish = self._on_publish
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        if not self.connected.wait(10):
            raise AssertionError("the test publisher could not connect")

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        with self._lock:
            self.acked += 1
            if reason.is_failure or reason.value != 0:  # e.g. 16 "No matching subscribers"
                self.refused.append(str(reason))

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1)
        self.sent += 1

    def publish_json(self, topic: str, body: Any) -> None:
        self.publish(topic, dumps(body))

    def wait_acked(self, timeout_s: float = DEADLINE_S) -> None:
        wait_until(lambda: self.acked >= self.sent, f"PUBACKs for {self.sent} messages", timeout_s)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def publisher(mosquitto: MosquittoServer) -> Iterator[Publisher]:
    pub = Publisher(mosquitto.port)
    try:
        yield pub
    finally:
        pub.close()


def start_worker(
    store: IngestTarget, url: str, *, protocol: str = "5", **options: Any
) -> IngestWorker:
    """An IngestWorker with a unique client id, started, returned once its SUBACK arrived (so
    nothing published afterwards can miss the subscription)."""
    options.setdefault("client_id", f"ingest-test-{uuid.uuid4().hex[:10]}")
    worker = IngestWorker(store, parse_broker_url(url, protocol=protocol), **options)
    worker.start()
    if not worker.wait_subscribed(10):
        worker.stop()
        raise AssertionError("the ingest worker got no SUBACK")
    return worker


@pytest.fixture
def workers() -> Iterator[list[IngestWorker]]:
    """Workers a test started, stopped at teardown (their thread must still be alive)."""
    started: list[IngestWorker] = []
    try:
        yield started
    finally:
        for worker in started:
            worker.stop()


def alive(worker: IngestWorker) -> bool:
    return worker._thread is not None and worker._thread.is_alive()


def received(*workers: IngestWorker) -> int:
    return sum(w.stats.received for w in workers)


def duplicate_ids(store: EventStore) -> list[tuple[str, int]]:
    """Event ids stored more than once (must be none: the id is the idempotency key)."""
    table = store_schema.events
    stmt = (
        select(table.c.id, func.count())
        .group_by(table.c.id)
        .having(func.count() > 1)
        .order_by(table.c.id)
    )
    with store.engine.connect() as conn:
        return [(str(r[0]), int(r[1])) for r in conn.execute(stmt)]


def stored_ids(store: EventStore) -> list[str]:
    with store.engine.connect() as conn:
        return [str(r[0]) for r in conn.execute(select(store_schema.events.c.id))]


def exported(store: EventStore) -> list[dict[str, Any]]:
    buffer = io.StringIO()
    export_jsonl(store, buffer)
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def expected(machine: str, stream: str, body: dict[str, Any]) -> dict[str, Any]:
    """The export shape of a wire payload on ``topic(machine, stream)``."""
    return event_to_dict(event_from_dict({**body, "machine": machine, "stream": stream}))


def run_microfab(*args: str, timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MICROFAB_DB", "MICROFAB_BROKER")}
    env["COLUMNS"] = "400"  # a wide table, so no value is folded across lines
    return subprocess.run(
        [sys.executable, "-m", "microfab.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


# ---------------------------------------------------------------------------- happy path


ONE_OF_EACH: list[tuple[str, str, dict[str, Any]]] = [
    (MACHINE, "state", {"id": "s-1", "ts": ts(1), "state": "running", "reason": None}),
    (MACHINE, "count", {"id": "c-1", "ts": ts(2), "good": 10, "scrap": 1, "order": "WO-1"}),
    (MACHINE, "telemetry", {"id": "m-1", "ts": ts(3), "metrics": {"temp_c": 71.5, "rpm": 1200}}),
    (MACHINE, "energy", {"id": "e-1", "ts": ts(4), "kwh": 1234.5}),
    (
        OTHER,
        "energy",
        {"id": "e-2", "ts": ts(5), "carrier": "towngas", "quantity": 9.5, "unit": "MJ"},
    ),
    (
        OTHER,
        "order",
        {"id": "o-1", "ts": ts(6), "order": "WO-1", "event": "released", "quantity": 500},
    ),
    (OTHER, "material", {"id": "x-1", "ts": ts(7), "material": "flour", "qty": 2.5, "unit": "kg"}),
    # machine and stream may be repeated in the payload when they agree with the topic
    (OTHER, "count", {"id": "c-2", "ts": ts(8), "machine": OTHER, "stream": "count", "good": 3}),
]


def test_single_events_and_batches_on_every_stream_are_stored(
    store: EventStore, mosquitto: MosquittoServer, publisher: Publisher, workers: list[IngestWorker]
) -> None:
    workers.append(worker := start_worker(store, mosquitto.url))
    want: list[dict[str, Any]] = []
    for machine, stream, body in ONE_OF_EACH:
        publisher.publish_json(topic(machine, stream), body)
        want.append(expected(machine, stream, body))
    batches = 0
    for stream, maker in (
        ("telemetry", lambda i: telemetry(i, "bt")),
        ("count", lambda i: {"id": f"bc-{i}", "ts": ts(i), "good": i, "scrap": 0}),
        ("state", lambda i: {"id": f"bs-{i}", "ts": ts(i), "state": ["idle", "running"][i % 2]}),
    ):
        for machine in (MACHINE, OTHER):
            body = [maker(i) for i in range(batches * 10, batches * 10 + 10)]
            batches += 1
            publisher.publish_json(topic(machine, stream), body)
            want += [expected(machine, stream, b) for b in body]
    publisher.wait_acked()
    messages = len(ONE_OF_EACH) + batches
    wait_until(lambda: worker.stats.received == messages, f"{messages} messages committed")

    assert worker.stats.dead_letters == 0, store.dead_letters()
    assert worker.stats.stored == len(want) == 8 + 60
    assert store.dead_letter_count() == 0
    key = lambda d: (d["ts"], d["id"])  # noqa: E731  (the export order)
    got = exported(store)
    assert got == sorted(want, key=key)
    # machine and stream come from the topic
    by_id = {d["id"]: d for d in got}
    assert by_id["bt-000000"]["machine"] == MACHINE and by_id["bt-000010"]["machine"] == OTHER
    assert by_id["m-1"] == {
        "id": "m-1",
        "ts": ts(3),
        "machine": MACHINE,
        "stream": "telemetry",
        "metrics": {"temp_c": 71.5, "rpm": 1200.0},
    }
    assert by_id["s-1"]["stream"] == "state" and by_id["s-1"]["reason"] is None
    assert alive(worker)


def test_redelivered_messages_are_stored_once(
    store: EventStore, mosquitto: MosquittoServer, publisher: Publisher, workers: list[IngestWorker]
) -> None:
    workers.append(worker := start_worker(store, mosquitto.url))
    body = [telemetry(i) for i in range(20)]
    for _ in range(3):  # the same batch three times, as a publisher retrying would send it
        publisher.publish_json(topic(MACHINE, "telemetry"), body)
    publisher.wait_acked()
    wait_until(lambda: worker.stats.received == 3, "3 messages committed")
    assert store.count() == 20
    assert worker.stats.stored == 20 and worker.stats.duplicates == 40
    assert store.dead_letter_count() == 0


# ---------------------------------------------------------------------------- malformed messages


MAX_PAYLOAD = 1024

MALFORMED: list[tuple[str, bytes, str]] = [
    # (topic, payload, expected start of the dead letter's reason)
    (topic(MACHINE, "count"), b'{"id": "b-1", "good": ', "bad_json: "),
    (topic(MACHINE, "count"), b"\xff\xfe\x00garbage", "bad_json: payload is not UTF-8"),
    (topic(MACHINE, "count"), b"", "bad_json: "),
    (
        topic(MACHINE, "energy"),
        b'{"id": "b-2", "ts": "2026-11-23T00:00:00Z", "kwh": NaN}',
        "bad_json: NaN",
    ),
    (
        topic(MACHINE, "count"),
        b'{"id":"b-3","ts":"2026-11-23T00:00:00Z","good":"ten"}',
        "invalid_event: good",
    ),
    (topic(MACHINE, "count"), b'{"id":"b-4","ts":"yesterday","good":1}', "invalid_event: ts"),
    (topic(MACHINE, "count"), b'{"ts":"2026-11-23T00:00:00Z","good":1}', "invalid_event: id"),
    (
        topic(MACHINE, "state"),
        b'{"id":"b-5","ts":"2026-11-23T00:00:00Z","state":"dancing"}',
        "invalid_event: state",
    ),
    (
        topic(MACHINE, "count"),
        b'{"id":"b-6","ts":"2026-11-23T00:00:00Z","good":1,"colour":"red"}',
        "invalid_event: colour",
    ),
    (topic(MACHINE, "count"), b'"just a string"', "invalid_event: expected a JSON object"),
    (topic(MACHINE, "count"), b"[]", "bad_batch: empty array"),
    (
        topic(MACHINE, "count"),
        b'{"id":"b-7","ts":"2026-11-23T00:00:00Z","machine":"x/y/z/w/v","good":1}',
        "invalid_event: 'machine'",
    ),
    (
        topic(MACHINE, "state"),
        b'{"id":"b-8","ts":"2026-11-23T00:00:00Z","stream":"count","good":1}',
        "invalid_event: 'stream'",
    ),
    (
        topic(MACHINE, "state"),
        b'{"id":"b-9","ts":"2026-11-23T00:00:00Z","state":"idle","reason":"a\\u0000b"}',
        "invalid_event: text holds a NUL",
    ),
    (
        topic(MACHINE, "vibration"),
        dumps(telemetry(1, "b")),
        "bad_topic: unknown stream 'vibration'",
    ),
    (
        topic("hk/KT/line1/fill/filler-1", "count"),
        dumps(telemetry(2, "b")),
        "bad_topic: topic level 'KT'",
    ),
    (
        topic("hk//line1/fill/filler-1", "count"),
        dumps(telemetry(3, "b")),
        "bad_topic: topic level ''",
    ),
    (topic(MACHINE, "telemetry"), dumps([telemetry(i, "big") for i in range(40)]), "oversize: "),
]


def test_malformed_messages_become_dead_letters_and_the_worker_goes_on(
    store: EventStore, mosquitto: MosquittoServer, publisher: Publisher, workers: list[IngestWorker]
) -> None:
    workers.append(worker := start_worker(store, mosquitto.url, max_payload=MAX_PAYLOAD))
    # an event stored first, then its id reused with different content
    original = {"id": "dup-1", "ts": ts(1), "good": 5, "scrap": 0}
    publisher.publish_json(topic(MACHINE, "count"), original)
    wait_until(lambda: worker.stats.received == 1, "the original event committed")
    assert store.count() == 1

    for t, payload, _ in MALFORMED:
        publisher.publish(t, payload)
    # the same id with different content, alone and inside a batch
    publisher.publish_json(topic(MACHINE, "count"), {**original, "good": 6})
    good = [telemetry(i, "ok") for i in range(3)]
    bad_element = {"id": "bad-el", "ts": ts(9), "metrics": {}}
    publisher.publish_json(
        topic(MACHINE, "telemetry"), [good[0], bad_element, 42, good[1], good[2]]
    )
    # a count beyond any integer column: refused by validation, the rest of the batch stored
    publisher.publish_json(
        topic(OTHER, "count"),
        [{"id": "huge-1", "ts": ts(1), "good": 2**64}, {"id": "fine-1", "ts": ts(2), "good": 1}],
    )
    publisher.publish_json(topic(OTHER, "count"), {"id": "fine-2", "ts": ts(3), "good": 2})
    publisher.wait_acked()
    messages = 1 + len(MALFORMED) + 4
    wait_until(lambda: worker.stats.received == messages, f"{messages} messages committed")

    letters = store.dead_letters()
    reasons = [letter.reason for letter in letters]
    for t, payload, start in MALFORMED:
        text = payload.decode("utf-8", "replace")
        matching = [
            d
            for d in letters
            if d.topic == t
            and d.reason.startswith(start)
            and (d.payload == text or "\ufffd" in text)
        ]
        assert len(matching) == 1, (t, payload, start, reasons)
    conflict = [d for d in letters if d.reason.startswith("id_conflict")]
    assert len(conflict) == 1 and "'dup-1'" in conflict[0].reason
    assert json.loads(conflict[0].payload)["good"] == 6
    in_batch = [d for d in letters if d.reason.startswith("invalid_event: [")]
    assert sorted(d.reason.split("]")[0] for d in in_batch) == [
        "invalid_event: [0",
        "invalid_event: [1",
        "invalid_event: [2",
    ]
    assert json.loads(next(d for d in in_batch if "[1]" in d.reason).payload) == bad_element
    huge = next(d for d in in_batch if "[0]" in d.reason)
    assert json.loads(huge.payload)["id"] == "huge-1" and "good" in huge.reason
    assert len(letters) == len(MALFORMED) + 1 + 2 + 1
    assert all(d.source == "mqtt" and d.received_at.tzinfo is not None for d in letters)

    # the good events are stored, the stored one kept its first content
    ids = sorted(stored_ids(store))
    assert ids == ["dup-1", "fine-1", "fine-2", "ok-000000", "ok-000001", "ok-000002"]
    assert next(d for d in exported(store) if d["id"] == "dup-1")["good"] == 5
    assert sum(m.good for m in store.machine_status()) == 5 + 1 + 2

    # the worker never stopped
    assert alive(worker)
    publisher.publish_json(topic(MACHINE, "telemetry"), telemetry(999, "after"))
    wait_until(lambda: "after-000999" in stored_ids(store), "an event after the bad ones")


def refuse_in_database(store: EventStore, event_id: str) -> None:
    """A database rule (a trigger, as a site's DBA might add) that refuses one event id."""
    with store.engine.begin() as conn:
        if store.engine.dialect.name == "sqlite":
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse_one BEFORE INSERT ON events "
                f"WHEN NEW.id = '{event_id}' BEGIN SELECT RAISE(ABORT, 'refused by a site rule'); END"
            )
        else:
            conn.exec_driver_sql(
                "CREATE FUNCTION refuse_one() RETURNS trigger AS $$ BEGIN "
                f"IF NEW.id = '{event_id}' THEN RAISE EXCEPTION 'refused by a site rule'; END IF; "
                "RETURN NEW; END $$ LANGUAGE plpgsql"
            )
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse_one BEFORE INSERT ON events "
                "FOR EACH ROW EXECUTE FUNCTION refuse_one()"
            )


def test_an_event_the_database_refuses_is_isolated_and_dead_lettered(
    store: EventStore, mosquitto: MosquittoServer, publisher: Publisher, workers: list[IngestWorker]
) -> None:
    refuse_in_database(store, "t-000007")
    workers.append(worker := start_worker(store, mosquitto.url))
    batch = [telemetry(i) for i in range(20)]
    publisher.publish_json(topic(MACHINE, "telemetry"), batch)
    publisher.publish_json(topic(MACHINE, "telemetry"), telemetry(20))
    publisher.wait_acked()
    wait_until(lambda: worker.stats.received == 2, "both messages committed")

    # the batch was split until the refused event stood alone: the other 20 are stored
    assert sorted(stored_ids(store)) == [f"t-{i:06d}" for i in range(21) if i != 7]
    letters = store.dead_letters()
    assert len(letters) == 1
    assert letters[0].reason.startswith("store_rejected: ")
    assert "refused by a site rule" in letters[0].reason
    assert json.loads(letters[0].payload)["id"] == "t-000007"
    assert alive(worker)


@pytest.mark.parametrize("strict", [False, True], ids=["lenient", "strict"])
def test_unknown_machines_are_flagged_or_dead_lettered(
    strict: bool,
    store: EventStore,
    mosquitto: MosquittoServer,
    publisher: Publisher,
    workers: list[IngestWorker],
) -> None:
    workers.append(
        worker := start_worker(store, mosquitto.url, known_machines={MACHINE}, strict=strict)
    )
    publisher.publish_json(topic(MACHINE, "telemetry"), telemetry(1, "known"))
    stranger = "hk/kt/line9/x/ghost-1"
    publisher.publish_json(topic(stranger, "telemetry"), [telemetry(2, "u"), telemetry(5, "u")])
    publisher.publish_json(topic(stranger, "telemetry"), telemetry(3, "u"))
    publisher.wait_acked()
    wait_until(lambda: worker.stats.received == 3, "3 messages committed")

    if strict:
        assert sorted(stored_ids(store)) == ["known-000001"]
        letters = store.dead_letters()
        assert len(letters) == 2
        assert all(d.reason.startswith(f"unknown_machine: '{stranger}'") for d in letters)
        assert store.unknown_machines() == []
    else:
        assert sorted(stored_ids(store)) == ["known-000001", "u-000002", "u-000003", "u-000005"]
        assert store.dead_letter_count() == 0
        [(machine, first, last, n)] = store.unknown_machines()
        assert (machine, n) == (stranger, 3)
        assert (first, last) == (
            BASE_TS + dt.timedelta(milliseconds=2),
            BASE_TS + dt.timedelta(milliseconds=5),
        )
        assert worker.stats.unknown_machine_events == 3
    assert alive(worker)


# ---------------------------------------------------------------------------- dead letters CLI


def test_deadletters_list_and_export_on_the_command_line(
    db_url: str, mosquitto: MosquittoServer, publisher: Publisher, workers: list[IngestWorker]
) -> None:
    from microfab.store import open_store

    with open_store(db_url) as store:
        worker = start_worker(store, mosquitto.url)
        workers.append(worker)
        bad = [
            (topic(MACHINE, "count"), b"{not json"),
            (topic(MACHINE, "vibration"), dumps(telemetry(1))),
            (topic(MACHINE, "count"), dumps([{"id": "c-1", "ts": ts(1), "good": 1}, "oops"])),
            (topic(MACHINE, "state"), '{"note": "粵語 ünïcode"}'.encode()),
        ]
        for t, payload in bad:
            publisher.publish(t, payload)
        publisher.wait_acked()
        wait_until(lambda: worker.stats.received == len(bad), "the bad messages committed")
        worker.stop()
        workers.clear()
        letters = store.dead_letters()
    assert len(letters) == 4

    listed = run_microfab("deadletters", "list", "--db", db_url)
    assert listed.returncode == 0, listed.stderr
    assert "Dead letters: newest 4 of 4" in listed.stdout
    for letter in letters:
        assert letter.topic in listed.stdout
        assert letter.reason in listed.stdout
    assert "{not json" in listed.stdout

    limited = run_microfab("deadletters", "list", "-n", "1", "--db", db_url)
    assert "newest 1 of 4" in limited.stdout

    dumped = run_microfab("deadletters", "export", "--format", "jsonl", "--db", db_url)
    assert dumped.returncode == 0, dumped.stderr
    records = [json.loads(line) for line in dumped.stdout.splitlines()]
    assert len(records) == 4
    for record, letter in zip(records, letters, strict=True):  # oldest first
        assert {"topic", "payload", "reason", "received_at"} <= set(record)
        assert (record["topic"], record["payload"], record["reason"]) == (
            letter.topic,
            letter.payload,
            letter.reason,
        )
        assert record["received_at"].endswith("Z")
        dt.datetime.fromisoformat(record["received_at"].replace("Z", "+00:00"))
    assert {r["payload"] for r in records} >= {"{not json", '"oops"', '{"note": "粵語 ünïcode"}'}
    assert any(r["reason"].startswith("invalid_event: [1]") for r in records)

    wrong = run_microfab("deadletters", "export", "--format", "csv", "--db", db_url)
    assert wrong.returncode == 2 and "Traceback" not in wrong.stderr


# ---------------------------------------------------------------------------- several workers


def test_two_workers_share_the_stream_through_a_shared_subscription(
    store: EventStore, mosquitto: MosquittoServer, publisher: Publisher, workers: list[IngestWorker]
) -> None:
    first = start_worker(store, mosquitto.url, shared=True, client_id="ingest-share-a")
    workers.append(first)
    second = start_worker(store, mosquitto.url, shared=True, client_id="ingest-share-b")
    workers.append(second)
    assert first.subscription == second.subscription == "$share/microfab/microfab/v1/#"
    n = 5000
    machines = [MACHINE, OTHER, "hk/kt/line2/oven/oven-1"]
    for i in range(n):
        publisher.publish_json(topic(machines[i % 3], "telemetry"), telemetry(i, "sh"))
    publisher.wait_acked()
    wait_until(lambda: received(first, second) >= n, f"{n} messages committed")
    wait_until(lambda: store.count() == n, f"{n} events stored")

    assert first.stats.received > 0 and second.stats.received > 0, (first.stats, second.stats)
    assert received(first, second) == n  # each message went to one worker only
    assert first.stats.stored + second.stats.stored == n
    assert duplicate_ids(store) == []
    assert set(stored_ids(store)) == {f"sh-{i:06d}" for i in range(n)}
    assert sum(m.events for m in store.machine_status()) == n


def test_a_retired_process_session_is_drained_then_ended(
    store: EventStore, mosquitto: MosquittoServer, publisher: Publisher, workers: list[IngestWorker]
) -> None:
    """A worker retired for good (``microfab ingest --retire``; ``--processes`` lowered does the
    same for the processes no longer run): what the broker queued on its session is stored,
    then the session ends, so it takes no more share of the shared subscription."""
    from microfab.commands.ingest import WorkerSpec, _retire_sessions

    base = f"ingest-retire-{uuid.uuid4().hex[:6]}"
    for client_id in (base, f"{base}-1"):  # two processes ran once: two sessions in the group
        start_worker(store, mosquitto.url, shared=True, client_id=client_id).stop()
    for i in range(200):  # published while both are away: the broker queues half on each
        publisher.publish_json(topic(MACHINE, "telemetry"), telemetry(i, "rt"))
    publisher.wait_acked()

    retired = run_microfab(
        "ingest", "--retire", f"{base}-1", "--broker", mosquitto.url, "--db", store.url
    )

    assert retired.returncode == 0, retired.stderr
    held = store.count()
    assert 0 < held < 200  # the retired session's share, stored
    assert f"{base}-1: stored the {held:,} messages the broker held, session ended" in (
        retired.stderr.replace("\n", " ")
    )
    first = start_worker(store, mosquitto.url, shared=True, client_id=base)
    workers.append(first)
    wait_until(lambda: store.count() == 200, "the first process's share stored too")
    for i in range(200, 300):  # the retired session is gone: all of it goes to the first
        publisher.publish_json(topic(MACHINE, "telemetry"), telemetry(i, "rt"))
    publisher.wait_acked()
    wait_until(lambda: store.count() == 300, "everything published afterwards stored")
    assert first.stats.received == 300 - held
    assert duplicate_ids(store) == []
    # what `--processes 1` checks first: no session of a second process is held any more
    spec = WorkerSpec(db=store.url, settings=parse_broker_url(mosquitto.url))
    _retire_sessions(spec, store, base, processes=1)
    assert store.count() == 300


def test_ingest_runs_several_processes_on_the_shared_subscription(
    db_url: str, mosquitto: MosquittoServer, publisher: Publisher, store: EventStore
) -> None:
    command = [sys.executable, "-m", "microfab.cli", "ingest", "--processes", "2"]
    command += ["--broker", mosquitto.url, "--db", db_url, "--client-id", "procs"]
    env = {k: v for k, v in os.environ.items() if k not in ("MICROFAB_DB", "MICROFAB_BROKER")}
    process = subprocess.Popen(
        command, stderr=subprocess.PIPE, text=True, env=env | {"COLUMNS": "400"}
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(process.stderr.readline, "")))  # type: ignore[union-attr]
    reader.start()
    try:
        wait_until(
            lambda: sum("subscribed to $share/microfab/" in line for line in lines) == 2,
            "both processes subscribed",
        )
        for i in range(1000):
            publisher.publish_json(topic(MACHINE, "telemetry"), telemetry(i, "mp"))
        publisher.wait_acked()
        wait_until(lambda: store.count() == 1000, "1,000 events stored")
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
        reader.join(timeout=10)
        process.stderr.close()  # type: ignore[union-attr]
    output = "".join(lines)
    assert process.returncode == 0, output
    assert "2 processes" in output and "Traceback" not in output
    stopped = [line for line in lines if "stopped: received" in line]
    received_by = [
        int(line.split("received ")[1].split(",")[0].replace("\u202f", "")) for line in stopped
    ]
    assert len(received_by) == 2 and sum(received_by) == 1000 and min(received_by) > 0, stopped
    assert duplicate_ids(store) == []

    refused = run_microfab("ingest", "--processes", "2", "--no-shared", "--db", db_url)
    assert refused.returncode == 2
    assert "--processes" in refused.stderr and "shared subscription" in refused.stderr
    refused = run_microfab("ingest", "--retire", "procs-1", "--mqtt-version", "3.1.1")
    assert refused.returncode == 2 and "--retire" in refused.stderr and "MQTT 5" in refused.stderr


def test_an_mqtt_3_1_1_worker_ingests_too(
    store: EventStore, mosquitto: MosquittoServer, publisher: Publisher, workers: list[IngestWorker]
) -> None:
    worker = start_worker(store, mosquitto.url, protocol="3.1.1", shared=False)
    workers.append(worker)
    assert worker.settings.protocol == 4 and worker.subscription == "microfab/v1/#"
    for i in range(200):
        publisher.publish_json(topic(MACHINE, "telemetry"), telemetry(i, "v311"))
    publisher.publish_json(
        topic(OTHER, "count"), [{"id": f"v311c-{i}", "ts": ts(i), "good": 1} for i in range(50)]
    )
    publisher.publish(topic(OTHER, "count"), b"nope")
    publisher.wait_acked()
    wait_until(lambda: worker.stats.received == 202, "202 messages committed")
    assert store.count() == 250
    assert store.dead_letter_count() == 1
    assert duplicate_ids(store) == []


# ---------------------------------------------------------------------------- unreachable broker


def test_ingest_with_no_broker_exits_1_with_one_sentence(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    proc = run_microfab(
        "ingest", "--broker", f"mqtt://127.0.0.1:{port}", "--db", f"sqlite:///{tmp_path}/s.db"
    )
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stdout + proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    assert f"mqtt://127.0.0.1:{port}" in errors[0]
    assert "cannot reach the MQTT broker" in errors[0]
