"""The carbon settings file: what the factory model does not say about carbon.

A small YAML file beside ``factory.yaml`` (all keys optional)::

    allocation: units            # how shared/facility energy goes to orders: units, mass, run_time
    standby_states: [idle, planned_stop]
    switch_off_after_min: 10     # idle saving: standby spells longer than this could be off
    company_ids: ["urn:microfab:company:hk-br:12345678"]
    products:
      MEAL-CHK-RICE: {ids: ["urn:gtin:4890000000017"], description: "Soy chicken rice box"}
    materials:                    # cradle-to-gate factors of purchased materials, per BOM unit
      RICE-JASMINE: {value: 1.6, unit: kgCO2e/kg, year: 2024, source: "supplier EPD"}
    certificates:                 # renewable energy certificates (market-based Scope 2)
      - {id: CLP-REC-0001, kwh: 500, start: 2026-11-01, end: 2026-12-01, source: CLP RECs}
    tariffs:
      - {supplier: clp, year: 2026, hkd_per_kwh: 1.5, source: "your bill"}
    meters:
      tp/kitchen/meal-1/utility/panel-1: {rollover_at: 99999.9}
    factors: []                   # extra or replacing emission factors (same shape as the table)

Materials become factors ``material/<SKU>``; ``factors`` entries replace the shipped ones with
the same key.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from microfab.green.factors import EmissionFactor
from microfab.model.events import parse_ts
from microfab.model.factory import ElectricitySupplier
from microfab.model.located_yaml import load_located_file

AllocationRule = Literal["units", "mass", "run_time"]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ProductIds(_Strict):
    ids: list[str] = Field(default_factory=list, description="Product URNs (GTIN, part number)")
    classifications: list[str] = Field(default_factory=list)
    description: str = ""

    @field_validator("ids", "classifications")
    @classmethod
    def _urns(cls, value: list[str]) -> list[str]:
        return [_urn(item) for item in value]


class MaterialFactor(_Strict):
    value: float = Field(ge=0)
    unit: str = Field(description="e.g. kgCO2e/kg, kgCO2e/pcs")
    year: int = Field(ge=1990, le=2100)
    source: str = Field(min_length=1)
    citation: str = ""
    gas: Literal["CO2e", "CO2"] = "CO2e"
    primary: bool = Field(
        default=False, description="Supplier-specific (primary) data, e.g. the supplier's own PCF"
    )

    def factor(self, sku: str) -> EmissionFactor:
        return EmissionFactor(
            key=f"material/{sku}",
            year=self.year,
            value=self.value,
            unit=self.unit,
            gas=self.gas,
            activity=f"cradle-to-gate, purchased material {sku}",
            source=self.source,
            citation=self.citation,
            quality="primary" if self.primary else "secondary",
        )


class Certificate(_Strict):
    """A renewable energy certificate: ``kwh`` of renewable electricity over ``[start, end)``."""

    id: str = Field(min_length=1)
    kwh: float = Field(gt=0)
    start: dt.datetime
    end: dt.datetime
    source: str = Field(min_length=1)
    value: float = Field(default=0.0, ge=0, description="kgCO2e/kWh of the certified electricity")

    @field_validator("start", "end", mode="before")
    @classmethod
    def _time(cls, value: object) -> dt.datetime:
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            value = dt.datetime.combine(
                value, dt.time(0), tzinfo=dt.timezone(dt.timedelta(hours=8))
            )
        return parse_ts(value)

    @model_validator(mode="after")
    def _ordered(self) -> Certificate:
        if self.end <= self.start:
            raise ValueError("certificate end must be after its start")
        return self


class Tariff(_Strict):
    supplier: ElectricitySupplier
    year: int = Field(ge=1990, le=2100)
    hkd_per_kwh: float = Field(ge=0, description="Energy charge plus fuel cost adjustment")
    source: str = Field(min_length=1)


class MeterSetting(_Strict):
    rollover_at: float | None = Field(
        default=None, gt=0, description="Value at which the register wraps to zero"
    )


class CarbonSettings(_Strict):
    """Carbon inputs that the factory model does not carry."""

    allocation: AllocationRule = "units"
    standby_states: list[str] = Field(default_factory=lambda: ["idle", "planned_stop"])
    switch_off_after_min: float = Field(default=10.0, ge=0)
    company_ids: list[str] = Field(default_factory=list)
    products: dict[str, ProductIds] = Field(default_factory=dict)
    materials: dict[str, MaterialFactor] = Field(default_factory=dict)
    certificates: list[Certificate] = Field(default_factory=list)
    tariffs: list[Tariff] = Field(default_factory=list)
    meters: dict[str, MeterSetting] = Field(default_factory=dict)
    factors: list[EmissionFactor] = Field(default_factory=list)
    ipcc_characterization_factors: list[str] = Field(
        default_factory=lambda: ["AR5"],
        min_length=1,
        description="IPCC assessment reports whose GWPs the factors use (PACT needs at least one)",
    )
    packaging_included: bool = Field(
        default=False, description="The BOM includes the product's packaging (PACT field)"
    )

    @field_validator("company_ids")
    @classmethod
    def _urns(cls, value: list[str]) -> list[str]:
        return [_urn(item) for item in value]

    def all_factors(self) -> list[EmissionFactor]:
        """``factors`` plus one ``material/<SKU>`` factor per material."""
        return [*self.factors, *(m.factor(sku) for sku, m in self.materials.items())]

    def tariff(self, supplier: ElectricitySupplier, year: int) -> Tariff | None:
        """The tariff of ``supplier`` for ``year``, else its latest earlier one."""
        found = [t for t in self.tariffs if t.supplier is supplier and t.year <= year]
        return max(found, key=lambda t: t.year) if found else None


def _urn(value: str) -> str:
    if not value[:4].lower() == "urn:":
        raise ValueError(f"'{value}' is not a URN (it must start with urn:)")
    return value


def load_settings(path: Path | None) -> CarbonSettings:
    """The carbon settings at ``path``, or the defaults when no file is given (or it is empty);
    a fault in the file is a :class:`~microfab.errors.LocatedFileError` naming line and field."""
    if path is None:
        return CarbonSettings()
    return load_located_file(
        path,
        CarbonSettings,
        what="carbon settings",
        expected="carbon settings (allocation, tariffs, factors, …)",
        empty_is_default=True,
    )
