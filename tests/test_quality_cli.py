"""``microfab spc``, ``anomalies`` and ``health`` on a stored run of the moulding cell with wear,
and the store reads they use on both back ends."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from typing import Any

import pytest
from typer.testing import CliRunner

from microfab.cli import app
from microfab.model.events import StateChange, TelemetrySample
from microfab.sim.engine import DEFAULT_START
from microfab.store.event_store import EventStore
from microfab.store.quality import metric_names, metric_samples, state_changes, telemetry_rows

runner = CliRunner()
START = DEFAULT_START.astimezone(dt.UTC)


def microfab_json(*args: str) -> Any:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return json.loads(result.stdout)


def microfab_fails(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "MICROFAB_DB"}
    proc = subprocess.run(
        [sys.executable, "-m", "microfab.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    return proc


@pytest.fixture(scope="module")
def wear_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Three days of the moulding cell with its three labelled faults (behaviour.yaml)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('wear')}/wear.db"
    args = ["sim", "--scenario", "moulding-cell-wear", "--duration", "3d", "--db", url]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.stdout
    return url


def at(hours: float) -> dt.datetime:
    return START + dt.timedelta(hours=hours)


def ts(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_spc_of_a_healthy_metric(wear_db: str) -> None:
    report = microfab_json("spc", "imm-2:melt_temp_c", "--db", wear_db)
    assert report["chart"] == "xbar-r" and report["subgroup_size"] == 5
    assert report["baseline_points"] == 25
    mean = report["limits"]["mean"]
    assert 234 < mean["center"] < 236  # the scenario's 235 °C
    assert mean["lower"] < mean["center"] < mean["upper"]
    assert report["limits"]["range"]["lower"] == 0
    # a stable process: few points flagged (false alarms of eight rules over hundreds of points)
    assert len(report["out_of_control"]) < 0.1 * len(report["points"])


def test_spc_flags_the_clogging_nozzle_and_reports_capability(wear_db: str) -> None:
    report = microfab_json(
        "spc",
        "imm-1:cycle_s",
        "--lsl",
        "28",
        "--usl",
        "32",
        "--db",
        wear_db,
        "--to",
        "2026-11-25T14:00",
    )
    flagged = [p for p in report["points"] if p["rules"]]
    late = [p for p in flagged if ts(p["from"]) >= at(30)]  # the clog starts at 30 h
    assert len(late) > 0.8 * len(flagged) and 1 in {r for p in late for r in p["rules"]}
    cap = report["capability"]
    assert cap["n"] == 125 and cap["cp"] > 0.9
    assert cap["cp_ci"][0] < cap["cp"] < cap["cp_ci"][1]
    assert cap["cpk"] <= cap["cp"] and cap["ppk"] <= cap["pp"]


def test_spc_charts_readings_taken_while_running(wear_db: str) -> None:
    running = microfab_json("spc", "robot-1:vib_rms_mm_s", "--db", wear_db)
    every = microfab_json("spc", "robot-1:vib_rms_mm_s", "--all-readings", "--db", wear_db)
    assert len(every["points"]) > len(running["points"])
    # the robot stands at first (nothing moulded yet): idle vibration, near 0, makes that baseline
    assert every["limits"]["mean"]["center"] < 0.5
    assert 0.8 < running["limits"]["mean"]["center"] < 1.0  # the scenario's 0.9 mm/s


def test_spc_of_scrap_is_a_p_chart_per_hour(wear_db: str) -> None:
    report = microfab_json("spc", "imm-2:scrap", "--db", wear_db, "--baseline", "20")
    assert report["chart"] == "p"
    points = report["points"]
    assert all(p["n"] > 0 and 0 <= p["lower"] <= p["upper"] <= 1 for p in points)
    assert 0.005 < report["limits"]["fraction"]["center"] < 0.03  # the scenario's 1.5 % scrap
    u = microfab_json("spc", "imm-2:scrap", "--chart", "u", "--db", wear_db, "--baseline", "20")
    assert u["chart"] == "u" and len(u["points"]) == len(points)


def test_individuals_chart(wear_db: str) -> None:
    report = microfab_json("spc", "chiller-1:return_temp_c", "--subgroup", "1", "--db", wear_db)
    assert report["chart"] == "imr" and report["baseline_points"] == 25
    assert set(report["limits"]) == {"value", "moving_range"}
    assert report["points"][0]["dispersion"] is None
    assert report["points"][1]["dispersion"] is not None


def test_spc_bad_input_is_one_sentence(wear_db: str) -> None:
    proc = microfab_fails("spc", "imm-1:nothing", "--db", wear_db)
    assert "no readings of 'nothing'" in proc.stderr and "melt_temp_c" in proc.stderr
    proc = microfab_fails("spc", "imm-1", "--db", wear_db)
    assert "MACHINE:METRIC" in proc.stderr
    proc = microfab_fails("spc", "press-9:x", "--db", wear_db)
    assert "no machine 'press-9'" in proc.stderr
    proc = microfab_fails("spc", "imm-1:cycle_s", "--chart", "p", "--db", wear_db)
    assert "imm-1:scrap" in proc.stderr
    early = ["--to", "2026-11-23T08:30", "--db", wear_db]
    proc = microfab_fails("spc", "imm-1:cycle_s", *early)
    assert "more)" in proc.stderr and "control limits need at least 20" in proc.stderr


def test_anomalies_alert_between_onset_and_failure(wear_db: str) -> None:
    report = microfab_json("anomalies", "--db", wear_db)
    by_machine = {m["machine"].rsplit("/", 1)[-1]: m for m in report["machines"]}
    robot = by_machine["robot-1"]["alerts"]
    assert robot and robot[0]["metric"] == "vib_rms_mm_s"
    assert at(26) <= ts(robot[0]["ts"]) < at(60)  # onset 26 h, breakdown after 60 h
    imm = by_machine["imm-1"]["alerts"]
    assert imm and imm[0]["metric"] == "cycle_s" and at(30) <= ts(imm[0]["ts"]) < at(51)
    chiller = by_machine["chiller-1"]["alerts"]
    assert chiller and at(50) <= ts(chiller[0]["ts"])
    assert by_machine["imm-2"]["alerts"] == []


def test_health_before_the_failures(wear_db: str) -> None:
    report = microfab_json("health", "--to", "2026-11-25T12:00", "--db", wear_db)
    by_machine = {m["machine"].rsplit("/", 1)[-1]: m for m in report["machines"]}
    assert (
        by_machine["chiller-1"]["health"] == 0
        and "sensor" in by_machine["chiller-1"]["recommendation"]
    )
    robot = by_machine["robot-1"]
    assert robot["health"] < 0.5 and 0 < robot["rul_h"] < 12
    assert robot["evidence"][0]["metric"] in ("vib_rms_mm_s", "joint_temp_c")
    assert by_machine["imm-2"]["health"] > 0.8 and by_machine["imm-2"]["rul_h"] is None


def test_store_reads_on_both_back_ends(store: EventStore) -> None:
    machine = "yl/moulding/mc-1/imm/imm-1"
    events = [
        StateChange(id="s1", ts=at(0), machine=machine, state="running"),
        *(
            TelemetrySample(
                id=f"t{i}", ts=at(i / 60), machine=machine, metrics={"a": float(i), "b": 1.0}
            )
            for i in range(1, 6)
        ),
        TelemetrySample(id="t9", ts=at(1), machine=machine, metrics={"b": 2.0}),
        StateChange(id="s2", ts=at(2), machine=machine, state="unplanned_stop", reason="UB"),
    ]
    store.append(events)
    samples = metric_samples(store, machine, "a")
    assert [s.value for s in samples] == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert samples[0].ts == at(1 / 60)
    assert [s.value for s in metric_samples(store, machine, "a", at(2 / 60), at(4 / 60))] == [
        2.0,
        3.0,
    ]
    assert metric_names(store, machine) == ["a", "b"]
    rows = telemetry_rows(store, [machine])
    assert len(rows) == 6 and rows[-1].metrics == {"b": 2.0}
    assert [(s, r) for _, _, s, r in state_changes(store, [machine])] == [
        ("running", None),
        ("unplanned_stop", "UB"),
    ]
