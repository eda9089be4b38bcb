"""The project ledger: budget vs spend, warnings, deadlines, claims, and the report drafts."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from microfab.cli import app
from microfab.errors import FundingFileError
from microfab.funding.ledger import parse_ledger, review_ledger

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "nifs-ledger.yaml"
runner = CliRunner()


def example_text() -> str:
    return EXAMPLE.read_text(encoding="utf-8")


def test_the_example_ledger_through_the_cli() -> None:
    result = runner.invoke(
        app, ["funding", "ledger", str(EXAMPLE), "--as-of", "2026-11-22", "--json"]
    )
    assert result.exit_code == 0, (result.stdout, result.exception)
    doc = json.loads(result.stdout)
    assert doc["approved_budget_hkd"] == "8000000.50"
    assert doc["spent_hkd"] == 7_330_000
    # B3 is overspent by 50,000: only its approved 2,400,000 is reimbursable
    assert doc["eligible_spend_hkd"] == 7_280_000
    items = {i["id"]: i for i in doc["items"]}
    assert items["B3"]["overspent"] and items["B3"]["remaining_hkd"] == -50_000
    assert items["B1"]["invoices"] == 2 and items["B1"]["spent_hkd"] == 3_200_000
    assert any("B3" in w and "overspent by HK$50,000" in w for w in doc["warnings"])
    claims = {c["kind"]: c for c in doc["claims"]}
    assert claims["interim"]["earliest"] == "2027-01-01"
    assert claims["interim"]["max_hkd"] == 1_333_333  # 50% of the grant 2,666,666
    assert claims["final"]["max_hkd"] == 2_426_666  # one-third of 7,280,000
    deadlines = {d["what"].split(" (")[0]: d for d in doc["deadlines"]}
    assert deadlines["milestone: Operators trained"]["status"] == "due_soon"
    assert deadlines["milestone: Operators trained"]["days_left"] == 23
    transfer = next(d for d in doc["deadlines"] if "no-transfer" in d["what"])
    assert transfer["due"] == "2032-06-30" and "S99" in transfer["source"]


def test_claims_are_limited_by_spend_and_by_what_was_paid() -> None:
    ledger = parse_ledger(
        example_text().replace(
            "payments_received: []",
            "payments_received:\n  - {kind: interim, date: 2027-02-15, amount_hkd: 1000000}",
        ),
        "l.yaml",
    )
    review = review_ledger(ledger, dt.date(2027, 7, 31))
    claims = {c.kind: c for c in review.claims}
    assert claims["final"].max_hkd == 2_426_666 - 1_000_000
    early = review_ledger(ledger, dt.date(2026, 3, 31))
    interim = next(c for c in early.claims if c.kind == "interim")
    # by 31 Mar 2026: 180,000 + 1,600,000 spent, one-third is 593,333
    assert interim.max_hkd == 593_333


def test_ineligible_spend_and_late_invoices_are_warned() -> None:
    text = (
        example_text()
        .replace(
            '  - {id: B7, item: "Operator and technician training", category: training, approved_hkd: 90000.50}',
            '  - {id: B7, item: "Operator and technician training", category: training, approved_hkd: 90000.50}\n'
            '  - {id: B8, item: "Rent", category: operating, approved_hkd: 100000}',
        )
        .replace(
            "milestones:",
            '  - {budget: B8, date: 2027-08-01, invoice: "R-1", supplier: "Landlord", amount_hkd: 50000}\n'
            "milestones:",
        )
    )
    review = review_ledger(parse_ledger(text, "l.yaml"), dt.date(2027, 9, 1))
    assert any("R-1" in w and "not reimbursable" in w for w in review.warnings)
    assert any("R-1" in w and "outside the project period" in w for w in review.warnings)
    assert any(w.startswith("overdue: project end") for w in review.warnings)
    assert review.eligible_spend == 7_280_000, "rent is never reimbursable"


def test_a_bad_ledger_is_located() -> None:
    text = (
        example_text()
        .replace("{budget: B2,", "{budget: B9,")
        .replace("amount_hkd: 410000", "amount_hkd: -410000")
    )
    with pytest.raises(FundingFileError) as caught:
        parse_ledger(text, "l.yaml")
    assert caught.value.problems == [
        "l.yaml:26 expenditures[4].amount_hkd: -410000 is negative; give an amount of 0 or more"
    ]
    with pytest.raises(FundingFileError) as caught:
        parse_ledger(example_text().replace("{budget: B2,", "{budget: B9,"), "l.yaml")
    assert caught.value.problems == [
        "l.yaml:24 expenditures[2].budget: 'B9' is not a budget item id (ids: B1, B2, B3, B4, B5, B6, B7)"
    ]


@pytest.mark.parametrize("kind", ["progress", "final", "benefit"])
def test_report_drafts_render(kind: str, tmp_path: Path) -> None:
    page = tmp_path / f"{kind}.html"
    result = runner.invoke(
        app, ["funding", "report", kind, str(EXAMPLE), "--as-of", "2026-11-22", "--html", str(page)]
    )
    assert result.exit_code == 0, (result.stdout, result.exception)
    text = page.read_text(encoding="utf-8")
    assert "DRAFT" in text and "Harbour Fresh Kitchens Ltd" in text
    if kind != "benefit":
        assert "RB-88120" in text and "1,333,333" in text
    else:
        assert "Automation technician" in text and "2032-06-30" in text


def test_the_benefit_report_reads_the_line_output(db_url: str, tmp_path: Path) -> None:
    result = runner.invoke(app, ["sim", "--duration", "4h", "--db", db_url])
    assert result.exit_code == 0, (result.stdout, result.exception)
    page = tmp_path / "benefit.html"
    pdf = tmp_path / "benefit.pdf"
    result = runner.invoke(
        app,
        [
            "funding",
            "report",
            "benefit",
            str(EXAMPLE),
            "--as-of",
            "2026-11-22",
            "--db",
            db_url,
            "--html",
            str(page),
            "--pdf",
            str(pdf),
        ],
    )
    assert result.exit_code == 0, (result.stdout, result.exception)
    text = page.read_text(encoding="utf-8")
    assert "MEAL-CHK-RICE" in text and "turnover HK$" in text
    assert pdf.read_bytes().startswith(b"%PDF")
