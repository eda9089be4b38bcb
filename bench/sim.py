"""Benchmark: simulator throughput, alone and storing into SQLite (and PostgreSQL when reachable).

Run with ``microfab bench sim``. It simulates the acceptance run (food-line, 8 h, seed 1) several
times per configuration in one session and reports medians; the baseline is the simulator alone
(events kept in memory), so the other rows read as "how much the store costs". Results are written
to docs/benchmarks.md between this benchmark's markers, with the machine noted.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from typing import Any

from microfab.connect.publisher import ListPublisher, Publisher
from microfab.sim.engine import FactorySimulation, parse_duration
from microfab.sim.scenario import load_scenario
from microfab.store import open_store
from microfab.store.sink import StoreSink

NAME = "sim"
TITLE = "Simulator and store throughput"


def _run(
    scenario: str,
    seconds: float,
    seed: int,
    make: Callable[[], tuple[Publisher, Callable[[], None]]],
) -> tuple[float, int]:
    chosen = load_scenario(scenario)
    publisher, done = make()
    start = time.perf_counter()
    sim = FactorySimulation(chosen, publisher, seed=seed)
    while sim.env.now < seconds:
        sim.run_until(min(seconds, sim.env.now + 600))
        publisher.flush()
    wall = time.perf_counter() - start
    done()
    return wall, sim.sequence


def _pg_admin() -> Any | None:
    try:
        import psycopg

        return psycopg.connect(
            "postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True, connect_timeout=2
        )
    except Exception:  # no server: skip that row, say so in the report
        return None


def run(
    repeat: int = 5, scenario: str = "food-line", duration: str = "8h", seed: int = 1
) -> dict[str, Any]:
    seconds = parse_duration(duration)
    rows: list[dict[str, Any]] = []

    def memory() -> tuple[Publisher, Callable[[], None]]:
        return ListPublisher(), lambda: None

    def sqlite() -> tuple[Publisher, Callable[[], None]]:
        folder = tempfile.mkdtemp(prefix="microfab-bench-")
        store = open_store(f"sqlite:///{folder}/bench.db")
        return StoreSink(store), store.close

    configs: list[tuple[str, Callable[[], tuple[Publisher, Callable[[], None]]]]] = [
        ("simulator only (baseline)", memory),
        ("simulator + SQLite store", sqlite),
    ]
    admin = _pg_admin()
    if admin is not None:

        def postgresql() -> tuple[Publisher, Callable[[], None]]:
            name = f"microfab_bench_{uuid.uuid4().hex[:10]}"
            admin.execute(f'CREATE DATABASE "{name}"')
            store = open_store(f"postgresql://postgres@127.0.0.1:5432/{name}")

            def done() -> None:
                store.close()
                admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')

            return StoreSink(store), done

        configs.append(("simulator + PostgreSQL store", postgresql))
    baseline = None
    for label, make in configs:
        walls, events = [], 0
        for _ in range(repeat):
            wall, events = _run(scenario, seconds, seed, make)
            walls.append(wall)
        median = statistics.median(walls)
        baseline = baseline or median
        rows.append(
            {
                "configuration": label,
                "median_s": round(median, 3),
                "min_s": round(min(walls), 3),
                "events": events,
                "events_per_s": round(events / median),
                "sim_speedup": round(seconds / median),
                "vs_baseline": round(median / baseline, 2),
            }
        )
    if admin is not None:
        admin.close()
    demo_walls = []
    for _ in range(repeat):
        folder = tempfile.mkdtemp(prefix="microfab-bench-")
        command = [
            sys.executable,
            "-m",
            "microfab.cli",
            "demo",
            "--scenario",
            scenario,
            "--speed",
            "max",
            "--duration",
            duration,
            "--seed",
            str(seed),
            "--direct",
            "--no-web",
            "--db",
            f"sqlite:///{folder}/demo.db",
        ]
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        demo_walls.append(time.perf_counter() - start)
    return {
        "demo_command": "microfab demo --scenario "
        + scenario
        + f" --speed max --duration {duration} "
        f"--seed {seed} --direct --no-web --db sqlite:///X.db",
        "demo_median_s": round(statistics.median(demo_walls), 3),
        "scenario": scenario,
        "duration": duration,
        "seed": seed,
        "repeat": repeat,
        "rows": rows,
        "note": "" if admin is not None else "PostgreSQL not reachable: its row was not measured.",
    }


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"Scenario `{result['scenario']}`, simulated {result['duration']}, seed {result['seed']}, "
        f"median of {result['repeat']} runs per row, all rows in one session.",
        "",
        "| configuration | median wall s | min s | events | events/s | simulated s per wall s | vs baseline |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['configuration']} | {r['median_s']} | {r['min_s']} | {r['events']:,} | "
            f"{r['events_per_s']:,} | {r['sim_speedup']:,} | {r['vs_baseline']}x |"
        )
    if result["note"]:
        lines += ["", result["note"]]
    lines += [
        "",
        f"The acceptance run as a user types it, `{result['demo_command']}`, from process start to "
        f"exit (Python start-up, migrations, live view and totals included): median "
        f"**{result['demo_median_s']} s** over {result['repeat']} runs.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    print(markdown(run(repeat=3)))
