"""The production figures of docs/production.md: the worked example (tests/data/
production-example.yaml) through every view that shows it, on SQLite and PostgreSQL; the read
model's upkeep (late events, rebuild, corrupt rows, lag, a new factory version)."""

from __future__ import annotations

import datetime as dt
import json
import random
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from typer.testing import CliRunner

from conftest import DATA
from microfab.cli import app
from microfab.model.events import EVENT_ADAPTER, Event
from microfab.model.factory import Factory
from microfab.model.factory_file import parse_factory
from microfab.store import EventStore
from microfab.store.production_views import (
    catch_up,
    hour_counts,
    rebuild,
    skipped_events,
    spans_between,
    view_lag,
)
from microfab.store.view_follower import ViewFollower
from microfab.track.oee import oee_rows
from microfab.track.orders import get_order
from microfab.track.production import hourly_line_output, orphans, station_counts
from microfab.track.shift_report import day_bounds

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = yaml.safe_load((DATA / "production-example.yaml").read_text(encoding="utf-8"))
DAY = dt.date.fromisoformat(EXAMPLE["day"])
HKT = dt.timezone(dt.timedelta(hours=8))
LINE = "kt/plant/line1"
runner = CliRunner()


def at(hhmm: str) -> dt.datetime:
    hour, minute = (int(x) for x in hhmm.split(":"))
    return dt.datetime.combine(DAY, dt.time(hour, minute), HKT)


def path(machine: str) -> str:
    cell = "utility" if machine == "cnc-2" else "machining"
    return f"{LINE}/{cell}/{machine}"


def example_events() -> list[Event]:
    events: list[Any] = []
    for o in EXAMPLE["orders"]:
        events.append(
            {
                "id": f"order-{o['order']}",
                "ts": at(o["at"]),
                "machine": path(o["machine"]),
                "stream": "order",
                "order": o["order"],
                "event": "released",
                "product": o["product"],
                "quantity": o["quantity"],
            }
        )
    for n, c in enumerate(EXAMPLE["counts"]):
        events.append(
            {
                "id": f"count-{n}",
                "ts": at(c["at"]),
                "machine": path(c["machine"]),
                "stream": "count",
                "order": c["order"],
                "operation": c["operation"],
                "good": c["good"],
                "scrap": c["scrap"],
            }
        )
    return [EVENT_ADAPTER.validate_python(e) for e in events]


@pytest.fixture
def small(store: EventStore) -> tuple[EventStore, Factory]:
    factory = parse_factory((DATA / "factory-small.yaml").read_text(encoding="utf-8"))
    store.apply_factory(factory, "small.yaml")
    return store, factory


def invoke(*args: str) -> str:
    result = runner.invoke(app, list(args), env={"COLUMNS": "160"})
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result.stdout


