"""The documentation keeps up with the code: schemas are current, every command is documented."""

from __future__ import annotations

import ast
import importlib
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


# ---------------------------------------------------------------------------- module references

SRC = ROOT / "src"
PACKAGE = SRC / "microfab"

DOTTED_NAME = re.compile(r"(?<![\w/.-])microfab(?:\.[A-Za-z_]\w*)+")
"""``microfab.track.plant`` or ``microfab.track.plant.Plant``; not ``sqlite:///microfab.db``."""

NOT_A_MODULE = re.compile(r"\.(?:db|env|ya?ml|json|toml|zip|service|hk|com|org)$")
"""A dotted ``microfab.…`` that is a file or host name (``microfab.env``, ``microfab.plant.example.hk``)."""

SOURCE_PATH = re.compile(r"(?<![\w/.-])(?:src/)?microfab/((?:\w+/)*\w+\.py)\b")
"""``src/microfab/store/audit.py`` or ``microfab/store/audit.py``."""

PACKAGE_PATH = re.compile(r"(?<![\w/.-])((\w+)/(?:\w+/)*\w+\.py)\b")
"""``store/audit.py``: a path inside microfab when it starts with one of its packages."""

TOP_PACKAGES = frozenset(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists())


def _docstrings(path: Path) -> str:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    nodes = [n for n in ast.walk(tree) if isinstance(n, ast.Module | ast.ClassDef)]
    nodes += [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    return "\n".join(d for n in nodes if (d := ast.get_docstring(n, clean=False)))


def _texts() -> dict[str, str]:
    """README.md, docs/*.md and every docstring of the package, by where they are."""
    texts = {
        str(p.relative_to(ROOT)): p.read_text(encoding="utf-8")
        for p in [ROOT / "README.md", *sorted(ROOT.glob("docs/*.md"))]
    }
    for path in sorted(PACKAGE.rglob("*.py")):
        texts[str(path.relative_to(ROOT))] = _docstrings(path)
    return texts


def dotted_references(text: str) -> list[str]:
    """Every ``microfab.…`` name in ``text`` that means a module or something in one."""
    found = [m.group(0) for m in DOTTED_NAME.finditer(text)]
    return [name for name in found if not NOT_A_MODULE.search(name)]


def path_references(text: str) -> list[str]:
    """Every path of a module file in ``text``, relative to ``src/microfab``."""
    found = [m.group(1) for m in SOURCE_PATH.finditer(text)]
    found += [m.group(1) for m in PACKAGE_PATH.finditer(text) if m.group(2) in TOP_PACKAGES]
    return found


def names_something(name: str) -> bool:
    """``microfab.a.b.C.d``: the longest importable prefix, then attributes, all exist."""
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        file = SRC.joinpath(*parts[:cut])
        if not (file.with_suffix(".py").is_file() or (file / "__init__.py").is_file()):
            continue
        found: object = importlib.import_module(".".join(parts[:cut]))
        for attribute in parts[cut:]:
            if not hasattr(found, attribute):
                return False
            found = getattr(found, attribute)
        return True
    return False


def test_reference_finders() -> None:
    text = (
        ":mod:`microfab.track.plant` and :class:`~microfab.track.plant.Plant`, "
        "sqlite:///microfab.db, /etc/microfab/microfab.env, microfab.plant.example.hk, "
        "src/microfab/store/audit.py, `store/reads.py`, bench/NAME.py, solvers/dispatch.py"
    )
    assert dotted_references(text) == ["microfab.track.plant", "microfab.track.plant.Plant"]
    assert path_references(text) == ["store/audit.py", "store/reads.py"]
    assert names_something("microfab.track.plant.Plant.now")
    assert names_something("microfab.errors")
    assert not names_something("microfab.web.carbon")
    assert not names_something("microfab.track.plant.NoSuchThing")
    assert not names_something("microfab.nowhere.thing")


def test_docs_and_docstrings_name_only_modules_that_exist() -> None:
    missing = sorted(
        {
            f"{where}: {name}"
            for where, text in _texts().items()
            for name in dotted_references(text)
            if not names_something(name)
        }
        | {
            f"{where}: {path}"
            for where, text in _texts().items()
            for path in path_references(text)
            if not (PACKAGE / path).is_file()
        }
    )
    assert not missing, "names of modules (or of things in them) that do not exist:\n" + "\n".join(
        missing
    )


def test_the_shipped_scenarios_are_the_documented_ones() -> None:
    from microfab.commands.sim_options import ScenarioOption
    from microfab.sim.scenario import scenario_names

    shipped = scenario_names()
    assert len(shipped) >= 3
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    simulator = (ROOT / "docs" / "simulator.md").read_text(encoding="utf-8")
    listed = re.findall(r"^- \*\*([\w-]+)\*\*", simulator, re.MULTILINE)
    assert listed == shipped, "docs/simulator.md lists each scenario as '- **NAME** — …'"
    for name in shipped:
        assert f"`{name}`" in readme, f"README.md does not describe the scenario {name}"
    choices = ", ".join(shipped)
    assert f"unknown scenario 'nope'; choose one of: {choices} (" in readme
    option_help = ScenarioOption.__metadata__[0].help
    assert f"({choices})" in option_help
