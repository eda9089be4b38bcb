"""CLI tables at 80 columns fold or wrap long ids instead of cutting them (``WO26112…``).

The demo's food line (two simulated hours) in a SQLite file; each table command runs with
``COLUMNS=80``. Every order id and machine id must be readable in full: no ellipsis anywhere, and
each id found whole once the output's folds (line breaks inside a cell) are undone.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from microfab.cli import app
from microfab.sim.scenario import load_scenario
from microfab.store import open_store

runner = CliRunner()
DEMO_2H = ["--scenario", "food-line", "--speed", "max", "--duration", "2h", "--seed", "1"]


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('cols')}/demo.db"
    done = runner.invoke(app, ["demo", *DEMO_2H, "--no-web", "--direct", "--db", url])
    assert done.exit_code == 0, done.stdout
    return url


def at_80(*args: str) -> str:
    result = runner.invoke(app, list(args), env={"COLUMNS": "80"}, terminal_width=80)
    assert result.exit_code == 0, (args, result.stdout, result.exception)
    return result.stdout


def cells(output: str) -> str:
    """The output with each table row's cells joined back where Rich folded them: the text of
    every column, continuation lines appended to the line above (box characters removed)."""
    columns: dict[int, str] = {}
    for line in output.splitlines():
        for match in re.finditer(r"[^│┃|]+", line):
            columns[match.start()] = columns.get(match.start(), "") + match.group(0).strip()
    return " ".join(columns.values())


@pytest.mark.parametrize(
    "command",
    [
        ["orders", "list"],
        ["oee", "--by", "machine"],
        ["downtime"],
        ["plan", "schedule", "--time-limit", "2"],
    ],
    ids=lambda c: " ".join(c),
)
def test_tables_at_80_columns_show_whole_ids(db: str, command: list[str], tmp_path: Path) -> None:
    extra = ["--out", str(tmp_path / "plan.json")] if command[0] == "plan" else []
    output = at_80(*command, *extra, "--db", db)
    assert "…" not in output, output
    table_lines = output.rstrip().splitlines()[:-1]  # the last line: a note under the table
    assert max(len(line) for line in table_lines) <= 80, output
    scenario = load_scenario("food-line")
    with open_store(db) as store:
        orders = [o.order for o in store.order_status()]
    joined = cells(output)
    if command[0] in ("orders", "plan"):
        shown = [o for o in orders if o in joined]
        assert shown, f"no whole order id in:\n{output}"
    if command[0] == "oee":
        for ref in scenario.factory.machines():
            if ref.machine.produces:
                assert ref.machine.id in joined, (ref.machine.id, output)