def test_the_worked_example_in_every_view(small: tuple[EventStore, Factory]) -> None:
    store, factory = small
    store.append(example_events())
    expected = EXAMPLE["expected"]
    start, end = day_bounds(DAY, factory, LINE)

    # orders: the service, orders list --json, orders show --json, the shift report JSON
    listed = {
        o["order"]: o for o in json.loads(invoke("orders", "list", "--json", "--db", store.url))
    }
    report = json.loads(
        invoke(
            "report",
            "shift",
            "--day",
            EXAMPLE["day"],
            "--line",
            "line1",
            "--json",
            "--db",
            store.url,
        )
    )
    in_report = {o["order"]: o for o in report["orders"]}
    for want in expected["orders"]:
        order = want["order"]
        shown = json.loads(invoke("orders", "show", order, "--json", "--db", store.url))
        view = get_order(store, factory, order)
        for source in (listed[order], shown, view.to_json()):
            assert (source["good"], source["scrap"], source["progress"]) == (
                want["good"],
                want["scrap"],
                want["progress"],
            ), (order, source)
        assert (in_report[order]["good"], in_report[order]["scrap"]) == (
            want["good"],
            want["scrap"],
        )
    assert sorted(in_report) == [o["order"] for o in expected["orders"]]

    # the line: oee --level line --json, and the report's output_good
    (line,) = json.loads(
        invoke(
            "oee",
            "--level",
            "line",
            "--from",
            EXAMPLE["day"],
            "--to",
            "2026-11-24",
            "--json",
            "--db",
            store.url,
        )
    )
    want_line = expected["line"]
    assert {k: line[k] for k in want_line} == want_line
    assert report["output_good"] == want_line["output_good"]
    assert report["output_good"] == sum(o["good"] for o in report["orders"])

    # stations: the report JSON, the service, and OEE per machine (inside working time)
    machines = {m["machine"].rsplit("/", 1)[1]: m for m in report["machines"]}
    counts = station_counts(store, [path(s["machine"]) for s in expected["stations"]], start, end)
    oee = {
        r.machine.rsplit("/", 1)[1]: r.figures
        for r in oee_rows(store, factory, start=start, end=end)
    }
    for want in expected["stations"]:
        name = want["machine"]
        got = machines[name]
        assert (got["good"], got["scrap"], got["outside_total"]) == (
            want["good"],
            want["scrap"],
            want["outside_total"],
        )
        assert counts[path(name)].to_json() == got
        assert (oee[name].good, oee[name].scrap, oee[name].outside_total) == (
            want["good"],
            want["scrap"],
            want["outside_total"],
        )

    # output per hour adds up to the line output
    hours = [start + dt.timedelta(hours=h) for h in range(24)]
    values = hourly_line_output(store, factory, LINE, hours)
    by_hour = {f"{h.astimezone(HKT):%H:%M}": v for h, v in zip(hours, values, strict=True) if v}
    assert by_hour == expected["hourly"]
    assert sum(values) == want_line["output_good"]

    # orphans: listed, and still counted for their machine (robot-1's 12 above)
    assert [
        {k: o.to_json()[k] for k in ("order", "operation", "good", "scrap")}
        | {"machine": o.machine.rsplit("/", 1)[1]}
        for o in orphans(store, factory)
    ] == expected["orphans"]
    listed_orphans = json.loads(invoke("orders", "orphans", "--json", "--db", store.url))
    assert [(o["order"], o["operation"]) for o in listed_orphans] == [("WO-B", 30)]


def test_the_docs_show_the_worked_examples_figures() -> None:
    doc = (ROOT / "docs" / "production.md").read_text(encoding="utf-8")
    expected = EXAMPLE["expected"]
    for o in expected["orders"]:
        assert (
            f"| {o['order']} | {o['good']} | {o['scrap']} | {round(o['progress'] * 100)} % |" in doc
        )
    for name, value in expected["line"].items():
        assert f"| {name} | {value} |" in doc
    for s in expected["stations"]:
        assert f"| {s['machine']} | {s['good']} | {s['scrap']} | {s['outside_total']} |" in doc
    for hour, value in expected["hourly"].items():
        assert f"| {hour} | {value} |" in doc
    for c in EXAMPLE["counts"]:
        assert (
            f"| {c['at']} | {c['machine']} |" in doc
            and f"| {c['operation']} | {c['good']} | {c['scrap']} |" in doc
        )


def _rows(store: EventStore) -> list[Any]:
    return hour_counts(
        store, dt.datetime(2000, 1, 1, tzinfo=dt.UTC), dt.datetime(2100, 1, 1, tzinfo=dt.UTC)
    )


def test_late_and_out_of_order_events_land_in_their_hour(small: tuple[EventStore, Factory]) -> None:
    store, _ = small
    events = example_events()
    in_order = _rows_after(store, events)
    late = events[:]
    random.Random(4).shuffle(late)
    # a store-and-forward replay: the same events in other batches, hours out of order
    for start in range(0, len(late), 3):
        store.append(late[start : start + 3])
        catch_up(store)
    assert _rows(store) == in_order


def _rows_after(store: EventStore, events: list[Event]) -> list[Any]:
    """The rows the events give in a store of their own (same back end), appended in order."""
    from microfab.store import open_store

    url = store.url
    if url.startswith("sqlite"):
        other_url = url.replace("store.db", "reference.db")
        with open_store(other_url) as other:
            found = store.factory()
            assert found is not None
            other.apply_factory(found[1], "small.yaml")
            other.append(events)
            return _rows(other)
    # PostgreSQL: compute in this store, then empty it again (rebuild gives the same rows)
    store.append(events)
    rows = _rows(store)
    with store.engine.begin() as conn:
        conn.execute(text("DELETE FROM events"))
    rebuild(store)
    assert _rows(store) == []
    return rows


