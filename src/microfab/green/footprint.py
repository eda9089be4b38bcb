"""Carbon footprint of work orders and products: Scope 1, Scope 2 (location and market), upstream.

Following the GHG Protocol Product Standard / ISO 14067, cradle to gate:

- **Scope 1**: fuel burnt on site (towngas, LPG, diesel meters) × ``<carrier>/combustion``.
- **Scope 2, location-based**: electricity allocated to the orders × the factor of the site's power
  company for the period's year (``electricity/clp`` or ``electricity/hk_electric``); towngas also
  carries the indirect emissions of its production (``towngas/production``), as in the HKEX
  guidance. **Market-based**: renewable energy certificates recorded for the period cover their
  share of the site's metered electricity at the certificate's factor (0 for renewables); the rest
  keeps the supplier factor (Hong Kong publishes no residual mix). The total counts market-based
  when certificates are recorded, else location-based.
- **Upstream**: units whose material was used (finished good units plus units scrapped at any
  step) × the product's BOM (plus the order's variant options) × ``material/<SKU>`` factors supplied by the user.

Every multiplication is done with pint quantities, so a factor per litre applied to a meter in kg
is an error, not a wrong number. Per unit = total / finished good units (at the last routing step).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pint

from microfab.errors import InputError
from microfab.green.energy import SHARED_STEP, EnergyAccount, Recipient
from microfab.green.factors import FactorChoice, FactorTable
from microfab.green.readings import OrderDetails, Period
from microfab.green.settings import CarbonSettings
from microfab.model.carbon import MILLI, UNITS, overlap_s, temporal_dqr
from microfab.model.events import format_ts
from microfab.model.factory import BomItem, Factory, Product

FUEL_FACTORS: dict[str, tuple[tuple[str, int], ...]] = {
    "towngas": (("towngas/combustion", 1), ("towngas/production", 2)),
    "lpg": (("lpg/combustion", 1),),
    "diesel": (("diesel/combustion", 1),),
}
"""Factor keys (and the scope they count in) for each fuel carrier."""

TECH_DQR = {"primary": 1, "primary-report": 2, "secondary": 3, "proxy": 4, "unverified": 4}
SHARED_LABEL = "shared (facility)"


def kg(value: float = 0.0) -> Any:
    return UNITS.Quantity(value, "kgCO2e")


@dataclass(slots=True)
class MaterialLine:
    material: str
    quantity: Any
    emissions: Any

    def to_json(self) -> dict[str, Any]:
        return {
            "material": self.material,
            "quantity": round(float(self.quantity.magnitude), 6),
            "unit": f"{self.quantity.units:~}",
            "kgco2e": _r(self.emissions),
        }


@dataclass(slots=True)
class CarbonFootprint:
    """The footprint of a set of orders (one order, or every order of a product) in a period."""

    product: str
    orders: list[str]
    start: dt.datetime
    end: dt.datetime
    rule: str
    electricity: Any
    fuels: dict[str, Any]
    energy: Any
    """Electricity plus fuels that are measured as energy (MJ → kWh)."""
    energy_cost: Any | None
    scope1: Any
    scope2_location: Any
    scope2_market: Any
    certificates: bool
    upstream: Any
    units: int
    input_units: int
    primary: Any
    factors: list[FactorChoice]
    flags: list[str]
    dqi: dict[str, float] | None
    by_machine: dict[str, Any] = field(default_factory=dict)
    energy_by_machine: dict[str, Any] = field(default_factory=dict)
    by_step: dict[str, Any] = field(default_factory=dict)
    materials: list[MaterialLine] = field(default_factory=list)
    meters: list[dict[str, Any]] = field(default_factory=list)
    """Every meter of the period (whole factory): energy by state, standby, anomalies."""

    @property
    def scope2(self) -> Any:
        return self.scope2_market if self.certificates else self.scope2_location

    @property
    def total(self) -> Any:
        return self.scope1 + self.scope2 + self.upstream

    @property
    def per_unit(self) -> Any:
        if self.units <= 0:
            raise InputError(
                f"no finished units of {self.product} between {self.start.isoformat()} and "
                f"{self.end.isoformat()} (orders {', '.join(self.orders) or 'none'}), so there is "
                "no footprint per unit; choose a period in which the order or product finished units"
            )
        return self.total / self.units

    @property
    def primary_data_share(self) -> float:
        total = float(self.total.to("kgCO2e").magnitude)
        return float(self.primary.to("kgCO2e").magnitude) / total if total else 0.0

    def to_json(self) -> dict[str, Any]:
        per_unit = self.per_unit if self.units > 0 else None
        return {
            "product": self.product,
            "orders": self.orders,
            "from": _iso(self.start),
            "to": _iso(self.end),
            "energy_kwh": _r(self.energy, "kWh"),
            "electricity_kwh": _r(self.electricity, "kWh"),
            "fuels": {
                c: {"quantity": _r(q), "unit": f"{q.units:~}"} for c, q in self.fuels.items()
            },
            "energy_cost_hkd": None if self.energy_cost is None else _r(self.energy_cost, "HKD", 2),
            "scope1_kgco2e": _r(self.scope1),
            "scope2_location_kgco2e": _r(self.scope2_location),
            "scope2_market_kgco2e": _r(self.scope2_market),
            "scope2_basis": "market" if self.certificates else "location",
            "scope2_kgco2e": _r(self.scope2),
            "upstream_kgco2e": _r(self.upstream),
            "total_kgco2e": _r(self.total),
            "units": self.units,
            "units_material": self.input_units,
            "kgco2e_per_unit": None if per_unit is None else _r(per_unit),
            "kwh_per_unit": None if per_unit is None else _r(self.energy / self.units, "kWh"),
            "primary_data_share": round(self.primary_data_share, 6),
            "allocation": self.rule,
            "factors": [choice.to_json() for choice in self.factors],
            "data_quality": {
                "flags": self.flags,
                "dqi": None if self.dqi is None else {k: round(v, 2) for k, v in self.dqi.items()},
            },
            "by_machine_kgco2e": {m: _r(q) for m, q in self.by_machine.items()},
            "by_machine_kwh": {m: _r(q, "kWh") for m, q in self.energy_by_machine.items()},
            "by_step_kgco2e": {s: _r(q) for s, q in self.by_step.items()},
            "materials": [line.to_json() for line in self.materials],
            "meters": self.meters,
        }


def _r(value: Any, unit: str = "kgCO2e", digits: int = 6) -> float:
    return round(float(value.to(unit).magnitude), digits)


def _iso(value: dt.datetime) -> str:
    return format_ts(value)


# ---------------------------------------------------------------------------- selection


def orders_of(period: Period, *, order: str | None = None, product: str | None = None) -> list[str]:
    """The orders a footprint covers: the one asked for, or every order of the product."""
    if order is not None:
        if order not in period.orders:
            raise InputError(
                f"order '{order}' is not known (no created or released event with a product of "
                "the factory); see microfab orders list"
            )
        return [order]
    assert product is not None
    return sorted(o for o, d in period.orders.items() if d.product == product)


def footprint(
    period: Period,
    factory: Factory,
    settings: CarbonSettings,
    factors: FactorTable,
    orders: Sequence[str],
    product: str,
    *,
    allow_missing: bool = False,
) -> CarbonFootprint:
    """Emissions of ``orders`` (all of ``product``) in the accounted period."""
    account = period.account
    zone = factory.sites[0].zone
    year = account.start.astimezone(zone).year
    sites = {s.id: s for s in factory.sites}
    table = (
        factors.override(settings.all_factors(), "settings") if settings.all_factors() else factors
    )
    used: dict[tuple[str, int], FactorChoice] = {}
    missing: list[str] = []
    flags: list[str] = list(account.anomalies())
    contributions: list[tuple[FactorChoice, Any]] = []

    def factor(key: str) -> FactorChoice | None:
        choice = table.choose(key, year)
        if choice is None:
            years = table.years(key)
            missing.append(
                f"{key} (factors only for {', '.join(map(str, years))})" if years else key
            )
            return None
        used[(key, choice.factor.year)] = choice
        return choice

    flows = account.for_orders(orders)
    electricity = UNITS.Quantity(0.0, "kWh")
    fuels: dict[str, Any] = {}
    scope1, s2_loc, s2_mkt, upstream, primary = kg(), kg(), kg(), kg(), kg()
    by_machine: dict[str, Any] = defaultdict(kg)
    energy_by_machine: dict[str, Any] = defaultdict(lambda: UNITS.Quantity(0.0, "kWh"))
    by_step: dict[str, Any] = defaultdict(kg)
    cost = UNITS.Quantity(0.0, "HKD")
    cost_known = True
    certificates = False
    step_names = _step_names(factory, period.orders, orders)
    unit_of = {(m.machine, m.carrier): m.unit for m in account.meters}

    for (machine, carrier, site_id), parts in flows.items():
        milli = sum(parts.values())
        if not milli:
            continue
        amount = UNITS.Quantity(milli / MILLI, unit_of[(machine, carrier)])
        emitted: list[tuple[Any, dict[Recipient, int], int]] = []  # (kgCO2e for this source, parts)
        if carrier == "electricity":
            site = sites[site_id]
            supplier = site.electricity_supplier
            choice = factor(site.grid_factor or f"electricity/{supplier.value}")
            electricity = electricity + amount
            energy_by_machine[machine] += amount
            tariff = settings.tariff(supplier, year)
            if tariff is None:
                cost_known = False
            else:
                cost = cost + amount.to("kWh") * UNITS.Quantity(tariff.hkd_per_kwh, "HKD/kWh")
            if choice is None:
                continue
            location = _times(amount, choice)
            share, cert_value = _certified_share(account, settings, site_id)
            certificates = certificates or share is not None
            covered = share or 0.0
            market = location * (1 - covered) + amount.to("kWh") * covered * UNITS.Quantity(
                cert_value, "kgCO2e/kWh"
            )
            s2_loc = s2_loc + location
            s2_mkt = s2_mkt + market
            counted = market if share is not None else location
            contributions.append((choice, counted))
            emitted.append((counted, parts, 2))
        else:
            fuels[carrier] = fuels.get(carrier, UNITS.Quantity(0.0, amount.units)) + amount
            with contextlib.suppress(pint.DimensionalityError):
                energy_by_machine[machine] += amount.to("kWh")
            for key, scope in FUEL_FACTORS.get(carrier, ((f"{carrier}/combustion", 1),)):
                choice = factor(key)
                if choice is None:
                    continue
                value = _times(amount, choice)
                contributions.append((choice, value))
                emitted.append((value, parts, scope))
                if scope == 1:
                    scope1 = scope1 + value
                else:
                    s2_loc, s2_mkt = s2_loc + value, s2_mkt + value
        for value, recipient_parts, _scope in emitted:
            by_machine[machine] += value
            primary = primary + value
            for (order, step), part in recipient_parts.items():
                label = (
                    SHARED_LABEL
                    if step is SHARED_STEP
                    else step_names.get((order, step), str(step))
                )
                by_step[label] += value * (part / milli)

    materials: dict[str, Any] = {}
    material_emissions: dict[str, Any] = defaultdict(kg)
    missing_materials: list[str] = []
    for order in orders:
        details = period.orders[order]
        started = account.input_units.get(order, 0)
        if not started:
            continue
        for item in _bom(factory.product(details.product), details):
            amount = UNITS.Quantity(item.qty * started, item.unit)
            choice = table.choose(f"material/{item.material}", year)
            materials[item.material] = (
                materials[item.material] + amount if item.material in materials else amount
            )
            if choice is None:
                if item.material not in missing_materials:
                    missing_materials.append(item.material)
                continue
            used[(choice.factor.key, choice.factor.year)] = choice
            value = _times(amount, choice)
            material_emissions[item.material] += value
            upstream = upstream + value
            contributions.append((choice, value))
            if choice.factor.quality == "primary":
                primary = primary + value
    if missing:
        raise InputError(
            "no emission factor for the period's year "
            f"{year} or any earlier year: {'; '.join(missing)}; add one under 'factors:' in the "
            "carbon settings or give --factors FILE"
        )
    if missing_materials:
        text = ", ".join(missing_materials)
        if not allow_missing:
            raise InputError(
                f"no emission factor for material(s) {text}; add them under 'materials:' in the "
                "carbon settings (value, unit, year, source), or pass --allow-missing to leave "
                "them out and flag the result"
            )
        flags.append(f"materials without an emission factor, left out of upstream: {text}")
    for choice in used.values():
        f = choice.factor
        if choice.fallback:
            flags.append(
                f"{f.key}: no factor for {choice.wanted_year}; used the latest earlier year, {f.year}"
            )
        if f.gas == "CO2":
            flags.append(f"{f.key} ({f.year}) is recorded as CO2 only, not CO2e")
        if f.quality in ("unverified", "proxy"):
            flags.append(f"{f.key} ({f.year}) is {f.quality}: {f.citation or f.source}")
    if not cost_known:
        flags.append("no electricity tariff in the carbon settings for the period; cost not given")
    output = sum(account.output_units.get(o, 0) for o in orders)
    started = sum(account.input_units.get(o, 0) for o in orders)
    energy = electricity
    for quantity in fuels.values():
        with contextlib.suppress(pint.DimensionalityError):
            energy = energy + quantity.to("kWh")
    return CarbonFootprint(
        product=product,
        orders=list(orders),
        start=account.start,
        end=account.end,
        rule=account.rule,
        electricity=electricity,
        fuels=fuels,
        energy=energy,
        energy_cost=cost if cost_known else None,
        scope1=scope1,
        scope2_location=s2_loc,
        scope2_market=s2_mkt,
        certificates=certificates,
        upstream=upstream,
        units=output,
        input_units=started,
        primary=primary,
        factors=sorted(used.values(), key=lambda c: (c.factor.key, c.factor.year)),
        flags=flags,
        dqi=_dqi(contributions, year),
        by_machine=dict(by_machine),
        energy_by_machine=dict(energy_by_machine),
        by_step=dict(by_step),
        materials=[
            MaterialLine(m, q, material_emissions.get(m, kg())) for m, q in materials.items()
        ],
        meters=[m.to_json() for m in account.meters],
    )


def _times(amount: Any, choice: FactorChoice) -> Any:
    """``amount`` × the factor, in kgCO2e; a unit mismatch is an input error."""
    f = choice.factor
    try:
        return (amount * f.quantity()).to("kgCO2e")
    except pint.DimensionalityError:
        raise InputError(
            f"factor {f.key} ({f.year}) is in {f.unit} but the quantity is in "
            f"{amount.units:~}; give a factor per {amount.units:~} (or record the quantity "
            "in the factor's unit)"
        ) from None


def _certified_share(
    account: EnergyAccount, settings: CarbonSettings, site: str
) -> tuple[float | None, float]:
    """Share (0–1) of the site's metered electricity covered by certificates, and their factor."""
    covered = 0.0
    weighted = 0.0
    for cert in settings.certificates:
        inside = overlap_s(cert.start, cert.end, account.start, account.end)
        if not inside:
            continue
        kwh = cert.kwh * float(inside / overlap_s(cert.start, cert.end, cert.start, cert.end))
        covered += kwh
        weighted += kwh * cert.value
    if covered == 0:
        return None, 0.0
    metered = (
        sum(m.milli for m in account.meters if m.carrier == "electricity" and m.site == site)
        / MILLI
    )
    share = min(1.0, covered / metered) if metered else 1.0
    return share, weighted / covered


