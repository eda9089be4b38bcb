"""`microfab demo` over MQTT and `microfab sim --broker`: the command-line wiring of the embedded
broker, the store-and-forward publisher, its spool and the ingest worker. The parts themselves are
tested in test_mqtt_publish.py and test_ingest.py; nothing here measures speed."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from typer.testing import CliRunner, Result

from microfab.cli import app
from microfab.connect.mqtt_client import parse_broker_url
from microfab.connect.mqtt_ingest import IngestWorker
from microfab.connect.spool import Spool
from microfab.store import EventStore, open_store
from services import MosquittoServer, free_port

runner = CliRunner()

DEADLINE_S = 20.0
DEMO_1H = ["--scenario", "food-line", "--speed", "max", "--duration", "1h", "--seed", "4"]


def invoke(*args: str) -> Result:
    """Run a command in-process; it must succeed."""
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, (
        f"microfab {' '.join(args)} exited {result.exit_code}\n"
        f"stdout: {result.stdout}\nstderr: {result.stderr}\nexception: {result.exception!r}"
    )
    return result


def run_microfab(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the real entry point in a process of its own."""
    return subprocess.run(
        [sys.executable, "-m", "microfab.cli", *args],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MICROFAB_")}
    env["COLUMNS"] = "80"
    return env


def flat(text: str) -> str:
    return " ".join(text.split())


def sqlite(path: Path) -> str:
    return f"sqlite:///{path}"


def export(db: str) -> str:
    return invoke("events", "export", "--db", db).stdout


def ids_of(jsonl: str) -> list[str]:
    return re.findall(r'^\{"id":"([^"]+)"', jsonl, re.MULTILINE)


def number(pattern: str, text: str) -> int:
    found = re.search(pattern, flat(text))
    assert found, f"no match for {pattern!r} in:\n{text}"
    return int(found.group(1).replace(",", ""))


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {DEADLINE_S:g} s waiting for {what}")
        time.sleep(0.05)


@contextmanager
def ingest_worker(store: EventStore, url: str) -> Iterator[IngestWorker]:
    """An MQTT 5 ingest worker on ``url``, subscribed before the block runs."""
    worker = IngestWorker(
        store, parse_broker_url(url), shared=False, client_id=f"test-{uuid.uuid4().hex[:8]}"
    )
    worker.start()
    try:
        assert worker.wait_subscribed(DEADLINE_S), "the ingest worker got no SUBACK"
        yield worker
    finally:
        worker.stop()


# ---------------------------------------------------------------------------- demo


def test_demo_over_the_embedded_broker_stores_exactly_what_a_direct_run_stores(
    db_url: str, tmp_path: Path
) -> None:
    over_mqtt = invoke("demo", *DEMO_1H, "--no-web", "--db", db_url).stdout
    published = number(
        r"MQTT: ([\d,]+) events published to mqtt://127\.0\.0\.1:\d+ \(embedded broker\)",
        over_mqtt,
    )
    assert number(r"events published to \S+ \(embedded broker\), ([\d,]+) ingested", over_mqtt) == (
        published
    )
    assert number(r"ingested, ([\d,]+) dead letters", over_mqtt) == 0
    assert invoke("deadletters", "export", "--db", db_url).stdout == ""

    direct_db = sqlite(tmp_path / "direct.db")
    direct = invoke("demo", *DEMO_1H, "--no-web", "--direct", "--db", direct_db).stdout
    assert "MQTT" not in direct and "finished" in direct

    stored = export(db_url)
    assert stored == export(direct_db)  # same ids, same content, same order
    assert len(ids_of(stored)) == published > 1000


def test_ctrl_c_stops_the_demo_after_the_store_has_every_published_event(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    demo = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "microfab.cli",
            "demo",
            "--speed",
            "3600",
            "--no-web",
            "--db",
            sqlite(db),
        ],
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A shell without job control starts background jobs with SIGINT ignored; undo that.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:

        def some_stored() -> bool:
            try:
                with sqlite3.connect(db) as conn:
                    return int(conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]) > 0
            except sqlite3.Error:  # not created yet
                return False

        wait_until(some_stored, "the first stored events")
        demo.send_signal(signal.SIGINT)
        out, err = demo.communicate(timeout=60)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    assert demo.returncode == 0, err
    assert "Traceback" not in out + err, err
    assert "stopped:" in out
    published = number(r"MQTT: ([\d,]+) events published", out)
    assert number(r"events published to \S+ \(embedded broker\), ([\d,]+) ingested", out) == (
        published
    )
    ids = ids_of(export(sqlite(db)))
    # The simulator numbers its events in the order it publishes them: the store holds exactly
    # the first ``published`` of them.
    assert sorted(int(i.rsplit("-", 1)[1]) for i in ids) == list(range(1, published + 1))


# ---------------------------------------------------------------------------- sim --broker


