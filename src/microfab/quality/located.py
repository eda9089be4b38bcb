"""YAML settings files of the quality module (alert rules, HACCP limits) → pydantic models.

Every fault is reported as ``file:line field: message`` in one
:class:`~microfab.errors.LocatedFileError`, by :mod:`microfab.model.located_yaml` as for every file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from microfab.errors import InputError
from microfab.model.located_yaml import Loc, ModelT, describe, load_located

__all__ = ["Loc", "load_settings_file"]


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
    return load_located(
        text, str(path), model, expected=expected, tags=tags, problem=_problem, check=check
    )


def _problem(err: Any, loc: Loc) -> tuple[Loc, str]:
    if err["type"] == "union_tag_invalid":  # name the discriminator field and its choices
        ctx = err["ctx"]
        allowed = str(ctx["expected_tags"]).replace("'", "")
        field = str(ctx["discriminator"]).strip("'")
        return (*loc, field), f"{ctx['tag']!r} is not one of {allowed}"
    return loc, describe(err)
