"""Complete 中文: every catalogue key has a translation, and no page in Chinese shows an English
status word or a raw UTC time.

The pages are every page of the app over the demo-like plant (tests/demo_pages.py), opened in
chromium with the language set to 中文; the text checked is what the page shows
(``innerText``: the hidden English half of each label pair is not shown). The API docs (Swagger
UI, English only) are left out. The printable reports show both languages side by side (for a
bilingual file copy): there each English word must have its Chinese beside it. Also: the Chinese font shipped in static/fonts/ covers every
character of the catalogue, and a PDF printed on a machine with no CJK font embeds it; the
carbon panel just after local midnight shows site times, not a raw error with UTC timestamps.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fontTools.ttLib import TTFont
from playwright.sync_api import Browser

from demo_pages import EXAMPLES, demo_site
from microfab.console import STATE_ZH
from microfab.reports.pdf import CJK_FONT, print_pdf
from microfab.store import open_store
from microfab.track.dashboard import STATE_EN
from microfab.web.labels import LABELS, UNTRANSLATED
from test_browser import browser
from webapp import METER, event, fill, serving

__all__ = ["browser"]  # the module-scoped chromium fixture, shared with test_browser

STATUS_WORDS = re.compile(
    r"\b(completed|in_progress|in progress|idle|micro_stop|running|planned_stop|"
    r"unplanned_stop|released|cancelled|created|offline|nodata|no data yet)\b",
    re.IGNORECASE,
)
"""State and order-status words, as stored or as the English labels say them."""

RAW_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d)?(\.\d+)?(Z|\+00:00)?")
"""An ISO time as stored (``2026-11-23T16:01:02.123456+00:00``): pages show site time."""

CJK = re.compile(r"[\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef]")


def test_every_catalogue_key_has_a_translation() -> None:
    untranslated = [
        key
        for key, (en, zh) in LABELS.items()
        if key not in UNTRANSLATED and (not zh.strip() or zh == en or not CJK.search(zh))
    ]
    assert not untranslated, f"catalogue keys without a Chinese translation: {untranslated}"
    assert set(STATE_EN) - {"nodata"} <= set(STATE_ZH), "every machine state has a Chinese name"


def test_the_shipped_font_covers_the_catalogue() -> None:
    cmap = TTFont(CJK_FONT).getBestCmap()
    words = [zh for _, zh in LABELS.values()] + list(STATE_ZH.values())
    missing = {c for word in words for c in word if CJK.match(c) and ord(c) not in cmap}
    assert not missing, f"re-run the subset in static/fonts/README: missing {sorted(missing)}"
    assert CJK_FONT.stat().st_size < 2_000_000


@pytest.fixture(scope="module")
def site(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, list[str], tuple[str, str]]]:
    with demo_site(tmp_path_factory.mktemp("zh")) as (url, _, urls, admin):
        yield url, urls, admin


def test_every_page_in_chinese_shows_no_english_status_word(
    browser: Browser, site: tuple[str, list[str], tuple[str, str]]
) -> None:
    url, paths, admin = site
    page = browser.new_page(viewport={"width": 1024, "height": 768})
    page.add_init_script("localStorage.setItem('microfab-lang', 'zh')")
    page.goto(f"{url}login")
    page.locator("#login-form input[name=name]").fill(admin[0])
    page.locator("#login-form input[name=password]").fill(admin[1])
    page.locator("#login-form button[type=submit]").click()
    page.wait_for_url(url)
    found: dict[str, list[str]] = {}
    for path in paths:
        if path == "/docs":
            continue
        answer = page.goto(url.rstrip("/") + path)
        assert answer is not None and answer.status == 200, path
        shown = page.evaluate("document.body.innerText")
        untranslated = page.locator("[data-untranslated]").all_inner_texts()
        assert CJK.search(shown), f"{path} shows no Chinese at all"
        bilingual = page.locator("#lang-toggle").count() == 0  # a printable page shows both
        words = sorted(
            {
                m.group(0)
                for m in STATUS_WORDS.finditer(shown)
                if "_" in m.group(0)
                or not bilingual
                or not CJK.search(shown[m.end() :].split("\n", 1)[0][:40])
            }
        )
        times = sorted({m.group(0) for m in RAW_UTC.finditer(shown) if "T" in m.group(0)})
        if words or times or untranslated:
            found[path] = words + times + untranslated
    page.close()
    assert not found, f"English status words or raw UTC times in 中文: {found}"


def test_a_pdf_printed_without_a_cjk_font_embeds_the_shipped_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chromium sees only DejaVu (a fontconfig of its own): the Chinese comes from static/."""
    config = tmp_path / "fonts.conf"
    config.write_text(
        '<?xml version="1.0"?><!DOCTYPE fontconfig SYSTEM "fonts.dtd"><fontconfig>'
        "<dir>/usr/share/fonts/truetype/dejavu</dir>"
        f"<cachedir>{tmp_path}/cache</cachedir></fontconfig>"
    )
    monkeypatch.setenv("FONTCONFIG_FILE", str(config))
    css = (Path(CJK_FONT).parents[3] / "reports" / "templates" / "shift.css").read_text()
    pdf = print_pdf(f"<html><meta charset=utf-8><style>{css}</style><p>班次報告 已完成</p></html>")
    fonts = set(re.findall(rb"/BaseFont\s*/[A-Z]+\+([A-Za-z-]+)", pdf))
    assert b"NotoSansTC-Regular" in fonts, fonts


def test_the_carbon_panel_just_after_midnight_shows_site_times_in_both_languages(
    tmp_path: Path,
) -> None:
    """The newest event a minute after local midnight: no production yet today, so the panel
    says so, with site times (no ``+00:00``, no microseconds) and in Chinese too."""
    with open_store(f"sqlite:///{tmp_path}/plant.db") as store:
        fill(store)
        after = dt.datetime(2026, 11, 24, 0, 1, 2, 123456, tzinfo=ZoneInfo("Asia/Hong_Kong"))
        store.append([event("late-1", after.isoformat(), METER, "energy", kwh=1050.0)])
        with serving(store, carbon_settings=EXAMPLES / "carbon-food-line.yaml") as (_, web):
            page = web.get("/", headers={"accept": "text/html"}).text
    panel = re.search(r'<p class="empty carbon-message">(.*?)</p>', page, re.S)
    assert panel, "the panel says why it has no figures"
    shown = panel.group(1)
    assert not RAW_UTC.search(shown) and ".123" not in shown, shown
    assert "no production between 2026-11-24 00:00 and 2026-11-24 00:01:02" in shown
    assert (
        '<span class="zh" lang="zh-Hant-HK">2026-11-24 00:00 至 2026-11-24 00:01:02 期間沒有生產'
        in shown
    )
