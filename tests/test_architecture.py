"""Layering rules of the source tree, checked on the syntax of every module (nothing is imported)."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "microfab"

MODEL_FORBIDDEN_LIBS = {"sqlalchemy", "alembic", "psycopg", "typer", "rich", "simpy"}


@dataclass(frozen=True)
class Module:
    name: str
    path: Path
    tree: ast.Module

    @property
    def is_package(self) -> bool:
        return self.path.name == "__init__.py"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _load() -> list[Module]:
    return [
        Module(_module_name(p), p, ast.parse(p.read_text(encoding="utf-8"), filename=str(p)))
        for p in sorted(PACKAGE.rglob("*.py"))
    ]


MODULES = _load()


def imported_names(module: Module) -> set[str]:
    """Every dotted name the module imports, anywhere in it (lazy imports in functions too).

    ``from a.b import c`` yields ``a.b.c`` (``c`` may be a submodule or a name in ``a.b``);
    relative imports are resolved against the module's package.
    """
    names: set[str] = set()
    package = module.name if module.is_package else module.name.rpartition(".")[0]
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join([*base_parts, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def modules_in(package: str) -> list[Module]:
    found = [m for m in MODULES if within(m.name, package)]
    assert found, f"no modules found in {package}"
    return found


def test_the_source_tree_is_found() -> None:
    names = {m.name for m in MODULES}
    assert {
        "microfab",
        "microfab.cli",
        "microfab.errors",
        "microfab.model.events",
        "microfab.model.factory",
        "microfab.sim.engine",
        "microfab.store.event_store",
    } <= names


def test_import_resolution() -> None:
    tree = ast.parse(
        "import os.path\nfrom . import calendar\nfrom ..errors import InputError\n"
        "def f():\n    from microfab.store import open_store\n"
    )
    found = imported_names(Module("microfab.model.x", PACKAGE / "model" / "x.py", tree))
    assert found == {
        "os.path",
        "microfab.model.calendar",
        "microfab.errors.InputError",
        "microfab.store.open_store",
    }


@pytest.mark.parametrize("module", modules_in("microfab.model"), ids=lambda m: m.name)
def test_model_is_pure(module: Module) -> None:
    imports = imported_names(module)
    ours = {n for n in imports if within(n, "microfab")}
    wrong = {n for n in ours if not (within(n, "microfab.model") or within(n, "microfab.errors"))}
    assert not wrong, (
        f"{module.name} imports {sorted(wrong)}; the model may use only itself and errors"
    )
    libs = {n for n in imports if n.split(".")[0] in MODEL_FORBIDDEN_LIBS}
    assert not libs, f"{module.name} imports {sorted(libs)}; the model does no I/O and has no UI"


@pytest.mark.parametrize("module", modules_in("microfab.sim"), ids=lambda m: m.name)
def test_simulator_does_not_know_the_store_or_cli(module: Module) -> None:
    wrong = {
        n
        for n in imported_names(module)
        if within(n, "microfab.store") or within(n, "microfab.cli")
    }
    assert not wrong, f"{module.name} imports {sorted(wrong)}; it must talk to a Publisher only"


@pytest.mark.parametrize("module", modules_in("microfab.store"), ids=lambda m: m.name)
def test_store_does_not_know_the_simulator_or_cli(module: Module) -> None:
    wrong = {
        n for n in imported_names(module) if within(n, "microfab.sim") or within(n, "microfab.cli")
    }
    assert not wrong, f"{module.name} imports {sorted(wrong)}"


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.name or "microfab")
def test_module_has_a_docstring(module: Module) -> None:
    doc = ast.get_docstring(module.tree, clean=False)
    assert doc, f"{module.path} has no module docstring"
    first = doc.splitlines()[0] if doc.splitlines() else ""
    assert first.strip(), f"{module.path}: the docstring's first line is empty"


# ---------------------------------------------------------------------------- the HTTP layer

DOMAIN = (
    "model",
    "store",
    "track",
    "plan",
    "green",
    "funding",
    "quality",
    "sim",
    "connect",
    "stock",
    "vision",
    "assist",
    "hq",
    "maint",
    "safety",
)
"""The domain folders: what the factory is and does, whatever reads or shows it."""

FRONT_ENDS = ("microfab.api", "microfab.web", "microfab.http", "microfab.app")
"""The HTTP layer: JSON routes, pages, their shared plumbing, and the app factory."""

ENTRY_POINTS = ("microfab.cli", "microfab.commands")


def _ours(module: Module, *packages: str) -> set[str]:
    return {n for n in imported_names(module) if any(within(n, p) for p in packages)}


@pytest.mark.parametrize(
    "module", [m for d in DOMAIN for m in modules_in(f"microfab.{d}")], ids=lambda m: m.name
)
def test_domain_does_not_know_the_http_layer_or_the_cli(module: Module) -> None:
    wrong = _ours(module, *FRONT_ENDS, *ENTRY_POINTS)
    assert not wrong, (
        f"{module.name} imports {sorted(wrong)}; domain code is called by the HTTP layer and the "
        "CLI, it never calls them (move what both need into the domain service)"
    )


@pytest.mark.parametrize("module", modules_in("microfab.api"), ids=lambda m: m.name)
def test_json_routes_do_not_know_the_pages(module: Module) -> None:
    wrong = _ours(module, "microfab.web", "microfab.app", *ENTRY_POINTS)
    assert not wrong, (
        f"{module.name} imports {sorted(wrong)}; JSON routes and pages share only microfab.http "
        "and the domain services"
    )


@pytest.mark.parametrize("module", modules_in("microfab.web"), ids=lambda m: m.name)
def test_pages_do_not_know_the_json_routes(module: Module) -> None:
    wrong = _ours(module, "microfab.api", "microfab.app", *ENTRY_POINTS)
    assert not wrong, (
        f"{module.name} imports {sorted(wrong)}; a page calls the domain service (or "
        "microfab.http), never a route module"
    )


@pytest.mark.parametrize("module", modules_in("microfab.http"), ids=lambda m: m.name)
def test_http_plumbing_knows_neither_routes_nor_pages(module: Module) -> None:
    wrong = _ours(module, "microfab.api", "microfab.web", "microfab.app", *ENTRY_POINTS)
    assert not wrong, f"{module.name} imports {sorted(wrong)}; microfab.http is shared by both"


def test_only_the_app_factory_joins_routes_and_pages() -> None:
    joining = sorted(
        m.name
        for m in MODULES
        if _ours(m, "microfab.api.routes")
        and _ours(m, "microfab.web")
        and not within(m.name, "microfab.api.routes")
    )
    assert joining == ["microfab.app"]


def _package_of(name: str, tops: set[str]) -> str | None:
    """``microfab.track.plant.Plant`` -> ``track``; None outside microfab's modules."""
    parts = name.split(".")
    if parts[0] != "microfab" or len(parts) < 2 or parts[1] not in tops:
        return None
    return parts[1]


