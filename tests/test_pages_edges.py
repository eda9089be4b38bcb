"""Quiet edges of the pages: no inline script anywhere (a strict Content-Security-Policy keeps
every page working), the API docs link back to the app, an anchor never lands under the sticky
header, and the scheme matcher is a form with fields.

Over the demo-like plant of tests/demo_pages.py, in chromium where a browser is needed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from demo_pages import demo_site
from test_browser import browser

__all__ = ["browser"]  # the module-scoped chromium fixture, shared with test_browser

Site = tuple[str, list[str], tuple[str, str]]


@pytest.fixture(scope="module")
def site(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, list[str], tuple[str, str], object]]:
    with demo_site(tmp_path_factory.mktemp("edges")) as (url, client, urls, admin):
        yield url, urls, admin, client


def signed_in(browser: Browser, url: str, admin: tuple[str, str], width: int = 1024) -> Page:
    page = browser.new_page(viewport={"width": width, "height": 768})
    page.goto(f"{url}login")
    page.locator("#login-form input[name=name]").fill(admin[0])
    page.locator("#login-form input[name=password]").fill(admin[1])
    page.locator("#login-form button[type=submit]").click()
    page.wait_for_url(url)
    return page


def test_no_page_has_inline_script(site: tuple[str, list[str], tuple[str, str], object]) -> None:
    """Scripts come from /static only: no <script> with a body (JSON data blocks aside), no
    on…= handler attributes."""
    _, paths, _, client = site
    found: dict[str, list[str]] = {}
    for path in paths:
        html = client.get(path, headers={"accept": "text/html"}).text  # type: ignore[attr-defined]
        inline = [
            m.group(0)[:60]
            for m in re.finditer(r"<script(?P<attrs>[^>]*)>(?P<body>.*?)</script>", html, re.S)
            if m.group("body").strip() and "application/json" not in m.group("attrs")
        ]
        handlers = re.findall(r"<[^>]+\son[a-z]+\s*=", html)
        if inline or handlers:
            found[path] = inline + handlers
    assert not found, found


def test_the_api_docs_link_back_to_the_app(
    browser: Browser, site: tuple[str, list[str], tuple[str, str], object]
) -> None:
    url, _, admin, _ = site
    page = signed_in(browser, url, admin)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{url}docs")
    expect(page.locator(".swagger-ui .info")).to_be_visible()  # Swagger UI started
    page.locator('a[data-link="back-to-app"]').click()
    expect(page).to_have_url(url)
    page.close()
    assert not errors, errors


@pytest.mark.parametrize("width", [1024, 1280])
def test_an_anchor_lands_below_the_sticky_header(
    browser: Browser, site: tuple[str, list[str], tuple[str, str], object], width: int
) -> None:
    """The plan page after a re-plan (``/plan?done=replanned#saved``) and the dashboard's
    panels (``/#oee``): the target's top is below the header, however many rows it wraps to."""
    url, _, admin, _ = site
    page = signed_in(browser, url, admin, width)
    for target, anchor in (("plan?done=replanned#saved", "saved"), ("#oee", "oee")):
        page.goto(f"{url}{target}")
        page.wait_for_load_state("load")
        page.wait_for_timeout(200)
        header = page.evaluate(
            "document.querySelector('header.top').getBoundingClientRect().bottom"
        )
        top = page.evaluate(f"document.getElementById('{anchor}').getBoundingClientRect().top")
        assert top >= header - 1, (target, top, header)
    page.close()


def test_the_scheme_matcher_is_a_form_with_fields(
    browser: Browser, site: tuple[str, list[str], tuple[str, str], object]
) -> None:
    url, _, admin, _ = site
    page = signed_in(browser, url, admin, 390)
    page.goto(f"{url}funding/match")
    form = page.locator("#match-fields")
    form.locator("input[name=name]").fill("Harbour Fresh Kitchens Ltd")
    form.locator("input[name=founded]").fill("2015")
    form.locator("input[name=sector]").fill("food")
    form.locator("input[name=as_of]").fill("2026-11-22")
    form.locator('input[name=stages][value="production"]').check()
    form.locator('input[name=stages][value="technology_application"]').check()
    form.locator("input[name=purpose]").fill(
        "new smart production line with robotics and automation for chilled meals"
    )
    form.locator("input[name=project_cost_hkd]").fill("8580000")
    form.locator("input[name=keywords]").fill("automation, robotics, smart")
    form.locator("input[name=new_line]").check()
    form.locator("button[type=submit]").click()
    first = page.locator("#match-results li.match").first
    expect(first).to_have_attribute("data-scheme", "nifs")
    expect(first).to_have_attribute("data-fits", "true")
    expect(page.locator("#match-results")).to_contain_text("HK$2,860,000")
    # the answer keeps what was typed, to change one field and ask again
    expect(page.locator("#match-fields input[name=founded]")).to_have_value("2015")
    expect(page.locator('#match-fields input[name=stages][value="production"]')).to_be_checked()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.close()
