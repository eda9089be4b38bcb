"""One order's figures in a real browser: the order board, the order page and the shift report show
the same good, scrap and progress (docs/production.md), on the demo's simulated food line.

Debian's headless chromium driven by Playwright, as in tests/test_browser.py.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect, sync_playwright

from microfab.connect.publisher import ListPublisher
from microfab.model.identity import Role
from microfab.sim.engine import DEFAULT_START, FactorySimulation
from microfab.sim.scenario import load_scenario
from microfab.store import open_store
from microfab.store.identity import add_user
from microfab.track.orders import list_orders
from microfab.track.shift_report import day_report
from webapp import serving

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
DAY = DEFAULT_START.date()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail("the browser test needs /usr/bin/chromium: run `bash .ci/chromium`")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield launched
        launched.close()


def number(text: str) -> int:
    return int(text.replace(",", "").strip() or 0)


def test_board_order_page_and_shift_report_agree(browser: Browser, tmp_path: Path) -> None:
    scenario = load_scenario("food-line")  # the demo's scenario, seed and start
    publisher = ListPublisher()
    FactorySimulation(scenario, publisher, seed=1).run_until(10 * 3600)  # 08:00 to 18:00
    with open_store(f"sqlite:///{tmp_path}/demo.db") as store:
        store.apply_factory(scenario.factory, scenario.factory_source)
        store.append(publisher.events)
        add_user(store, "wong.planner", Role.PLANNER, "a long pass phrase", actor="cli:tests")
        factory = scenario.factory
        # an order made within the day shift (08:00-17:00), with scrap, shown on the board
        zone = factory.sites[0].zone
        shift_start = dt.datetime.combine(DAY, dt.time(8), zone)
        shift_end = dt.datetime.combine(DAY, dt.time(17), zone)
        in_shift = {
            o.order: o
            for o in day_report(store, factory, DAY, start=shift_start, end=shift_end).orders
        }
        chosen = next(
            v
            for v in list_orders(store, factory)
            if v.order in in_shift
            and (in_shift[v.order].good, in_shift[v.order].scrap) == (v.good, v.scrap)
            and v.scrap > 0
            and v.good > 0
        )
        with serving(store) as (url, _):
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(url)
            form = page.locator("#login-form")
            form.locator("input[name=name]").fill("wong.planner")
            form.locator("input[name=password]").fill("a long pass phrase")
            form.locator("button[type=submit]").click()
            expect(page.locator(".signed-in")).to_have_attribute("data-user", "wong.planner")

            card = page.locator(f'.order-card[data-order="{chosen.order}"]')
            expect(card).to_be_visible()
            board = (
                number(card.locator('[data-field="good"]').inner_text()),
                number(card.locator('[data-field="scrap"]').inner_text()),
                float(card.locator(".progress").get_attribute("data-progress") or "nan"),
            )

            page.goto(f"{url}orders/{chosen.order}")
            order_page = page.locator(".order-page")
            shown = (
                number(order_page.locator('[data-field="good"]').inner_text()),
                number(order_page.locator('[data-field="scrap"]').inner_text()),
                float(order_page.locator(".progress").get_attribute("data-progress") or "nan"),
            )

            page.goto(f"{url}report/shift?day={DAY.isoformat()}&shift=day")
            row = page.locator(f'tr[data-order="{chosen.order}"]')
            report = (
                number(row.locator('[data-field="good"]').inner_text()),
                number(row.locator('[data-field="scrap"]').inner_text()),
            )
            line_output = number(page.locator('b[data-field="output_good"]').inner_text())
            page.close()
    progress = round(chosen.good / (chosen.quantity or 1), 4)
    assert board == shown == (chosen.good, chosen.scrap, progress)
    assert report == (chosen.good, chosen.scrap)
    assert line_output >= chosen.good
