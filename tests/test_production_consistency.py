"""Every view shows the same production figures (docs/production.md), for random simulated days
of both scenarios, on SQLite and PostgreSQL.

Per order, ``orders list --json``, ``orders show --json``, the shift report JSON (summed over the
days), the REST API and the order board agree exactly on good, scrap and progress, and they equal
the figures recomputed here from the raw count events (good at the routing's last operation, scrap
at any); the carbon accounting and ``carbon footprint --order`` divide by the same good units. Per line, ``oee --level line --json``'s ``output_good`` is the sum of last-operation good
counts. Per machine, OEE's good and total are the station's counts inside working time (recomputed
here from the raw events and the line's calendar). The hourly output trend adds up to each day's
output.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from conftest import pg_create_database, pg_drop_database
from microfab.cli import app
from microfab.connect.publisher import ListPublisher
from microfab.green.readings import account_period, period_range
from microfab.green.settings import CarbonSettings
from microfab.model.calendar import working_windows
from microfab.model.events import PartCount
from microfab.model.factory import Factory
from microfab.sim.engine import DEFAULT_START, FactorySimulation
from microfab.sim.scenario import load_scenario
from microfab.store import EventStore, open_store
from microfab.track import dashboard
from microfab.track.oee import oee_rows
from microfab.track.plant import Plant
from microfab.track.production import hourly_line_output
from webapp import serving

runner = CliRunner()


def invoke(*args: str) -> Any:
    result = runner.invoke(app, [*args, "--json"], env={"COLUMNS": "160"})
    assert result.exit_code == 0, (args, result.stdout, result.stderr, result.exception)
    return json.loads(result.stdout)


@contextmanager
def simulated_store(
    backend: str, folder: Path, scenario: str, seed: int, start: dt.datetime, hours: int
) -> Iterator[tuple[EventStore, Factory]]:
    url = (
        f"sqlite:///{folder}/{uuid.uuid4().hex[:8]}.db"
        if backend == "sqlite"
        else pg_create_database()
    )
    try:
        with open_store(url) as store:
            loaded = load_scenario(scenario)
            store.apply_factory(loaded.factory, loaded.factory_source)
            publisher = ListPublisher()
            FactorySimulation(loaded, publisher, seed=seed, start=start).run_until(hours * 3600)
            store.append(publisher.events)
            yield store, loaded.factory
    finally:
        if backend != "sqlite":
            pg_drop_database(url)


def raw_figures(
    store: EventStore, factory: Factory
) -> tuple[dict[str, tuple[int, int]], dict[str, list[int]], dict[str, int], dict[dt.date, int]]:
    """From the raw count events, without the read model: per order (good at the routing's last
    operation, scrap anywhere); per machine [good, scrap, outside] inside working time; per line
    the output; per site day the output."""
    products = {p.sku: p for p in factory.products}
    status = {o.order: o for o in store.order_status()}
    refs = {ref.path: ref for ref in factory.machines()}
    orders: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    machines: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    lines: dict[str, int] = defaultdict(int)
    days: dict[dt.date, int] = defaultdict(int)
    windows: dict[tuple[str, dt.date], list[Any]] = {}
    for stored in store.events(stream="count"):
        ev = stored.event
        assert isinstance(ev, PartCount)
        ref = refs[ev.machine]
        zone = ref.site.zone
        day = ev.ts.astimezone(zone).date()
        key = (ev.machine, day)
        if key not in windows:
            begin = dt.datetime.combine(day, dt.time(0), zone)
            windows[key] = working_windows(
                factory.calendar(ref.line.calendar),
                begin - dt.timedelta(days=1),
                begin + dt.timedelta(days=2),
                zone,
                ref.site.holidays,
            )
        inside = any(w.start <= ev.ts < w.end for w in windows[key])
        cell = machines[ev.machine]
        if inside:
            cell[0] += ev.good
            cell[1] += ev.scrap
        else:
            cell[2] += ev.good + ev.scrap
        if ev.order is None:
            continue
        product = products.get(status[ev.order].product or "") if ev.order in status else None
        assert product is not None, "the simulator only counts orders it released"
        orders[ev.order][1] += ev.scrap
        if ev.operation == product.routing[-1].seq:
            orders[ev.order][0] += ev.good
            lines[f"{ref.site.id}/{ref.area.id}/{ref.line.id}"] += ev.good
            days[day] += ev.good
    return {o: (g, s) for o, (g, s) in orders.items()}, machines, lines, days


BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]


@pytest.mark.parametrize("backend", BACKENDS)
@settings(
    max_examples=4,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    scenario=st.sampled_from(["food-line", "moulding-cell"]),
    seed=st.integers(1, 10_000),
    start_day=st.integers(0, 6),
    start_hour=st.integers(-8, 10),
    hours=st.integers(3, 30),
)
def test_every_view_shows_the_same_figures(
    backend: str,
    tmp_path: Path,
    scenario: str,
    seed: int,
    start_day: int,
    start_hour: int,
    hours: int,
) -> None:
    start = DEFAULT_START + dt.timedelta(days=start_day, hours=start_hour)
    with simulated_store(backend, tmp_path, scenario, seed, start, hours) as (store, factory):
        raw_orders, raw_machines, raw_lines, raw_days = raw_figures(store, factory)
        db = ("--db", store.url)
        quantity = {o.order: o.quantity for o in store.order_status()}

        def figures(o: dict[str, Any]) -> tuple[int, int, float | None]:
            return (o["good"], o["scrap"], o["progress"])

        def expected(order: str) -> tuple[int, int, float | None]:
            good, scrap = raw_orders.get(order, (0, 0))
            qty = quantity[order]
            return (good, scrap, round(good / qty, 4) if qty else None)

        listed = {o["order"]: o for o in invoke("orders", "list", *db)}
        assert listed, "the simulation released orders"
        for order, o in listed.items():
            assert figures(o) == expected(order), order
        for order in list(listed)[:4]:
            assert figures(invoke("orders", "show", order, *db)) == expected(order)

        # the carbon figures divide by the same good units (the whole log as the period)
        finished = [order for order, o in listed.items() if o["good"] > 0]
        if finished:
            whole = period_range(store, factory, None, None)
            period = account_period(store, factory, CarbonSettings(), *whole)
            for order in finished:
                assert period.account.output_units[order] == listed[order]["good"], order
            carbon = invoke("carbon", "footprint", "--order", finished[0], "--allow-missing", *db)
            assert carbon["units"] == listed[finished[0]]["good"]

        # the shift report, day by day, adds up to each order's output
        zone = factory.sites[0].zone
        first_day = start.astimezone(zone).date()
        last_day = (start + dt.timedelta(hours=hours)).astimezone(zone).date()
        reported: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        day = first_day
        plant = Plant(store)
        line = next(iter(raw_lines), None)
        while day <= last_day:
            report = invoke("report", "shift", "--day", day.isoformat(), *db)
            line = report["line"]
            assert report["output_good"] == sum(o["good"] for o in report["orders"])
            assert report["output_good"] == raw_days.get(day, 0), day
            for o in report["orders"]:
                reported[o["order"]][0] += o["good"]
                reported[o["order"]][1] += o["scrap"]
            # the hourly output trend adds up to the day's output
            midnight = dt.datetime.combine(day, dt.time(0), zone).astimezone(dt.UTC)
            hours_of_day = [midnight + dt.timedelta(hours=h) for h in range(24)]
            trend = hourly_line_output(store, factory, report["line"], hours_of_day)
            assert sum(trend) == report["output_good"], day
            day += dt.timedelta(days=1)
        for order, (good, scrap) in reported.items():
            assert (good, scrap) == expected(order)[:2], order
        assert {o for o, (g, s) in reported.items() if g or s} == {
            o for o, (g, s) in raw_orders.items() if g or s
        }

        # the line: output_good is the sum of last-operation good counts, never a station sum
        for row in invoke("oee", "--level", "line", *db):
            assert row["output_good"] == raw_lines.get(row["line"], 0), row["line"]
        # per machine: OEE good / total are the station's counts inside working time
        for row in invoke("oee", *db):
            good, scrap, outside = raw_machines.get(row["machine"], [0, 0, 0])
            assert (row["good"], row["total"], row["outside_total"]) == (
                good,
                good + scrap,
                outside,
            ), row["machine"]

        # state times: whole-range totals from the state spans read model (by machine) equal the
        # spans cut from the raw state changes (by day), over each whole site day
        day = first_day
        while day <= last_day:
            begin = dt.datetime.combine(day, dt.time(0), zone).astimezone(dt.UTC)
            finish = begin + dt.timedelta(days=1)
            whole = oee_rows(store, factory, start=begin, end=finish)
            cut = oee_rows(store, factory, start=begin, end=finish, by="day")
            if not cut:  # a day without working time has no day rows
                assert all(r.figures.working_s == 0 for r in whole)
                day += dt.timedelta(days=1)
                continue
            assert len(whole) == len(cut)
            for a, b in zip(whole, cut, strict=True):
                assert a.machine == b.machine
                fa, fb = a.figures, b.figures
                assert fa.run_s == pytest.approx(fb.run_s, abs=1e-6), a.machine
                assert fa.planned_busy_s == pytest.approx(fb.planned_busy_s, abs=1e-6)
                assert fa.state_s.keys() == fb.state_s.keys(), a.machine
                for state, seconds in fa.state_s.items():
                    assert seconds == pytest.approx(fb.state_s[state], abs=1e-6), state
                assert (fa.good, fa.scrap, fa.outside_total) == (
                    fb.good,
                    fb.scrap,
                    fb.outside_total,
                )
            day += dt.timedelta(days=1)

        # the order board and the REST API
        snapshot = dashboard.build(plant)
        board = snapshot.board
        for card in [*board.queued, *board.in_progress, *board.done]:
            progress = None if card.progress is None else round(card.progress, 4)
            assert (card.good, card.scrap, progress) == expected(card.order), card.order
        with serving(store) as (_, client):
            api = client.get("/api/v1/orders").json()
        assert {o["order"]: figures(o) for o in api} == {o: expected(o) for o in listed}
        assert line is not None
