"""The plan through the API: read it, re-plan the open orders (the plan file the CLI shares), and
the Gantt chart's data, plan against actual per machine; on both back ends."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from microfab.plan.plan_file import read_plan_file
from microfab.store import EventStore
from webapp import CNC1, CNC2, ROBOT1, fill, serving


@pytest.fixture
def api(store: EventStore, tmp_path: Path) -> Iterator[httpx.Client]:
    fill(store)
    with serving(store, plan_file=tmp_path / "plan.json") as (_, client):
        yield client


def call(client: httpx.Client, method: str, url: str, status: int, **kwargs: Any) -> Any:
    response = client.request(method, url, **kwargs)
    assert response.status_code == status, response.text
    return response.json()


def test_replan_writes_the_plan_file_and_the_gantt_shows_plan_and_actual(
    api: httpx.Client, tmp_path: Path
) -> None:
    missing = call(api, "GET", "/api/v1/plan", 404)["error"]
    assert missing["key"] == "not_found" and "microfab plan schedule" in missing["message"]

    planned = call(api, "POST", "/api/v1/plan", 201, json={"time_limit": 2})
    assert planned["saved"] is True
    assert planned["plan"]["status"] in ("optimal", "feasible")
    assert planned["plan"]["start"] == "2026-11-23T15:59:00+08:00"  # the plant clock
    orders = {row["order"]: row for row in planned["orders"]}
    assert set(orders) == {"WO-1", "WO-3"}  # the open ones; WO-2 is completed
    assert orders["WO-1"]["late"] is True  # due 15:00, still running at 15:59
    running = [op for op in planned["operations"] if op["fixed"]]
    assert [(op["order"], op["operation"], op["machine"]) for op in running] == [
        ("WO-1", 10, CNC1)  # started on cnc-1 at 08:00: it stays there
    ]
    stored = read_plan_file(tmp_path / "plan.json")
    assert stored is not None and stored["operations"] == planned["operations"]
    assert call(api, "GET", "/api/v1/plan", 200)["operations"] == planned["operations"]

    chart = call(api, "GET", "/api/v1/plan/gantt", 200)
    assert (chart["from"], chart["now"]) == ("2026-11-22T16:00:00.000Z", "2026-11-23T07:59:00.000Z")
    assert chart["zone"] == "Asia/Hong_Kong" and chart["utc_offset_s"] == 8 * 3600
    assert chart["late_orders"] == ["WO-1"]
    lanes = {lane["machine"]: lane for lane in chart["machines"]}
    assert list(lanes) == [CNC1, ROBOT1, CNC2]  # the machines the routings name
    cnc1 = lanes[CNC1]
    assert [(b["order"], b["late"]) for b in cnc1["plan"]] == [("WO-1", True), ("WO-3", False)]
    assert cnc1["actual"] == [  # the lunch break (planned stop 12:00-12:30) cuts the bar
        {
            "order": "WO-1",
            "operation": 10,
            "start": "2026-11-23T00:00:00.000Z",
            "end": "2026-11-23T04:00:00.000Z",
            "running": False,
            "good": 500,
            "scrap": 15,
        },
        {
            "order": "WO-1",
            "operation": 10,
            "start": "2026-11-23T04:30:00.000Z",
            "end": "2026-11-23T07:59:00.000Z",  # running: up to the plant clock
            "running": True,
            "good": 260,
            "scrap": 5,
        },
    ]
    assert [(s["state"], s["reason"], s["start"]) for s in cnc1["stops"]] == [
        ("unplanned_stop", "UB-MECH", "2026-11-23T02:00:00.000Z"),
        ("planned_stop", "PB", "2026-11-23T04:00:00.000Z"),
    ]
    # WO-2 ran on cnc-2 from its start to its completion; then a stop nobody explained
    assert [(b["order"], b["start"], b["end"], b["good"]) for b in lanes[CNC2]["actual"]] == [
        ("WO-2", "2026-11-23T00:01:00.000Z", "2026-11-23T01:30:00.000Z", 20)
    ]
    assert lanes[CNC2]["stops"][0]["state"] == "unplanned_stop"
    # robot-1 only counted (no started event): the bar is the counts' span
    assert [(b["order"], b["good"]) for b in lanes[ROBOT1]["actual"]] == [("WO-1", 700)]

    window = call(api, "GET", "/api/v1/plan/gantt?from=2026-11-23T08:00&to=2026-11-23T12:00", 200)
    assert (window["from"], window["to"]) == (
        "2026-11-23T00:00:00.000Z",
        "2026-11-23T04:00:00.000Z",
    )


def test_repair_and_a_machine_taken_out(api: httpx.Client) -> None:
    call(api, "POST", "/api/v1/plan", 201, json={"time_limit": 1})
    repaired = call(
        api,
        "POST",
        "/api/v1/plan",
        201,
        json={"time_limit": 1, "repair": True, "down": ["cnc-1:1d"]},
    )
    assert repaired["plan"]["changes"] is not None
    wo3 = [op for op in repaired["operations"] if op["order"] == "WO-3" and op["operation"] == 10]
    assert wo3 and wo3[0]["machine"] == CNC2  # cnc-1 is out for a day: WO-3 goes to cnc-2


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"time_limit": 0}, 422, ["field 'time_limit'"]),
        ({"down": ["cnc-1"]}, 400, ["MACHINE:DURATION"]),
        ({"down": ["cnc-9:2h"]}, 404, ["down: 'cnc-9' is not a machine"]),
        ({"down": ["cnc-1:soon"]}, 400, ["'soon' is not a duration"]),
        ({"objective": "speed"}, 400, ["objective 'speed'"]),
        ({"colour": "red"}, 422, ["colour"]),
    ],
)
def test_bad_replans_are_refused_with_a_sentence(
    api: httpx.Client, body: dict[str, Any], status: int, words: list[str]
) -> None:
    error = call(api, "POST", "/api/v1/plan", status, json=body)["error"]
    assert error["status"] == status
    for word in words:
        assert word in error["message"], error["message"]
    bad = call(api, "GET", "/api/v1/plan/gantt?from=2026-11-24&to=2026-11-23", 400)["error"]
    assert bad["key"] == "invalid_time_range"


def test_the_plan_is_in_the_openapi_document(api: httpx.Client) -> None:
    paths = call(api, "GET", "/openapi.json", 200)["paths"]
    assert {"get", "post"} <= set(paths["/api/v1/plan"])
    assert "get" in paths["/api/v1/plan/gantt"]
    assert "409" in paths["/api/v1/plan"]["post"]["responses"]
    assert json.dumps(paths).count("planning") >= 3
