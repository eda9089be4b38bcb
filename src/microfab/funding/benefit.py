"""Benefit data for the benefit report: the line's output, turnover where prices are recorded, jobs.

Output is the good count of the line's bottleneck machine (the line's pace; the same machine
``microfab oee --level line`` names) per order, summed per product; turnover is output × the
product's ``unit_price_hkd`` in the factory model, floored to whole dollars. Orders whose product is
unknown, or products without a price, are listed without turnover — never guessed.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from microfab.model.events import format_ts
from microfab.model.factory import Factory
from microfab.model.funding import floor_dollars
from microfab.store.event_store import EventStore


@dataclass(frozen=True, slots=True)
class ProductOutput:
    product: str
    name: str
    good: int
    unit_price_hkd: Decimal | None

    @property
    def turnover_hkd(self) -> int | None:
        if self.unit_price_hkd is None:
            return None
        return floor_dollars(self.unit_price_hkd * self.good)

    def to_json(self) -> dict[str, Any]:
        return {
            "product": self.product,
            "name": self.name,
            "good": self.good,
            "unit_price_hkd": str(self.unit_price_hkd) if self.unit_price_hkd is not None else None,
            "turnover_hkd": self.turnover_hkd,
        }


@dataclass(frozen=True, slots=True)
class LineOutput:
    line: str
    bottleneck: str | None
    start: dt.datetime | None
    end: dt.datetime | None
    products: list[ProductOutput]

    @property
    def turnover_hkd(self) -> int:
        return sum(p.turnover_hkd or 0 for p in self.products)

    def to_json(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "bottleneck": self.bottleneck,
            "from": format_ts(self.start) if self.start else None,
            "to": format_ts(self.end) if self.end else None,
            "products": [p.to_json() for p in self.products],
            "good": sum(p.good for p in self.products),
            "turnover_hkd": self.turnover_hkd,
            "turnover_complete": all(p.unit_price_hkd is not None for p in self.products),
        }


def line_output(
    store: EventStore,
    factory: Factory,
    line: str,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
) -> LineOutput:
    """The line's good output per product between ``start`` and ``end`` (default: all stored)."""
    from microfab.track.oee import oee_rows, select_lines
    from microfab.track.production import order_outputs

    rows = oee_rows(store, factory, line=line, start=start, end=end, level="line")
    if not rows or rows[0].bottleneck is None:
        return LineOutput(line, None, start, end, [])
    row = rows[0]
    bottleneck = row.bottleneck
    assert bottleneck is not None
    # the line output (docs/production.md): good units out of their orders' last operation
    machines = [ref.path for ref in select_lines(factory, line)[0]]
    upper = end if end is not None else row.end + dt.timedelta(milliseconds=1)
    good: dict[str, int] = defaultdict(int)
    for output in order_outputs(
        store, factory, start=row.start, end=upper, machines=machines
    ).values():
        good[output.product or "(order product unknown)"] += output.good
    known = {p.sku: p for p in factory.products}
    products = [
        ProductOutput(
            sku,
            known[sku].name if sku in known else "",
            n,
            Decimal(str(known[sku].unit_price_hkd)) if sku in known else None,
        )
        for sku, n in sorted(good.items())
    ]
    return LineOutput(row.line, bottleneck, row.start, row.end, products)
