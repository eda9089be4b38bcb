"""Benchmark: MQTT ingest throughput and latency against a plain paho subscriber, in one session.

Run with ``microfab bench ingest [--broker URL] [--db URL] [--events N] [--json]``.

- A separate publisher process sends N telemetry events with QoS 1, as fast as it can: once as
  single-event messages, once as arrays of 100.
- Baseline: a paho-mqtt QoS 1 subscriber that does nothing with the messages (auto-acknowledge),
  timed over the same single-event stream.
- microfab: an :class:`IngestWorker` storing into the store (ack after commit), timed from the first
  publish to the last commit.
- Latency: events offered at a fixed 5,000 events/s; each carries its send time; the commit time is
  taken right after the store's transaction returns; p50/p99 of the difference.
- ``lost`` = published ids missing from the store; ``duplicates`` = ids stored more than once,
  counted by id (GROUP BY), not inferred from the unique constraint.

Without ``--broker`` it starts a private Mosquitto on a free port (``max_queued_messages`` raised,
as a production broker for a busy line should be); without ``--db`` a temporary SQLite file.

The publisher applies back-pressure (at most 10,000 messages unacknowledged, see
:class:`~microfab.connect.mqtt_publish.AckWindow`), so any number of events can be sent. A stock
broker keeps only so many messages for a session that is away (Mosquitto: 1,000, its
``max_queued_messages``) and drops the rest; the bench then stops waiting once nothing has arrived
for :data:`IDLE_S` seconds and reports those events as ``lost``, with the broker setting to raise.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

NAME = "ingest"
TITLE = "MQTT ingest: throughput, latency, nothing lost"
TOPIC = "microfab/v1/bench/plant/line1/cell1/machine-{n}/telemetry"

IDLE_S = 10.0
"""Stop waiting for the rest of the events once nothing has arrived for this long."""


def _wait_for(progress: Callable[[], int], target: int, limit_s: float = 600.0) -> float:
    """Wait until ``progress()`` reaches ``target``, or nothing moved for :data:`IDLE_S` (the
    broker dropped the rest), or ``limit_s`` passed; returns when the last progress was seen
    (``time.perf_counter()``), so idle waiting is not counted in a rate."""
    last_value, last_change = progress(), time.perf_counter()
    deadline = time.monotonic() + limit_s
    while last_value < target and time.monotonic() < deadline:
        time.sleep(0.002)
        value = progress()
        if value != last_value:
            last_value, last_change = value, time.perf_counter()
        elif time.perf_counter() - last_change > IDLE_S:
            break
    return last_change


# ---------------------------------------------------------------------------- publisher process


def _publisher(url: str, count: int, batch: int, rate: float, prefix: str) -> None:
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    from microfab.connect.mqtt_client import connect_blocking, parse_broker_url
    from microfab.connect.mqtt_publish import AckWindow

    settings = parse_broker_url(url)
    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{prefix}", protocol=paho.MQTTv5
    )
    client.max_inflight_messages_set(0)
    client.max_queued_messages_set(0)
    # back-pressure: paho's 16-bit message ids allow 65,535 unacknowledged messages at most
    window = AckWindow(client, size=10_000)
    connect_blocking(client, settings)
    print("ready", flush=True)
    sys.stdin.readline()  # the bench starts its clock, then says go
    start = time.perf_counter()
    for first in range(0, count, batch):
        if rate > 0:
            wait = start + first / rate - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
        now = time.time()
        stamp = (
            time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z"
        )
        items = [
            {"id": f"{prefix}-{i}", "ts": stamp, "metrics": {"sent": now, "value": i % 97}}
            for i in range(first, min(first + batch, count))
        ]
        body: Any = items[0] if batch == 1 else items
        window.publish(TOPIC.format(n=first // batch % 10), json.dumps(body), qos=1)
    if not window.wait_all(timeout_s=120):
        raise SystemExit(f"bench publisher: {window.outstanding:,} messages never acknowledged")
    client.disconnect()
    client.loop_stop()


def _spawn_publisher(
    url: str, count: int, batch: int, rate: float, prefix: str
) -> subprocess.Popen[bytes]:
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import ingest; "
        "ingest._publisher(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), sys.argv[6])"
    )
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            code,
            str(Path(__file__).parent),
            url,
            str(count),
            str(batch),
            str(rate),
            prefix,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )


def _wait_ready(publisher: subprocess.Popen[bytes]) -> None:
    """Block until the publisher process is connected to the broker."""
    assert publisher.stdout is not None
    line = publisher.stdout.readline()
    if line.strip() != b"ready":
        publisher.kill()
        raise RuntimeError(f"bench publisher did not start: {line!r}")


def _go(publisher: subprocess.Popen[bytes]) -> None:
    """Tell a ready publisher to start sending."""
    assert publisher.stdin is not None
    publisher.stdin.write(b"go\n")
    publisher.stdin.flush()


# ---------------------------------------------------------------------------- services


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _private_mosquitto() -> Iterator[str]:
    folder = Path(tempfile.mkdtemp(prefix="microfab-bench-mqtt-"))
    port = _free_port()
    (folder / "m.conf").write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 10000000\n"
        "max_inflight_messages 0\npersistence false\nlog_dest none\n"
    )
    process = subprocess.Popen(
        [shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", str(folder / "m.conf")]
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    try:
        yield f"mqtt://127.0.0.1:{port}"
    finally:
        process.kill()
        process.wait()
        shutil.rmtree(folder, ignore_errors=True)


# ---------------------------------------------------------------------------- measurements


class _TimedStore:
    """Wraps the store: notes the commit time of every event (for latency)."""

    def __init__(self, store: Any, track: bool) -> None:
        self.store = store
        self.track = track
        self.committed: dict[str, float] = {}
        self.sent: dict[str, float] = {}

    def append(self, events: Iterable[Any]) -> Any:
        batch = list(events)
        result = self.store.append(batch)
        if self.track:
            now = time.time()
            for ev in batch:
                self.committed.setdefault(ev.id, now)
                self.sent.setdefault(ev.id, ev.metrics.get("sent", now))
        return result

    def append_dead_letters(self, letters: Iterable[Any]) -> int:
        return int(self.store.append_dead_letters(letters))

    def flag_unknown_machines(self, seen: Any) -> None:
        self.store.flag_unknown_machines(seen)


def _baseline(url: str, count: int) -> float:
    """Events per second a do-nothing paho QoS 1 subscriber drains from its queued session."""
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    from microfab.connect.mqtt_client import connect_blocking, parse_broker_url

    received = 0
    subscribed = threading.Event()

    def on_message(client: Any, userdata: Any, message: Any) -> None:
        nonlocal received
        received += 1

    client_id = f"bench-base-{uuid.uuid4().hex[:6]}"
    settings = parse_broker_url(url)

    def session() -> Any:
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
        client.on_message = on_message
        client.on_subscribe = lambda *args: subscribed.set()
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 3600
        connect_blocking(client, settings, clean_start=False, properties=props)
        return client

    client = session()
    client.subscribe("microfab/v1/#", qos=1)
    subscribed.wait(10)
    client.disconnect()
    client.loop_stop()
    _publish_all(url, count, 1, f"base{uuid.uuid4().hex[:6]}")
    start = time.perf_counter()
    client = session()
    end = _wait_for(lambda: received, count)
    client.disconnect()
    client.loop_stop()
    return received / max(end - start, 1e-9)


def _publish_all(url: str, count: int, batch: int, prefix: str) -> None:
    """Publish everything while the consumer is away; the broker queues it on its session."""
    publisher = _spawn_publisher(url, count, batch, 0, prefix)
    _wait_ready(publisher)
    _go(publisher)
    if publisher.wait() != 0:
        raise RuntimeError("bench publisher failed")


def _ingest_run(
    url: str, db: str, count: int, batch: int, rate: float, track: bool
) -> dict[str, Any]:
    from microfab.connect.mqtt_client import parse_broker_url
    from microfab.connect.mqtt_ingest import IngestWorker
    from microfab.store import open_store

    store = open_store(db)
    store.count()  # open the connection before any clock starts
    timed = _TimedStore(store, track)
    prefix = f"b{uuid.uuid4().hex[:8]}"
    worker = IngestWorker(
        timed,
        parse_broker_url(url),
        client_id=f"bench-ingest-{prefix}",
        shared=False,
        batch_size=5000,
    )
    if rate > 0:  # live: the worker is online while the publisher sends at ``rate``
        worker.start()
        publisher = _spawn_publisher(url, count, batch, rate, prefix)
        _wait_ready(publisher)
        start = time.perf_counter()
        _go(publisher)
    else:  # throughput: drain what the broker queued on the worker's session while it was away
        worker.start()
        worker.wait_subscribed()
        worker.stop()
        _publish_all(url, count, batch, prefix)
        worker = IngestWorker(
            timed,
            parse_broker_url(url),
            client_id=f"bench-ingest-{prefix}",
            shared=False,
            batch_size=5000,
        )
        start = time.perf_counter()
        worker.start()
    end = _wait_for(lambda: worker.stats.stored, count)
    elapsed = max(end - start, 1e-9)
    if rate > 0:
        publisher.wait()
    time.sleep(0.5)  # let any redelivered duplicate arrive before counting
    worker.stop()
    found = _count_ids(store, prefix, count)
    latencies = sorted((timed.committed[k] - timed.sent[k]) * 1000 for k in timed.committed)
    store.close()
    return {
        "events_per_s": found["stored"] / elapsed,
        **found,
        "p50_ms": statistics.median(latencies) if latencies else None,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] if latencies else None,
    }


def _worker_process(url: str, db: str, client_id: str) -> None:
    """One ingest process of ``microfab ingest --processes N`` (its worker, its own store
    connection, the shared subscription), started on "go" and stopped on "stop" (stdin)."""
    from microfab.commands.ingest import WorkerSpec, _worker
    from microfab.connect.mqtt_client import parse_broker_url
    from microfab.store import open_store

    # as the single-process runs: batches of 5,000, no clock judged
    spec = WorkerSpec(db=db, settings=parse_broker_url(url), batch_size=5000)
    with open_store(db, upgrade=False) as store:
        store.count()
        worker = _worker(spec, store, client_id)
        print("ready", flush=True)
        sys.stdin.readline()
        worker.start()
        worker.wait_subscribed()
        sys.stdin.readline()
        worker.stop()


def _spawn_workers(url: str, db: str, prefix: str, processes: int) -> list[subprocess.Popen[bytes]]:
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import ingest; "
        "ingest._worker_process(sys.argv[2], sys.argv[3], sys.argv[4])"
    )
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(Path(__file__).parent), url, db, f"{prefix}-w{k}"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        for k in range(processes)
    ]
    for worker in workers:
        _wait_ready(worker)
    return workers


def _tell(processes: list[subprocess.Popen[bytes]], word: str) -> None:
    for process in processes:
        assert process.stdin is not None
        process.stdin.write(word.encode() + b"\n")
        process.stdin.flush()


def _processes_run(url: str, db: str, count: int, batch: int, processes: int) -> dict[str, Any]:
    """Throughput of ``processes`` ingest processes on the shared subscription, each with its own
    store connection: their sessions are made, the events published while they are away (the
    broker queues them on the sessions, round robin), then all start at once; timed from "go"
    to the last commit, read from the store's newest sequence number."""
    from microfab.store import open_store

    store = open_store(db)
    prefix = f"p{uuid.uuid4().hex[:8]}"
    workers = _spawn_workers(url, db, prefix, processes)
    _tell(workers, "go")
    time.sleep(2.0)  # each has connected and subscribed (a persistent session each)
    _tell(workers, "stop")
    for worker in workers:
        worker.wait()
    _publish_all(url, count, batch, prefix)
    workers = _spawn_workers(url, db, prefix, processes)
    first = store.last_seq()
    start = time.perf_counter()
    _tell(workers, "go")
    end = _wait_for(lambda: store.last_seq() - first, count)
    elapsed = max(end - start, 1e-9)
    time.sleep(0.5)
    _tell(workers, "stop")
    for worker in workers:
        worker.wait()
    found = _count_ids(store, prefix, count)
    _end_sessions(url, store, [f"{prefix}-w{k}" for k in range(processes)])
    store.close()
    return {"events_per_s": found["stored"] / elapsed, **found}


