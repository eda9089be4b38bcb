"""Where ingest's time goes: the worker's decode and append on N telemetry events, in one
process, without a broker (so a profile shows microfab's share alone).

Run under a profiler, e.g. the flame graph in docs/benchmarks.md::

    .venv/bin/python bench/ingest_profile.py --db postgresql://postgres@127.0.0.1:5432/x \\
        --start-after 2 &
    py-spy record --pid $! --function -o docs/images/ingest-flame.svg

or alone, for its timings: decode and append microseconds per event and events per second.
Messages are grouped into store batches of 5,000 events, as the bench's ingest worker does.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
import uuid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="store URL (a scratch database)")
    parser.add_argument("--batch", type=int, default=100, help="events per message (1: single)")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument(
        "--start-after",
        type=float,
        default=0.0,
        help="wait this long once set up (a profiler attached by pid then sees the work alone)",
    )
    args = parser.parse_args()

    from microfab.connect.decode import decode_message
    from microfab.model.clock_policy import ClockPolicy
    from microfab.store import open_store

    store = open_store(args.db)
    store.count()
    now = dt.datetime.now(dt.UTC)
    stamp = now.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    topic = "microfab/v1/bench/plant/line1/cell1/machine-1/telemetry"
    prefix = uuid.uuid4().hex[:8]
    items = [
        {"id": f"{prefix}-{i}", "ts": stamp, "metrics": {"sent": time.time(), "value": i % 97}}
        for i in range(args.events)
    ]
    batch = args.batch
    payloads = [
        json.dumps(items[i] if batch == 1 else items[i : i + batch]).encode()
        for i in range(0, args.events, batch)
    ]
    policy = ClockPolicy()
    warm_up = decode_message(topic, payloads[0], received_at=now, clock_policy=policy).events
    store.append(warm_up[:1])  # the store's modules imported, its connection open
    time.sleep(args.start_after)
    per_commit = max(1, 5000 // batch)
    decode_s = append_s = 0.0
    cpu = time.process_time()
    for first in range(0, len(payloads), per_commit):
        began = time.perf_counter()
        events = []
        for payload in payloads[first : first + per_commit]:
            events += decode_message(topic, payload, received_at=now, clock_policy=policy).events
        decoded = time.perf_counter()
        store.append(events)
        append_s += time.perf_counter() - decoded
        decode_s += decoded - began
    cpu = time.process_time() - cpu
    n = args.events
    print(
        f"{store.dialect}, {batch} per message: decode {1e6 * decode_s / n:.2f} µs/event, "
        f"append {1e6 * append_s / n:.2f} µs/event, {n / (decode_s + append_s):,.0f} events/s; "
        f"this process's CPU {1e6 * cpu / n:.2f} µs/event (the rest of the append is the "
        "database's)"
    )
    store.close()


if __name__ == "__main__":
    main()
