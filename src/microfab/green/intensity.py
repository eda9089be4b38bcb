"""Energy and carbon intensity for the dashboard: kWh and kgCO2e per unit by line and product.

One call gives what a dashboard tile needs for a time window: per line and product the finished
units, kWh, kgCO2e, kWh/unit and kgCO2e/unit, and per machine the standby energy and the estimated
avoidable part. Missing material factors do not stop it (the upstream part is left out and the
row is flagged); a window without production gives rows with ``None`` per unit and a message.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from microfab.errors import InputError
from microfab.green.factors import FactorTable, load_factors
from microfab.green.footprint import footprint, orders_of
from microfab.green.readings import account_period, period_range
from microfab.green.settings import CarbonSettings
from microfab.model.carbon import MILLI, UNITS
from microfab.model.events import format_ts
from microfab.model.factory import Factory
from microfab.store.event_store import EventStore


@dataclass(frozen=True, slots=True)
class IntensityRow:
    line: str
    """site/area/line of the product's first routing step."""
    product: str
    units: int
    energy: Any
    """kWh (pint quantity)."""
    emissions: Any
    """kgCO2e (pint quantity)."""
    flags: tuple[str, ...] = ()

    @property
    def kwh_per_unit(self) -> Any | None:
        return self.energy / self.units if self.units else None

    @property
    def kgco2e_per_unit(self) -> Any | None:
        return self.emissions / self.units if self.units else None

    def to_json(self) -> dict[str, Any]:
        kwh_u, kg_u = self.kwh_per_unit, self.kgco2e_per_unit
        return {
            "line": self.line,
            "product": self.product,
            "units": self.units,
            "kwh": round(float(self.energy.to("kWh").magnitude), 3),
            "kgco2e": round(float(self.emissions.to("kgCO2e").magnitude), 3),
            "kwh_per_unit": None if kwh_u is None else round(float(kwh_u.to("kWh").magnitude), 4),
            "kgco2e_per_unit": None
            if kg_u is None
            else round(float(kg_u.to("kgCO2e").magnitude), 4),
            "flags": list(self.flags),
        }


@dataclass(frozen=True, slots=True)
class IdleWaste:
    machine: str
    standby: Any
    """kWh in standby states (idle, planned stop …)."""
    saving: Any
    """kWh a switch-off after the configured minutes would have saved."""

    def to_json(self) -> dict[str, Any]:
        return {
            "machine": self.machine,
            "standby_kwh": round(float(self.standby.to("kWh").magnitude), 3),
            "saving_kwh": round(float(self.saving.to("kWh").magnitude), 3),
        }


@dataclass(slots=True)
class Intensity:
    start: dt.datetime
    end: dt.datetime
    rows: list[IntensityRow] = field(default_factory=list)
    idle: list[IdleWaste] = field(default_factory=list)
    message: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "from": format_ts(self.start),
            "to": format_ts(self.end),
            "rows": [row.to_json() for row in self.rows],
            "idle": [waste.to_json() for waste in self.idle],
            "message": self.message,
        }


def energy_intensity(
    store: EventStore,
    factory: Factory,
    *,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    settings: CarbonSettings | None = None,
    factors: FactorTable | None = None,
) -> Intensity:
    """kWh/unit and kgCO2e/unit per line and product, and idle waste, for ``[start, end)``."""
    settings = settings or CarbonSettings()
    factors = factors or load_factors()
    first, last = period_range(store, factory, start, end)
    result = Intensity(first, last)
    try:
        period = account_period(store, factory, settings, first, last)
    except InputError as exc:
        result.message = exc.message
        return result
    lines = {ref.machine.id: "/".join(ref.path.split("/")[:3]) for ref in factory.machines()}
    for product in factory.products:
        orders = orders_of(period, product=product.sku)
        if not orders:
            continue
        line = lines[next(iter(product.routing[0].machines))]
        try:
            fp = footprint(
                period, factory, settings, factors, orders, product.sku, allow_missing=True
            )
        except InputError as exc:
            result.message = exc.message
            continue
        result.rows.append(
            IntensityRow(line, product.sku, fp.units, fp.energy, fp.total, tuple(fp.flags))
        )
    result.idle = [
        IdleWaste(
            m.machine,
            UNITS.Quantity(m.standby_milli / MILLI, m.unit),
            UNITS.Quantity(m.saving_milli / MILLI, m.unit),
        )
        for m in period.account.meters
        if m.carrier == "electricity" and not m.facility
    ]
    return result