def _end_sessions(url: str, store: Any, client_ids: list[str]) -> None:
    """End a run's sessions in the shared group, so that later runs get every message."""
    from microfab.connect.mqtt_client import parse_broker_url
    from microfab.connect.mqtt_ingest import IngestWorker

    for client_id in client_ids:
        IngestWorker(store, parse_broker_url(url), client_id=client_id).retire(idle_s=0.5)


def _count_ids(store: Any, prefix: str, count: int) -> dict[str, int]:
    """Stored, duplicated (counted by id) and lost events of one run."""
    from sqlalchemy import func, select

    from microfab.store.schema import events

    with store.engine.connect() as conn:
        ids = conn.execute(
            select(events.c.id, func.count())
            .where(events.c.id.like(f"{prefix}-%"))
            .group_by(events.c.id)
        ).all()
    stored_ids = {row[0] for row in ids}
    return {
        "stored": len(stored_ids),
        "duplicates": sum(row[1] - 1 for row in ids if row[1] > 1),
        "lost": sum(1 for i in range(count) if f"{prefix}-{i}" not in stored_ids),
    }


def run(
    repeat: int = 1,
    events: int = 50_000,
    broker: str | None = None,
    db: str | None = None,
) -> dict[str, Any]:
    folder = tempfile.mkdtemp(prefix="microfab-bench-db-")
    database = db or f"sqlite:///{folder}/ingest.db"
    with _private_mosquitto() if broker is None else _given(broker) as url:
        baseline = statistics.median(_baseline(url, events) for _ in range(repeat))
        single = [_ingest_run(url, database, events, 1, 0, False) for _ in range(repeat)]
        batched = [_ingest_run(url, database, events, 100, 0, False) for _ in range(repeat)]
        single2 = [_processes_run(url, database, events, 1, 2) for _ in range(repeat)]
        batched2 = [_processes_run(url, database, events, 100, 2) for _ in range(repeat)]
        latency_events = min(events, 25_000)
        latency = _ingest_run(url, database, latency_events, 1, 5000.0, True)
    shutil.rmtree(folder, ignore_errors=True)
    events_per_s = statistics.median(r["events_per_s"] for r in single)
    runs = single + batched + single2 + batched2
    return {
        "events": events,
        "repeat": repeat,
        "broker": "private Mosquitto " + _mosquitto_version() if broker is None else _mask(broker),
        "db": "temporary SQLite file" if db is None else _mask(db),
        "backend": "postgresql" if database.startswith("postgresql") else "sqlite",
        "events_per_s": round(events_per_s),
        "batched_events_per_s": round(statistics.median(r["events_per_s"] for r in batched)),
        "baseline_events_per_s": round(baseline),
        "ratio": round(events_per_s / baseline, 3),
        "events_per_s_2": round(statistics.median(r["events_per_s"] for r in single2)),
        "batched_events_per_s_2": round(statistics.median(r["events_per_s"] for r in batched2)),
        "ratio_2": round(statistics.median(r["events_per_s"] for r in single2) / baseline, 3),
        "p50_ms": round(latency["p50_ms"], 1) if latency["p50_ms"] is not None else None,
        "p99_ms": round(latency["p99_ms"], 1) if latency["p99_ms"] is not None else None,
        "latency_offered_events_per_s": 5000,
        "stored": sum(r["stored"] for r in runs) + latency["stored"],
        "duplicates": sum(r["duplicates"] for r in runs) + latency["duplicates"],
        "lost": sum(r["lost"] for r in runs) + latency["lost"],
    }


