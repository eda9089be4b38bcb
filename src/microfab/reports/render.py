"""The reports' Jinja environment (autoescape on) and the filters their templates share."""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape


def percent(value: float | None) -> str:
    """A fraction as ``87.5%``; ``—`` for None."""
    return "—" if value is None else f"{value * 100:.1f}%"


def duration(seconds: float | None) -> str:
    """Seconds as ``45 min`` or ``2h05m``; empty for None."""
    if seconds is None:
        return ""
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60}h{minutes % 60:02d}m"


def number(value: float | None) -> str:
    """``12,345``; empty for None."""
    return "" if value is None else f"{value:,}"


def text(value: object) -> str:
    """The value as text, empty for None (a table cell)."""
    return "" if value is None else str(value)


ENVIRONMENT = Environment(
    loader=PackageLoader("microfab.reports", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
ENVIRONMENT.filters.update(percent=percent, duration=duration, number=number, text=text)


def render(template: str, **context: Any) -> str:
    """The page ``template`` (a file in ``templates/``) rendered with ``context``."""
    return ENVIRONMENT.get_template(template).render(context)
