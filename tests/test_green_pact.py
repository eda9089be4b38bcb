"""The PACT export of the simulated food line validates against the PACT v3.0.3 schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from typer.testing import CliRunner

from conftest import pact_spec
from microfab.cli import app
from microfab.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = ROOT / "docs" / "examples" / "carbon-food-line.yaml"


def _validator() -> jsonschema.Draft202012Validator:
    spec = yaml.safe_load((pact_spec() / "pact-openapi-3.0.3.yaml").read_text(encoding="utf-8"))
    schema = {"$ref": "#/components/schemas/ProductFootprint", "components": spec["components"]}
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def _errors(document: Any) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in _validator().iter_errors(document)]


def test_the_validator_accepts_the_wbcsd_example_and_rejects_a_broken_document() -> None:
    example = json.loads((pact_spec() / "example-v3-productfootprint-1.json").read_text("utf-8"))
    assert _errors(example) == []
    broken = dict(example, companyIds=["not-a-urn"])
    assert _errors(broken)


def test_food_line_export_is_a_valid_pact_product_footprint(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'fl.db'}"
    runner = CliRunner()
    demo = runner.invoke(
        app,
        ["demo", "--scenario", "food-line", "--speed", "max", "--duration", "8h", "--seed", "1",
         "--no-web", "--direct", "--db", db],
    )  # fmt: skip
    assert demo.exit_code == 0, demo.output
    output = tmp_path / "pact.json"
    result = runner.invoke(
        app,
        ["carbon", "export", "--product", "MEAL-CHK-RICE", "--format", "pact",
         "--settings", str(SETTINGS), "--db", db, "--output", str(output)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    document = json.loads(output.read_text(encoding="utf-8"))
    assert _errors(document) == []
    pcf = document["pcf"]
    assert document["companyName"] == "Harbour Fresh Kitchens Ltd"
    assert pcf["productMassPerDeclaredUnit"] == "0.45"
    assert pcf["declaredUnitOfMeasurement"] == "piece"
    footprint = runner.invoke(
        app,
        ["carbon", "footprint", "--product", "MEAL-CHK-RICE", "--settings", str(SETTINGS),
         "--db", db, "--json"],
    )  # fmt: skip
    per_unit = json.loads(footprint.stdout)["kgco2e_per_unit"]
    assert float(pcf["pcfExcludingBiogenicUptake"]) == per_unit > 0
    assert "WBCSD" in document["comment"]
    assert "CO2 only" not in document["comment"]  # CLP 2023 is CO2e; 2019 would be flagged

    report = tmp_path / "carbon-report.html"
    made = runner.invoke(
        app,
        ["carbon", "report", "--product", "MEAL-CHK-RICE", "--settings", str(SETTINGS),
         "--db", db, "--output", str(report), "--no-pdf"],
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    html = report.read_text(encoding="utf-8")
    for title in ("By scope", "By machine", "By process step", "Per-unit trend", "idle"):
        assert title in html


def test_missing_material_factors_are_all_listed(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'fl.db'}"
    runner = CliRunner()
    runner.invoke(app, ["demo", "--scenario", "food-line", "--speed", "max", "--duration", "8h",
                        "--seed", "1", "--no-web", "--direct", "--db", db])  # fmt: skip
    failed = runner.invoke(app, ["carbon", "footprint", "--product", "MEAL-CHK-RICE", "--db", db])
    assert isinstance(failed.exception, InputError)  # the CLI's main() prints it, exit 2
    for material in ("RICE-JASMINE", "CHICKEN-THIGH", "SAUCE-BASE", "TRAY-CPET-1C"):
        assert material in failed.exception.message
    allowed = runner.invoke(
        app, ["carbon", "footprint", "--product", "MEAL-CHK-RICE", "--db", db, "--json",
              "--allow-missing"],
    )  # fmt: skip
    assert allowed.exit_code == 0, allowed.output
    flags = json.loads(allowed.stdout)["data_quality"]["flags"]
    assert any("materials without an emission factor" in flag for flag in flags)
