"""YAML input files of the funding module → pydantic models, every fault located as file:line field.

Floats in the YAML are read as :class:`decimal.Decimal` from their text, so money never passes
through a binary float. Mirrors the way :mod:`microfab.model.factory_file` locates faults.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from microfab.errors import FundingFileError

Loc = tuple[str | int, ...]
ModelT = TypeVar("ModelT", bound=BaseModel)


class _DecimalLoader(yaml.SafeLoader):
    """SafeLoader that reads floats as Decimal from their text."""


def _decimal(loader: yaml.SafeLoader, node: yaml.Node) -> Decimal:
    text = str(loader.construct_scalar(node)).replace("_", "")  # type: ignore[arg-type]
    try:
        return Decimal(text)
    except InvalidOperation:
        raise yaml.constructor.ConstructorError(
            None, None, f"{text!r} is not a number", node.start_mark
        ) from None


_DecimalLoader.add_constructor("tag:yaml.org,2002:float", _decimal)


def format_loc(loc: Loc) -> str:
    """``('budget', 0, 'amount_hkd')`` -> ``budget[0].amount_hkd``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(file)"


def load_located(
    text: str,
    filename: str,
    model: type[ModelT],
    *,
    expected: str,
    check: Callable[[ModelT], list[tuple[Loc, str]]] | None = None,
) -> ModelT:
    """Validate YAML ``text`` as ``model``; raise :class:`FundingFileError` naming line and field.

    ``check`` adds cross-field faults (location, message) found on the validated model."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.load(text, Loader=_DecimalLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(exc, "problem", None) or str(exc)
        raise FundingFileError([f"{filename}:{line} (yaml): {problem}"]) from None
    if not isinstance(data, dict):
        raise FundingFileError([f"{filename}:1 (file): expected a mapping with {expected}"])
    lines = _line_index(root)
    try:
        parsed = model.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            loc: Loc = tuple(err["loc"])
            problems.append(
                f"{filename}:{_nearest_line(lines, loc)} {format_loc(loc)}: {_message(err)}"
            )
        raise FundingFileError(problems) from None
    faults = check(parsed) if check is not None else []
    if faults:
        raise FundingFileError(
            [f"{filename}:{_nearest_line(lines, loc)} {format_loc(loc)}: {m}" for loc, m in faults]
        )
    return parsed


def _message(err: Any) -> str:
    ctx = err.get("ctx") or {}
    value = err.get("input")
    kind = err["type"]
    if kind == "missing":
        return "field required"
    if kind in ("enum", "literal_error") and "expected" in ctx:
        allowed = str(ctx["expected"]).replace("'", "").replace(" or ", ", ")
        return f"{value!r} is not one of {allowed}"
    if kind in ("greater_than_equal", "greater_than") and ctx.get("ge", ctx.get("gt")) == 0:
        return f"{value} is negative; give an amount of 0 or more"
    if kind == "extra_forbidden":
        return "unknown field (check the spelling)"
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
    for cut in range(len(loc), -1, -1):
        if loc[:cut] in index:
            return index[loc[:cut]]
    return 1