def package_imports() -> dict[str, set[str]]:
    """Which top-level packages (and modules) of microfab import which others."""
    tops = {m.name.split(".")[1] for m in MODULES if m.name != "microfab"}
    graph: dict[str, set[str]] = {top: set() for top in tops}
    for module in MODULES:
        source = _package_of(module.name, tops)
        if source is None:
            continue
        for name in imported_names(module):
            target = _package_of(name, tops)
            if target is not None and target != source:
                graph[source].add(target)
    return graph


def find_circle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of ``graph`` (its packages in order, the first repeated), or None."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return None
        for target in sorted(graph.get(node, ())):
            circle = visit(target, [*path, node])
            if circle is not None:
                return circle
        done.add(node)
        return None

    for start in sorted(graph):
        circle = visit(start, [])
        if circle is not None:
            return circle
    return None


def test_the_circle_finder_finds_circles() -> None:
    assert find_circle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_circle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_no_import_circle_between_packages() -> None:
    graph = package_imports()
    assert {"api", "web", "http", "app", "track", "plan", "green"} <= set(graph)
    assert "web" in graph["app"] and "api" in graph["app"]
    circle = find_circle(graph)
    assert circle is None, "import circle between packages: " + " -> ".join(circle or [])


# ---------------------------------------------------------------------------- runtimes, settings, reports

BASE = ("microfab.errors", "microfab.settings", "microfab.logs")
"""What every layer may use: the error tree, the settings model and the logging set-up."""


def test_the_new_top_level_modules_are_found() -> None:
    names = {m.name for m in MODULES}
    assert {
        "microfab.runtime.demo",
        "microfab.settings",
        "microfab.logs",
        "microfab.reports.render",
        "microfab.reports.pdf",
    } <= names


@pytest.mark.parametrize("module", modules_in("microfab.runtime"), ids=lambda m: m.name)
def test_runtimes_do_not_know_the_cli(module: Module) -> None:
    wrong = _ours(module, *ENTRY_POINTS)
    assert not wrong, (
        f"{module.name} imports {sorted(wrong)}; a runtime is driven by the CLI (and by tests), "
        "it never calls a command"
    )


def test_only_the_cli_starts_a_runtime() -> None:
    starters = sorted(
        m.name
        for m in MODULES
        if _ours(m, "microfab.runtime") and not within(m.name, "microfab.runtime")
    )
    wrong = [n for n in starters if not any(within(n, p) for p in ENTRY_POINTS)]
    assert starters, "no command starts a runtime: the rule checks nothing"
    assert not wrong, (
        f"{wrong} import microfab.runtime; only the CLI starts a runtime (the dashboard and the "
        "domain are what a runtime starts)"
    )


@pytest.mark.parametrize("name", ["microfab.settings", "microfab.logs"])
def test_settings_and_logging_know_no_domain(name: str) -> None:
    (module,) = modules_in(name)
    ours = {n for n in imported_names(module) if within(n, "microfab")}
    wrong = {n for n in ours if not any(within(n, p) for p in BASE)}
    assert not wrong, (
        f"{name} imports {sorted(wrong)}; every layer reads it, so it may use only "
        f"{', '.join(BASE)}"
    )


@pytest.mark.parametrize("module", modules_in("microfab.reports"), ids=lambda m: m.name)
def test_reports_know_only_errors_and_settings(module: Module) -> None:
    ours = {n for n in imported_names(module) if within(n, "microfab")}
    allowed = ("microfab.reports", "microfab.errors", "microfab.settings")
    wrong = {n for n in ours if not any(within(n, p) for p in allowed)}
    assert not wrong, (
        f"{module.name} imports {sorted(wrong)}; a domain service builds a report's data and "
        "microfab.reports only renders and prints it"
    )
