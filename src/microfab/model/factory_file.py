"""Parse factory-file text (YAML) into a :class:`Factory`, with errors located by file line.

Pure: it takes text and a display name, never opens files. Every fault is reported as
``factory.yaml:42 sites[0].areas[0].lines[0].cells[1].machines[3].kind: 'cnc2' is not one of …``.
"""

from __future__ import annotations

import types
import typing
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

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
            message = _message(err, loc)
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


_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,39}$"
"""The pattern of every id (``Slug``) field."""

_PATTERN_HINTS: dict[str, str] = {
    _ID_PATTERN: "is not a valid id: use lower-case letters, digits, '-' or '_'",
    r"^opc\.tcp://": "is not an OPC UA endpoint: it must start with opc.tcp://",
    r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$": "is not a time of day: write HH:MM, 00:00 to 24:00",
    r"^[A-Z0-9][A-Z0-9_.-]{0,31}$": (
        "is not a reason code: use upper-case letters, digits, '_', '.' or '-' (at most 32)"
    ),
}
"""What a field with each pattern of the factory model expects, in words."""


def _message(err: Any, loc: Loc = ()) -> str:
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
        pattern = str(ctx.get("pattern", ""))
        if pattern == _ID_PATTERN:
            return f"{value!r} {_PATTERN_HINTS[pattern]}"
        hint = _PATTERN_HINTS.get(pattern, "does not have the form this field expects")
        description = _field_description(loc)
        if description:
            hint += f" ({description})"
        elif pattern not in _PATTERN_HINTS:
            hint += f" (pattern {pattern})"
        return f"{value!r} {hint}"
    msg: str = err["msg"]
    return msg.removeprefix("Value error, ")


def _field_description(loc: Loc) -> str | None:
    """The ``description`` of the factory-model field at ``loc``, if it has one."""
    model: type[BaseModel] | None = Factory
    description: str | None = None
    for part in loc:
        if isinstance(part, int):
            continue  # a list item: the list's item model is already current
        if model is None or part not in model.model_fields:
            return None
        info = model.model_fields[part]
        description = info.description
        model = _model_in(info.annotation)
    return description


def _model_in(annotation: object) -> type[BaseModel] | None:
    """The pydantic model inside ``list[X]``, ``X | None``, ``Annotated[X, …]``, or X itself."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin is None and not isinstance(annotation, types.UnionType):
        return None
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


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
