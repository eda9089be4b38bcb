"""Two sites uplinking to one HQ through faults: the link cut while both sites produce, an uplink
killed with -9, one of HQ's ingest workers restarted. HQ ends with exactly the union of the sites'
events (same ids, none twice) and the same OEE per site as each site computes for itself."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import DATA, pg_create_database, pg_drop_database
from microfab.cli import app
from microfab.connect.mqtt_client import parse_broker_url
from microfab.connect.mqtt_ingest import IngestWorker
from microfab.model.clock_policy import ClockPolicy
from microfab.model.events import Event, PartCount, StateChange
from microfab.store import EventStore, open_store
from microfab.store.hq import HqIngestTarget, uplink_reports
from services import MosquittoServer

runner = CliRunner()

SITES = {
    "hk1": ("Asia/Hong_Kong", "HK", "HKD", None),
    "gd1": ("Asia/Shanghai", "CN-GD", "CNY", "electricity/cn-south"),
}


def site_factory(site: str) -> str:
    """The small test factory as site ``site``: its own machine ids, a round-the-clock calendar."""
    zone, holidays, currency, grid = SITES[site]
    text = (DATA / "factory-small.yaml").read_text(encoding="utf-8")
    text = text.replace("id: kt\n", f"id: {site}\n").replace(
        "timezone: Asia/Hong_Kong", f"timezone: {zone}"
    )
    text = text.replace(
        "    electricity_supplier: clp\n",
        f"    electricity_supplier: clp\n    holidays: {holidays}\n    currency: {currency}\n"
        + (f"    grid_factor: {grid}\n" if grid else ""),
    )
    for machine in ("cnc-1", "robot-1", "cnc-2", "meter-1"):
        text = text.replace(f"{{id: {machine},", f"{{id: {site}-{machine},")
        text = text.replace(f"{machine}: ", f"{site}-{machine}: ")
    text = text.replace(
        'start: "08:00"\n        end: "16:00"', 'start: "00:00"\n        end: "24:00"'
    )
    text = text.replace(
        "days: [mon, tue, wed, thu, fri]", "days: [mon, tue, wed, thu, fri, sat, sun]"
    )
    text = text.replace(
        '        breaks:\n          - {name: lunch, start: "12:00", end: "12:30"}\n', ""
    )
    text = text.replace(
        "calendars:\n  - id: day-shift\n",
        "calendars:\n  - id: day-shift\n    public_holidays_off: false\n",
    )
    return text.replace("products:\n  - sku: BRKT-1", f"products:\n  - sku: BRKT-{site}")


def machines(site: str) -> list[str]:
    return [
        f"{site}/plant/line1/machining/{site}-cnc-1",
        f"{site}/plant/line1/utility/{site}-cnc-2",
    ]


class Producer(threading.Thread):
    """A site's plant: state changes and counts appended to the site store as they happen."""

    def __init__(self, store: EventStore, site: str) -> None:
        super().__init__(daemon=True)
        self.store, self.site = store, site
        self.stop = threading.Event()
        self.n = 0

    def run(self) -> None:
        paths = machines(self.site)
        while not self.stop.is_set():
            now = dt.datetime.now(dt.UTC)
            now = now.replace(microsecond=now.microsecond // 1000 * 1000)
            batch: list[Event] = []
            for machine in paths:
                if self.n % 10 == 0:
                    state = ("running", "unplanned_stop", "running", "idle")[(self.n // 10) % 4]
                    batch.append(
                        StateChange(
                            id=f"{self.site}-{uuid.uuid4().hex}",
                            ts=now,
                            machine=machine,
                            state=state,
                            reason="UB-MECH" if state == "unplanned_stop" else None,
                        )
                    )
                batch.append(
                    PartCount(
                        id=f"{self.site}-{uuid.uuid4().hex}",
                        ts=now,
                        machine=machine,
                        good=1 + self.n % 3,
                        scrap=self.n % 7 == 0,
                    )
                )
            self.store.append(batch)
            self.n += 1
            self.stop.wait(0.03)


def cli(*args: str, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k not in ("MICROFAB_DB", "MICROFAB_BROKER")}
    with log.open("ab") as handle:
        return subprocess.Popen(
            [sys.executable, "-m", "microfab.cli", *args],
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )


def hq_worker(hq: EventStore, broker: str, client_id: str) -> IngestWorker:
    """One of HQ's ingest workers, as ``microfab ingest --hq`` runs it (shared subscription,
    persistent session, the registered sites known)."""
    found = hq.factory()
    assert found is not None
    worker = IngestWorker(
        HqIngestTarget(hq),
        parse_broker_url(broker),
        known_machines={ref.path for ref in found[1].machines()},
        known_sites={site.id for site in found[1].sites},
        client_id=client_id,
        batch_size=100,
        clock_policy=ClockPolicy.from_options("5m", "30d"),
    )
    worker.start()
    assert worker.wait_subscribed()
    return worker


def ids(store: EventStore, prefix: str | None = None) -> list[str]:
    return [s.event.id for s in store.events(by="seq", machine_prefix=prefix)]


def wait_until(condition: Callable[[], bool], timeout_s: float = 45.0) -> None:
    """Poll ``condition`` until it holds (processes start slowly on a loaded machine)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def hq_has(hq: EventStore, site: str) -> bool:
    return next(iter(hq.events(by="seq", machine_prefix=f"{site}/", limit=1)), None) is not None


@pytest.fixture
def hq_db(pg_template: str) -> Iterator[str]:
    url = pg_create_database(template=pg_template)
    try:
        yield url
    finally:
        pg_drop_database(url)


@pytest.mark.postgres
def test_two_sites_through_faults_reach_hq_exactly_once(
    tmp_path: Path, mosquitto: MosquittoServer, hq_db: str, sqlite_template: Path
) -> None:
    site_db = {site: f"sqlite:///{tmp_path}/{site}.db" for site in SITES}
    for site in SITES:
        shutil.copyfile(sqlite_template, tmp_path / f"{site}.db")
    logs = tmp_path / "logs"
    logs.mkdir()
    broker = mosquitto.url
    uplink_args = {
        site: (
            "uplink",
            "--db",
            site_db[site],
            "--broker",
            broker,
            "--site",
            site,
            "--window",
            "100",
            "--status-every",
            "0.5",
        )
        for site in SITES
    }
    # one uplink process per site (started first: a process takes a while to start) ...
    uplinks = {site: cli(*uplink_args[site], log=logs / f"{site}.log") for site in SITES}
    stores: dict[str, EventStore] = {}
    workers: list[IngestWorker] = []
    producers: dict[str, Producer] = {}
    hq = open_store(hq_db)
    try:
        for site in SITES:
            path = tmp_path / f"{site}.yaml"
            path.write_text(site_factory(site), encoding="utf-8")
            applied = runner.invoke(app, ["factory", "apply", str(path), "--db", site_db[site]])
            assert applied.exit_code == 0, applied.output
            registered = runner.invoke(app, ["hq", "register", str(path), "--db", hq_db])
            assert registered.exit_code == 0, registered.output
        assert "sites hk1, gd1" in registered.output
        # ... HQ: two ingest workers on the shared subscription
        workers += [hq_worker(hq, broker, "hq-1"), hq_worker(hq, broker, "hq-2")]
        stores.update({site: open_store(site_db[site]) for site in SITES})
        producers.update({site: Producer(stores[site], site) for site in SITES})
        for producer in producers.values():
            producer.start()
        wait_until(lambda: all(hq_has(hq, site) for site in SITES))
        uplinks["hk1"].kill()  # kill -9 of one uplink, started again
        uplinks["hk1"].wait()
        uplinks["hk1"] = cli(*uplink_args["hk1"], log=logs / "hk1-again.log")
        mosquitto.stop()  # the link to HQ is cut while both sites produce
        time.sleep(1.5)
        mosquitto.start()
        workers[0].stop()  # one of HQ's ingest workers restarted (its session stays)
        workers[0] = hq_worker(hq, broker, "hq-1")
        wait_until(lambda: "[up]" in (logs / "hk1-again.log").read_text())
        for producer in producers.values():
            producer.stop.set()
            producer.join()
        expected = {site: ids(stores[site]) for site in SITES}
        assert all(len(v) > 100 for v in expected.values()), {
            k: len(v) for k, v in expected.items()
        }
        union = set(expected["hk1"]) | set(expected["gd1"])
        wait_until(lambda: hq.count() >= len(union), timeout_s=60)
        time.sleep(0.5)  # anything doubled would land now
        at_hq = ids(hq)
        assert hq.dead_letter_count() == 0, [d.reason for d in hq.dead_letters(limit=3)]
        assert len(at_hq) == len(set(at_hq)), "an event is stored twice at HQ"
        assert set(at_hq) == union
        assert set(uplink_reports(hq)) == set(SITES)  # each uplink told HQ its lag
    finally:
        for producer in producers.values():
            producer.stop.set()
        for proc in uplinks.values():
            proc.kill()
            proc.wait()
        for worker in workers:
            worker.stop()
        for store in [*stores.values(), hq]:
            store.close()
    for site in SITES:
        at_site = runner.invoke(app, ["oee", "--db", site_db[site], "--json"])
        at_hq = runner.invoke(app, ["oee", "--db", hq_db, "--site", site, "--json"])
        assert at_site.exit_code == 0 and at_hq.exit_code == 0, at_site.output + at_hq.output
        rows = json.loads(at_site.stdout)
        assert rows and rows[0]["total"] > 0
        assert json.loads(at_hq.stdout) == rows
