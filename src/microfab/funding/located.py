"""YAML input files of the funding module → pydantic models, every fault located as file:line field.

Floats in the YAML are read as :class:`decimal.Decimal` from their text, so money never passes
through a binary float. Faults are located as :mod:`microfab.model.located_yaml` does for every file.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

import yaml

from microfab.errors import FundingFileError
from microfab.model import located_yaml
from microfab.model.located_yaml import Loc, ModelT

__all__ = ["Loc", "load_located"]


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
    return located_yaml.load_located(
        text,
        filename,
        model,
        expected=expected,
        error=FundingFileError,
        loader=_DecimalLoader,
        problem=_problem,
        check=check,
    )


def _problem(err: Any, loc: Loc) -> tuple[Loc, str]:
    ctx = err.get("ctx") or {}
    if err["type"] in ("greater_than_equal", "greater_than") and ctx.get("ge", ctx.get("gt")) == 0:
        return loc, f"{err.get('input')} is negative; give an amount of 0 or more"
    return loc, located_yaml.describe(err)
