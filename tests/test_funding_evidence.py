"""Smart-line evidence from the factory model and the stored data, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from conftest import DATA
from microfab.cli import app
from microfab.funding.evidence import gather_store_facts, smart_line_evidence
from microfab.model.events import EVENT_ADAPTER, format_ts
from microfab.model.factory_file import parse_factory
from microfab.store import EventStore

runner = CliRunner()
LINE = "kt/plant/line1"
CNC1, CNC2, ROBOT1 = (
    f"{LINE}/machining/cnc-1",
    f"{LINE}/utility/cnc-2",
    f"{LINE}/machining/robot-1",
)


def event(stream: str, n: int, ts: dt.datetime, machine: str, **fields: Any) -> Any:
    return EVENT_ADAPTER.validate_python(
        {
            "id": f"{stream}-{machine[-7:]}-{n}",
            "ts": format_ts(ts),
            "machine": machine,
            "stream": stream,
            **fields,
        }
    )


def live_events() -> list[Any]:
    """Events stamped with the wall clock, as a connected machine sends them."""
    now = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    return [
        event("state", 1, now - dt.timedelta(seconds=2), CNC1, state="running"),
        event("count", 1, now - dt.timedelta(seconds=1), CNC1, good=2),
        event("state", 2, now, CNC1, state="unplanned_stop", reason="UB-MECH", by="op-chan"),
        event("state", 1, now - dt.timedelta(seconds=2), ROBOT1, state="running"),
        event("telemetry", 1, now, ROBOT1, metrics={"temp_c": 31.5}),
    ]


def criteria(line: dict[str, Any]) -> dict[str, str]:
    return {c["criterion"]: c["status"] for c in line["criteria"]}


def test_evidence_from_stored_live_data(store: EventStore) -> None:
    factory = parse_factory((DATA / "factory-small.yaml").read_text(encoding="utf-8"))
    store.apply_factory(factory, "small.yaml")
    store.append(live_events())
    doc = smart_line_evidence(factory, gather_store_facts(store, factory)).to_json()
    [line] = doc["lines"]
    assert line["line"] == LINE
    machines = {m["machine"]: m for m in line["machines"]}
    assert set(machines) == {CNC1, CNC2, ROBOT1}, "the energy meter is not a production machine"
    assert machines[CNC1]["criteria"]["iot"] and machines[CNC1]["criteria"]["data_analytics"]
    assert machines[CNC1]["criteria"]["real_time_data"] is True
    assert machines[ROBOT1]["criteria"]["robotics"] and machines[ROBOT1]["meets_criteria"]
    assert machines[CNC2]["criteria"]["iot"] is False and not machines[CNC2]["meets_criteria"]
    assert machines[CNC1]["events"] == 3 and machines[CNC1]["streams"] == ["count", "state"]
    assert (line["machines_meeting_criteria"], line["smart_line_share_fraction"]) == (2, "2/3")
    assert criteria(line) == {
        "iot": "partial",
        "real_time_data": "partial",
        "data_analytics": "partial",
        "advanced_hmi": "evidenced",
        "ai_ml": "no_evidence",
        "robotics": "evidenced",
    }
    hmi = next(c for c in line["criteria"] if c["criterion"] == "advanced_hmi")
    assert "1 operator entry" in " ".join(hmi["evidence"])


def test_a_simulated_run_gives_no_latency_evidence(db_url: str) -> None:
    """The demo factory: every machine connected, robots present, but simulated clocks."""
    result = runner.invoke(app, ["sim", "--duration", "2h", "--db", db_url])
    assert result.exit_code == 0, (result.stdout, result.exception)
    result = runner.invoke(app, ["funding", "evidence", "--db", db_url, "--json"])
    assert result.exit_code == 0, (result.stdout, result.exception)
    doc = json.loads(result.stdout)
    [line] = doc["lines"]
    assert line["line"] == "tp/kitchen/meal-1"
    # seed 1, 2 h: orders sized to the line's capacity reach the vision station within 2 h
    assert (line["machines_counted"], line["machines_meeting_criteria"]) == (7, 7)
    machines = {m["machine"].rsplit("/", 1)[-1]: m for m in line["machines"]}
    assert machines["vision-1"]["meets_criteria"]
    assert machines["robot-1"]["meets_criteria"] and machines["agv-1"]["meets_criteria"]
    status = criteria(line)
    assert status["iot"] == "evidenced" and status["robotics"] == "evidenced"
    assert status["data_analytics"] == "evidenced"  # OEE on every machine of the line
    assert status["real_time_data"] == "no_evidence"
    assert status["ai_ml"] == "no_evidence"
    realtime = next(c for c in line["criteria"] if c["criterion"] == "real_time_data")
    assert "not wall-clock" in realtime["evidence"][0]
    assert all(m["criteria"]["real_time_data"] is None for m in line["machines"])


def test_the_factory_model_alone_measures_nothing(tmp_path: Path) -> None:
    annex = tmp_path / "annex.html"
    result = runner.invoke(
        app,
        [
            "funding",
            "evidence",
            "--factory",
            str(DATA / "factory-small.yaml"),
            "--json",
            "--html",
            str(annex),
        ],
    )
    assert result.exit_code == 0, (result.stdout, result.exception)
    doc = json.loads(result.stdout)
    status = criteria(doc["lines"][0])
    assert status["robotics"] == "evidenced"
    for name in ("iot", "real_time_data", "data_analytics", "advanced_hmi"):
        assert status[name] == "not_measured", name
    assert doc["lines"][0]["machines_meeting_criteria"] == 0
    assert "annex" in annex.read_text(encoding="utf-8")
