"""The content security policy in a real browser (issue 15, finding 9): every page — the
dashboard, the operator, order, plan, quality and shift-report pages, the login page and the
Swagger UI at /docs — works under it, and the browser reports no violation (no inline script,
nothing blocked). Debian's headless chromium driven by Playwright, as in test_browser.py."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright

from microfab.http.headers import CONTENT_SECURITY_POLICY
from microfab.model.identity import Role
from microfab.store import open_store
from microfab.store.identity import add_user
from webapp import CNC1, fill, serving

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
PATIENCE_MS = 15_000
WATCH_VIOLATIONS = """() => {
  window.__csp = [];
  document.addEventListener("securitypolicyviolation",
    (e) => window.__csp.push(e.violatedDirective + " " + e.blockedURI));
}"""
PAGES = ["", f"operator/{CNC1}", "plan", "quality", "report/shift", "orders/new"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail("the browser test needs /usr/bin/chromium: run `bash .ci/chromium`")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield launched
        launched.close()


def _watch(page: Page, console: list[str], errors: list[str]) -> None:
    def on_console(message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            console.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.add_init_script(f"({WATCH_VIOLATIONS})()")


def test_every_page_works_under_the_policy_without_violations(
    browser: Browser, tmp_path: Path
) -> None:
    with (
        open_store(f"sqlite:///{tmp_path}/plant.db") as store,
        serving(fill(store)) as (url, _),
    ):
        add_user(store, "wong.admin", Role.ADMIN, "a long pass phrase", actor="cli:tests")
        page = browser.new_page(viewport={"width": 1024, "height": 768})
        console: list[str] = []
        errors: list[str] = []
        _watch(page, console, errors)
        response = page.goto(f"{url}login")
        assert response is not None
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        form = page.locator("#login-form")
        form.locator("input[name=name]").fill("wong.admin")
        form.locator("input[name=password]").fill("a long pass phrase")
        form.locator("button[type=submit]").click()
        expect(page).to_have_url(url)
        expect(page.locator("#chart-oee canvas")).to_have_count(1, timeout=PATIENCE_MS)
        expect(page.locator("#live")).to_have_attribute("data-state", "open", timeout=PATIENCE_MS)
        violations: list[str] = list(page.evaluate("window.__csp"))
        # the language chosen before the first paint still comes through (lang-first.js)
        page.locator("#lang-toggle").click()
        for path in PAGES[1:]:
            answer = page.goto(f"{url}{path}")
            assert answer is not None and answer.status == 200, path
            assert answer.headers["cache-control"] == "no-store", path
            if not path.startswith("report/"):  # the printable report has no toggle
                expect(page.locator("html")).to_have_attribute("data-lang", "zh")
            page.wait_for_load_state("networkidle")
            violations += [f"{path}: {v}" for v in page.evaluate("window.__csp")]
            if path == "report/shift":  # its shift picker runs from shift-report.js now
                value = page.locator("#shift-pick").input_value()
                day, shift = value.split("|")
                page.locator("#shift-pick").dispatch_event("change")
                page.wait_for_url(re.compile(rf"day={day}&shift={shift}"))
                expect(page.locator("article.report")).to_have_attribute("data-shift", shift)
        page.goto(url)
        page.locator("#lang-toggle").click()

        docs = page.goto(f"{url}docs")
        assert docs is not None and docs.status == 200
        expect(page.locator(".swagger-ui .opblock").first).to_be_visible(timeout=PATIENCE_MS)
        expect(page.locator(".swagger-ui")).to_contain_text("/api/v1/status")
        violations += [f"docs: {v}" for v in page.evaluate("window.__csp")]
        page.close()
    assert not violations, violations
    assert not [c for c in console if "Content Security Policy" in c], console
    assert not errors, errors
