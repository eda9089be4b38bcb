"""Parse factory-file text (YAML) into a :class:`Factory`, with errors located by file line.

Pure: it takes text and a display name, never opens files. Every fault is reported as
``factory.yaml:42 sites[0].areas[0].lines[0].cells[1].machines[3].kind: 'cnc2' is not one of …``.
"""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import ValidationError

from microfab.errors import FactoryFileError
from microfab.model.factory import Factory, _LocatedError

Loc = tuple[str | int, ...]


def parse_factory(text: str, filename: str = "factory.yaml") -> Factory:
    """Validate a factory file's text; raise :class:`FactoryFileError` naming file, line and field."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(exc, "problem", None) or str(exc)
        raise FactoryFileError([f"{filename}:{line} (yaml): {problem}"]) from None
    if not isinstance(data, dict):
        raise FactoryFileError([f"{filename}:1 (file): expected a mapping with company, sites, …"])
    lines = _line_index(root)
    try:
        return Factory.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            loc: Loc = tuple(err["loc"])
            message = _message(err)
            cause = (err.get("ctx") or {}).get("error")
            if isinstance(cause, _LocatedError):
                loc, message = loc + cause.loc, cause.message
            problems.append(f"{filename}:{_nearest_line(lines, loc)} {format_loc(loc)}: {message}")
        raise FactoryFileError(problems) from None


def format_loc(loc: Loc) -> str:
    """``('sites', 0, 'areas')`` -> ``sites[0].areas``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(file)"


def _message(err: Any) -> str:
    ctx = err.get("ctx") or {}
    value = err.get("input")
    if err["type"] == "enum" and "expected" in ctx:
        allowed = ctx["expected"].replace("'", "").replace(" or ", ", ")
        return f"'{value}' is not one of {allowed}"
    if err["type"] == "literal_error" and "expected" in ctx:
        return f"{value!r} is not one of {ctx['expected']}"
    if err["type"] == "missing":
        return "field required"
    if err["type"] == "extra_forbidden":
        return "unknown field (check the spelling; see docs/factory.schema.json)"
    if err["type"] == "string_pattern_mismatch":
        return f"{value!r} is not a valid id: use lower-case letters, digits, '-' or '_'"
    msg: str = err["msg"]
    return msg.removeprefix("Value error, ")


def _line_index(node: yaml.Node | None) -> dict[Loc, int]:
    """Map each location in the YAML tree to its 1-based line."""
    index: dict[Loc, int] = {}

    def walk(n: yaml.Node, loc: Loc) -> None:
        index[loc] = n.start_mark.line + 1
        if isinstance(n, yaml.MappingNode):
            for key, value in n.value:
                child = (*loc, key.value)
                walk(value, child)
                index[child] = key.start_mark.line + 1
        elif isinstance(n, yaml.SequenceNode):
            for i, item in enumerate(n.value):
                walk(item, (*loc, i))

    if node is not None:
        walk(node, ())
    return index


def _nearest_line(index: dict[Loc, int], loc: Loc) -> int:
    """Line of ``loc``, or of its closest ancestor present in the file (a missing field)."""
    for cut in range(len(loc), -1, -1):
        if loc[:cut] in index:
            return index[loc[:cut]]
    return 1
