"""What the assistant answers: the sentence, the numbers with their units, where they came from."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Value:
    """One number of an answer, exactly as the tool (and the linked view) gives it."""

    name: str
    value: float | int | str | bool | None
    unit: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "unit": self.unit}


@dataclass(frozen=True, slots=True)
class Period:
    """The window the numbers cover, in site time (``start`` None: everything up to ``end``)."""

    start: dt.datetime | None
    end: dt.datetime | None
    label: str = ""

    def to_json(self) -> dict[str, str | None]:
        return {"from": _site_text(self.start), "to": _site_text(self.end)}


def _site_text(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat(timespec="milliseconds")


@dataclass(frozen=True, slots=True)
class Answer:
    """An answer, or a declined question (``tool`` None, no values, suggestions instead)."""

    question: str
    answer: str
    values: list[Value] = field(default_factory=list)
    tool: str | None = None
    arguments: dict[str, Any] = field(default_factory=dict)
    period: Period = field(default_factory=lambda: Period(None, None))
    link: str | None = None
    suggestions: list[str] = field(default_factory=list)
    """Supported questions close to a declined one."""
    reason: str | None = None
    """Why a question was declined: ``empty``, ``too_long``, ``refused``, ``unsupported``,
    ``ambiguous``, ``unknown_name``, ``forbidden``, ``failed``; None when answered."""

    @property
    def declined(self) -> bool:
        return self.tool is None

    def to_json(self) -> dict[str, Any]:
        """The shape of ``microfab ask --json`` and ``POST /api/v1/ask`` (exactly these keys; a
        declined question's suggestions are in ``answer``)."""
        return {
            "question": self.question,
            "answer": self.answer,
            "values": [v.to_json() for v in self.values],
            "tool": self.tool,
            "arguments": self.arguments,
            "period": self.period.to_json(),
            "link": self.link,
        }
