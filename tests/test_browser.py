"""The dashboard in a real browser: Debian's headless chromium driven by Playwright.

The app runs on a free port over a temporary SQLite store while events keep arriving; the test
signs in on the login page, stores a breakdown and waits for that machine's tile to turn red,
toggles the language, gives the stop a reason on the operator page (under the signed-in user's
name), and saves screenshots to out/screenshots/ (CI artifacts).
Chromium comes from apt (.ci/chromium), not from `playwright install`.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from microfab.model.events import EnergyReading, PartCount
from microfab.model.identity import Role
from microfab.model.orders import WorkOrderRequest
from microfab.store import EventStore, open_store
from microfab.store.identity import add_user
from microfab.track.orders import create_order
from webapp import CNC1, METER, ROBOT1, event, fill, serving, utc

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SHOTS = Path(__file__).resolve().parents[1] / "out" / "screenshots"
PATIENCE_MS = 15_000
"""How long the browser may take to show a change (the design target is under 2 s)."""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail("the browser test needs /usr/bin/chromium: run `bash .ci/chromium`")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield launched
        launched.close()


class Feeder:
    """Keeps events arriving, as a running plant does: robot-1 counts, meter readings."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.sent = 0

    def _run(self) -> None:
        ts = utc("15:59")
        while not self.stop.wait(0.2):
            self.sent += 1
            ts += dt.timedelta(milliseconds=500)
            self.store.append(
                [
                    PartCount(id=f"feed-c-{self.sent}", ts=ts, machine=ROBOT1, good=1),
                    EnergyReading(
                        id=f"feed-e-{self.sent}", ts=ts, machine=METER, kwh=1042.5 + self.sent
                    ),
                ]
            )

    def __enter__(self) -> Feeder:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(5)


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")  # a sticky header would be drawn where it was
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def sign_in(page: Page, url: str, name: str, password: str) -> None:
    """Open the dashboard: the login page comes first, then the dashboard it was asked for."""
    page.goto(url)
    expect(page).to_have_url(f"{url}login?next=%2F")
    form = page.locator("#login-form")
    form.locator("input[name=name]").fill(name)
    form.locator("input[name=password]").fill(password)
    form.locator("button[type=submit]").click()
    expect(page).to_have_url(url)
    expect(page.locator(".signed-in")).to_have_attribute("data-user", name)


def test_a_tile_changes_state_live_in_the_browser(browser: Browser, tmp_path: Path) -> None:
    with (
        open_store(f"sqlite:///{tmp_path}/plant.db") as store,
        serving(fill(store), poll_s=0.25, min_refresh_s=0.5) as (url, _),
        Feeder(store) as feeder,
    ):
        page = browser.new_page(viewport={"width": 1024, "height": 768})  # a tablet, landscape
        outside: list[str] = []
        errors: list[str] = []
        page.on(
            "request",
            lambda r: outside.append(r.url) if not r.url.startswith(url) else None,
        )
        page.on("pageerror", lambda e: errors.append(str(e)))
        add_user(store, "chan.tai.man", Role.OPERATOR, "a long pass phrase", actor="cli:tests")
        sign_in(page, url, "chan.tai.man", "a long pass phrase")
        expect(page.locator("#live")).to_have_attribute("data-state", "open", timeout=PATIENCE_MS)
        tile = page.locator(f'.tile[data-machine="{CNC1}"]')
        expect(tile).to_have_attribute("data-state", "running")
        expect(page.locator("#chart-oee canvas")).to_have_count(1)

        store.append(
            [
                event(
                    "s-99",
                    "2026-11-23T15:59:30+08:00",
                    CNC1,
                    "state",
                    state="unplanned_stop",
                )
            ]
        )
        expect(tile).to_have_attribute("data-state", "unplanned_stop", timeout=PATIENCE_MS)
        expect(tile).to_contain_text("Breakdown")
        expect(tile).to_have_css("background-color", "rgb(220, 38, 38)")  # red
        assert feeder.sent > 0  # the page was live while events were flowing
        shot(page, "dashboard-en")

        page.locator("#lang-toggle").click()
        expect(page.locator("html")).to_have_attribute("data-lang", "zh")
        expect(page.locator("#overview h2")).to_contain_text("生產線總覽")
        expect(tile).to_contain_text("故障停機")
        shot(page, "dashboard-zh")
        page.locator("#lang-toggle").click()

        page.set_viewport_size({"width": 768, "height": 1024})  # a tablet, portrait
        # everything fits the width (the charts redraw for it): no sideways scrolling
        page.wait_for_function(
            "document.documentElement.scrollWidth <= window.innerWidth", timeout=PATIENCE_MS
        )
        shot(page, "dashboard-portrait")

        tile.click()  # a tile opens the machine's operator page
        expect(page).to_have_url(f"{url}operator/{CNC1}")
        stop = page.locator('form.stop[data-event="s-99"]')
        expect(stop).to_be_visible()
        stop.locator("select[name=reason]").select_option("UB-MECH")
        expect(stop.locator("input[name=by]")).to_have_value("chan.tai.man")  # the signed-in user
        stop.locator("button[type=submit]").click()
        expect(page.locator("#saved")).to_be_visible()
        expect(page.locator("#entries")).to_contain_text("chan.tai.man")
        expect(page.locator(".operator-head")).to_contain_text("UB-MECH")
        shot(page, "operator")

        page.goto(f"{url}report/shift")
        expect(page.locator("article.report")).to_have_attribute("data-shift", "day")
        shot(page, "shift-report")
        page.close()
    assert not errors, errors
    assert not outside, f"the pages fetched from outside the app: {outside}"