@contextmanager
def _given(url: str) -> Iterator[str]:
    yield url


def _mask(url: str) -> str:
    from microfab.store.url import mask_url

    return mask_url(url) if "://" in url else url


def _mosquitto_version() -> str:
    try:
        text = subprocess.run(
            [shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-h"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        return text.splitlines()[0].split("version")[-1].strip()
    except (OSError, IndexError):
        return ""


BEFORE: dict[str, dict[str, Any]] = {
    "postgresql": {
        "events_per_s": 7901,
        "batched_events_per_s": 26147,
        "baseline_events_per_s": 16425,
        "ratio": 0.481,
        "p50_ms": 46.6,
        "p99_ms": 109.7,
    },
    "sqlite": {
        "events_per_s": 6729,
        "batched_events_per_s": 19328,
        "baseline_events_per_s": 15947,
        "ratio": 0.422,
        "p50_ms": 19.3,
        "p99_ms": 267.3,
    },
}
"""Per back end, this bench's figures for the code before issue 23's ingest work (commit
ee3d6c0), measured on the same machine in the same session as the run recorded here (see
:data:`BEFORE_NOTE`); shown beside each new run."""

BEFORE_NOTE = (
    "this bench as it was at commit ee3d6c0, before issue 23's ingest work (one process; no "
    "msgspec, pydantic's serializer for every export dict), on the same machine and store, run "
    "2026-12-07 14:54–14:57 UTC, minutes before the run above; its own baselines were "
    f"{BEFORE['postgresql']['baseline_events_per_s']:,} (PostgreSQL run) and "
    f"{BEFORE['sqlite']['baseline_events_per_s']:,} (SQLite run) events/s."
)


def section(result: dict[str, Any]) -> tuple[str, str]:
    """The docs section of a run: one per back end."""
    if result["backend"] == "postgresql":
        return NAME, TITLE
    return f"{NAME}_sqlite", TITLE + " (SQLite)"


def _before(key: str, result: dict[str, Any]) -> str:
    value = BEFORE.get(result["backend"], {}).get(key)
    if value is None:
        return "–"
    if key.endswith("_ms"):
        return f"{value} ms"
    return f"{value:,}" if isinstance(value, int) else str(value)


def markdown(result: dict[str, Any]) -> str:
    r = result
    return "\n".join(
        [
            f"{r['events']:,} telemetry events per run, broker: {r['broker']}, store: {r['db']}; "
            f"publisher in its own process; medians of {r['repeat']} run(s), all in one session.",
            "",
            "| measure | this run | before |",
            "|---|---:|---:|",
            f"| single-event messages, 1 ingest process: events/s stored | {r['events_per_s']:,} | {_before('events_per_s', r)} |",
            f"| same, 2 ingest processes (shared subscription) | {r['events_per_s_2']:,} | – |",
            f"| batched (arrays of 100), 1 process: events/s stored | {r['batched_events_per_s']:,} | {_before('batched_events_per_s', r)} |",
            f"| same, 2 processes | {r['batched_events_per_s_2']:,} | – |",
            f"| baseline: do-nothing paho QoS 1 subscriber, events/s | {r['baseline_events_per_s']:,} | {_before('baseline_events_per_s', r)} |",
            f"| ratio single / baseline, 1 process | {r['ratio']} | {_before('ratio', r)} |",
            f"| same, 2 processes | {r['ratio_2']} | – |",
            f"| latency publish → committed at {r['latency_offered_events_per_s']:,} events/s offered, p50 | {r['p50_ms']} ms | {_before('p50_ms', r)} |",
            f"| same, p99 | {r['p99_ms']} ms | {_before('p99_ms', r)} |",
            f"| stored / duplicates / lost | {r['stored']:,} / {r['duplicates']} / {r['lost']} | |",
            "",
            f"*Before*: {BEFORE_NOTE}",
            *(
                [
                    "",
                    f"The broker dropped {r['lost']:,} events it would not queue for a session "
                    "that was away: raise its `max_queued_messages` (a stock Mosquitto keeps "
                    "1,000) to measure without loss.",
                ]
                if r["lost"]
                else []
            ),
        ]
    )


if __name__ == "__main__":  # pragma: no cover
    print(json.dumps(run(events=int(os.environ.get("EVENTS", "20000"))), indent=2))
