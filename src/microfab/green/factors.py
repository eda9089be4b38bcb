"""Emission factors with source and year: the shipped Hong Kong table, user overrides, choice by year.

A factor is a value with a pint unit (``kgCO2e/kWh``, ``kgCO2e/l``, ``kgCO2e/kg`` …), the year it
describes, its source and citation, whether it is CO2e or CO2 only, and a quality note. Factors are
looked up by *key* (``electricity/clp``, ``diesel/combustion``, ``material/RICE-JASMINE``) and by
the reference period's year: that year, else the latest earlier year (flagged), else an error.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import pint
from pydantic import BaseModel, ConfigDict, Field, field_validator

from microfab.model.carbon import UNITS, pick_year
from microfab.model.located_yaml import load_located, load_located_file

SHIPPED = "hk-emission-factors.yaml"
"""The factors file shipped in ``microfab/green/data``."""

FACTORS_FILE_HOLDS = "'version' and 'factors' (a list)"


class EmissionFactor(BaseModel):
    """One emission factor, as written in a factors file or a carbon settings file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str = Field(min_length=1, description="What it applies to, e.g. electricity/clp")
    year: int = Field(ge=1990, le=2100)
    value: float = Field(ge=0)
    unit: str = Field(min_length=1, description="pint unit, e.g. kgCO2e/kWh, kgCO2e/kg")
    gas: Literal["CO2e", "CO2"] = "CO2e"
    activity: str = ""
    source: str = Field(min_length=1)
    citation: str = ""
    quality: str = Field(
        default="secondary",
        description="primary (supplier-specific), primary-report, secondary, proxy or unverified",
    )

    @field_validator("unit")
    @classmethod
    def _emission_per_activity(cls, value: str) -> str:
        try:
            unit = UNITS.Unit(value)
        except (pint.errors.PintError, ValueError, AttributeError, TypeError):
            raise ValueError(f"'{value}' is not a unit such as kgCO2e/kWh") from None
        if "[emission]" not in unit.dimensionality:
            raise ValueError(f"'{value}' is not an emission per activity, such as kgCO2e/kWh")
        return value

    def quantity(self) -> Any:
        return UNITS.Quantity(self.value, self.unit)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump()


class _FactorsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str = Field(min_length=1)
    note: str = ""
    factors: list[EmissionFactor]


@dataclass(frozen=True, slots=True)
class FactorChoice:
    """The factor used for one key and reference year; ``fallback`` when from an earlier year."""

    factor: EmissionFactor
    wanted_year: int

    @property
    def fallback(self) -> bool:
        return self.factor.year != self.wanted_year

    def to_json(self) -> dict[str, Any]:
        return self.factor.to_json() | {
            "for_year": self.wanted_year,
            "fallback_to_earlier_year": self.fallback,
        }


class FactorTable:
    """Emission factors by key and year; later sources replace earlier ones for the same key."""

    def __init__(self, version: str, factors: Iterable[EmissionFactor]) -> None:
        self.version = version
        self._by_key: dict[str, dict[int, EmissionFactor]] = {}
        for factor in factors:
            self._by_key.setdefault(factor.key, {})[factor.year] = factor

    def override(self, factors: Sequence[EmissionFactor], version: str) -> FactorTable:
        """A table where every key given in ``factors`` is replaced by those factors."""
        keys = {f.key for f in factors}
        kept = [f for key, years in self._by_key.items() if key not in keys for f in years.values()]
        return FactorTable(f"{self.version}+{version}", [*kept, *factors])

    def has(self, key: str) -> bool:
        return key in self._by_key

    def choose(self, key: str, year: int) -> FactorChoice | None:
        """The factor for ``year``, else the latest earlier one; None if there is none."""
        years = self._by_key.get(key)
        if not years:
            return None
        picked = pick_year(sorted(years), year)
        return None if picked is None else FactorChoice(years[picked], year)

    def years(self, key: str) -> list[int]:
        return sorted(self._by_key.get(key, {}))


def load_factors(path: Path | None = None) -> FactorTable:
    """The shipped table, or the factors file at ``path`` (same shape) instead of it; a fault in
    the file is a :class:`~microfab.errors.LocatedFileError` naming its line and field."""
    if path is None:
        text = resources.files("microfab.green").joinpath("data", SHIPPED).read_text("utf-8")
        parsed = load_located(
            text, f"microfab/green/data/{SHIPPED}", _FactorsFile, expected=FACTORS_FILE_HOLDS
        )
    else:
        parsed = load_located_file(
            path, _FactorsFile, what="factors file", expected=FACTORS_FILE_HOLDS
        )
    return FactorTable(parsed.version, parsed.factors)