def _bom(product: Product, details: OrderDetails) -> list[BomItem]:
    items = list(product.bom)
    for option in product.options:
        chosen = details.options.get(option.name)
        for choice in option.choices:
            if choice.code == chosen:
                items += choice.bom_add
    return items


def _step_names(
    factory: Factory, details: dict[str, OrderDetails], orders: Iterable[str]
) -> dict[tuple[str, int | None], str]:
    names: dict[tuple[str, int | None], str] = {}
    for order in orders:
        product = factory.product(details[order].product)
        for op in product.routing:
            names[(order, op.seq)] = f"{op.seq} {op.name}"
    return names


def _dqi(contributions: Sequence[tuple[FactorChoice, Any]], year: int) -> dict[str, float] | None:
    """Emission-weighted data-quality ratings (1 best – 5) of the factors used."""
    total = sum(float(v.to("kgCO2e").magnitude) for _, v in contributions)
    if total <= 0:
        return None
    tech = geo = temporal = 0.0
    for choice, value in contributions:
        weight = float(value.to("kgCO2e").magnitude) / total
        f = choice.factor
        tech += weight * TECH_DQR.get(f.quality, 3)
        material = f.key.startswith("material/")
        geo += weight * ((2 if f.quality == "primary" else 3) if material else 1)
        temporal += weight * temporal_dqr(f.year, year)
    return {"technological": tech, "geographical": geo, "temporal": temporal}
