"""SQL lives in store/: no module outside it builds a query, reads the tables or takes the writer.

Checked on the syntax of every module (nothing is imported). Outside ``microfab.store``:

- nothing imports SQLAlchemy's statement builders (``select``, ``insert``, ``update``, ``delete``,
  ``text``, ``func`` …), ``import sqlalchemy`` itself, its dialects, or the table definitions
  (``microfab.store.schema``);
- nothing opens a connection on the store's engine (``store.engine.connect()`` / ``.begin()``);
- nothing touches the store's writer (``_write_lock``, ``_begin``) or another object's ``_lock``.

Inside store/, only the ``EventStore`` class itself touches ``_write_lock`` and ``_begin``;
every other write goes through ``store.transaction()`` or ``store.append()``.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "microfab"
STORE = PACKAGE / "store"
STORE_CLASS = "EventStore"

SQL_BUILDERS = frozenset(
    {
        "select",
        "insert",
        "update",
        "delete",
        "text",
        "func",
        "and_",
        "or_",
        "not_",
        "bindparam",
        "literal",
        "column",
        "table",
        "Table",
        "Column",
        "MetaData",
    }
)
"""Names of ``sqlalchemy`` that write SQL."""

WRITER = frozenset({"_write_lock", "_begin"})
"""The EventStore's private writer: its lock and its raw transaction."""


def _outside_store_problems(tree: ast.Module) -> list[str]:
    """What a module outside store/ does that only store/ may do."""
    problems: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "sqlalchemy" or alias.name.startswith("sqlalchemy.dialects"):
                    problems.append(f"line {node.lineno}: import {alias.name}")
                if alias.name == "microfab.store.schema":
                    problems.append(f"line {node.lineno}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            names = {alias.name for alias in node.names}
            if node.module == "sqlalchemy" or node.module.startswith("sqlalchemy.sql"):
                for name in sorted(names & SQL_BUILDERS if node.module == "sqlalchemy" else names):
                    problems.append(f"line {node.lineno}: from {node.module} import {name}")
            if node.module.startswith("sqlalchemy.dialects"):
                problems.append(f"line {node.lineno}: from {node.module} import …")
            if node.module == "microfab.store.schema" or (
                node.module == "microfab.store" and "schema" in names
            ):
                problems.append(f"line {node.lineno}: imports the store's table definitions")
        elif isinstance(node, ast.Attribute):
            if (
                node.attr in ("connect", "begin")
                and isinstance(node.value, ast.Attribute)
                and node.value.attr == "engine"
            ):
                problems.append(f"line {node.lineno}: opens a connection on the store's engine")
            if node.attr in WRITER:
                problems.append(f"line {node.lineno}: touches the store's writer ({node.attr})")
            if node.attr == "_lock" and not _is_self(node.value):
                problems.append(f"line {node.lineno}: takes another object's _lock")
    return sorted(problems, key=lambda problem: int(problem.split(":")[0].removeprefix("line ")))


def _writer_outside_class(tree: ast.Module) -> list[str]:
    """Uses of ``_write_lock``/``_begin`` in a store module outside the EventStore class."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == STORE_CLASS:
            inside.update(id(child) for child in ast.walk(node))
    return [
        f"line {node.lineno}: {node.attr} outside {STORE_CLASS}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr in WRITER and id(node) not in inside
    ]


def _is_self(node: ast.expr) -> bool:
    return isinstance(node, ast.Name) and node.id in ("self", "cls")


def _parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def test_no_sql_outside_store() -> None:
    found = {
        str(path.relative_to(SRC)): problems
        for path in sorted(PACKAGE.rglob("*.py"))
        if STORE not in path.parents
        if (problems := _outside_store_problems(_parse(path)))
    }
    assert found == {}, "SQL belongs in store/ (add a store method or read module): " + str(found)


def test_only_the_event_store_class_touches_its_writer() -> None:
    found = {
        str(path.relative_to(SRC)): problems
        for path in sorted(STORE.rglob("*.py"))
        if (problems := _writer_outside_class(_parse(path)))
    }
    assert found == {}, "write through store.transaction() or store.append(): " + str(found)


def test_the_checks_catch_each_kind_of_breach() -> None:
    source = """
from sqlalchemy import select, Engine
from sqlalchemy.dialects import sqlite
from microfab.store import EventStore, schema
import sqlalchemy

def read(store):
    with store.engine.connect() as conn:
        return conn.execute(select(schema.events))

def write(store, other):
    with store._write_lock, store._begin() as conn:
        pass
    with other._lock:
        pass

class Loop:
    def run(self):
        with self._lock:
            pass
"""
    problems = _outside_store_problems(ast.parse(source))
    assert problems == [
        "line 2: from sqlalchemy import select",
        "line 3: from sqlalchemy.dialects import …",
        "line 4: imports the store's table definitions",
        "line 5: import sqlalchemy",
        "line 8: opens a connection on the store's engine",
        "line 12: touches the store's writer (_write_lock)",
        "line 12: touches the store's writer (_begin)",
        "line 14: takes another object's _lock",
    ]
    assert _outside_store_problems(ast.parse("from sqlalchemy.engine import make_url\n")) == []
    in_store = """
class EventStore:
    def transaction(self):
        with self._write_lock, self._begin() as conn:
            yield conn

def sneak(store):
    return store._begin()
"""
    assert _writer_outside_class(ast.parse(in_store)) == ["line 8: _begin outside EventStore"]
