"""`microfab funding assess`: application files, located errors, the JSON contract, the maths."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from microfab.cli import app
from microfab.errors import FundingFileError
from microfab.funding.application import parse_application
from microfab.funding.assess import assess
from microfab.funding.rules import rule_book
from microfab.model.funding import add_months, lasts_more_than, money_json, share_floor, to_money

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "docs" / "examples" / "nifs-application.yaml"
runner = CliRunner()

GOOD = """\
scheme: NIFS
as_of: 2026-11-22
company: {name: "X Ltd", incorporated_in_hk: true, companies_ordinance: "Cap. 622"}
project:
  title: "Line"
  in_hong_kong: true
  new_production_line: true
  start: 2026-01-01
  end: 2027-06-30
  smart_features: [iot, robotics]
  smart_line_share: 0.8
budget:
  - {item: "Robot", category: machinery, amount_hkd: 3000000, justification: "cell 1"}
"""


def test_the_example_application_through_the_cli() -> None:
    result = runner.invoke(app, ["funding", "assess", str(EXAMPLE), "--json"])
    assert result.exit_code == 0, (result.stdout, result.exception)
    doc = json.loads(result.stdout)
    for key in (
        "eligible",
        "reasons",
        "eligible_cost_hkd",
        "ineligible_items",
        "max_grant_hkd",
        "company_contribution_hkd",
        "interim_payment_max_hkd",
        "payments",
        "warnings",
    ):
        assert key in doc, key
    assert doc["eligible"] is True
    assert doc["eligible_cost_hkd"] == "8000000.50"
    assert doc["max_grant_hkd"] == 2_666_666
    assert doc["company_contribution_hkd"] == "5333334.50"
    assert doc["interim_payment_max_hkd"] == 1_333_333
    assert [p["kind"] for p in doc["payments"]] == ["interim", "final"]
    assert {i["index"]: i["rule"] for i in doc["ineligible_items"]} == {
        7: "ineligible_costs",
        8: "no_double_funding",
    }
    assert any("budget[8]" in w and "justification" in w for w in doc["warnings"])
    for reason in doc["reasons"]:
        assert set(reason) >= {"rule", "passed", "detail", "source"}
        assert reason["source"]


def test_the_text_report_names_the_verdict_and_the_grant() -> None:
    result = runner.invoke(app, ["funding", "assess", str(EXAMPLE)])
    assert result.exit_code == 0, result.exception
    assert "ELIGIBLE" in result.stdout
    assert "2,666,666" in result.stdout


def test_an_html_page_is_written(tmp_path: Path) -> None:
    page = tmp_path / "assessment.html"
    result = runner.invoke(app, ["funding", "assess", str(EXAMPLE), "--html", str(page)])
    assert result.exit_code == 0, result.exception
    text = page.read_text(encoding="utf-8")
    assert "2,666,666" in text and "S01" in text and "DRAFT" in text


def test_bad_input_is_located(tmp_path: Path) -> None:
    bad = GOOD.replace("end: 2027-06-30", "end: 2025-06-30").replace(
        '  - {item: "Robot", category: machinery, amount_hkd: 3000000, justification: "cell 1"}',
        "  - {item: Robot, category: machinery, amount_hkd: -5}\n"
        "  - {item: Rent, category: rent, amount_hkd: 100}\n"
        "  - {category: machinery, amount_hkd: 1.005}",
    )
    with pytest.raises(FundingFileError) as caught:
        parse_application(bad, "app.yaml")
    assert caught.value.exit_code == 2
    assert caught.value.problems == [
        "app.yaml:9 project.end: end 2025-06-30 is not after start 2026-01-01; give a later end date",
        "app.yaml:13 budget[0].amount_hkd: -5 is negative; give an amount of 0 or more",
        "app.yaml:14 budget[1].category: 'rent' is not one of machinery, installation, "
        "commissioning, consultant, training, operating, other",
        "app.yaml:15 budget[2].item: field required",
        "app.yaml:15 budget[2].amount_hkd: 1.005 has more than two decimal places (HK$ cents)",
    ]


def test_missing_fields_and_yaml_errors_are_located() -> None:
    with pytest.raises(FundingFileError) as caught:
        parse_application(GOOD.replace("as_of: 2026-11-22\n", ""), "a.yaml")
    assert caught.value.problems == ["a.yaml:1 as_of: field required"]
    with pytest.raises(FundingFileError) as caught:
        parse_application("scheme: NIFS\nbudget: [\n", "b.yaml")
    assert caught.value.problems[0].startswith("b.yaml:3 (yaml):")
    with pytest.raises(FundingFileError, match="expected a mapping"):
        parse_application("- 1\n", "c.yaml")


def test_the_command_exits_2_with_the_located_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("category: machinery", "category: robots"), encoding="utf-8")
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from microfab.cli import main; main()",
            "funding",
            "assess",
            str(bad),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert f"{bad}:13 budget[0].category: 'robots' is not one of" in done.stderr
    assert "Traceback" not in done.stderr


def test_money_never_goes_through_a_float() -> None:
    application = parse_application(
        GOOD.replace("amount_hkd: 3000000", "amount_hkd: 0.1")
        + '  - {item: "B", category: machinery, amount_hkd: 0.2, justification: "x"}\n',
        "app.yaml",
    )
    amounts = [item.amount_hkd for item in application.budget]
    assert amounts == [Decimal("0.1"), Decimal("0.2")]
    assert sum(amounts) == Decimal("0.3")
    with pytest.raises(ValueError, match="binary float"):
        to_money(0.1)
    assert to_money("1,000.50") == Decimal("1000.50")
    assert share_floor(Decimal("1000000.99"), 1, 3) == 333_333
    assert share_floor(Decimal(45_000_000), 1, 3) == 15_000_000
    assert money_json(Decimal("2.50")) == "2.50" and money_json(Decimal("3.00")) == 3


@pytest.mark.parametrize(
    ("start", "end", "more"),
    [
        ("2026-01-01", "2027-01-01", False),
        ("2026-01-01", "2027-01-02", True),
        ("2026-01-31", "2027-01-31", False),
        ("2024-02-29", "2025-02-28", False),
        ("2024-02-29", "2025-03-01", True),
    ],
)
def test_more_than_12_months_is_by_calendar_months(start: str, end: str, more: bool) -> None:
    assert lasts_more_than(dt.date.fromisoformat(start), dt.date.fromisoformat(end), 12) is more


def test_add_months_clips_to_the_month_end() -> None:
    assert add_months(dt.date(2026, 1, 31), 1) == dt.date(2026, 2, 28)
    assert add_months(dt.date(2026, 11, 30), 3) == dt.date(2027, 2, 28)


def test_the_weak_rules_can_be_switched_off() -> None:
    base = (
        GOOD
        + '  - {item: "Cam", category: machinery, amount_hkd: 300000, justification: "x", other_government_funding: true}\n'
    )
    default = assess(parse_application(base, "a.yaml")).to_json()
    assert (
        default["eligible_cost_hkd"] == 3_000_000 and default["interim_payment_max_hkd"] == 500_000
    )
    off = assess(
        parse_application(
            base + "assumptions: {interim_payment: false, no_double_funding: false}\n", "a.yaml"
        )
    ).to_json()
    assert off["eligible_cost_hkd"] == 3_300_000
    assert off["interim_payment_max_hkd"] == 0
    assert [p["kind"] for p in off["payments"]] == ["final"]
    smaller = assess(parse_application(base + "assumptions: {interim_share: 0.3}\n", "a.yaml"))
    assert smaller.interim_max_hkd == 300_000


def test_applicant_project_and_smart_share_rules_block() -> None:
    cases = {
        "incorporated_in_hk: true": "incorporated_in_hk: false",
        "new_production_line: true": "new_production_line: false",
        "smart_line_share: 0.8": "smart_line_share: 0.5",
        'companies_ordinance: "Cap. 622"': 'companies_ordinance: "Cap. 32"',
    }
    for old, new in cases.items():
        result = assess(parse_application(GOOD.replace(old, new), "a.yaml"))
        assert result.eligible is False, new
        assert result.max_grant_hkd == 0 and result.payments == []


def test_every_rule_cites_known_sources_and_weak_ones_are_configurable() -> None:
    book = rule_book()
    assert book.derived_from["sha256"]
    for rule in book.rules.values():
        assert rule.sources, rule.id
        assert all(s.title for s in rule.sources), rule.id
        if rule.confidence == "legco2019_or_hkpc2020_only":
            assert rule.configurable, rule.id
    nifs, rfs = book.version("NIFS"), book.version("RFS")
    assert nifs.effective_from == dt.date(2024, 1, 8) and rfs.effective_to == dt.date(2024, 1, 7)
    assert (nifs.max_active_projects, nifs.company_total_cap_hkd) == (3, 45_000_000)
    assert (rfs.max_active_projects, rfs.company_total_cap_hkd) == (1, None)


def test_a_scheme_version_not_in_force_is_warned() -> None:
    result = assess(parse_application(GOOD.replace("scheme: NIFS", "scheme: RFS"), "a.yaml"))
    assert any("in force 2020-07-27 to 2024-01-07" in w for w in result.warnings)


def test_the_rule_book_agrees_with_the_catalogue_it_was_derived_from() -> None:
    from microfab.funding.rules import catalogue_data

    book = rule_book()
    catalogue = catalogue_data()
    assert book.derived_from["sha256"] == catalogue["derived_from"]["sha256"]
    nifs = next(s for s in catalogue["schemes"] if s["id"] == "nifs")
    ratio = book.rule("funding_ratio").params
    assert (ratio["government"], ratio["company"]) == (
        nifs["funding_ratio"]["government"],
        nifs["funding_ratio"]["company"],
    )
    assert (
        book.rule("cap_per_project").params["amount_hkd"] == nifs["cap_per_project"]["amount_hkd"]
    )
    assert book.version("NIFS").company_total_cap_hkd == nifs["cap_total"]["amount_hkd"]
    texts = {r["rule"] for r in nifs["eligibility"]} | {r["rule"] for r in nifs["eligible_costs"]}
    assert book.rule("applicant_incorporated_hk").text in texts