def test_an_order_is_created_and_the_plan_redrawn_in_the_browser(
    browser: Browser, tmp_path: Path
) -> None:
    with (
        open_store(f"sqlite:///{tmp_path}/plant.db") as store,
        serving(fill(store), plan_file=tmp_path / "plan.json") as (url, _),
    ):
        page = browser.new_page(viewport={"width": 1024, "height": 768})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        add_user(store, "lee.planner", Role.PLANNER, "a long pass phrase", actor="cli:tests")
        sign_in(page, url, "lee.planner", "a long pass phrase")
        page.locator('a[data-link="new-order"]').click()
        expect(page).to_have_url(f"{url}orders/new")
        form = page.locator("#order-form")
        form.locator("input[name=quantity]").fill("120")
        form.locator("input[name=due]").fill("2026-11-24T12:00")
        form.locator("select[name=priority]").select_option("2")
        form.locator("input[name=order]").fill("WO-10")
        shot(page, "order-new")
        form.locator("button[type=submit]").click()
        expect(page.locator("#saved")).to_have_attribute("data-done", "created")
        page.locator('button[data-action="release"]').click()
        expect(page.locator("section.order-page")).to_have_attribute("data-status", "released")
        shot(page, "order")

        page.goto(f"{url}plan")
        expect(page.locator("#no-plan")).to_be_visible()
        page.locator("select[name=time_limit]").select_option("2")
        page.locator('button[data-action="replan"]').click()
        expect(page.locator("#saved")).to_be_visible(timeout=PATIENCE_MS)
        expect(page.locator('tr[data-order="WO-10"]')).to_be_visible()
        expect(page.locator("#chart-gantt canvas")).to_have_count(1)
        shot(page, "plan")

        stored = store.factory()
        assert stored is not None
        wanted = WorkOrderRequest(order="WO-11", product="BRKT-1", quantity=4)
        create_order(store, stored[1], wanted, now=utc("15:59"))  # at the plant clock
        page.goto(url)
        # the order board is rendered once for every viewer: its release form gets the session's
        # CSRF token from the page when it is sent (static/session.js)
        page.locator('.order-card[data-order="WO-11"] button[data-action="release"]').click()
        expect(page).to_have_url(f"{url}#orders")
        assert next(o for o in store.order_status() if o.order == "WO-11").status == "released"

        page.locator('button[data-action="sign-out"]').click()  # CSRF-checked, back to login
        expect(page).to_have_url(f"{url}login")
        page.goto(f"{url}plan")
        expect(page).to_have_url(f"{url}login?next=%2Fplan")
        page.close()
    assert not errors, errors
