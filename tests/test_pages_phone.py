"""Every page fits a phone (390×844) and a small tablet (1024×768): no sideways page scrolling.

Wide tables scroll inside their own box or fold into cards, and the header wraps; this signs in
as an admin on the demo-like plant (tests/demo_pages.py), opens every page the app serves and
checks ``document.documentElement.scrollWidth <= innerWidth``, naming the widest element when a
page overflows. Screenshots of the phone layouts go to out/screenshots/phone-*.png.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from demo_pages import demo_site
from test_browser import SHOTS, browser

__all__ = ["browser"]  # the module-scoped chromium fixture, shared with test_browser

VIEWPORTS = {"phone": (390, 844), "tablet": (1024, 768)}

WIDEST = """() => {
  const limit = window.innerWidth;
  let worst = null;
  for (const el of document.querySelectorAll("body *")) {
    const right = el.getBoundingClientRect().right;
    if (right > limit + 0.5 && (!worst || right > worst.right)) {
      worst = {right, tag: el.tagName.toLowerCase(), id: el.id, cls: el.className.toString()};
    }
  }
  return worst;
}"""


@pytest.fixture(scope="module")
def site(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, list[str], tuple[str, str]]]:
    with demo_site(tmp_path_factory.mktemp("phone")) as (url, _, urls, admin):
        yield url, urls, admin


def signed_in(browser: Browser, url: str, admin: tuple[str, str], size: tuple[int, int]) -> Page:
    page = browser.new_page(viewport={"width": size[0], "height": size[1]})
    page.goto(f"{url}login")
    form = page.locator("#login-form")
    form.locator("input[name=name]").fill(admin[0])
    form.locator("input[name=password]").fill(admin[1])
    form.locator("button[type=submit]").click()
    expect(page.locator(".signed-in")).to_have_attribute("data-user", admin[0])
    return page


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_no_page_scrolls_sideways(
    browser: Browser, site: tuple[str, list[str], tuple[str, str]], viewport: str
) -> None:
    url, paths, admin = site
    assert {"/", "/quality", "/report/shift", "/plan", "/funding/match", "/docs"} <= set(paths)
    page = signed_in(browser, url, admin, VIEWPORTS[viewport])
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    overflowing: dict[str, object] = {}
    for path in paths:
        answer = page.goto(url.rstrip("/") + path)
        assert answer is not None and answer.status == 200, path
        page.wait_for_load_state("load")
        page.wait_for_timeout(150)  # charts draw at their box's width after load
        fits = page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        if not fits:
            overflowing[path] = page.evaluate(WIDEST)
        if viewport == "phone":
            SHOTS.mkdir(parents=True, exist_ok=True)
            name = path.strip("/").replace("/", "-") or "dashboard"
            page.screenshot(path=str(SHOTS / f"phone-{name[:60]}.png"), full_page=True)
    page.close()
    assert not overflowing, f"pages wider than {VIEWPORTS[viewport][0]} px: {overflowing}"
    assert not errors, errors
