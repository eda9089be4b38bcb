"""Several writers at once on PostgreSQL (separate ingest workers, each with its own store): the
production read models the projector keeps while they append equal a fresh rebuild exactly, so
no event is ever passed over by the checkpoint (docs/production.md, "Several writers")."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest
from sqlalchemy import text

from conftest import DATA
from microfab.model.events import EVENT_ADAPTER, Event
from microfab.model.factory_file import parse_factory
from microfab.store import EventStore, open_store
from microfab.store.production_views import catch_up, rebuild, view_lag
from microfab.store.view_follower import ViewFollower

pytestmark = pytest.mark.postgres

WRITERS = 4
BATCHES = 40
START = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
MACHINES = [
    "kt/plant/line1/machining/cnc-1",
    "kt/plant/line1/machining/robot-1",
    "kt/plant/line1/utility/cnc-2",
]


def writer_events(writer: int, batch: int) -> list[Event]:
    """One writer's batch: counts, a state change, a meter reading and material, spread over
    the day."""
    events: list[dict[str, Any]] = []
    for n in range(5):
        minute = (batch * 7 + n * 3 + writer * 11) % 600
        machine = MACHINES[(writer + n) % len(MACHINES)]
        ts = START + dt.timedelta(minutes=minute, seconds=writer)
        events.append(
            {
                "id": f"w{writer}-b{batch}-c{n}",
                "ts": ts,
                "machine": machine,
                "stream": "count",
                "order": f"WO-{writer}",
                "operation": 10 + 10 * (n % 2),
                "good": 1 + n,
                "scrap": n % 2,
            }
        )
    events.append(
        {
            "id": f"w{writer}-b{batch}-s",
            "ts": START + dt.timedelta(minutes=batch * 13 + writer, seconds=writer),
            "machine": MACHINES[writer % len(MACHINES)],
            "stream": "state",
            "state": ("running", "idle", "unplanned_stop")[(batch + writer) % 3],
            **({"reason": "UB-MECH"} if (batch + writer) % 3 == 2 else {}),
        }
    )
    events.append(
        {
            "id": f"w{writer}-b{batch}-e",
            "ts": START + dt.timedelta(minutes=batch * 9, seconds=writer),
            "machine": MACHINES[writer % len(MACHINES)],
            "stream": "energy",
            "kwh": 100 + batch * 1.5 + writer * 0.25,
        }
    )
    events.append(
        {
            "id": f"w{writer}-b{batch}-m",
            "ts": START + dt.timedelta(minutes=batch * 5, seconds=writer),
            "machine": MACHINES[writer % len(MACHINES)],
            "stream": "material",
            "material": "steel",
            "qty": 0.5 + writer,
            "unit": "kg",
            "order": f"WO-{writer}",
        }
    )
    return [EVENT_ADAPTER.validate_python(e) for e in events]


def _view_rows(store: EventStore) -> dict[str, list[Any]]:
    with store.engine.connect() as conn:
        return {
            table: sorted(tuple(r) for r in conn.execute(text(f"SELECT * FROM {table}")))
            for table in (
                "production_hourly",
                "state_spans",
                "meter_intervals",
                "energy_hourly",
                "material_hourly",
            )
        }


def test_concurrent_writers_miss_no_event(pg_template: str) -> None:
    from conftest import pg_create_database, pg_drop_database

    url = pg_create_database(template=pg_template)
    try:
        with open_store(url) as store:
            store.apply_factory(
                parse_factory((DATA / "factory-small.yaml").read_text(encoding="utf-8")),
                "small.yaml",
            )
        failures: list[BaseException] = []
        go = threading.Barrier(WRITERS)

        def work(writer: int) -> None:
            try:
                # an ingest worker of its own, with its follower catching the views up between
                # (and during) the other writers' appends
                with open_store(url) as own, ViewFollower(own, every_s=0.0):
                    go.wait()
                    for batch in range(BATCHES):
                        own.append(writer_events(writer, batch))
            except BaseException as exc:  # reported by the main thread
                failures.append(exc)

        threads = [threading.Thread(target=work, args=(w,)) for w in range(WRITERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not failures, failures
        with open_store(url) as store:
            assert store.count() == WRITERS * BATCHES * 8
            catch_up(store)  # what the followers had not taken in yet, as any reader does
            lag = view_lag(store)
            assert lag.behind == 0 and lag.checkpoint == store.last_seq()
            kept = _view_rows(store)
            assert sum(r[4] + r[6] for r in kept["production_hourly"]) == WRITERS * BATCHES * 15
            rebuild(store)
            assert _view_rows(store) == kept
    finally:
        pg_drop_database(url)
