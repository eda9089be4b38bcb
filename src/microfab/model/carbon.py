"""Carbon accounting maths: units, exact apportionment, meter intervals, factor choice by year.

Pure functions and the one unit registry (pint); no I/O. Energy is counted internally in whole
*milli-units* of a meter's unit (1 Wh for a kWh meter), so that splitting a metered amount between
states, orders and routing steps can be exact: :func:`apportion` hands out whole milli-units by the
largest-remainder method, and the parts always add up to the whole.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, TypeVar

import pint

from microfab.model.events import MAX_READING

UNITS: pint.UnitRegistry[Any] = pint.UnitRegistry()
"""microfab's one unit registry; every quantity that leaves a green/ module is one of these."""
UNITS.define("kgCO2e = [emission]")
UNITS.define("gCO2e = 0.001 kgCO2e")
UNITS.define("tCO2e = 1000 kgCO2e")
UNITS.define("kgCO2 = kgCO2e")  # a CO2-only factor is used as CO2e and flagged in the data quality
UNITS.define("HKD = [currency]")
UNITS.define("piece = [item] = pcs")
UNITS.define("towngas_unit = 48 * megajoule")  # HKEX ESG guidance: 1 unit of towngas = 48 MJ

Quantity = pint.Quantity
"""A number with a unit (``UNITS.Quantity``)."""

MILLI = 1000
"""Milli-units per unit: meter readings are resolved to 0.001 of their unit (1 Wh for kWh)."""

K = TypeVar("K", bound=Hashable)


def quantity(value: float | Fraction | int, unit: str) -> Any:
    """``value`` in ``unit`` as a pint quantity of :data:`UNITS`."""
    return UNITS.Quantity(float(value), unit)


def to_milli(value: float) -> int:
    """A meter reading as whole milli-units (0.001 kWh = 1 Wh), rounded half away from zero.

    Readings beyond the event schema's range (±:data:`~microfab.model.events.MAX_READING`, which
    data stored before the range existed may hold, up to 1e308) are taken at that bound, and a
    NaN as 0, so that sums and conversions of meter energy stay finite."""
    if not math.isfinite(value) or abs(value) > MAX_READING:
        value = 0.0 if math.isnan(value) else math.copysign(MAX_READING, value)
    return math.floor(value * MILLI + 0.5)


# ---------------------------------------------------------------------------- apportionment


def apportion(total: int, weights: Mapping[K, float | int | Fraction]) -> dict[K, int]:
    """Split ``total`` whole milli-units in proportion to ``weights`` so the parts add up exactly.

    Largest-remainder (Hamilton) method: everyone gets the floor of their exact share, and the
    units left over go one each to the largest remainders (ties: in the mapping's order). Keys
    with zero weight get 0. ``total`` may be negative (a correction); weights must be ≥ 0 and
    not all zero unless ``total`` is 0.
    """
    exact = {key: Fraction(weight) for key, weight in weights.items()}
    if any(w < 0 for w in exact.values()):
        raise ValueError("apportion: weights must be ≥ 0")
    whole = sum(exact.values(), Fraction(0))
    if whole == 0:
        if total == 0:
            return dict.fromkeys(exact, 0)
        raise ValueError("apportion: no positive weight to share a non-zero total by")
    sign = -1 if total < 0 else 1
    magnitude = abs(total)
    shares = {key: magnitude * w / whole for key, w in exact.items()}
    parts = {key: math.floor(s) for key, s in shares.items()}
    left = magnitude - sum(parts.values())
    order = sorted(
        (key for key in shares if exact[key] > 0),
        key=lambda k: shares[k] - parts[k],
        reverse=True,
    )  # sorted() is stable: ties keep the mapping's order
    for key in order[:left]:
        parts[key] += 1
    return {key: sign * part for key, part in parts.items()}


# ---------------------------------------------------------------------------- meters


@dataclass(frozen=True, slots=True)
class MeterInterval:
    """Energy a cumulative meter counted between two consecutive readings, in milli-units."""

    start: dt.datetime
    end: dt.datetime
    milli: int


@dataclass(frozen=True, slots=True)
class MeterAnomaly:
    """A reading lower than the one before it: a reset to zero or a rollover of the register."""

    ts: dt.datetime
    kind: str
    """``reset`` or ``rollover``."""
    before: int
    after: int
    counted: int
    """Milli-units counted for the interval: ``after`` (reset), or up to the top and on."""

    def describe(self, machine: str, unit: str) -> str:
        before, after = self.before / MILLI, self.after / MILLI
        if self.kind == "rollover":
            return (
                f"{machine}: meter rolled over at {self.ts.isoformat()} ({before:g} → {after:g} "
                f"{unit}); counted {self.counted / MILLI:g} {unit} across the rollover"
            )
        return (
            f"{machine}: meter went backwards at {self.ts.isoformat()} ({before:g} → {after:g} "
            f"{unit}); taken as a reset to zero, counted {self.counted / MILLI:g} {unit} since it"
        )


ROLLOVER_BAND = Fraction(9, 10)
"""A backwards step counts as a rollover when the reading before it was in the top 10 % of the
register (with ``rollover_at`` configured for that meter); otherwise it is a reset."""


def meter_intervals(
    readings: Sequence[tuple[dt.datetime, int]], rollover_at: int | None = None
) -> tuple[list[MeterInterval], list[MeterAnomaly]]:
    """Interval energy from cumulative readings (time-ordered, milli-units); never negative.

    A reading below the previous one is a *rollover* when ``rollover_at`` (the register's wrap
    value, milli-units) is set and the previous reading was within its top 10 %: the interval
    counts ``rollover_at - before + after``. Otherwise it is a *reset* to zero: the interval counts
    ``after`` (what the meter counted since it restarted). Both are reported as anomalies.
    """
    intervals: list[MeterInterval] = []
    anomalies: list[MeterAnomaly] = []
    for (t0, v0), (t1, v1) in itertools.pairwise(readings):
        if v1 >= v0:
            intervals.append(MeterInterval(t0, t1, v1 - v0))
            continue
        if rollover_at is not None and v0 >= rollover_at * ROLLOVER_BAND and v0 <= rollover_at:
            counted = rollover_at - v0 + v1
            anomalies.append(MeterAnomaly(t1, "rollover", v0, v1, counted))
        else:
            counted = v1
            anomalies.append(MeterAnomaly(t1, "reset", v0, v1, counted))
        intervals.append(MeterInterval(t0, t1, counted))
    return intervals, anomalies


def overlap_s(a0: dt.datetime, a1: dt.datetime, b0: dt.datetime, b1: dt.datetime) -> Fraction:
    """Seconds (exact, to the microsecond) that ``[a0, a1)`` and ``[b0, b1)`` share."""
    start, end = max(a0, b0), min(a1, b1)
    if end <= start:
        return Fraction(0)
    delta = end - start
    return Fraction(delta.days * 86_400_000_000 + delta.seconds * 1_000_000 + delta.microseconds,
                    1_000_000)  # fmt: skip


# ---------------------------------------------------------------------------- factors by year


def pick_year(available: Sequence[int], wanted: int) -> int | None:
    """The factor year to use for ``wanted``: that year, else the latest earlier one, else None."""
    earlier = [year for year in available if year <= wanted]
    return max(earlier) if earlier else None


def temporal_dqr(factor_year: int, period_year: int) -> int:
    """Temporal data-quality rating 1 (best) – 5 from a factor's age at the reference period."""
    age = max(0, period_year - factor_year)
    for limit, rating in ((1, 1), (3, 2), (5, 3), (10, 4)):
        if age <= limit:
            return rating
    return 5
