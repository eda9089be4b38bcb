"""Maintenance in a real browser (Debian's chromium through Playwright, as tests/test_browser.py):
an alert becomes a work order on the maintenance board, the technician starts it on a phone,
adds a photo, finishes it, and the work order page shows it done; an e-stop then shows on the
safety page."""

from __future__ import annotations

import base64
import datetime as dt
from pathlib import Path

from playwright.sync_api import Browser, expect

from microfab.model.alerts import AlertFinding
from microfab.model.events import SafetyEvent
from microfab.model.identity import Role
from microfab.store import open_store
from microfab.store.alerts import insert_alert
from microfab.store.identity import add_user
from test_browser import PATIENCE_MS, browser, shot, sign_in
from webapp import CNC2, fill, serving, utc

__all__ = ["browser"]

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAQAAAAECAIAAAAmkwkpAAAAEUlEQVR4nGP4z8AARAwMDAwAQHYF+1Xs5HEAAAAASUVORK5CYII="
)
"""A 4 × 4 PNG: what a phone camera would send, smaller."""


def test_an_alert_becomes_a_work_order_that_the_technician_finishes(
    browser: Browser, tmp_path: Path
) -> None:
    with open_store(f"sqlite:///{tmp_path}/plant.db") as store:
        fill(store)
        finding = AlertFinding(
            rule="vibration",
            kind="threshold",
            severity="critical",
            machine=CNC2,
            cause="vib_rms",
            ts=utc("14:00"),
            last_ts=utc("14:05"),
            message="cnc-2: spindle vibration 7.1 mm/s above 4.5",
        )
        with store.transaction() as conn:
            alert_id = insert_alert(conn, finding, dt.datetime.now(dt.UTC))
        add_user(store, "wong.tech", Role.TECHNICIAN, "a long pass phrase", actor="cli:tests")
        photo = tmp_path / "spindle.png"
        photo.write_bytes(PNG)
        with serving(store) as (url, _):
            page = browser.new_page(viewport={"width": 1024, "height": 768})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            sign_in(page, url, "wong.tech", "a long pass phrase")
            page.goto(f"{url}maintenance")
            row = page.locator(f'#maint-alerts tr[data-alert="{alert_id}"]')
            expect(row).to_contain_text("spindle vibration")
            row.locator('button[data-action="from-alert"]').click()
            order = page.locator("section.maint-order")
            expect(order).to_have_attribute("data-state", "requested")
            expect(order).to_have_attribute("data-kind", "corrective")
            expect(order.locator('[data-field="problem"]')).to_contain_text("spindle vibration")
            order_id = order.get_attribute("data-order")
            shot(page, "maintenance-order")

            page.set_viewport_size({"width": 390, "height": 844})  # a phone
            page.goto(f"{url}technician")
            expect(page.locator("#jobs")).to_have_attribute("data-user", "wong.tech")
            job = page.locator(f'article.job[data-order="{order_id}"]')
            expect(job).to_have_attribute("data-state", "requested")
            job.locator('button[data-action="start"]').click()
            job = page.locator(f'article.job[data-order="{order_id}"]')
            expect(job).to_have_attribute("data-state", "in_progress", timeout=PATIENCE_MS)
            job.locator('input[name="photo"]').set_input_files(str(photo))
            job.locator('button[data-action="photo"]').click()
            expect(page.locator("#saved")).to_have_attribute(
                "data-done", "photo", timeout=PATIENCE_MS
            )
            job = page.locator(f'article.job[data-order="{order_id}"]')
            job.locator('input[name="result"]').fill("spindle bearing replaced")
            job.locator('input[name="actions"]').fill("bearing replaced, run-in 10 min")
            job.locator('button[data-action="finish"]').click()
            expect(page.locator("#saved")).to_have_attribute("data-done", "finish")
            expect(page.locator(f'article.job[data-order="{order_id}"]')).to_have_count(0)
            page.wait_for_function(
                "document.documentElement.scrollWidth <= window.innerWidth", timeout=PATIENCE_MS
            )
            shot(page, "technician-phone")

            page.set_viewport_size({"width": 1024, "height": 768})
            page.goto(f"{url}maintenance/{order_id}")
            order = page.locator("section.maint-order")
            expect(order).to_have_attribute("data-state", "done")
            expect(order.locator('[data-field="result"]')).to_contain_text("bearing replaced")
            expect(order.locator(".maint-photos img")).to_have_count(1)
            page.locator("#lang-toggle").click()
            expect(order).to_contain_text("已完成")
            shot(page, "maintenance-order-done-zh")

            # an e-stop on cnc-2 shows on the safety page (in 中文, as chosen above)
            store.append(
                [
                    SafetyEvent(
                        id="sf-1",
                        ts=utc("15:59"),
                        machine=CNC2,
                        kind="estop_pressed",
                        severity="critical",
                        zone="cnc-2-door",
                    )
                ]
            )
            page.goto(f"{url}safety")
            row = page.locator(
                f'#safety-events tr[data-kind="estop_pressed"][data-machine="{CNC2}"]'
            )
            expect(row).to_contain_text("按下緊急停止掣")
            expect(row).to_contain_text("嚴重")
            expect(page.locator('.safety-day[data-site="kt"]')).to_contain_text("未有記錄")
            shot(page, "safety-zh")
            page.close()
    assert not errors, errors
