"""One expected completion per order, the same on every page: the JSON API (orders and the
dashboard's board), the order page, the order board, the plan table and the CLI show one figure, the plan's once a plan holds the order
(before the re-plan, the estimate from progress; after it, the plan's planned end)."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import httpx
from typer.testing import CliRunner

from microfab.cli import app as cli_app
from microfab.model.events import parse_ts
from microfab.model.orders import order_completion
from microfab.sim.engine import FactorySimulation
from microfab.sim.scenario import load_scenario
from microfab.store import open_store
from microfab.store.sink import StoreSink
from webapp import serving

runner = CliRunner()


def _ts(html: str, order: str, where: str) -> str | None:
    """The data-ts of the expected-completion field for ``order`` in a page's HTML."""
    if where == "order":
        found = re.search(r'data-field="expected" data-ts="([^"]+)"', html)
    elif where == "plan":
        row = re.search(rf'<tr data-order="{re.escape(order)}"[^>]*>(.*?)</tr>', html, re.S)
        assert row is not None, f"{order} not in the plan table"
        found = re.search(r'data-field="expected" data-ts="([^"]+)"', row.group(1))
    else:  # the order board's card
        card = re.search(
            rf'<div class="order-card[^"]*" data-order="{re.escape(order)}".*?</div>\s*</div>',
            html,
            re.S,
        )
        assert card is not None, f"{order} not on the order board"
        found = re.search(r'data-field="expected" data-ts="([^"]+)"', card.group(0))
    return found.group(1) if found else None


def _utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).astimezone(dt.UTC)


def _figures(
    client: httpx.Client, db: str, plan: Path, orders: list[str]
) -> dict[str, dict[str, str | None]]:
    """Per order, its expected completion (UTC ISO) as each surface shows it; ``cli list`` is
    the CLI table's cell (site time, minutes), checked against the CLI's JSON figure."""
    listed = {o["order"]: o for o in client.get("/api/v1/orders").json()}
    board = client.get("/").text
    cards = client.get("/api/v1/dashboard").json()["orders"]
    card_of = {c["order"]: c for column in ("queued", "in_progress") for c in cards[column]}
    plan_page = client.get("/plan").text if plan.exists() else None
    table = runner.invoke(
        cli_app, ["orders", "list", "--db", db, "--plan", str(plan)], env={"COLUMNS": "200"}
    )
    assert table.exit_code == 0, table.output
    zone = dt.timezone(dt.timedelta(hours=8))
    found: dict[str, dict[str, str | None]] = {}
    for order in orders:
        shown = runner.invoke(
            cli_app, ["orders", "show", order, "--db", db, "--plan", str(plan), "--json"]
        )
        assert shown.exit_code == 0, shown.output
        expected = json.loads(shown.output)["expected_completion"]
        local = _utc(expected).astimezone(zone).strftime("%m-%d %H:%M") if expected else None
        row = next(line for line in table.output.splitlines() if order in line)
        figures = {
            "api": client.get(f"/api/v1/orders/{order}").json()["expected_completion"],
            "api list": listed[order]["expected_completion"],
            "order page": _ts(client.get(f"/orders/{order}").text, order, "order"),
            "order board": _ts(board, order, "board"),
            "order board API": card_of[order]["expected"],
            "cli show": expected,
        }
        if plan_page is not None:
            figures["plan table"] = _ts(plan_page, order, "plan")
        found[order] = {k: None if v is None else _utc(v).isoformat() for k, v in figures.items()}
        found[order]["cli list"] = local if local and local in row else f"not in row: {row}"
    return found


def test_one_expected_completion_per_order_on_every_page(tmp_path: Path) -> None:
    scenario = load_scenario("moulding-cell")
    db = f"sqlite:///{tmp_path / 'plant.db'}"
    plan = tmp_path / "plan.json"
    with open_store(db) as store:
        store.apply_factory(scenario.factory, scenario.factory_source)
        sink = StoreSink(store)
        sim = FactorySimulation(scenario, sink, seed=1)
        sim.run_until(4 * 3600)
        sink.flush()
        with serving(store, plan_file=plan) as (_, client):
            orders = client.get("/api/v1/orders").json()
            open_ = [o["order"] for o in orders if o["status"] in ("released", "in_progress")]
            assert len(open_) >= 2
            open_ = open_[:2]
            before = _figures(client, db, plan, open_)
            for order, seen in before.items():
                shown = seen.pop("cli list")
                values = set(seen.values())
                assert len(values) == 1 and None not in values, (order, seen)
                want = dt.datetime.fromisoformat(values.pop())
                assert shown == want.astimezone(dt.timezone(dt.timedelta(hours=8))).strftime(
                    "%m-%d %H:%M"
                )

            planned = client.post("/api/v1/plan", json={"time_limit": 2})
            assert planned.status_code == 201, planned.text
            ends = {row["order"]: row["planned_end"] for row in planned.json()["orders"]}
            after = _figures(client, db, plan, open_)
            for order in open_:
                seen = after[order]
                shown = seen.pop("cli list")
                plan_end = _utc(ends[order]).isoformat()
                assert set(seen.values()) == {plan_end}, (order, seen)
                assert shown == _utc(ends[order]).astimezone(
                    dt.timezone(dt.timedelta(hours=8))
                ).strftime("%m-%d %H:%M")
                assert client.get(f"/api/v1/orders/{order}").json()["expected_basis"] == "plan"
            # the Gantt's late orders follow the same figure
            chart = client.get("/api/v1/plan/gantt").json()
            late = {o["order"] for o in client.get("/api/v1/orders").json() if o["late"]}
            plan_late = {row["order"] for row in planned.json()["orders"] if row["late"]}
            assert set(chart["late_orders"]) == late | plan_late


def test_a_plan_overtaken_by_the_clock_gives_way_to_the_estimate() -> None:
    now = parse_ts("2026-11-24T08:00:00Z")
    passed = now - dt.timedelta(hours=1)
    ahead = now + dt.timedelta(hours=3)
    assert order_completion(
        status="in_progress", completed=None, progress=None, began=None, now=now, planned_end=ahead
    ) == (ahead, "plan")
    assert order_completion(
        status="in_progress", completed=None, progress=None, began=None, now=now, planned_end=passed
    ) == (None, None)
    assert order_completion(
        status="completed", completed=passed, progress=None, began=None, now=now, planned_end=ahead
    ) == (passed, "completed")
    assert order_completion(
        status="cancelled", completed=None, progress=None, began=None, now=now, planned_end=ahead
    ) == (None, None)


def test_a_plan_made_after_the_plant_clock_is_not_used() -> None:
    from microfab.track.orders import planned_ends

    plan = {
        "plan": {"start": "2026-11-24T08:00:00+08:00"},
        "orders": [{"order": "WO-1", "planned_end": "2026-11-24T12:00:00+08:00"}],
    }
    before = parse_ts("2026-11-23T09:00:00Z")  # a fresh run of the same simulated week
    after = parse_ts("2026-11-24T01:00:00Z")
    assert planned_ends(plan, before) == {}
    assert planned_ends(plan, after) == {"WO-1": parse_ts("2026-11-24T04:00:00Z")}