def test_rebuild_is_idempotent_and_names_a_corrupt_row(small: tuple[EventStore, Factory]) -> None:
    store, _ = small
    store.append(example_events())
    before = _rows(store)
    assert before and view_lag(store).behind == 0
    first = rebuild(store)
    assert _rows(store) == before and not first.skipped
    out = invoke("db", "rebuild-views", "--db", store.url)
    assert "production views rebuilt: 8 counts" in out and _rows(store) == before

    # a count whose body was damaged in the database: named, skipped, the rest still counted
    with store.engine.begin() as conn:
        conn.execute(
            text("UPDATE events SET body = :body WHERE id = 'count-0'"),
            {"body": json.dumps({"good": "six", "scrap": 1, "order": "WO-A", "operation": 10})},
        )
    result = runner.invoke(app, ["db", "rebuild-views", "--db", store.url])
    assert result.exit_code == 0, result.stderr
    assert "count-0" in result.stderr and "good/scrap are not integers" in result.stderr
    assert "1 unreadable events skipped" in result.stdout
    assert [s.event_id for s in skipped_events(store)] == ["count-0"]
    rows = _rows(store)
    assert sum(r.good for r in rows) == sum(r.good for r in before) - 6
    status = json.loads(invoke("db", "status", "--json", "--db", store.url))
    assert status["views"][0]["skipped"][0]["event"] == "count-0"


def test_lag_is_reported_until_a_read_catches_up(small: tuple[EventStore, Factory]) -> None:
    store, factory = small
    events = example_events()
    store.append(events)  # the append leaves the model to its readers (and a ViewFollower)
    assert view_lag(store).behind == len(events)
    catch_up(store)
    assert view_lag(store).behind == 0
    # a new factory version (its calendars decide working time): the model is behind until the
    # next read rebuilds it, and says so
    changed = factory.model_copy(deep=True)
    changed.calendars[0].shifts[0].breaks.clear()
    store.apply_factory(changed, "changed.yaml")
    status = json.loads(invoke("db", "status", "--json", "--db", store.url))
    assert status["views"][0]["behind"] == store.last_seq() == len(events)
    assert "behind by 10 events" in invoke("db", "status", "--db", store.url)
    # any read catches the model up first: the figures never lag the log
    assert get_order(store, factory, "WO-B").good == 4
    assert view_lag(store).behind == 0


def test_a_new_factory_version_resplits_working_time(small: tuple[EventStore, Factory]) -> None:
    store, factory = small
    store.append(example_events())
    start, end = day_bounds(DAY, factory, LINE)
    assert station_counts(store, [path("cnc-1")], start, end)[path("cnc-1")].outside_total == 4
    # no lunch break any more: the 12:10 count is now inside working time
    longer = factory.model_copy(deep=True)
    longer.calendars[0].shifts[0].breaks.clear()
    store.apply_factory(longer, "no-lunch.yaml")
    assert view_lag(store).checkpoint == 0  # to be rebuilt on the next read
    cnc1 = station_counts(store, [path("cnc-1")], start, end)[path("cnc-1")]
    assert (cnc1.good, cnc1.outside_total) == (10, 0)


def test_late_state_changes_reshape_the_spans_they_land_in(
    store: EventStore, tmp_path: Path
) -> None:
    from microfab.connect.publisher import ListPublisher
    from microfab.sim.engine import DEFAULT_START, FactorySimulation
    from microfab.sim.scenario import load_scenario
    from microfab.store import open_store

    scenario = load_scenario("food-line")
    publisher = ListPublisher()
    FactorySimulation(scenario, publisher, seed=3).run_until(6 * 3600)
    events = publisher.events
    start, end = DEFAULT_START, DEFAULT_START + dt.timedelta(hours=6)
    with open_store(f"sqlite:///{tmp_path}/in-order.db") as reference:
        reference.apply_factory(scenario.factory, scenario.factory_source)
        reference.append(events)
        expected = [
            r.to_json() for r in oee_rows(reference, scenario.factory, start=start, end=end)
        ]
    # the same events on this back end in shuffled batches, the model caught up after each
    store.apply_factory(scenario.factory, scenario.factory_source)
    shuffled = events[:]
    random.Random(11).shuffle(shuffled)
    for first in range(0, len(shuffled), 500):
        store.append(shuffled[first : first + 500])
        catch_up(store)
    got = [r.to_json() for r in oee_rows(store, scenario.factory, start=start, end=end)]
    assert got == expected
    rebuild(store)
    assert [
        r.to_json() for r in oee_rows(store, scenario.factory, start=start, end=end)
    ] == expected


