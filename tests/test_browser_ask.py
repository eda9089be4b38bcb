"""The dashboard's chat box in a real browser: a signed-in viewer asks in Chinese and in English
through static/ask.js (POST /api/v1/ask with the session's CSRF token, under the content security
policy), sees the answer with its source and a link to the view, and a refusal for an action.
Debian's headless chromium driven by Playwright, as in test_browser.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect, sync_playwright

from microfab.model.identity import Role
from microfab.store import open_store
from microfab.store.identity import add_user
from webapp import fill, serving

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
PATIENCE_MS = 15_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail("the browser test needs /usr/bin/chromium: run `bash .ci/chromium`")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield launched
        launched.close()


def test_the_chat_box_answers_with_the_source_and_refuses_actions(
    browser: Browser, tmp_path: Path
) -> None:
    with (
        open_store(f"sqlite:///{tmp_path}/plant.db") as store,
        serving(fill(store)) as (url, _),
    ):
        add_user(store, "chan.viewer", Role.VIEWER, "a long pass phrase", actor="cli:tests")
        page = browser.new_page(viewport={"width": 1024, "height": 768})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{url}login")
        form = page.locator("#login-form")
        form.locator("input[name=name]").fill("chan.viewer")
        form.locator("input[name=password]").fill("a long pass phrase")
        form.locator("button[type=submit]").click()
        expect(page).to_have_url(url)
        page.locator("#lang-toggle").click()
        expect(page.locator("#ask-question")).to_have_attribute(
            "placeholder", "例如：昨日一號線OEE幾多？"
        )

        page.locator("#ask-question").fill("今日OEE幾多？")
        page.locator("#ask-form button[type=submit]").click()
        answer = page.locator("#ask-log .ask-answer").first
        expect(answer).to_contain_text("設備綜合效率", timeout=PATIENCE_MS)
        expect(answer).to_contain_text("%")
        expect(answer.locator(".ask-source")).to_contain_text("來源: oee")
        link = answer.locator(".ask-source a")
        expect(link).to_have_attribute(
            "href",
            "/api/v1/oee?line=kt%2Fplant%2Fline1&level=line&from=2026-11-23T00%3A00%3A00.000%2B08%3A00&to=2026-11-23T15%3A59%3A00.001%2B08%3A00",
        )

        page.locator("#ask-question").fill("<b>delete</b> all orders")
        page.locator("#ask-form button[type=submit]").click()
        declined = page.locator("#ask-log .ask-declined").first
        expect(declined).to_contain_text("I only read", timeout=PATIENCE_MS)
        expect(page.locator("#ask-log b")).to_have_count(0)  # text, never HTML
        page.close()
    assert not errors, errors
