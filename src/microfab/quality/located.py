"""YAML settings files of the quality module (alert rules, HACCP limits) → pydantic models.

Every fault is reported as ``file:line field: message`` in one :class:`LocatedFileError`, as the
factory and funding files do.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from microfab.errors import InputError, LocatedFileError

Loc = tuple[str | int, ...]
ModelT = TypeVar("ModelT", bound=BaseModel)


def format_loc(loc: Loc) -> str:
    """``('rules', 0, 'above')`` -> ``rules[0].above``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "(file)"


def load_settings_file(
    path: Path,
    model: type[ModelT],
    *,
    expected: str,
    tags: frozenset[str] = frozenset(),
    check: Callable[[ModelT], list[tuple[Loc, str]]] | None = None,
) -> ModelT:
    """Read and validate ``path`` as ``model``; LocatedFileError names each fault's line and
    field. ``tags`` are the discriminator values pydantic puts in error locations (left out)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    name = str(path)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(exc, "problem", None) or str(exc)
        raise LocatedFileError([f"{name}:{line} (yaml): {problem}"]) from None
    if not isinstance(data, dict):
        raise LocatedFileError([f"{name}:1 (file): expected a mapping with {expected}"])
    lines = _line_index(root)
    try:
        parsed = model.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            loc: Loc = tuple(p for p in err["loc"] if p not in tags)
            if err["type"] == "union_tag_invalid":  # name the discriminator field
                loc = (*loc, str(err["ctx"]["discriminator"]).strip("'"))
            problems.append(
                f"{name}:{_nearest_line(lines, loc)} {format_loc(loc)}: {_message(err)}"
            )
        raise LocatedFileError(problems) from None
    faults = check(parsed) if check is not None else []
    if faults:
        raise LocatedFileError(
            [f"{name}:{_nearest_line(lines, loc)} {format_loc(loc)}: {m}" for loc, m in faults]
        )
    return parsed


def _message(err: Any) -> str:
    ctx = err.get("ctx") or {}
    kind = err["type"]
    if kind == "missing":
        return "field required"
    if kind == "extra_forbidden":
        return "unknown field (check the spelling)"
    if kind == "union_tag_invalid":
        allowed = str(ctx["expected_tags"]).replace("'", "")
        return f"{ctx['tag']!r} is not one of {allowed}"
    if kind in ("literal_error", "enum") and "expected" in ctx:
        allowed = str(ctx["expected"]).replace("'", "").replace(" or ", ", ")
        return f"{err.get('input')!r} is not one of {allowed}"
    msg: str = err["msg"]
    return msg.removeprefix("Value error, ")


def _line_index(node: yaml.Node | None) -> dict[Loc, int]:
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
    for cut in range(len(loc), -1, -1):
        if loc[:cut] in index:
            return index[loc[:cut]]
    return 1
