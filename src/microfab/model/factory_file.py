"""Read a factory file (YAML) into a :class:`Factory`, with errors located by file line.

:func:`parse_factory` is pure (text and a display name in); :func:`load_factory` reads the file
first (:func:`~microfab.model.located_yaml.read_file`). Every fault is reported as
``factory.yaml:42 sites[0].areas[0].lines[0].cells[1].machines[3].kind: 'cnc2' is not one of …``.
"""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from microfab.errors import FactoryFileError
from microfab.model.factory import Factory, _LocatedError
from microfab.model.located_yaml import Loc, format_loc, load_located, read_file

__all__ = ["format_loc", "load_factory", "parse_factory"]


def load_factory(path: Path) -> Factory:
    """Read and validate the factory file at ``path`` (:class:`FactoryFileError` if not valid)."""
    return parse_factory(read_file(path, "factory file"), str(path))


def parse_factory(text: str, filename: str = "factory.yaml") -> Factory:
    """Validate a factory file's text; raise :class:`FactoryFileError` naming file, line and field."""
    return load_located(
        text,
        filename,
        Factory,
        expected="company, sites, …",
        error=FactoryFileError,
        problem=_problem,
    )


def _problem(err: Any, loc: Loc) -> tuple[Loc, str]:
    cause = (err.get("ctx") or {}).get("error")
    if isinstance(cause, _LocatedError):  # a cross-reference check names the field it is about
        return loc + cause.loc, cause.message
    return loc, _message(err, loc)


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
