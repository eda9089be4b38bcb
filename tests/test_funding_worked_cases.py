"""The worked cases of docs/funding.md are the test table: each row is assessed and compared."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from microfab.funding.application import Application
from microfab.funding.assess import assess

DOC = Path(__file__).resolve().parents[1] / "docs" / "funding.md"


def _money(text: str) -> int | str:
    plain = text.strip().replace(",", "")
    return int(plain) if "." not in plain else plain


def _cases() -> list[dict[str, str]]:
    text = DOC.read_text(encoding="utf-8")
    block = text.split("<!-- worked-cases: tests/", 1)[1].split("<!-- worked-cases: end -->", 1)[0]
    rows = [line for line in block.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in rows[0].strip("|").split("|")]
    cases = []
    for line in rows[2:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        assert len(cells) == len(header), line
        cases.append(dict(zip(header, cells, strict=True)))
    return cases


CASES = _cases()
BUDGET_KEY = next(k for k in CASES[0] if k.startswith("budget"))


def _application(case: dict[str, str]) -> Application:
    start, end = (part.strip() for part in case["start → end"].split("→"))
    budget: list[dict[str, Any]] = []
    for part in case[BUDGET_KEY].split(";"):
        match = re.fullmatch(r"(\w+) ([\d,.]+)( other-funded)?", part.strip())
        assert match, part
        budget.append(
            {
                "item": f"{match[1]} item {len(budget)}",
                "category": match[1],
                "amount_hkd": str(_money(match[2])),
                "justification": "worked case",
                "other_government_funding": bool(match[3]),
            }
        )
    others = []
    if case["other projects"] != "—":
        for part in case["other projects"].split(";"):
            scheme, status, amount = part.split()
            others.append(
                {"scheme": scheme, "status": status, "approved_grant_hkd": _money(amount)}
            )
    return Application.model_validate(
        {
            "scheme": case["scheme"],
            "as_of": start,
            "company": {"name": "Case Ltd", "incorporated_in_hk": True},
            "project": {
                "title": case["case"],
                "in_hong_kong": True,
                "new_production_line": True,
                "start": start,
                "end": end,
                "smart_features": ["iot", "robotics"],
                "smart_line_share": "0.8",
            },
            "budget": budget,
            "other_projects": others,
        }
    )


def test_the_table_has_every_case_the_issue_asks_for() -> None:
    names = " / ".join(c["case"] for c in CASES)
    for wanted in (
        "one-third",
        "HK$15M",
        "HK$45M company total",
        "interim allowed",
        "interim not allowed",
        "ineligible items removed",
        "RFS: one project at a time",
        "NIFS: a third concurrent",
    ):
        assert wanted in names, wanted


@pytest.mark.parametrize("case", CASES, ids=[c["case"] for c in CASES])
def test_worked_case(case: dict[str, str]) -> None:
    result = assess(_application(case)).to_json()
    assert result["eligible"] is (case["eligible"] == "yes")
    assert result["eligible_cost_hkd"] == _money(case["eligible cost"])
    assert result["max_grant_hkd"] == _money(case["max grant"])
    assert result["grant_limits"]["limited_by"] == case["limited by"]
    assert result["interim_payment_max_hkd"] == _money(case["interim max"])
    if result["eligible"]:
        assert sum(p["max_hkd"] for p in result["payments"]) == result["max_grant_hkd"]
    else:
        assert result["payments"] == []
    for reason in result["reasons"]:
        assert reason["source"] and reason["sources"], reason["rule"]
