"""Benchmark: N sites × M machines uplinking into one HQ PostgreSQL through Mosquitto.

Run with ``microfab bench hq [--sites N] [--machines M] [--events N] [--db URL] [--broker URL]``.

Each site is a SQLite store of its own with its factory model; HQ is one PostgreSQL database with
every site registered (the group model) and two ingest workers on the MQTT 5 shared
subscription; between them one Mosquitto (a private one on a free port unless ``--broker``) and
one :class:`~microfab.connect.uplink.Uplink` per site (threads of this process, as N
``microfab uplink`` processes would be on N machines).

- **sustained**: the sites produce at a fixed offered rate (counts and state changes, all
  machines evenly) for a while (what their stores achieved is reported: the sites' own appends
  share this machine); how long after they stop HQ holds everything, and the *uplink lag* of
  every event: the
  time from its commit in the site store to its commit at HQ (``ingest_ts`` there minus
  ``ingest_ts`` here; one clock, one machine), p50 and p99.
- **catch-up**: a backlog of ``--events`` per site is stored while the uplinks are stopped (a
  cut link), then they start: events/s until HQ holds everything — the most the chain carries.
- **roll-up**: the HQ page's figures for the group (every site's OEE today, output, late orders,
  alerts, energy and kgCO2e) and one site's, timed over the stored data (medians).

Exactly-once is checked as the fault test does: HQ holds the union of the sites' ids, none twice.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

NAME = "hq"
TITLE = "HQ over several sites: uplink → Mosquitto → ingest → PostgreSQL"
PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/postgres"

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the other benchmarks, as modules
from ingest import _given, _private_mosquitto  # noqa: E402  (the same private broker)


@contextmanager
def _hq_database(db: str | None) -> Iterator[str]:
    """The HQ database: ``db`` as given, or a new database on the local PostgreSQL, dropped after."""
    if db is not None:
        yield db
        return
    import psycopg
    from psycopg import sql
    from sqlalchemy.engine import make_url

    base = os.environ.get("MICROFAB_BENCH_PG", PG_DEFAULT)
    name = f"microfab_bench_hq_{uuid.uuid4().hex[:10]}"
    plain = make_url(base).set(drivername="postgresql")
    with psycopg.connect(plain.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield plain.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(plain.render_as_string(hide_password=False), autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def _site_factory(site: str, machines: int) -> Any:
    from microfab.model.factory import Factory

    cells = [
        {
            "id": f"cell{c}",
            "machines": [
                {"id": f"{site}-m{c * 10 + k}", "kind": "cnc", "ideal_cycle_s": 5.0}
                for k in range(min(10, machines - c * 10))
            ],
        }
        for c in range((machines + 9) // 10)
    ]
    return Factory.model_validate(
        {
            "company": {"name": "Bench Group Ltd"},
            "sites": [
                {
                    "id": site,
                    "timezone": "Asia/Hong_Kong" if site.endswith("0") else "Asia/Shanghai",
                    "holidays": None,
                    "areas": [
                        {
                            "id": "plant",
                            "lines": [{"id": "line1", "calendar": "all-day", "cells": cells}],
                        }
                    ],
                }
            ],
            "calendars": [
                {
                    "id": "all-day",
                    "public_holidays_off": False,
                    "shifts": [
                        {
                            "name": "day",
                            "start": "00:00",
                            "end": "24:00",
                            "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                        }
                    ],
                }
            ],
        }
    )


def _events(site: str, paths: list[str], n: int, start: int) -> list[Any]:
    from microfab.model.events import PartCount, StateChange

    now = dt.datetime.now(dt.UTC)
    now = now.replace(microsecond=now.microsecond // 1000 * 1000)
    out: list[Any] = []
    for i in range(start, start + n):
        machine = paths[i % len(paths)]
        if i % 20 < len(paths) and i % 200 < 20:
            out.append(
                StateChange(
                    id=f"{site}-{uuid.uuid4().hex}",
                    ts=now,
                    machine=machine,
                    state=("running", "idle")[(i // 200) % 2],
                )
            )
        else:
            out.append(PartCount(id=f"{site}-{uuid.uuid4().hex}", ts=now, machine=machine, good=1))
    return out


def _wait(condition: Callable[[], bool], limit_s: float) -> None:
    deadline = time.monotonic() + limit_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.1)


def _ingest_times(store: Any) -> dict[str, float]:
    return {s.event.id: s.ingest_ts.timestamp() for s in store.events(by="seq")}


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(
    repeat: int = 3,
    events: int = 2000,
    sites: int = 5,
    machines: int = 20,
    rate: float = 500.0,
    seconds: float = 20.0,
    broker: str | None = None,
    db: str | None = None,
) -> dict[str, Any]:
    from microfab.connect.mqtt_client import parse_broker_url
    from microfab.connect.mqtt_ingest import IngestWorker
    from microfab.connect.uplink import Uplink
    from microfab.hq.registry import merge_site
    from microfab.hq.rollup import group_figures, site_figures
    from microfab.store import open_store
    from microfab.store.uplink import UplinkLog

    folder = Path(tempfile.mkdtemp(prefix="microfab-bench-hq-"))
    ids = [f"s{n}" for n in range(sites)]
    load = os.getloadavg()[0]
    with (
        _private_mosquitto() if broker is None else _given(broker) as url,
        _hq_database(db) as hq_url,
    ):
        settings = parse_broker_url(url)
        stores = {s: open_store(f"sqlite:///{folder}/{s}.db") for s in ids}
        hq = open_store(hq_url)
        group = None
        paths: dict[str, list[str]] = {}
        for s in ids:
            model = _site_factory(s, machines)
            stores[s].apply_factory(model, "bench")
            group = merge_site(group, model)
            paths[s] = [ref.path for ref in model.machines()]
        assert group is not None
        hq.apply_factory(group, "bench")
        workers = [
            IngestWorker(
                hq, settings, known_sites=set(ids), client_id=f"bench-hq-{n}-{uuid.uuid4().hex[:6]}"
            )
            for n in range(2)
        ]
        for worker in workers:
            worker.start()
            worker.wait_subscribed()
        stop = threading.Event()
        uplinks = {
            s: Uplink(UplinkLog(stores[s], f"{s}@bench", s), settings, site=s, window=1000)
            for s in ids
        }
        threads = [
            threading.Thread(target=u.run, args=(stop,), daemon=True) for u in uplinks.values()
        ]
        try:
            for thread in threads:
                thread.start()
            # ---- sustained: a fixed offered rate for `seconds`
            per_tick = max(1, round(rate * 0.1 / sites))
            produced = {s: 0 for s in ids}
            began = time.perf_counter()
            while time.perf_counter() - began < seconds:
                tick = time.perf_counter()
                for s in ids:
                    stores[s].append(_events(s, paths[s], per_tick, produced[s]))
                    produced[s] += per_tick
                time.sleep(max(0.0, 0.1 - (time.perf_counter() - tick)))
            offered_s = time.perf_counter() - began
            total = sum(produced.values())
            _wait(lambda: hq.count() >= total, 300)
            sustained_s = time.perf_counter() - began
            at_hq = _ingest_times(hq)
            lags = [
                at_hq[i] - t for s in ids for i, t in _ingest_times(stores[s]).items() if i in at_hq
            ]
            # ---- catch-up: a backlog stored while the uplinks are stopped, then drained
            stop.set()
            for thread in threads:
                thread.join()
            before = hq.count()
            for s in ids:
                for start in range(0, events, 1000):
                    stores[s].append(_events(s, paths[s], min(1000, events - start), produced[s]))
                    produced[s] += min(1000, events - start)
            stop = threading.Event()
            uplinks = {
                s: Uplink(UplinkLog(stores[s], f"{s}@bench", s), settings, site=s, window=1000)
                for s in ids
            }
            threads = [
                threading.Thread(target=u.run, args=(stop,), daemon=True) for u in uplinks.values()
            ]
            began = time.perf_counter()
            for thread in threads:
                thread.start()
            target = before + events * sites
            _wait(lambda: hq.count() >= target, 600)
            drain_s = time.perf_counter() - began
            # ---- exactly once
            site_ids = {e for s in ids for e in _ingest_times(stores[s])}
            hq_ids = list(_ingest_times(hq))
            duplicates = len(hq_ids) - len(set(hq_ids))
            lost = len(site_ids - set(hq_ids))
            # ---- roll-up query times
            factory = hq.factory()[1]  # type: ignore[index]
            group_s = []
            site_s = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                figures = group_figures(hq, factory)
                group_s.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                site_figures(hq, factory, ids[0])
                site_s.append(time.perf_counter() - t0)
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=30)
            for worker in workers:
                worker.stop()
            for store in [*stores.values(), hq]:
                store.close()
            shutil.rmtree(folder, ignore_errors=True)
    return {
        "sites": sites,
        "machines": machines,
        "offered_events_per_s": rate,
        "offered_s": round(offered_s, 1),
        "sustained_events": total,
        "produced_events_per_s": round(total / offered_s),
        "hq_done_after_s": round(sustained_s - offered_s, 1),
        "lag_p50_ms": round(1000 * (_percentile(lags, 0.5) or 0), 1),
        "lag_p99_ms": round(1000 * (_percentile(lags, 0.99) or 0), 1),
        "backlog_per_site": events,
        "catch_up_events_per_s": round(events * sites / drain_s),
        "group_rollup_ms": round(1000 * statistics.median(group_s), 1),
        "site_rollup_ms": round(1000 * statistics.median(site_s), 1),
        "group_good": figures.good,
        "stored": len(hq_ids),
        "duplicates": duplicates,
        "lost": lost,
        "repeat": repeat,
        "load": round(load, 1),
        "broker": "private Mosquitto" if broker is None else "given broker",
        "db": "temporary PostgreSQL database" if db is None else "given database",
    }


def markdown(result: dict[str, Any]) -> str:
    r = result
    return "\n".join(
        [
            f"{r['sites']} sites × {r['machines']} machines (SQLite site stores), one HQ "
            f"PostgreSQL ({r['db']}), {r['broker']}, two ingest workers on the shared "
            f"subscription, one uplink per site; all on this one machine (load average "
            f"{r['load']} at the start).",
            "",
            "| measure | value |",
            "|---|---:|",
            f"| sustained: events/s the sites stored (aiming at {r['offered_events_per_s']:,.0f}) for {r['offered_s']} s, all forwarded | {r['produced_events_per_s']:,} |",
            f"| HQ held all of them this long after the sites stopped | {r['hq_done_after_s']:,} s |",
            f"| uplink lag (site commit → HQ commit), p50 | {r['lag_p50_ms']:,} ms |",
            f"| same, p99 | {r['lag_p99_ms']:,} ms |",
            f"| catch-up after a cut link ({r['backlog_per_site']:,} events per site waiting), events/s | {r['catch_up_events_per_s']:,} |",
            f"| roll-up of the group (HQ page), median of {r['repeat']} | {r['group_rollup_ms']:,} ms |",
            f"| roll-up of one site, median | {r['site_rollup_ms']:,} ms |",
            f"| stored at HQ / duplicates / lost | {r['stored']:,} / {r['duplicates']} / {r['lost']} |",
        ]
    )
