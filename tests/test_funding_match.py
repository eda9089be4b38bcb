"""`microfab funding match`: schemes ranked against a company profile, each reason sourced."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from microfab.cli import app
from microfab.errors import FundingFileError
from microfab.funding.matcher import match_schemes, parse_profile
from microfab.funding.rules import catalogue_data

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "company.yaml"
runner = CliRunner()


def profile_text(**changes: str) -> str:
    text = EXAMPLE.read_text(encoding="utf-8")
    for old, new in changes.items():
        assert old.replace("_", " ") in text or old in text
        text = text.replace(old, new)
    return text


def test_a_new_smart_line_ranks_nifs_first() -> None:
    result = runner.invoke(app, ["funding", "match", str(EXAMPLE), "--json"])
    assert result.exit_code == 0, (result.stdout, result.exception)
    doc = json.loads(result.stdout)
    schemes = doc["schemes"]
    assert len(schemes) == len(catalogue_data()["schemes"])
    first = schemes[0]
    assert first["id"] == "nifs" and first["fits"]
    assert first["cap_per_project_hkd"] == 15_000_000
    assert first["estimate_hkd"] == 2_860_000  # one-third of HK$8,580,000
    by_id = {s["id"]: s for s in schemes}
    upgrade = by_id["production_line_upgrade_pilot"]
    assert not upgrade["fits"]
    assert any("EXISTING" in r["detail"] for r in upgrade["reasons"])
    assert not by_id["tvp"]["fits"], "TVP closed on 31 Dec 2024"
    assert not by_id["citf"]["fits"], "construction only"
    nias = by_id["nias"]
    assert any("minimum project cost HK$150,000,000" in r["detail"] for r in nias["reasons"])
    fitting = [s["fits"] for s in schemes]
    assert fitting == sorted(fitting, reverse=True), "fitting schemes come first"
    for s in schemes:
        for r in s["reasons"]:
            assert r["source"], (s["id"], r)


def test_an_existing_line_points_to_the_upgrade_scheme() -> None:
    profile = parse_profile(profile_text(**{"new_line: true": "new_line: false"}), "c.yaml")
    matches = {m.scheme["id"]: m for m in match_schemes(profile)}
    assert matches["production_line_upgrade_pilot"].fits
    assert not matches["nifs"].fits


def test_start_up_schemes_check_the_company_age() -> None:
    profile = parse_profile(
        profile_text(
            **{
                "founded: 2015": "founded: 2025",
                "stages: [production, technology_application]": "stages: [startup]",
            }
        ),
        "c.yaml",
    )
    matches = {m.scheme["id"]: m for m in match_schemes(profile)}
    assert matches["hkstp_incu_tech"].fits
    old = parse_profile(
        profile_text(**{"stages: [production, technology_application]": "stages: [startup]"}),
        "c.yaml",
    )
    assert not {m.scheme["id"]: m for m in match_schemes(old)}["hkstp_incu_tech"].fits


def test_a_bad_profile_is_located() -> None:
    with pytest.raises(FundingFileError) as caught:
        parse_profile(
            profile_text(**{"project_cost_hkd: 8580000": "project_cost_hkd: -1"}), "c.yaml"
        )
    assert caught.value.problems == [
        "c.yaml:14 need.project_cost_hkd: -1 is negative; give an amount of 0 or more"
    ]
    with pytest.raises(FundingFileError, match="'factory' is not one of"):
        parse_profile(
            profile_text(**{"stages: [production, technology_application]": "stages: [factory]"}),
            "c.yaml",
        )


def test_the_table_output() -> None:
    result = runner.invoke(app, ["funding", "match", str(EXAMPLE), "--top", "3"])
    assert result.exit_code == 0, result.exception
    assert "nifs" in result.stdout.lower() or "Industrialisa" in result.stdout
    assert "schemes fit" in result.stdout
