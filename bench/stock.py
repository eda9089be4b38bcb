"""Benchmark: on hand at any time over one year of stock ledger events (≥ 1 million).

Run with ``microfab bench stock``. It stores a year of stock movements (receipts of new lots,
transfers to line-side buffers, issues to orders, scrap, adjustments, counts; 60 items) through
the ordinary append — so the stock read model is built exactly as in production — then asks for
the on hand by item × lot × location at random times of the year. The baseline is the same
answer summed from the ledger legs (``SUM(delta) … WHERE ts <= T GROUP BY item, lot, location``),
what a store without the running balance would have to do.
"""

from __future__ import annotations

import datetime as dt
import random
import statistics
import tempfile
import time
import uuid
from typing import Any

from sqlalchemy import func, select

from microfab.model.events import StockMove
from microfab.store import EventStore, open_store, schema
from microfab.store.stock import on_hand

NAME = "stock"
TITLE = "Stock on hand at any time"
START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
ITEMS = 60
BINS = ("bin-a1", "bin-a2", "cold-1")
LINE_SIDE = ("ls-1", "ls-2", "ls-3")
MACHINE = "kt/stores/stock/desk/microfab"


def _events(total: int, seed: int = 1) -> list[list[StockMove]]:
    """A year of movements in time order, in batches of 10,000."""
    rng = random.Random(seed)
    step = dt.timedelta(days=365) / total
    batches: list[list[StockMove]] = []
    batch: list[StockMove] = []
    lots: dict[int, int] = {i: 0 for i in range(ITEMS)}
    for n in range(total):
        ts = START + step * n
        item = rng.randrange(ITEMS)
        sku = f"ITEM-{item:03d}"
        draw = rng.random()
        lot = f"L{item:03d}-{lots[item]:04d}"
        common: dict[str, Any] = {"id": f"s{n:08d}", "ts": ts, "machine": MACHINE, "item": sku}
        store_bin = BINS[item % len(BINS)]
        line_side = LINE_SIDE[item % len(LINE_SIDE)]
        if draw < 0.003:  # a new lot arrives (about weekly per item)
            lots[item] += 1
            lot = f"L{item:03d}-{lots[item]:04d}"
            ev = StockMove(
                **common, kind="receipt", lot=lot, qty=6000, unit="kg", to_location=store_bin,
                ref=f"PO-{n}", supplier="sup-1", expiry=ts + dt.timedelta(days=90),
            )  # fmt: skip
        elif draw < 0.30:
            ev = StockMove(
                **common, kind="transfer", lot=lot, qty=25, unit="kg",
                from_location=store_bin, to_location=line_side, by="agv-1",
            )  # fmt: skip
        elif draw < 0.97:
            ev = StockMove(
                **common, kind="issue", lot=lot, qty=round(rng.uniform(0.1, 5), 3), unit="kg",
                from_location=line_side, order=f"WO-{n // 500}",
            )  # fmt: skip
        elif draw < 0.99:
            ev = StockMove(
                **common, kind="scrap", lot=lot, qty=0.5, unit="kg", from_location=line_side,
                reason="spill",
            )  # fmt: skip
        else:
            ev = StockMove(
                **common, kind="adjust", lot=lot, qty=1.0, unit="kg", to_location=store_bin,
                reason="found",
            )  # fmt: skip
        batch.append(ev)
        if len(batch) == 10_000:
            batches.append(batch)
            batch = []
    if batch:
        batches.append(batch)
    return batches


def _baseline(store: EventStore, at: dt.datetime) -> int:
    m = schema.stock_moves
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(m.c.item, m.c.lot, m.c.location, func.sum(m.c.delta))
            .where(m.c.ts <= at)
            .group_by(m.c.item, m.c.lot, m.c.location)
        ).all()
    return sum(1 for r in rows if r[3])


def _measure(store: EventStore, repeat: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    times = [START + dt.timedelta(seconds=rng.uniform(0, 365 * 86400)) for _ in range(10)]
    with store.engine.connect() as conn:
        legs = conn.execute(select(func.count()).select_from(schema.stock_moves)).scalar_one()
        keys = conn.execute(select(func.count()).select_from(schema.stock_balances)).scalar_one()
    fast: list[float] = []
    cpu: list[float] = []
    slow: list[float] = []
    rows = 0
    for _ in range(repeat):
        for at in times:
            start, start_cpu = time.perf_counter(), time.process_time()
            found = on_hand(store, at=at)
            fast.append((time.perf_counter() - start) * 1000)
            cpu.append((time.process_time() - start_cpu) * 1000)
            rows = max(rows, len(found))
    for at in times[:3]:
        start = time.perf_counter()
        expected = _baseline(store, at)
        slow.append((time.perf_counter() - start) * 1000)
        assert expected == len(on_hand(store, at=at)), "running balance disagrees with the sum"
    return {
        "legs": legs,
        "keys": keys,
        "rows": rows,
        "median_ms": round(statistics.median(fast), 1),
        "cpu_median_ms": round(statistics.median(cpu), 1),
        "max_ms": round(max(fast), 1),
        "baseline_median_ms": round(statistics.median(slow), 1),
    }


def run(repeat: int = 3, events: int = 1_000_000, db: str | None = None) -> dict[str, Any]:
    batches = _events(events)
    results: list[dict[str, Any]] = []
    targets: list[tuple[str, str]] = []
    if db is not None:
        targets.append(("given store", db))
    else:
        folder = tempfile.mkdtemp(prefix="microfab-bench-")
        targets.append(("SQLite", f"sqlite:///{folder}/stock.db"))
        pg = _pg_database()
        if pg is not None:
            targets.append(("PostgreSQL", pg))
    for label, url in targets:
        with open_store(url) as store:
            start = time.perf_counter()
            for batch in batches:
                store.append(batch)
            load_s = time.perf_counter() - start
            figures = _measure(store, repeat, seed=7)
        results.append({"store": label, "events": events, "load_s": round(load_s, 1), **figures})
        if label == "PostgreSQL":
            _pg_drop(url)
    return {"events": events, "results": results}


def _pg_database() -> str | None:
    try:
        import psycopg

        name = f"microfab_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(
            "postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True, connect_timeout=2
        ) as admin:
            admin.execute(f"CREATE DATABASE {name}")
        return f"postgresql://postgres@127.0.0.1:5432/{name}"
    except Exception:  # no server: that row is left out, and the report says so
        return None


def _pg_drop(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"One year of stock movements ({result['events']:,} events, 60 items, a new lot per item about weekly, "
        "3 store bins, 3 line-side buffers), stored through the ordinary append; on hand by item "
        "× lot × location at 10 random times of the year, each asked `repeat` times. Baseline: "
        "the same answer summed from the ledger legs (`SUM(delta) WHERE ts <= T GROUP BY …`). "
        "Goal: ≤ 200 ms.",
        "",
        "| store | events | ledger legs | item×lot×location | rows answered (most) | load s "
        "| on hand at T, median ms | its CPU ms (this process) | max ms "
        "| baseline (sum) median ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["results"]:
        lines.append(
            f"| {r['store']} | {r['events']:,} | {r['legs']:,} | {r['keys']:,} | {r['rows']:,} "
            f"| {r['load_s']} | {r['median_ms']} | {r['cpu_median_ms']} | {r['max_ms']} "
            f"| {r['baseline_median_ms']} |"
        )
    return "\n".join(lines)
