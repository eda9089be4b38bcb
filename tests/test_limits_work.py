"""Issue 15, findings 4 and 8: no request may ask for unbounded work.

- Query windows (finding 8): ``/api/v1/oee?from=1970-01-01&to=2100-01-01`` is cut to the days
  holding stored data; a window longer than ``MICROFAB_MAX_QUERY_DAYS`` within the data answers 422
  saying the limit; ``microfab oee`` does the same and takes more with ``--max-days``.
- Plans (finding 4): a horizon past 366 days or a model past the size limit is refused at once
  with 422 naming the field (exit 2 in ``microfab plan schedule``); a plan that outruns its wall
  clock or its memory is stopped, and the next re-plan is not refused with 409.
"""

from __future__ import annotations

import datetime as dt
import re
import time
import zoneinfo
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from microfab.cli import app as main_app
from microfab.errors import LimitError, TimeRangeError
from microfab.model.timerange import check_window, clamp_window, parse_time, query_window
from microfab.plan.limits import MAX_MODEL_SIZE, check_plan_size
from microfab.plan.plan_file import PlanFile
from microfab.store import EventStore
from microfab.track.plant import Plant
from webapp import CNC1, event, fill, serving

HKT = zoneinfo.ZoneInfo("Asia/Hong_Kong")
runner = CliRunner()


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).astimezone(dt.UTC)


# ---------------------------------------------------------------------------- windows, as data


def test_times_outside_1970_to_2200_are_refused_naming_the_field() -> None:
    for text in ("0001-01-01", "9999-12-31", "0001-01-01T00:00+14:00", "9999-12-31T23:59-12:00",
                 "1969-12-31T23:59Z", "2200-01-01T00:00+14:00"):  # fmt: skip
        with pytest.raises(TimeRangeError, match=re.escape(f"due: '{text}' is outside")):
            parse_time(text, HKT, field="due")
    assert parse_time("1970-01-01T00:00Z", HKT) == dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    assert parse_time("2199-12-31", HKT) == utc("2199-12-31T00:00+08:00")
    assert parse_time("1970-01-01", HKT) == utc("1970-01-01T00:00+08:00")  # before 1970 in UTC


def test_a_window_is_cut_to_the_site_days_holding_data() -> None:
    span = (utc("2026-11-20T07:50+08:00"), utc("2026-11-23T15:59+08:00"))
    start, end = utc("1970-01-01T00:00Z"), utc("2100-01-01T00:00Z")
    assert clamp_window(start, end, span, HKT) == (
        utc("2026-11-20T00:00+08:00"),
        utc("2026-11-24T00:00+08:00"),
    )
    inside = (utc("2026-11-21T08:00+08:00"), utc("2026-11-22T08:00+08:00"))
    assert clamp_window(*inside, span, HKT) == inside  # a window within the data is as given
    assert clamp_window(None, None, span, HKT) == (None, None)
    assert clamp_window(start, end, None, HKT) == (start, end)  # nothing stored: as given
    before = clamp_window(utc("2001-01-01T00:00Z"), utc("2001-02-01T00:00Z"), span, HKT)
    assert before[0] is not None and before[1] is not None and before[1] > before[0]


def test_a_window_longer_than_the_cap_is_refused_saying_the_limit() -> None:
    start, end = utc("2026-01-01T00:00Z"), utc("2026-03-01T00:00Z")
    with pytest.raises(LimitError, match=r"^from/to: .* is 59 days; one query covers at most 30"):
        check_window(start, end, 30)
    assert check_window(start, end, 59) == (start, end)
    span = (utc("2020-01-01T00:00Z"), utc("2026-03-01T00:00Z"))
    # an open side over more data than the cap: the last (or first) 30 days, not a refusal
    assert check_window(None, None, 30, span=span) == (span[1] - dt.timedelta(days=30), None)
    assert check_window(None, end, 30, span=span) == (end - dt.timedelta(days=30), end)
    assert check_window(start, None, 30, span=span) == (start, start + dt.timedelta(days=30))
    with pytest.raises(LimitError, match="--from/--to"):
        query_window("2020-01-01", "2026-01-01", HKT, span=None, max_days=366,
                     fields=("--from", "--to"))  # fmt: skip


# ---------------------------------------------------------------------------- windows, served


@pytest.fixture
def four_days(store: EventStore) -> EventStore:
    """The small plant, and cnc-1 running on 20 November too: data over four site days."""
    fill(store)
    earlier = event("s-early", "2026-11-20T09:00:00+08:00", CNC1, "state", state="running")
    assert store.append([earlier]).inserted == 1
    return store


@pytest.fixture
def api(four_days: EventStore) -> Iterator[httpx.Client]:
    with serving(four_days) as (_, client):
        yield client


def test_an_oee_window_over_130_years_is_cut_to_the_stored_days(api: httpx.Client) -> None:
    began = time.monotonic()
    wide = api.get("/api/v1/oee", params={"from": "1970-01-01", "to": "2100-01-01"})
    assert wide.status_code == 200, wide.text
    assert time.monotonic() - began < 10  # it took 21 s of CPU before the cut
    days = api.get("/api/v1/oee", params={"from": "2026-11-20", "to": "2026-11-24"})
    assert wide.json() == days.json()
    row = wide.json()[0]
    assert (row["from"], row["to"]) == ("2026-11-19T16:00:00.000Z", "2026-11-23T16:00:00.000Z")
    pareto = api.get("/api/v1/downtime", params={"from": "1970-01-01", "to": "2100-01-01"})
    assert pareto.status_code == 200
    assert pareto.json() == api.get("/api/v1/downtime?from=2026-11-20&to=2026-11-24").json()


