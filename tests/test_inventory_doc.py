"""docs/inventory.md's worked reorder-point and MRP-lite example, recomputed from the doc itself."""

from __future__ import annotations

import json
import re
from pathlib import Path

from typer.testing import CliRunner

from microfab.cli import app

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "inventory.md"


def _block(text: str, name: str) -> str:
    found = re.search(rf"<!-- example: {re.escape(name)} -->\n```\w+\n(.*?)```", text, re.S)
    assert found is not None, f"docs/inventory.md has no example block {name}"
    return found.group(1)


def test_the_worked_example_of_docs_inventory_md(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path}/store.db"  # a CLI test: the store is not its subject
    text = DOC.read_text(encoding="utf-8")
    (tmp_path / "moves.csv").write_text(_block(text, "moves.csv"), encoding="utf-8")
    (tmp_path / "po.csv").write_text(_block(text, "purchase-orders.csv"), encoding="utf-8")
    expected = json.loads(_block(text, "reorder.json"))
    runner = CliRunner()
    env = {"MICROFAB_DB": db_url}
    for args in (
        ["factory", "apply", str(ROOT / "tests" / "data" / "factory-stock.yaml")],
        ["stock", "import", str(tmp_path / "moves.csv")],
        ["orders", "create", "BRKT-1", "-q", "100", "--id", "WO-7", "--release"],
    ):
        result = runner.invoke(app, args, env=env)
        assert result.exit_code == 0, result.output
    shown = runner.invoke(
        app,
        ["stock", "reorder", "--at", "2026-12-08T09:00", "--purchase-orders",
         str(tmp_path / "po.csv"), "--json"],
        env=env,
    )  # fmt: skip
    assert shown.exit_code == 0, shown.output
    rows = {row["item"]: row for row in json.loads(shown.stdout)}
    assert rows["RICE-JASMINE"] == expected
    # the figures the doc works out by hand
    assert "d̄ = 70 / 7 = **10 kg/day**" in text
    assert f"SS = 1.644854 × 5.163978 × √4 = **{expected['safety_stock']} kg**" in text
    assert f"ROP = 10 × 4 + 16.987975 = **{expected['reorder_point']} kg**" in text
    # recall: which orders used lot R1 (the import's ref names an issue's work order)
    recall = runner.invoke(app, ["trace", "--lot", "R1", "--json"], env=env)
    assert recall.exit_code == 0, recall.output
    used = {row["order"]: row["qty"] for row in json.loads(recall.stdout)["orders"]}
    assert used == {"WO-1": 22.0, "WO-2": 8.0, "WO-3": 24.0, "WO-4": 16.0}
