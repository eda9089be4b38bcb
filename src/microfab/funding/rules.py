"""The NIFS/RFS rule book: scheme versions and their rules, each with its source and confidence.

Read from ``data/nifs.yaml`` (rules) and ``data/catalogue.yaml`` (the source list), both derived
from the shared reference file ``hk-funding-schemes.yaml``; their headers say how.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import yaml

WEAK_CONFIDENCE = ("legco2019_or_hkpc2020_only", "unverified_third_party", "conflicting_sources")
"""Confidence codes of rules that stay configurable and are flagged whenever they are used."""


@dataclass(frozen=True, slots=True)
class Source:
    id: str
    title: str
    publisher: str
    date: str
    url: str

    def cite(self) -> str:
        where = f" {self.url}" if self.url and self.url != "n/a" else ""
        return f"{self.id} {self.publisher}, {self.date}: {self.title}{where}"

    def to_json(self) -> dict[str, str]:
        return {
            "id": self.id,
            "title": self.title,
            "publisher": self.publisher,
            "date": self.date,
            "url": self.url,
        }


@dataclass(frozen=True, slots=True)
class SchemeRule:
    id: str
    title: str
    text: str
    confidence: str
    sources: tuple[Source, ...]
    interpretation: str = ""
    configurable: bool = False
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def weak(self) -> bool:
        return self.confidence in WEAK_CONFIDENCE

    def source_text(self) -> str:
        """Short citation: ``S01, S03 (confirmed_official)``."""
        return f"{', '.join(s.id for s in self.sources)} ({self.confidence})"

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.id,
            "title": self.title,
            "text": self.text,
            "confidence": self.confidence,
            "configurable": self.configurable,
            "interpretation": self.interpretation,
            "sources": [s.to_json() for s in self.sources],
        }


@dataclass(frozen=True, slots=True)
class SchemeVersion:
    code: str
    version: str
    title: str
    effective_from: dt.date
    effective_to: dt.date | None
    concurrency_rule: str
    max_active_projects: int
    company_total_cap_hkd: int | None

    def in_force(self, day: dt.date) -> bool:
        return self.effective_from <= day and (
            self.effective_to is None or day <= self.effective_to
        )


@dataclass(frozen=True, slots=True)
class RuleBook:
    """Every version of the scheme and every rule, by id."""

    scheme_name: str
    scheme_name_zh: str
    versions: tuple[SchemeVersion, ...]
    rules: dict[str, SchemeRule]
    sources: dict[str, Source]
    derived_from: dict[str, str]

    def version(self, code: str) -> SchemeVersion:
        for v in self.versions:
            if v.code == code:
                return v
        raise KeyError(code)

    def rule(self, rule_id: str) -> SchemeRule:
        return self.rules[rule_id]


def _data(name: str) -> Any:
    text = resources.files("microfab.funding").joinpath("data", name).read_text(encoding="utf-8")
    return yaml.safe_load(text)


@functools.cache
def catalogue_data() -> dict[str, Any]:
    """The derived catalogue of schemes and sources (``data/catalogue.yaml``)."""
    data: dict[str, Any] = _data("catalogue.yaml")
    return data


@functools.cache
def all_sources() -> dict[str, Source]:
    return {
        key: Source(
            id=key,
            title=value.get("title", ""),
            publisher=value.get("publisher", ""),
            date=value.get("date", ""),
            url=value.get("url", ""),
        )
        for key, value in catalogue_data()["sources"].items()
    }


@functools.cache
def rule_book() -> RuleBook:
    """The NIFS/RFS rule book shipped with microfab."""
    data = _data("nifs.yaml")
    sources = all_sources()
    rules = {
        r["id"]: SchemeRule(
            id=r["id"],
            title=r["title"],
            text=r["text"],
            confidence=r["confidence"],
            sources=tuple(sources[s] for s in r["sources"]),
            interpretation=r.get("interpretation", ""),
            configurable=bool(r.get("configurable", False)),
            params=dict(r.get("params") or {}),
        )
        for r in data["rules"]
    }
    versions = tuple(
        SchemeVersion(
            code=v["code"],
            version=v["version"],
            title=v["title"],
            effective_from=dt.date.fromisoformat(v["effective_from"]),
            effective_to=dt.date.fromisoformat(v["effective_to"]) if v["effective_to"] else None,
            concurrency_rule=v["concurrency"]["rule"],
            max_active_projects=int(v["concurrency"]["max_active_projects"]),
            company_total_cap_hkd=v["concurrency"]["company_total_cap_hkd"],
        )
        for v in data["versions"]
    )
    return RuleBook(
        scheme_name=data["scheme"]["name"],
        scheme_name_zh=data["scheme"]["name_zh"],
        versions=versions,
        rules=rules,
        sources=sources,
        derived_from={k: str(v) for k, v in data["derived_from"].items()},
    )