def test_dashboard_csv_has_the_line_row_and_healthz_the_views(
    small: tuple[EventStore, Factory],
) -> None:
    import csv
    import html
    import io
    import re

    from webapp import serving

    store, _ = small
    store.append(example_events())
    with serving(store) as (_, client):
        page = client.get("/", headers={"Accept": "text/html"}).text
        link = re.search(r'href="(/api/v1/oee\.csv\?[^"]+)" data-export="oee"', page)
        assert link is not None
        rows = list(csv.DictReader(io.StringIO(client.get(html.unescape(link.group(1))).text)))
        health = client.get("/healthz").json()
    (line,) = [r for r in rows if r["level"] == "line"]
    assert (line["machine"], line["output_good"], line["good"]) == (LINE, "13", "9")
    assert {r["machine"].rsplit("/", 1)[1] for r in rows if r["level"] == "machine"} == {
        "cnc-1",
        "robot-1",
        "cnc-2",
    }
    # the page says why the tiles and line output differ from OEE, in one line
    assert "5 units counted outside working time are not in it" in page
    assert health["views"] == [
        {"view": "production_hourly", "checkpoint": store.last_seq(), "behind": 0, "skipped": 0}
    ]


def test_an_unreadable_state_change_is_named_and_the_spans_go_on(
    small: tuple[EventStore, Factory],
) -> None:
    store, factory = small
    machine = path("cnc-1")
    store.append(
        [
            EVENT_ADAPTER.validate_python(
                {"id": f"state-{n}", "ts": at(hhmm), "machine": machine, "stream": "state", **f}
            )
            for n, (hhmm, f) in enumerate(
                [
                    ("08:00", {"state": "running"}),
                    ("10:00", {"state": "unplanned_stop", "reason": "UB-MECH"}),
                    ("11:00", {"state": "running"}),
                ]
            )
        ]
    )
    with store.engine.begin() as conn:
        conn.execute(
            text("UPDATE events SET body = :body WHERE id = 'state-1'"),
            {"body": json.dumps({"state": 5})},
        )
    result = runner.invoke(app, ["db", "rebuild-views", "--db", store.url])
    assert result.exit_code == 0, result.stderr
    assert "state-1" in result.stderr and "state is not a state name" in result.stderr
    start, end = at("08:00"), at("12:00")
    (row,) = oee_rows(store, factory, machine="cnc-1", start=start, end=end)
    assert row.figures.run_s == 4 * 3600  # running from 08:00 on: the stop was not readable


def test_the_carbon_figures_divide_by_the_order_boards_good(
    small: tuple[EventStore, Factory],
) -> None:
    """Per order, the carbon footprint's units are the order board's good (good at the output
    operation, counts outside working time included), and its units used up add the scrap."""
    from microfab.track.orders import list_orders

    store, factory = small
    meter = [
        EVENT_ADAPTER.validate_python(
            {"id": f"kwh-{n}", "ts": at(t), "machine": path(m), "stream": "energy", "kwh": v}
        )
        for n, (t, m, v) in enumerate(
            [("09:00", "cnc-1", 10.0), ("17:00", "cnc-1", 30.0), ("09:00", "robot-1", 5.0),
             ("17:00", "robot-1", 9.0)]
        )
    ]  # fmt: skip
    store.append([*example_events(), *meter])
    board = {row.order: row for row in list_orders(store, factory)}  # the order board's rows
    for order, (good, scrap) in {"WO-A": (9, 2), "WO-B": (4, 1)}.items():
        doc = json.loads(
            invoke("carbon", "footprint", "--order", order, "--allow-missing", "--json",
                   "--db", store.url)
        )  # fmt: skip
        assert doc["units"] == board[order].good == good
        assert doc["units_material"] == good + scrap


