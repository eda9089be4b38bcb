"""The worked example of docs/green.md, reproduced exactly from the blocks the doc shows."""

from __future__ import annotations

import json
import re
from pathlib import Path

from typer.testing import CliRunner

from microfab.cli import app
from microfab.model.events import event_from_dict
from microfab.model.factory_file import parse_factory
from microfab.store.event_store import EventStore

DOC = Path(__file__).resolve().parents[1] / "docs" / "green.md"


def _block(name: str) -> str:
    text = DOC.read_text(encoding="utf-8")
    found = re.search(rf"<!-- worked-example: {name} -->\s*```\w*\n(.*?)```", text, re.DOTALL)
    assert found, f"docs/green.md has no worked-example block '{name}'"
    return found.group(1)


def _expected() -> dict[str, str]:
    rows = re.findall(r"^\| `([a-z0-9_./-]+)` \| ([^|]+) \|", _block("expected"), re.MULTILINE)
    assert rows
    return {key: value.strip() for key, value in rows}


def _lookup(document: dict[str, object], dotted: str) -> object:
    value: object = document
    for part in dotted.split("."):
        assert isinstance(value, dict), dotted
        value = value[part]
    return value


def test_worked_example_is_reproduced_exactly(store: EventStore, tmp_path: Path) -> None:
    store.apply_factory(parse_factory(_block("factory")), "factory.yaml")
    events = [event_from_dict(json.loads(line)) for line in _block("events").splitlines() if line]
    assert store.append(events).inserted == len(events)
    settings = tmp_path / "carbon.yaml"
    settings.write_text(_block("settings"), encoding="utf-8")
    result = CliRunner().invoke(
        app,
        ["carbon", "footprint", "--product", "P-BUN", "--from", "2023-06-01 08:00",
         "--to", "2023-06-01 10:00", "--settings", str(settings), "--db", store.url, "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    by_meter = {m["machine"].rsplit("/", 1)[-1]: m for m in document["meters"]}
    document["filler"] = by_meter["filler-1"]
    document["panel"] = by_meter["panel-1"]
    for key, value in _expected().items():
        got = _lookup(document, key)
        assert str(got) == value, f"{key}: doc says {value}, microfab says {got}"
    assert any("taken as a reset" in flag for flag in document["data_quality"]["flags"])

    one = CliRunner().invoke(
        app,
        ["carbon", "footprint", "--order", "WO-A", "--from", "2023-06-01 08:00",
         "--to", "2023-06-01 10:00", "--settings", str(settings), "--db", store.url, "--json"],
    )  # fmt: skip
    assert one.exit_code == 0, one.output
    order = json.loads(one.stdout)
    assert (order["energy_kwh"], order["units"]) == (4.5, 30)
