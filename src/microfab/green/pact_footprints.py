"""The footprints the PACT API serves: one PACT ProductFootprint per product made in the period.

The period is ``microfab serve --pact-period`` (a month ``2026-11`` in site time, or
``FROM..TO``), else the last complete calendar month in site time before the plant clock. Each
document is what ``microfab carbon export --product SKU --from FROM --to TO`` writes for the same
period, settings and factors — same numbers, same id (a UUID5 of company, product, period and
result, so repeated calls answer the same id while the stored data stay the same). A product with
no work orders or no finished units in the period has no footprint and is left out.

The documents are computed once per store state (its newest sequence number, factory version and
period) and kept, so a client paging through the list sees one consistent set.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
import zoneinfo
from dataclasses import dataclass
from pathlib import Path

from microfab.errors import InputError
from microfab.green.factors import FactorTable, load_factors
from microfab.green.footprint import footprint, orders_of
from microfab.green.pact import ProductFootprint, product_footprint
from microfab.green.readings import account_period
from microfab.green.settings import CarbonSettings
from microfab.model.timerange import check_range, parse_time
from microfab.track.plant import Plant

_MONTH = re.compile(r"(\d{4})-(\d{2})")


@dataclass(frozen=True, slots=True)
class PactPeriodText:
    """``--pact-period`` as given: a month ``YYYY-MM`` or ``FROM..TO`` (site time unless a zone
    is written), read against the site's zone when footprints are computed."""

    text: str

    def __post_init__(self) -> None:
        self.range(zoneinfo.ZoneInfo("UTC"))  # the syntax is checked when the server starts

    def range(self, zone: zoneinfo.ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
        raw = self.text.strip()
        month = _MONTH.fullmatch(raw)
        if month:
            year, number = int(month.group(1)), int(month.group(2))
            if not 1 <= number <= 12:
                raise InputError(f"--pact-period: '{raw}' is not a month such as 2026-11")
            return month_range(year, number, zone)
        first, sep, last = raw.partition("..")
        if not sep or not first.strip() or not last.strip():
            raise InputError(
                f"--pact-period: '{raw}' is not a month (2026-11) or a range "
                "FROM..TO (2026-11-01..2026-12-01)"
            )
        start = parse_time(first, zone, field="--pact-period")
        end = parse_time(last, zone, field="--pact-period")
        check_range(start, end)
        return start, end


def month_range(year: int, month: int, zone: zoneinfo.ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    """The calendar month in site time, as UTC instants (end exclusive)."""
    start = dt.datetime(year, month, 1, tzinfo=zone)
    end = dt.datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=zone)
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


def last_complete_month(
    now: dt.datetime, zone: zoneinfo.ZoneInfo
) -> tuple[dt.datetime, dt.datetime]:
    """The last calendar month (site time) that ended at or before ``now``."""
    local = now.astimezone(zone)
    year, month = (local.year - 1, 12) if local.month == 1 else (local.year, local.month - 1)
    return month_range(year, month, zone)


class PactFootprints:
    """The ProductFootprint documents of the period, kept per store state (one per app)."""

    def __init__(
        self,
        plant: Plant,
        settings: CarbonSettings,
        period: str | None = None,
        factors_path: Path | None = None,
    ) -> None:
        self.plant = plant
        self.settings = settings
        self.period_text = PactPeriodText(period) if period is not None else None
        self.factors: FactorTable = load_factors(factors_path)
        self._lock = threading.Lock()
        self._kept: tuple[tuple[object, ...], list[ProductFootprint]] | None = None

    def period(self) -> tuple[dt.datetime, dt.datetime]:
        zone = self.plant.zone()
        if self.period_text is not None:
            return self.period_text.range(zone)
        return last_complete_month(self.plant.now(), zone)

    def documents(self) -> list[ProductFootprint]:
        """Every product's footprint of the period (ordered by SKU); InputError when one cannot
        be computed (a material without a factor, a factor missing for every year)."""
        factory = self.plant.factory()
        start, end = self.period()
        key = (self.plant.store.last_seq(), self.plant.factory_version(), start, end)
        with self._lock:
            if self._kept is not None and self._kept[0] == key:
                return self._kept[1]
        account = account_period(self.plant.store, factory, self.settings, start, end)
        created = dt.datetime.now(dt.UTC)
        documents = []
        for product in sorted(factory.products, key=lambda p: p.sku):
            orders = orders_of(account, product=product.sku)
            if not orders:
                continue
            fp = footprint(account, factory, self.settings, self.factors, orders, product.sku)
            if fp.units <= 0:
                continue
            documents.append(product_footprint(fp, factory, self.settings, created=created))
        with self._lock:
            self._kept = (key, documents)
        return documents