def test_shift_and_day_oee_reads_the_same_spans_as_the_state_changes_give(
    store: EventStore,
) -> None:
    """OEE per shift or day cuts the stored spans; over any range they are the states the raw
    state changes give (the time before the first change unknown)."""
    from microfab.connect.publisher import ListPublisher
    from microfab.model.oee import state_spans
    from microfab.sim.engine import DEFAULT_START, FactorySimulation
    from microfab.sim.scenario import load_scenario
    from microfab.store.production import state_transitions
    from microfab.store.production_views import spans_between
    from microfab.track.oee import _clipped

    scenario = load_scenario("food-line")
    publisher = ListPublisher()
    FactorySimulation(scenario, publisher, seed=5).run_until(4 * 3600)
    store.apply_factory(scenario.factory, scenario.factory_source)
    store.append(publisher.events)
    paths = [ref.path for ref in scenario.factory.machines()]
    rng = random.Random(2)
    for _ in range(6):
        a, b = sorted(rng.uniform(-1800, 5 * 3600) for _ in range(2))
        first = DEFAULT_START + dt.timedelta(seconds=a)
        last = DEFAULT_START + dt.timedelta(seconds=b + 1)
        raw = state_transitions(store, paths, first, last)
        stored = spans_between(store, paths, first, last)
        for machine in paths:
            initial, changes = raw[machine]
            assert _clipped(stored[machine], first, last) == state_spans(
                changes, first, last, initial
            ), (machine, first, last)
    by_shift = oee_rows(store, scenario.factory, by="shift")
    assert by_shift and all(r.figures.availability is not None for r in by_shift if r.shift)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_state_spans_from_any_arrival_order_equal_a_rebuild(
    store: EventStore, data: st.DataObject
) -> None:
    """Repeated reports of the same state, changes at the same instant and late changes, stored
    in any order and batching: the spans kept up on each append are the spans a rebuild derives
    from the whole log (the append re-reads only from the span a change lands in)."""

    factory = parse_factory((DATA / "factory-small.yaml").read_text(encoding="utf-8"))
    store.apply_factory(factory, "small.yaml")
    machine = path("cnc-1")
    run = data.draw(st.uuids()).hex[:8]  # the store lives across examples: fresh ids each time
    changes = data.draw(
        st.lists(
            st.tuples(
                st.integers(0, 40),  # minute after 08:00; repeats give same-instant changes
                st.sampled_from(["running", "idle", "unplanned_stop"]),
                st.sampled_from([None, "UB-MECH"]),
            ),
            min_size=1,
            max_size=25,
        )
    )
    events = [
        EVENT_ADAPTER.validate_python(
            {
                "id": f"span-{run}-{n}",
                "ts": at("08:00") + dt.timedelta(minutes=minute),
                "machine": machine,
                "stream": "state",
                "state": state,
                "reason": reason if state == "unplanned_stop" else None,
            }
        )
        for n, (minute, state, reason) in enumerate(changes)
    ]
    order = data.draw(st.permutations(events))
    cuts = sorted(data.draw(st.lists(st.integers(1, len(order)), max_size=4)))
    window = (at("07:00"), at("10:00"))
    for a, b in zip([0, *cuts], [*cuts, len(order)], strict=True):
        store.append(order[a:b])
        catch_up(store)
    kept = spans_between(store, [machine], *window)[machine]
    rebuild(store)
    assert kept == spans_between(store, [machine], *window)[machine]


def test_a_view_follower_catches_the_model_up_after_commits(
    small: tuple[EventStore, Factory],
) -> None:
    store, _ = small
    events = example_events()
    with ViewFollower(store, every_s=0.05) as follower:
        store.append(events[:5])
        store.append(events[5:])
        deadline = time.monotonic() + 30
        while view_lag(store).behind and time.monotonic() < deadline:
            time.sleep(0.02)
        assert view_lag(store).behind == 0 and follower.runs >= 1
    runs = follower.runs
    store.append([e.model_copy(update={"id": f"{e.id}-again"}) for e in events[:1]])
    time.sleep(0.2)
    assert follower.runs == runs and view_lag(store).behind == 1  # closed: no longer following
