"""Every user-edited YAML file: a fault is one ``file:line field: problem`` line and exit 2.

Each case takes a valid example file, breaks it at a known line, and runs the command that reads
it through ``microfab.cli.main`` (the entry point), so the exit code and the message are what a
plant engineer sees.
"""

from __future__ import annotations

import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from microfab.cli import main
from microfab.errors import InputError, LocatedFileError
from microfab.green.factors import load_factors
from microfab.green.settings import load_settings
from microfab.model.located_yaml import read_file
from microfab.sim.scenario import SCENARIO_DIR

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "docs" / "examples"
TEMPLATE = ROOT / "src" / "microfab" / "templates" / "factory.yaml"


def run_main(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[object, list[str]]:
    """``microfab ARGS`` in this process: (exit code, stderr lines)."""
    monkeypatch.setattr(sys, "argv", ["microfab", *args])
    with pytest.raises(SystemExit) as stopped:
        main()
    return stopped.value.code, capsys.readouterr().err.splitlines()


@dataclass(frozen=True)
class Case:
    kind: str
    source: Path
    command: tuple[str, ...]
    """The command line; ``FILE`` stands for the broken file, ``DB`` for an empty store."""
    old: str = ""
    """Text of the file to break (replaced by ``new``); empty: an unknown field is appended."""
    new: str = ""
    field: str = "colour_of_the_door"


CASES = [
    Case("factory", TEMPLATE, ("validate", "FILE")),
    Case(
        "carbon settings",
        EXAMPLES / "carbon-food-line.yaml",
        ("carbon", "report", "--product", "X", "--settings", "FILE", "--db", "DB"),
    ),
    Case(
        "funding application",
        EXAMPLES / "nifs-application.yaml",
        ("funding", "assess", "FILE"),
        "approved_grant_hkd: 4200000",
        "approved_grant_hkd: -4200000",
        "other_projects[1].approved_grant_hkd",
    ),
    Case(
        "company profile",
        EXAMPLES / "company.yaml",
        ("funding", "match", "FILE"),
        "project_cost_hkd: 8580000",
        "project_cost_hkd: a lot",
        "need.project_cost_hkd",
    ),
    Case(
        "funding ledger",
        EXAMPLES / "nifs-ledger.yaml",
        ("funding", "ledger", "FILE"),
        "count: 2}",
        "count: two}",
        "benefit.jobs[0].count",
    ),
    Case("alert rules", EXAMPLES / "alerts.yaml", ("alerts", "run", "--once", "--rules", "FILE")),
    Case(
        "HACCP plan",
        EXAMPLES / "haccp-food-line.yaml",
        ("haccp", "batches", "--plan", "FILE", "--db", "DB"),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.kind for c in CASES])
def test_a_broken_file_is_one_located_line_and_exit_2(
    case: Case,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = case.source.read_text(encoding="utf-8").rstrip("\n") + "\n"
    if case.old:
        assert text.count(case.old) == 1
        text = text.replace(case.old, case.new)
        line = text[: text.index(case.new)].count("\n") + 1
    else:
        text += f"{case.field}: red\n"
        line = text.count("\n")
    broken = tmp_path / case.source.name
    broken.write_text(text, encoding="utf-8")
    args = [
        str(broken) if a == "FILE" else f"sqlite:///{tmp_path}/empty.db" if a == "DB" else a
        for a in case.command
    ]
    code, errors = run_main(monkeypatch, capsys, *args)
    assert code == 2, errors
    assert len(errors) == 1, errors
    assert re.fullmatch(
        rf"{re.escape(str(broken))}:{line} {re.escape(case.field)}: \S.*", errors[0]
    )
    if not case.old:
        assert "unknown field (check the spelling" in errors[0]


def test_a_bad_carbon_setting_names_its_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = tmp_path / "carbon.yaml"
    settings.write_text(
        "allocation: units\nswitch_off_after_min: -5\ntariffs:\n"
        "  - {supplier: clp, year: 2026, hkd_per_kwh: 1.5}\n",
        encoding="utf-8",
    )
    code, errors = run_main(
        monkeypatch,
        capsys,
        *("carbon", "footprint", "--product", "X", "--settings", str(settings)),
        *("--db", f"sqlite:///{tmp_path}/empty.db"),
    )
    assert code == 2
    assert errors == [
        f"{settings}:2 switch_off_after_min: Input should be greater than or equal to 0",
        f"{settings}:4 tariffs[0].source: field required",
    ]


def test_an_empty_carbon_settings_file_is_the_defaults(tmp_path: Path) -> None:
    empty = tmp_path / "carbon.yaml"
    empty.write_text("# nothing set yet\n", encoding="utf-8")
    assert load_settings(empty) == load_settings(None)


def test_a_bad_factor_override_names_its_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    factors = tmp_path / "factors.yaml"
    factors.write_text(
        "version: plant-2026\nfactors:\n"
        "  - {key: electricity/clp, year: 2026, value: 0.39, unit: kgCO2e/kWh, source: CLP}\n"
        "  - {key: diesel, year: 2026, value: 2.6, unit: kWh, source: EPD}\n",
        encoding="utf-8",
    )
    code, errors = run_main(
        monkeypatch,
        capsys,
        *("carbon", "report", "--product", "X", "--factors", str(factors)),
        *("--db", f"sqlite:///{tmp_path}/empty.db"),
    )
    assert code == 2
    assert errors == [
        f"{factors}:4 factors[1].unit: 'kWh' is not an emission per activity, such as kgCO2e/kWh"
    ]
    assert load_factors().has("electricity/clp")  # the shipped table still reads


def test_a_scenario_behaviour_fault_names_its_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    source = SCENARIO_DIR / "moulding-cell"
    shutil.copy(source / "factory.yaml", tmp_path / "factory.yaml")
    behaviour = (source / "behaviour.yaml").read_text(encoding="utf-8").rstrip("\n") + "\n"
    line = behaviour.count("\n") + 2
    (tmp_path / "behaviour.yaml").write_text(
        behaviour + "faults:\n  - {machine: ghost-9, kind: bearing_wear, onset_h: 1, life_h: 2}\n",
        encoding="utf-8",
    )
    code, errors = run_main(
        monkeypatch, capsys, "sim", "--scenario", str(tmp_path), "--duration", "1h"
    )
    assert code == 2
    assert errors == [
        f"{tmp_path / 'behaviour.yaml'}:{line} faults[0].machine: 'ghost-9' is not a machine"
    ]


def test_a_missing_behaviour_file_says_which(tmp_path: Path) -> None:
    shutil.copy(SCENARIO_DIR / "moulding-cell" / "factory.yaml", tmp_path / "factory.yaml")
    from microfab.sim.scenario import load_scenario

    with pytest.raises(
        InputError, match=r"cannot read the scenario behaviour .*behaviour\.yaml: no such file"
    ):
        load_scenario(str(tmp_path))


def test_yaml_syntax_is_located_too(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - kind: threshold\n    above: [1, 2\n", encoding="utf-8")
    from microfab.quality.alerts import load_alert_rules

    with pytest.raises(LocatedFileError) as raised:
        load_alert_rules(rules)
    assert re.fullmatch(rf"{re.escape(str(rules))}:\d+ \(yaml\): .+", raised.value.problems[0])


def test_one_reader_names_what_could_not_be_read(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"^cannot read the ledger .*none\.yaml: no such file$"):
        read_file(tmp_path / "none.yaml", "ledger")
    with pytest.raises(InputError, match="it is a folder, not a file"):
        read_file(tmp_path, "factory file")
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(InputError, match="not UTF-8 text"):
        read_file(latin, "factory file")
