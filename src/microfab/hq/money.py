"""Money of several sites in HKD: a dated rates table, and amounts converted by the rate of their day.

Each site keeps its money figures in its own currency (``currency`` in the factory file: HKD,
CNY, VND, MYR, THB …). HQ adds them up in HKD with a rates file the finance team keeps::

    version: group-2026-12
    rates:
      - {currency: CNY, from: 2026-01-01, hkd: 1.0850, source: "HKMA, month-end rate"}
      - {currency: CNY, from: 2026-07-01, hkd: 1.0910, source: "HKMA, month-end rate"}
      - {currency: VND, from: 2026-01-01, hkd: 0.000300, source: "bank statement rate"}

A rate holds from its date until the next one of its currency; an amount dated before the first
rate of its currency is refused (no guessing), and so is a currency with no rate. HKD needs none.
Conversion is in :class:`~decimal.Decimal`, rounded to the cent at the end.
"""

from __future__ import annotations

import bisect
import datetime as dt
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from microfab.errors import InputError
from microfab.model.located_yaml import load_located_file

RATES_FILE_HOLDS = "'version' and 'rates' (a list)"
CENT = Decimal("0.01")


class Rate(BaseModel):
    """HKD per one unit of ``currency`` from ``start`` on."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    currency: str = Field(pattern=r"^[A-Z]{3}$")
    start: dt.date = Field(alias="from")
    hkd: Decimal = Field(gt=0)
    source: str = Field(min_length=1)


class _RatesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str = Field(min_length=1)
    rates: list[Rate]


class RatesTable:
    """Rates by currency, in date order."""

    def __init__(self, version: str, rates: list[Rate]) -> None:
        self.version = version
        self._by_currency: dict[str, list[Rate]] = {}
        for rate in sorted(rates, key=lambda r: (r.currency, r.start)):
            self._by_currency.setdefault(rate.currency, []).append(rate)

    def rate(self, currency: str, on: dt.date) -> Rate | None:
        """The rate of ``currency`` on day ``on`` (None for HKD itself)."""
        if currency == "HKD":
            return None
        rates = self._by_currency.get(currency)
        if not rates:
            raise InputError(f"no HKD rate for {currency} in the rates table {self.version}")
        index = bisect.bisect_right([r.start for r in rates], on) - 1
        if index < 0:
            raise InputError(
                f"no HKD rate for {currency} on {on.isoformat()}: the first is from "
                f"{rates[0].start.isoformat()}"
            )
        return rates[index]

    def to_hkd(self, amount: Decimal | int | str, currency: str, on: dt.date) -> Decimal:
        """``amount`` of ``currency`` on day ``on`` in HKD, to the cent."""
        value = Decimal(amount)
        rate = self.rate(currency, on)
        hkd = value if rate is None else value * rate.hkd
        return hkd.quantize(CENT, rounding=ROUND_HALF_EVEN)


def load_rates(path: Path) -> RatesTable:
    """A rates file (see the module docstring); faults name their line and field."""
    parsed = load_located_file(path, _RatesFile, what="rates file", expected=RATES_FILE_HOLDS)
    return RatesTable(parsed.version, parsed.rates)