def test_a_window_past_the_configured_cap_answers_422_saying_the_limit(
    api: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MICROFAB_MAX_QUERY_DAYS", "2")
    for url in ("/api/v1/oee", "/api/v1/downtime.csv", "/api/v1/plan/gantt"):
        answer = api.get(url, params={"from": "2026-11-01", "to": "2026-12-01"})
        assert answer.status_code == 422, (url, answer.text)
        error = answer.json()["error"]
        assert error["key"] == "over_limit"
        assert "one query covers at most 2 days (MICROFAB_MAX_QUERY_DAYS)" in error["message"]
        assert error["message"].startswith("from/to: ")
    # no window: the last two days of the data, not a refusal
    rows = api.get("/api/v1/oee").json()
    assert rows and rows[0]["from"] == "2026-11-21T07:59:00.000Z"  # the newest event − 2 days
    assert api.get("/api/v1/oee", params={"from": "2026-11-23"}).status_code == 200


def test_the_cli_windows_are_cut_and_capped_the_same_and_max_days_allows_more(
    four_days: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    wide = ["--from", "1970-01-01", "--to", "2100-01-01", "--db", four_days.url, "--json"]
    result = runner.invoke(main_app, ["oee", *wide])
    assert result.exit_code == 0, (result.stdout, result.exception)
    assert '"from": "2026-11-19T16:00:00.000Z"' in result.stdout
    monkeypatch.setenv("MICROFAB_MAX_QUERY_DAYS", "2")
    for command in ("oee", "downtime"):
        refused = runner.invoke(main_app, [command, *wide])
        assert isinstance(refused.exception, LimitError), refused.stdout
        assert refused.exception.exit_code == 2
        assert str(refused.exception).startswith("--from/--to: ")
        assert "at most 2 days" in str(refused.exception)
        allowed = runner.invoke(main_app, [command, *wide, "--max-days", "5"])
        assert allowed.exit_code == 0, (allowed.stdout, allowed.exception)


# ---------------------------------------------------------------------------- plans


def test_the_model_size_is_bounded_before_any_work() -> None:
    check_plan_size(500, 20, dt.timedelta(days=366))
    assert MAX_MODEL_SIZE >= 500 * 20 * 366
    with pytest.raises(LimitError, match=r"^horizon: 2000 operations × 20 machines × 366 days"):
        check_plan_size(2000, 20, dt.timedelta(days=366))
    with pytest.raises(LimitError, match=r"^--horizon: 400 days is longer than the 366 days"):
        check_plan_size(1, 1, dt.timedelta(days=400), "--horizon")


@pytest.fixture
def plant(store: EventStore) -> Plant:
    return Plant(fill(store))


def test_a_huge_horizon_answers_422_at_once_and_the_next_replan_runs(
    plant: Plant, tmp_path: Path
) -> None:
    with serving(plant.store, plan_file=tmp_path / "plan.json") as (_, api):
        began = time.monotonic()
        huge = api.post("/api/v1/plan", json={"time_limit": 0.5, "horizon": "999999d"})
        assert time.monotonic() - began < 5
        assert huge.status_code == 422, huge.text
        error = huge.json()["error"]
        assert error["key"] == "over_limit"
        assert error["message"] == (
            "horizon: '999999d' is longer than the 366 days a plan may cover; give 366d or less"
        )
        for text in ("367d", "9" * 400 + "d"):
            assert api.post("/api/v1/plan", json={"horizon": text}).status_code == 422
        down = api.post("/api/v1/plan", json={"down": ["cnc-1:999999999999d"]})
        assert down.status_code == 422 and down.json()["error"]["message"].startswith("down: ")
        assert api.post("/api/v1/plan", json={"time_limit": 0.5}).status_code == 201


def test_a_plan_past_its_wall_clock_is_stopped_and_the_lock_released(
    plant: Plant, tmp_path: Path
) -> None:
    target = PlanFile(tmp_path / "plan.json", wall_s=0.2)
    began = time.monotonic()
    with pytest.raises(LimitError, match=r"^the plan did not finish within 0 s and was stopped"):
        target.replan(plant, time_limit=30)
    assert time.monotonic() - began < 15  # stopped, not waited out
    assert target.read() is None  # nothing written
    target.wall_s = None
    document, saved = target.replan(plant, time_limit=0.5)  # not refused as running
    assert saved and document["plan"]["status"] in ("optimal", "feasible")


def test_a_plan_past_its_memory_limit_is_stopped(plant: Plant, tmp_path: Path) -> None:
    target = PlanFile(tmp_path / "plan.json", memory_mb=32)
    with pytest.raises(LimitError, match="memory"):
        target.replan(plant, time_limit=0.5)
    assert target.read() is None
    target.memory_mb = 2048
    assert target.replan(plant, time_limit=0.5)[1] is True


def test_plan_schedule_refuses_a_huge_horizon_with_exit_2(plant: Plant, tmp_path: Path) -> None:
    args = ["plan", "schedule", "--db", plant.store.url, "--out", str(tmp_path / "p.json")]
    result = runner.invoke(main_app, [*args, "--horizon", "999999d"])
    assert isinstance(result.exception, LimitError), (result.stdout, result.exception)
    assert result.exception.exit_code == 2
    assert str(result.exception).startswith("--horizon: '999999d' is longer than the 366 days")
    assert not (tmp_path / "p.json").exists()
