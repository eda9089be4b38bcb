"""OEE from the store and the CLI: the issue's worked example, and an independent recomputation
with DuckDB SQL over the JSONL that `microfab events export` writes (no microfab code involved)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

import duckdb
import pytest
import typer
import yaml
from typer.testing import CliRunner

from conftest import DATA
from microfab.cli import app as main_app
from microfab.commands.oee import downtime, oee
from microfab.errors import InputError
from microfab.model.events import EVENT_ADAPTER
from microfab.model.factory_file import parse_factory
from microfab.store import EventStore
from microfab.track.oee import downtime_pareto, oee_rows, reliability_rows

runner = CliRunner()
HKT = dt.timezone(dt.timedelta(hours=8))
CNC1 = "kt/plant/line1/machining/cnc-1"
ROBOT1 = "kt/plant/line1/machining/robot-1"


def cli() -> typer.Typer:
    """The real app, with the OEE commands registered whether or not cli.py already has them."""
    names = {
        c.name or (c.callback.__name__ if c.callback else "") for c in main_app.registered_commands
    }
    if "oee" not in names:
        main_app.command()(oee)
        main_app.command()(downtime)
    return main_app


def invoke(*args: str) -> str:
    result = runner.invoke(cli(), list(args))
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result.stdout


def at(hhmm: str) -> str:
    return f"2026-11-23T{hhmm}:00+08:00"


def event(stream: str, n: int, ts: str, machine: str = CNC1, **fields: Any) -> Any:
    return EVENT_ADAPTER.validate_python(
        {"id": f"{stream}-{n}", "ts": ts, "machine": machine, "stream": stream, **fields}
    )


def worked_example() -> list[Any]:
    return [
        event("state", 1, at("08:00"), state="running"),
        event("state", 2, at("10:00"), state="unplanned_stop", reason="UB-MECH"),
        event("state", 3, at("10:30"), state="running"),
        event("state", 4, at("12:00"), state="planned_stop", reason="PB"),
        event("state", 5, at("12:30"), state="running"),
        event("count", 1, at("09:00"), good=300, scrap=10),
        event("count", 2, at("11:30"), good=200, scrap=5),
        event("count", 3, at("15:59"), good=260, scrap=5),
    ]


@pytest.fixture
def small(store: EventStore) -> EventStore:
    store.apply_factory(parse_factory((DATA / "factory-small.yaml").read_text()), "small.yaml")
    return store


def test_the_worked_example_through_the_store_and_the_cli(small: EventStore) -> None:
    small.append(worked_example())
    rows = json.loads(
        invoke(
            "oee",
            "--machine",
            "cnc-1",
            "--from",
            "2026-11-23",
            "--to",
            "2026-11-24",
            "--db",
            small.url,
            "--json",
        )
    )
    assert len(rows) == 1
    row = rows[0]
    assert row["machine"] == CNC1
    assert (row["planned_busy_s"], row["run_s"], row["ideal_cycle_s"]) == (27_000, 25_200, 30.0)
    assert (row["total"], row["good"], row["scrap"]) == (780, 760, 20)
    assert row["availability"] == pytest.approx(0.9333, abs=5e-5)
    assert row["performance"] == pytest.approx(0.9286, abs=5e-5)
    assert row["quality"] == pytest.approx(0.9744, abs=5e-5)
    assert row["oee"] == pytest.approx(0.8444, abs=5e-5)
    assert (row["from"], row["to"]) == ("2026-11-22T16:00:00.000Z", "2026-11-23T16:00:00.000Z")


def test_line_rows_are_the_line_output_at_the_bottlenecks_pace(small: EventStore) -> None:
    small.append(worked_example())
    small.append(
        [
            event("state", 9, at("08:00"), ROBOT1, state="running"),
            event("count", 9, at("09:00"), ROBOT1, good=700, scrap=0),
        ]
    )
    factory = small.factory()
    assert factory is not None
    start = dt.datetime(2026, 11, 23, tzinfo=HKT)
    machines = oee_rows(small, factory[1], start=start, end=start + dt.timedelta(days=1))
    (line,) = oee_rows(
        small, factory[1], start=start, end=start + dt.timedelta(days=1), level="line"
    )
    assert line.machine == "kt/plant/line1" and line.level == "line"
    # a line row never sums its stations (docs/production.md): its times are the bottleneck
    # step's (cnc-2 and cnc-1, both able to do step 10: parallel machines add up), its good the
    # units that reached their order's output operation (none name an order here), its scrap
    # everything scrapped on the line
    assert line.figures.run_s == machines[0].figures.run_s + machines[2].figures.run_s
    assert line.figures.working_s == machines[0].figures.working_s + machines[2].figures.working_s
    assert line.figures.performance == machines[0].figures.performance  # cnc-2 made nothing
    assert line.figures.good == 0 and line.figures.scrap == sum(r.figures.scrap for r in machines)
    # cnc-2 (40 s) is the slowest step; it reported nothing, so the line's output is 0
    assert line.bottleneck == "kt/plant/line1/utility/cnc-2" and line.output_good == 0
    assert [r.machine.rsplit("/", 1)[1] for r in machines] == ["cnc-1", "robot-1", "cnc-2"]
    cnc2 = machines[2].figures
    assert (cnc2.availability, cnc2.performance, cnc2.quality, cnc2.oee) == (0.0, None, None, None)


def test_by_shift_and_day_in_site_time(small: EventStore) -> None:
    small.append(worked_example())
    small.append(
        [
            event("state", 10, "2026-11-24T08:00:00+08:00", state="running"),
            event("count", 10, "2026-11-24T09:00:00+08:00", good=100, scrap=0),
        ]
    )
    rows = json.loads(
        invoke(
            "oee",
            "--machine",
            "cnc-1",
            "--by",
            "shift",
            "--from",
            "2026-11-23",
            "--to",
            "2026-11-25",
            "--db",
            small.url,
            "--json",
        )
    )
    assert [(r["day"], r["shift"], r["total"]) for r in rows] == [
        ("2026-11-23", "day", 780),
        ("2026-11-24", "day", 100),
    ]
    assert rows[1]["run_s"] == 27_000  # running all of the second day's working time
    days = json.loads(
        invoke(
            "oee",
            "--machine",
            "cnc-1",
            "--by",
            "day",
            "--from",
            "2026-11-23",
            "--to",
            "2026-11-25",
            "--db",
            small.url,
            "--json",
        )
    )
    assert [(d["day"], d["from"]) for d in days] == [
        ("2026-11-23", "2026-11-22T16:00:00.000Z"),
        ("2026-11-24", "2026-11-23T16:00:00.000Z"),
    ]


def test_downtime_pareto_and_reliability(small: EventStore) -> None:
    small.append(worked_example())
    factory = small.factory()
    assert factory is not None
    start = dt.datetime(2026, 11, 23, tzinfo=HKT)
    end = start + dt.timedelta(days=1)
    pareto = downtime_pareto(small, factory[1], machine="cnc-1", start=start, end=end)
    assert [(p.reason, p.category, p.seconds, p.stops, p.share) for p in pareto] == [
        ("UB-MECH", "unplanned", 1800, 1, 1.0)
    ]
    (rel,) = reliability_rows(small, factory[1], machine="cnc-1", start=start, end=end)
    assert (rel.failures, rel.mtbf_s, rel.mttr_s) == (1, 25_200, 1800)
    document = json.loads(
        invoke(
            "downtime",
            "--machine",
            "cnc-1",
            "--from",
            "2026-11-23",
            "--to",
            "2026-11-24",
            "--db",
            small.url,
            "--json",
        )
    )
    assert document["pareto"][0]["reason"] == "UB-MECH"
    assert document["reliability"][0]["mttr_s"] == 1800


def test_oee_and_downtime_as_csv_for_a_spreadsheet(small: EventStore) -> None:
    small.append(worked_example())
    window = ["--machine", "cnc-1", "--from", "2026-11-23", "--to", "2026-11-24", "--db", small.url]
    oee = list(csv.DictReader(io.StringIO(invoke("oee", *window, "--csv"))))
    assert len(oee) == 1
    assert list(oee[0])[:3] == ["machine", "from", "to"] and oee[0]["machine"] == CNC1
    row = oee[0]
    assert (float(row["planned_busy_s"]), float(row["run_s"]), int(row["good"])) == (
        27000,
        25200,
        760,
    )
    assert oee[0]["shift"] == ""  # null: an empty cell
    assert float(oee[0]["oee"]) == pytest.approx(0.8444, abs=5e-5)
    pareto = list(csv.DictReader(io.StringIO(invoke("downtime", *window, "--csv"))))
    assert [(p["reason"], float(p["seconds"]), p["machines"]) for p in pareto] == [
        ("UB-MECH", 1800, CNC1)
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "2026-11-24", "--to", "2026-11-23"], "--to 2026-11-23 is not after --from"),
        (["--from", "yesterday"], "--from: 'yesterday' is not a time"),
        (["--line", "line9"], "no production line 'line9'"),
        (["--machine", "cnc-9"], "no producing machine 'cnc-9'"),
    ],
)
def test_bad_input_is_one_sentence_and_exit_2(
    small: EventStore, args: list[str], message: str
) -> None:
    result = runner.invoke(cli(), ["oee", *args, "--db", small.url])
    # in-process the error reaches the runner; main() prints its message and exits with its code
    assert isinstance(result.exception, InputError), (result.stdout, result.exception)
    assert result.exception.exit_code == 2
    assert message in str(result.exception)


# ---------------------------------------------------------------------------- recomputation


RECOMPUTE = """
WITH ev AS (
    SELECT machine, stream, CAST(ts AS TIMESTAMPTZ) AS ts, id, state, "order" AS ord,
           operation, good, scrap, product
    FROM read_json_auto($events, format = 'newline_delimited', union_by_name = true)
),
win AS (SELECT CAST(s AS TIMESTAMPTZ) AS ws, CAST(e AS TIMESTAMPTZ) AS we FROM windows),
spans AS (
    SELECT machine, state, ts AS s,
           COALESCE(LEAD(ts) OVER (PARTITION BY machine ORDER BY ts, id), CAST($to AS TIMESTAMPTZ)) AS e
    FROM ev WHERE stream = 'state'
),
inside AS (
    SELECT machine, state,
           SUM(GREATEST(0, EPOCH(LEAST(e, we)) - EPOCH(GREATEST(s, ws)))) AS secs
    FROM spans, win GROUP BY machine, state
),
products AS (SELECT DISTINCT ord, product FROM ev WHERE stream = 'order' AND product IS NOT NULL),
counts AS (
    SELECT c.machine, c.good, c.scrap,
           COALESCE(r.seconds, m.ideal) AS ideal
    FROM ev c
    JOIN machines m ON m.path = c.machine
    LEFT JOIN products p ON p.ord = c.ord
    LEFT JOIN routing r ON r.product = p.product AND r.seq = c.operation AND r.machine_id = m.id
    WHERE c.stream = 'count' AND EXISTS (SELECT 1 FROM win WHERE c.ts >= ws AND c.ts < we)
)
SELECT m.path,
       (SELECT SUM(EPOCH(we) - EPOCH(ws)) FROM win)
         - COALESCE((SELECT secs FROM inside i WHERE i.machine = m.path AND state = 'planned_stop'), 0)
         AS planned_busy_s,
       COALESCE((SELECT secs FROM inside i WHERE i.machine = m.path AND state = 'running'), 0) AS run_s,
       COALESCE((SELECT SUM(good + COALESCE(scrap, 0)) FROM counts c WHERE c.machine = m.path), 0) AS total,
       COALESCE((SELECT SUM(good) FROM counts c WHERE c.machine = m.path), 0) AS good,
       (SELECT SUM(ideal * (good + COALESCE(scrap, 0))) FROM counts c WHERE c.machine = m.path) AS ideal_work
