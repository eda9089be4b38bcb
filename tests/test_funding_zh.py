"""Complete 中文 on funding: the project page's warnings, claim conditions and deadlines, the
smart-line evidence and every report draft show each of microfab's sentences with its Chinese
(the funding catalogue, microfab.funding.zh, through the web catalogue's ``message``); a sentence
the catalogue does not know is marked ``data-untranslated`` and fails here (and in the browser
test of tests/test_pages_zh.py)."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest

from microfab.funding.zh import SENTENCES, WORDS, zh
from microfab.store import open_store
from webapp import fill, serving

EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "examples"
PAGES = (
    "/funding?as_of=2026-12-07",
    "/funding/evidence",
    "/funding/report/evidence",
    "/funding/report/progress?as_of=2026-12-07",
    "/funding/report/final?as_of=2026-12-07",
    "/funding/report/benefit?as_of=2026-12-07",
)


def test_every_funding_sentence_has_chinese_with_the_same_parts() -> None:
    for en, chinese in SENTENCES:
        named = set(re.compile(en).groupindex)
        used = {field for _, field, _, _ in string.Formatter().parse(chinese) if field}
        assert used <= named, (en, used - named)
        assert re.search(r"[\u4e00-\u9fff]", chinese) or named <= {"t_a", "t_b"}, en
    assert all(re.search(r"[\u4e00-\u9fff]", word) for word in WORDS.values())
    assert zh("overdue: milestone: Line acceptance (due 2026-12-01)") == (
        "逾期：里程碑：Line acceptance（限期 2026-12-01）"
    )
    assert zh("overdue: something new (due 2026-12-01)") is None  # unknown part: not known


def test_funding_pages_and_report_drafts_show_every_sentence_in_chinese(tmp_path: Path) -> None:
    with (
        open_store(f"sqlite:///{tmp_path}/plant.db") as store,
        serving(fill(store), funding_ledger=EXAMPLES / "nifs-ledger.yaml") as (_, web),
    ):
        shown = {}
        for path in PAGES:
            answer = web.get(path, headers={"accept": "text/html"})
            assert answer.status_code == 200, (path, answer.text[:300])
            shown[path] = answer.text
    untranslated = {
        path: re.findall(r'data-untranslated="\w+">([^<]*)', html) for path, html in shown.items()
    }
    assert not any(untranslated.values()), untranslated
    project = shown[PAGES[0]]
    for chinese in ("超支", "進度報告及經審計帳目獲接納", "里程碑：", "不得轉讓期完結"):
        assert chinese in project, chinese
    evidence = shown[PAGES[1]]
    for chinese in ("部機器中有", "物聯網連接", "定義"):
        assert chinese in evidence, chinese
    for path in PAGES[2:]:
        assert "草稿，由 microfab 編製" in shown[path], path
    assert "核准預算" in shown[PAGES[3]] and "里程碑及限期" in shown[PAGES[3]]
    assert "營業額" in shown[PAGES[5]] and "責任" in shown[PAGES[5]]
    # the company's own words (budget items, suppliers) stay as written
    assert "Line design consultant" in shown[PAGES[3]] and "生產線 design" not in shown[PAGES[3]]


@pytest.mark.parametrize("word", ["evidenced", "partial", "no_evidence", "not_measured"])
def test_evidence_statuses_have_chinese(word: str) -> None:
    assert zh(word)


def test_the_shipped_font_covers_the_funding_catalogue() -> None:
    from fontTools.ttLib import TTFont

    from microfab.reports.pdf import CJK_FONT

    cmap = TTFont(CJK_FONT).getBestCmap()
    words = [chinese for _, chinese in SENTENCES] + list(WORDS.values())
    missing = {
        c for w in words for c in w if re.match(r"[\u2e80-\u9fff]", c) and ord(c) not in cmap
    }
    assert not missing, f"re-run the subset in static/fonts/README: missing {sorted(missing)}"
