"""Order intake from CSV and Excel: good rows create orders, bad rows are located, re-imports
store nothing."""

from __future__ import annotations

import json
from pathlib import Path

import openpyxl
from typer.testing import CliRunner

from microfab.cli import app
from microfab.errors import LocatedFileError

DATA = Path(__file__).parent / "data"


def test_orders_from_csv_and_excel(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path}/store.db"  # a CLI test: the store is not its subject
    runner = CliRunner()
    env = {"MICROFAB_DB": db_url}
    assert (
        runner.invoke(
            app, ["factory", "apply", str(DATA / "factory-stock.yaml")], env=env
        ).exit_code
        == 0
    )
    orders = tmp_path / "orders.csv"
    orders.write_text(
        "order,product,quantity,due,priority,options\n"
        "CUST-101,BRKT-1,50,2026-12-12,3,\n"
        "CUST-102,BRKT-9,5,,,\n"
        "CUST-103,BRKT-1,many,,,\n"
        "CUST-104,BRKT-1,10,2026-12-32,,\n",
        encoding="utf-8",
    )
    first = runner.invoke(app, ["orders", "import", str(orders), "--json"], env=env)
    assert isinstance(first.exception, LocatedFileError) and first.exception.exit_code == 2
    assert json.loads(first.stdout) == {
        "created": ["CUST-101"],
        "unchanged": [],
        "problems": [
            f"{orders}:3:2 product: 'BRKT-9' is not a product of this factory; known: BRKT-1",
            f"{orders}:4:3 quantity: 'many' is not a whole number",
            f"{orders}:5:4 due: '2026-12-32' is not a time such as 2026-11-23, 2026-11-23T08:00 "
            "(site time) or 2026-11-23T08:00:00+08:00",
        ],
    }
    again = runner.invoke(app, ["orders", "import", str(orders), "--json"], env=env)
    assert json.loads(again.stdout)["unchanged"] == ["CUST-101"]

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["order", "product", "quantity", "due"])
    sheet.append(["XL-1", "BRKT-1", 12, "2026-12-15"])
    sheet.append(["XL-2", "BRKT-1", 0, None])
    workbook = tmp_path / "orders.xlsx"
    book.save(workbook)
    book.close()
    excel = runner.invoke(app, ["orders", "import", str(workbook), "--release", "--json"], env=env)
    assert json.loads(excel.stdout)["created"] == ["XL-1"]
    assert excel.exception.problems == [  # type: ignore[union-attr]
        f"{workbook}:3:3 quantity: must be a whole number from 1 to 2,147,483,647, got 0"
    ]
    shown = runner.invoke(app, ["orders", "show", "XL-1", "--json"], env=env)
    assert json.loads(shown.stdout)["status"] == "released"
