"""The documentation keeps up with the code: schemas are current, every command is documented."""

from __future__ import annotations

import json
import re
from pathlib import Path

import typer.main

from microfab.cli import app
from microfab.model.events import STREAMS, events_json_schema
from microfab.model.factory import Factory

ROOT = Path(__file__).resolve().parents[1]


def _docs_text() -> str:
    return "\n".join(
        p.read_text(encoding="utf-8") for p in [ROOT / "README.md", *ROOT.glob("docs/*.md")]
    )


def test_event_schema_file_is_current() -> None:
    stored = json.loads((ROOT / "docs" / "events.schema.json").read_text(encoding="utf-8"))
    assert stored == events_json_schema(), (
        "run `make docs-schemas` and commit docs/events.schema.json"
    )


def test_factory_schema_file_is_current() -> None:
    stored = json.loads((ROOT / "docs" / "factory.schema.json").read_text(encoding="utf-8"))
    stored.pop("$schema")
    assert stored == Factory.model_json_schema(), (
        "run `make docs-schemas` and commit docs/factory.schema.json"
    )


def _commands(group: typer.Typer) -> list[str]:
    click_group = typer.main.get_command(group)
    names: list[str] = []
    for name, command in click_group.commands.items():  # type: ignore[attr-defined]
        subcommands = getattr(command, "commands", None)
        if subcommands:
            names += [f"{name} {sub}" for sub in subcommands]
        else:
            names.append(name)
    return names


def test_every_command_is_shown_in_the_docs() -> None:
    text = _docs_text()
    missing = [name for name in _commands(app) if f"microfab {name}" not in text]
    assert not missing, f"commands with no example in README.md or docs/: {missing}"


def test_every_event_stream_is_documented() -> None:
    events_doc = (ROOT / "docs" / "events.md").read_text(encoding="utf-8")
    for stream in STREAMS:
        assert re.search(rf"^### `{stream}`", events_doc, re.MULTILINE), stream


def test_readme_quick_start_has_exactly_two_commands() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.DOTALL)
    commands = [line for block in blocks for line in block.splitlines() if line.strip()]
    assert commands == ["make demo", "make test"]
    assert "make test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