FROM machines m ORDER BY m.path
"""


def test_cli_oee_agrees_with_duckdb_over_the_exported_events(db_url: str, tmp_path: Path) -> None:
    start, end = "2026-11-23T08:00:00+08:00", "2026-11-23T17:00:00+08:00"
    result = runner.invoke(
        cli(),
        [
            "sim",
            "--scenario",
            "food-line",
            "--duration",
            "9h",
            "--speed",
            "max",
            "--seed",
            "3",
            "--start",
            start,
            "--db",
            db_url,
        ],
    )
    assert result.exit_code == 0, (result.stdout, result.exception)
    exported = tmp_path / "events.jsonl"
    exported.write_text(invoke("events", "export", "--format", "jsonl", "--db", db_url))
    rows = json.loads(invoke("oee", "--from", start, "--to", end, "--db", db_url, "--json"))

    # The shift and the ideal times, read from the scenario's factory file as plain YAML.
    factory_file = Path(__file__).parents[1] / "src/microfab/sim/scenarios/food-line/factory.yaml"
    doc = yaml.safe_load(factory_file.read_text())
    site = doc["sites"][0]
    machines = []
    for area in site["areas"]:
        for line in area["lines"]:
            for cell in line["cells"]:
                for m in cell["machines"]:
                    if "ideal_cycle_s" in m:
                        path = "/".join((site["id"], area["id"], line["id"], cell["id"], m["id"]))
                        machines.append((path, m["id"], m["ideal_cycle_s"]))
    routing = [
        (p["sku"], op["seq"], machine, seconds)
        for p in doc["products"]
        for op in p["routing"]
        for machine, seconds in op["machines"].items()
    ]
    (shift,) = doc["calendars"][0]["shifts"]
    (lunch,) = shift["breaks"]
    day = "2026-11-23T"
    windows = [
        (f"{day}{shift['start']}:00+08:00", f"{day}{lunch['start']}:00+08:00"),
        (f"{day}{lunch['end']}:00+08:00", f"{day}{shift['end']}:00+08:00"),
    ]

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("CREATE TABLE machines (path VARCHAR, id VARCHAR, ideal DOUBLE)")
    con.executemany("INSERT INTO machines VALUES (?, ?, ?)", machines)
    con.execute(
        "CREATE TABLE routing (product VARCHAR, seq INTEGER, machine_id VARCHAR, seconds DOUBLE)"
    )
    con.executemany("INSERT INTO routing VALUES (?, ?, ?, ?)", routing)
    con.execute("CREATE TABLE windows (s VARCHAR, e VARCHAR)")
    con.executemany("INSERT INTO windows VALUES (?, ?)", windows)
    expected = con.execute(RECOMPUTE, {"events": str(exported), "to": end}).fetchall()

    by_machine = {r["machine"]: r for r in rows}
    assert set(by_machine) == {row[0] for row in expected}
    assert sum(total for _, _, _, total, _, _ in expected) > 1000, "the shift made something"
    for path, planned_busy, run, total, good, ideal_work in expected:
        row = by_machine[path]
        assert row["planned_busy_s"] == pytest.approx(planned_busy, abs=1e-3), path
        assert row["run_s"] == pytest.approx(run, abs=1e-3), path
        assert (row["total"], row["good"]) == (total, good), path
        assert row["availability"] == pytest.approx(run / planned_busy, abs=1e-6), path
        if total:
            assert row["ideal_cycle_s"] == pytest.approx(ideal_work / total, abs=1e-6), path
            assert row["performance"] == pytest.approx(ideal_work / run, abs=1e-6), path
            assert row["quality"] == pytest.approx(good / total, abs=1e-6), path
            assert row["oee"] == pytest.approx(
                run / planned_busy * ideal_work / run * good / total, abs=1e-6
            ), path