def test_sim_publishes_to_mosquitto_and_the_ingest_worker_stores_every_event(
    mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    args = ["--scenario", "moulding-cell", "--duration", "1h", "--seed", "2"]
    expected = tmp_path / "expected.jsonl"
    invoke("sim", *args, "--jsonl", str(expected))
    n = len(ids_of(expected.read_text(encoding="utf-8")))
    spool = tmp_path / "spool.db"
    db = sqlite(tmp_path / "plant.db")
    with open_store(db) as store, ingest_worker(store, mosquitto.url) as worker:
        result = invoke(
            "sim", *args, "--broker", mosquitto.url, "--spool", str(spool), "--batch", "20"
        )
        wait_until(lambda: worker.stats.stored >= n, f"{n} stored events")
        assert worker.stats.dead_letters == 0
    summary = flat(result.stderr)
    messages = number(rf"published {n:,} events to \S+ in ([\d,]+) messages", summary)
    assert messages < n  # --batch 20 groups runs of one topic
    assert f"the broker acknowledged all {messages:,} messages" in summary
    assert f"the spool {spool} is empty" in summary
    assert export(db) == expected.read_text(encoding="utf-8")


def test_sim_spools_while_the_broker_is_down_and_the_next_run_sends_the_spool_first(
    tmp_path: Path,
) -> None:
    port = free_port()  # nothing listens there yet
    url = f"mqtt://127.0.0.1:{port}"
    spool = tmp_path / "outbox" / "spool.db"
    first = ["--duration", "30m", "--seed", "1"]
    second = ["--duration", "30m", "--seed", "2"]
    first_ids = ids_of(invoke("sim", *first, "--jsonl", "-").stdout)
    second_ids = ids_of(invoke("sim", *second, "--jsonl", "-").stdout)

    down = run_microfab("sim", *first, "--broker", url, "--spool", str(spool), cwd=tmp_path)
    assert down.returncode == 0, down.stderr
    assert "Traceback" not in down.stderr, down.stderr
    assert down.stderr.count(f"cannot reach the MQTT broker at {url}") == 1, down.stderr
    n1 = len(first_ids)
    assert f"{n1:,} wait in the spool {spool}" in flat(down.stderr)
    with Spool(spool) as outbox:
        assert len(outbox) == n1

    server = MosquittoServer(port=port)
    server.start()
    try:
        db = sqlite(tmp_path / "plant.db")
        with open_store(db) as store:
            with ingest_worker(store, url) as worker:
                again = invoke("sim", *second, "--broker", url, "--spool", str(spool))
                total = n1 + len(second_ids)
                wait_until(lambda: worker.stats.stored >= total, f"{total} stored events")
            in_arrival_order = [stored.event.id for stored in store.events(by="seq")]
    finally:
        server.cleanup()
    assert in_arrival_order == first_ids + second_ids
    summary = flat(again.stderr)
    assert f"{n1:,} messages from an earlier run wait in the spool" in summary
    assert f"the broker acknowledged all {total:,} messages (with {n1:,} spooled" in summary
    with Spool(spool) as outbox:
        assert len(outbox) == 0


def test_sim_refused_by_the_broker_spools_and_says_so_once(tmp_path: Path) -> None:
    server = MosquittoServer()
    server.config.write_text(
        server.config.read_text().replace("allow_anonymous true", "allow_anonymous false")
    )
    server.start()
    try:
        url = f"mqtt://127.0.0.1:{server.port}"
        proc = run_microfab(
            "sim", "--duration", "20m", "--broker", url, "--username", "plant",
            "--password", "wrong", "--spool", str(tmp_path / "spool.db"),
            cwd=tmp_path,
        )  # fmt: skip
    finally:
        server.cleanup()
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "wrong" not in proc.stderr  # the password is masked
    assert proc.stderr.count("refused us: Not authorized") == 1, proc.stderr
    published = number(r"published ([\d,]+) events", proc.stderr)
    assert f"{published:,} wait in the spool" in flat(proc.stderr)


def test_ingest_refused_by_the_broker_is_one_sentence_and_exit_1(tmp_path: Path) -> None:
    server = MosquittoServer()
    server.config.write_text(
        server.config.read_text().replace("allow_anonymous true", "allow_anonymous false")
    )
    server.start()
    try:
        proc = run_microfab(
            "ingest", "--broker", f"mqtt://plant:wrong@127.0.0.1:{server.port}",
            "--db", f"sqlite:///{tmp_path}/ingest.db",
            cwd=tmp_path,
        )  # fmt: skip
    finally:
        server.cleanup()
    assert_one_error(proc, "refused")
    assert "wrong" not in proc.stderr


def test_ingest_with_an_untrusted_broker_certificate_is_one_sentence_and_exit_1(
    tmp_path: Path,
) -> None:
    server = MosquittoServer()  # its folder is readable by the user Mosquitto drops to
    key, cert = server.dir / "broker.key", server.dir / "broker.crt"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    for path in (key, cert):
        path.chmod(0o644)
    server.config.write_text(server.config.read_text() + f"certfile {cert}\nkeyfile {key}\n")
    server.start()
    try:
        proc = run_microfab(
            "ingest", "--broker", f"mqtts://127.0.0.1:{server.port}",
            "--db", f"sqlite:///{tmp_path}/ingest.db",
            cwd=tmp_path,
        )  # fmt: skip
    finally:
        server.cleanup()
    assert_one_error(proc, "TLS with the broker")


def assert_one_error(proc: subprocess.CompletedProcess[str], expected: str) -> None:
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and expected in errors[0], proc.stderr
