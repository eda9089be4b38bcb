"""User-edited YAML → pydantic model, every fault located as ``file:line field: message``.

:func:`load_located` is pure: text in, a validated model or one
:class:`~microfab.errors.LocatedFileError` (the caller's subclass, exit 2) out. :func:`read_file` is
the one way a user-edited file is opened (an :class:`~microfab.errors.InputError` naming the file
when it cannot be read) and :func:`load_located_file` does both. Every user-edited file is read this
way (the factory file, the carbon settings and factor overrides, the funding files, the alert
rules and HACCP plan, a scenario's behaviour), so a plant engineer sees the same kind of line for
every file: ``rules.yaml:12 rules[2].above: field required``.
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
    if err["type"] == "union_tag_invalid":  # name the discriminator field and its choices
        ctx = err["ctx"]
        allowed = str(ctx["expected_tags"]).replace("'", "")
        field = str(ctx["discriminator"]).strip("'")
        return (*loc, field), f"{ctx['tag']!r} is not one of {allowed}"
    return loc, describe(err)


def read_file(path: Path, what: str = "file") -> str:
    """The text of a user-edited file; :class:`InputError` (exit 2) naming it when it cannot be
    read: ``cannot read the alert rules rules.yaml: no such file``."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        reason = "no such file"
    except IsADirectoryError:
        reason = "it is a folder, not a file"
    except UnicodeDecodeError:
        reason = "not UTF-8 text"
    except OSError as exc:
        reason = exc.strerror or str(exc)
    raise InputError(f"cannot read the {what} {path}: {reason}")


def load_located_file(
    path: Path,
    model: type[ModelT],
    *,
    what: str,
    expected: str,
    error: type[LocatedFileError] = LocatedFileError,
    loader: type[yaml.SafeLoader] = yaml.SafeLoader,
    tags: frozenset[str] = frozenset(),
    problem: Problem = _plain,
    check: Callable[[ModelT], list[tuple[Loc, str]]] | None = None,
    empty_is_default: bool = False,
) -> ModelT:
    """Read ``path`` (:func:`read_file`, ``what`` names it) and validate it as ``model``
    (:func:`load_located`)."""
    return load_located(
        read_file(path, what),
        str(path),
        model,
        expected=expected,
        error=error,
        loader=loader,
        tags=tags,
        problem=problem,
        check=check,
        empty_is_default=empty_is_default,
    )


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
    empty_is_default: bool = False,
) -> ModelT:
    """Validate YAML ``text`` as ``model``; raise ``error`` with one located line per fault.

    ``expected`` says what the top-level mapping holds (for a file that is not a mapping);
    ``loader`` may read scalars differently (the funding files read floats as Decimal); ``tags``
    are discriminator values pydantic puts in error locations, left out of what is shown;
    ``problem`` words each pydantic error; ``check`` adds cross-field faults found on the
    validated model, as (location, message); ``empty_is_default``: an empty file is the model's
    defaults (a settings file whose every field has one).
    """
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.load(text, Loader=loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        reason = getattr(exc, "problem", None) or str(exc)
        raise error([f"{filename}:{line} (yaml): {reason}"]) from None
    if data is None and empty_is_default:
        data = {}
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
