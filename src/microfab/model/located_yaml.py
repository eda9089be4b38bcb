"""YAML text → pydantic model, every fault located as ``file:line field: message``.

Pure: text in, a validated model or one :class:`~microfab.errors.LocatedFileError` (the caller's
subclass) out, never opening files. The factory file, the funding files and the quality settings
(alert rules, HACCP limits) are all read this way, so a plant engineer sees the same kind of line
for every file: ``rules.yaml:12 rules[2].above: field required``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from microfab.errors import LocatedFileError

Loc = tuple[str | int, ...]
ModelT = TypeVar("ModelT", bound=BaseModel)
Problem = Callable[[Any, Loc], tuple[Loc, str]]
"""Turns one pydantic error (and its location) into the location and sentence to show."""


def format_loc(loc: Loc) -> str:
    """``('sites', 0, 'areas')`` -> ``sites[0].areas``; ``()`` -> ``(file)``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(file)"


def describe(err: Any) -> str:
    """A pydantic error in words a plant engineer reads without knowing pydantic."""
    ctx = err.get("ctx") or {}
    kind = err["type"]
    if kind == "missing":
        return "field required"
    if kind == "extra_forbidden":
        return "unknown field (check the spelling)"
    if kind in ("literal_error", "enum") and "expected" in ctx:
        allowed = str(ctx["expected"]).replace("'", "").replace(" or ", ", ")
        return f"{err.get('input')!r} is not one of {allowed}"
    msg: str = err["msg"]
    return msg.removeprefix("Value error, ")


def _plain(err: Any, loc: Loc) -> tuple[Loc, str]:
    return loc, describe(err)


def load_located(
    text: str,
    filename: str,
    model: type[ModelT],
    *,
    expected: str,
    error: type[LocatedFileError] = LocatedFileError,
    loader: type[yaml.SafeLoader] = yaml.SafeLoader,
    tags: frozenset[str] = frozenset(),
    problem: Problem = _plain,
    check: Callable[[ModelT], list[tuple[Loc, str]]] | None = None,
) -> ModelT:
    """Validate YAML ``text`` as ``model``; raise ``error`` with one located line per fault.

    ``expected`` says what the top-level mapping holds (for a file that is not a mapping);
    ``loader`` may read scalars differently (the funding files read floats as Decimal); ``tags``
    are discriminator values pydantic puts in error locations, left out of what is shown;
    ``problem`` words each pydantic error; ``check`` adds cross-field faults found on the
    validated model, as (location, message).
    """
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.load(text, Loader=loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        reason = getattr(exc, "problem", None) or str(exc)
        raise error([f"{filename}:{line} (yaml): {reason}"]) from None
    if not isinstance(data, dict):
        raise error([f"{filename}:1 (file): expected a mapping with {expected}"])
    lines = line_index(root)
    try:
        parsed = model.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            loc, message = problem(err, tuple(p for p in err["loc"] if p not in tags))
            problems.append(f"{filename}:{nearest_line(lines, loc)} {format_loc(loc)}: {message}")
        raise error(problems) from None
    faults = check(parsed) if check is not None else []
    if faults:
        raise error(
            [f"{filename}:{nearest_line(lines, loc)} {format_loc(loc)}: {m}" for loc, m in faults]
        )
    return parsed


def line_index(node: yaml.Node | None) -> dict[Loc, int]:
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


def nearest_line(index: dict[Loc, int], loc: Loc) -> int:
    """Line of ``loc``, or of its closest ancestor present in the file (a missing field)."""
    for cut in range(len(loc), -1, -1):
        if loc[:cut] in index:
            return index[loc[:cut]]
    return 1
