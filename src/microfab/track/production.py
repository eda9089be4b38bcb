"""Production facts that every screen, report and export shares: order output, line output,
station counts and hourly output, all read from the hourly production read model.

The definitions (docs/production.md) live here and nowhere else:

- **Order output.** An order's good units are those counted at the *last operation of its
  routing* (its output operation); its scrap is everything scrapped for it at any operation.
  Progress = good / order quantity. Counts outside working time count.
- **Line output.** Units that completed the output operation of their order on one of the line's
  machines in the period, inside or outside working time. A line never sums its stations.
- **Station counts.** Every machine's own good and scrap, split into inside working time (what
  OEE uses) and outside it (``outside_total``).
- **Energy and material.** Metered energy per machine and carrier (from cumulative readings; a
  backward step is a reset) and material consumed per machine and order, per site hour.

The read model (:mod:`microfab.store.production_views`) has one-hour resolution in site time: a
period is taken as the site hours that overlap it.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from microfab.model.factory import Factory, Product
from microfab.store.event_store import EventStore
from microfab.store.production_views import (
    CountTotal,
    EnergyTotal,
    MaterialTotal,
    count_totals,
    energy_totals,
    hour_counts,
    material_totals,
)


def line_path_of(factory: Factory) -> dict[str, str]:
    """Machine path -> path of its line (site/area/line), for every machine of the factory."""
    return {ref.path: f"{ref.site.id}/{ref.area.id}/{ref.line.id}" for ref in factory.machines()}


def output_operation(
    product: Product | None, quantity: int | None, counted: Iterable[int | None]
) -> int | None:
    """The operation whose good count is an order's output: the last step of its product's
    routing; for an order without a known routing, the highest step counted for it, else None
    (counts that named no step)."""
    if product is not None and quantity and product.routing:
        return product.routing[-1].seq
    numbered = [seq for seq in counted if seq is not None]
    return max(numbered) if numbered else None


@dataclass(frozen=True, slots=True)
class OrderRef:
    """What the store knows of an order: its product and quantity."""

    order: str
    product: str | None
    quantity: int | None


def order_refs(store: EventStore) -> dict[str, OrderRef]:
    return {o.order: OrderRef(o.order, o.product, o.quantity) for o in store.order_status()}


def _product(factory: Factory, sku: str | None) -> Product | None:
    if sku is None:
        return None
    return next((p for p in factory.products if p.sku == sku), None)


@dataclass(frozen=True, slots=True)
class OrderOutput:
    """An order's output over a period (or the whole log)."""

    order: str
    product: str | None
    quantity: int | None
    output_operation: int | None
    good: int
    """Good units at the output operation (inside and outside working time)."""
    scrap: int
    """Units scrapped for the order at any operation."""
    scrap_by_operation: dict[int | None, int]

    @property
    def progress(self) -> float | None:
        """Good at the output operation / order quantity."""
        return self.good / self.quantity if self.quantity else None

    def to_json(self) -> dict[str, Any]:
        return {
            "order": self.order,
            "product": self.product,
            "good": self.good,
            "scrap": self.scrap,
        }


def order_outputs(
    store: EventStore,
    factory: Factory,
    *,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    machines: Sequence[str] | None = None,
) -> dict[str, OrderOutput]:
    """Output of every order with counts in the period (the whole log when no period), counted on
    ``machines`` (all when None)."""
    refs = order_refs(store)
    ops = output_operations(store, factory)
    per_order: dict[str, list[CountTotal]] = defaultdict(list)
    for total in count_totals(store, start, end, machines):
        if total.order is not None:
            per_order[total.order].append(total)
    outputs: dict[str, OrderOutput] = {}
    for order, totals in sorted(per_order.items()):
        outputs[order] = _order_output(refs.get(order), order, ops.get(order), totals)
    return outputs


def _order_output(
    ref: OrderRef | None, order: str, out_op: int | None, totals: Sequence[CountTotal]
) -> OrderOutput:
    sku = ref.product if ref else None
    quantity = ref.quantity if ref else None
    scrap: dict[int | None, int] = defaultdict(int)
    for t in totals:
        scrap[t.operation] += t.all_scrap
    return OrderOutput(
        order=order,
        product=sku,
        quantity=quantity,
        output_operation=out_op,
        good=sum(t.all_good for t in totals if t.operation == out_op),
        scrap=sum(scrap.values()),
        scrap_by_operation=dict(scrap),
    )


@dataclass(slots=True)
class LineOutput:
    """A line's output over a period: units that completed their order's output operation."""

    line: str
    good_inside: int = 0
    good_outside: int = 0
    scrap_inside: int = 0
    """Scrap counted on the line's machines inside working time (any operation)."""
    scrap_outside: int = 0

    @property
    def good(self) -> int:
        """The line output: inside and outside working time."""
        return self.good_inside + self.good_outside


def is_output(order: str | None, operation: int | None, outputs: dict[str, int | None]) -> bool:
    """True when a count of ``order`` at ``operation`` is the order's output (``outputs`` from
    :func:`output_operations`)."""
    return order is not None and order in outputs and operation == outputs[order]


def output_operations(
    store: EventStore, factory: Factory, refs: dict[str, OrderRef] | None = None
) -> dict[str, int | None]:
    """Order -> its output operation, for every order the store knows (every counted order is
    known: a count names its order). Only orders without a known routing need their counts."""
    result: dict[str, int | None] = {}
    unrouted: list[str] = []
    for ref in (order_refs(store) if refs is None else refs).values():
        product = _product(factory, ref.product)
        if product is not None and ref.quantity and product.routing:
            result[ref.order] = product.routing[-1].seq
        else:
            unrouted.append(ref.order)
    counted: dict[str, set[int | None]] = defaultdict(set)
    if unrouted:
        for total in count_totals(store, orders=unrouted):
            if total.order is not None:
                counted[total.order].add(total.operation)
    for order in unrouted:
        result[order] = output_operation(None, None, counted.get(order, ()))
    return result


def line_outputs(
    store: EventStore,
    factory: Factory,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
) -> dict[str, LineOutput]:
    """Every line's output over the period (see the module docstring)."""
    lines = line_path_of(factory)
    outputs = output_operations(store, factory)
    result: dict[str, LineOutput] = {}
    for total in count_totals(store, start, end, sorted(lines)):
        row = result.setdefault(lines[total.machine], LineOutput(lines[total.machine]))
        row.scrap_inside += total.scrap
        row.scrap_outside += total.outside_scrap
        if is_output(total.order, total.operation, outputs):
            row.good_inside += total.good
            row.good_outside += total.outside_good
    return result


@dataclass(frozen=True, slots=True)
class StationCount:
    """One machine's own counts over a period."""

    machine: str
    good: int
    """Inside working time (what OEE counts)."""
    scrap: int
    outside_total: int
    """Good and scrap counted outside working time."""

    def to_json(self) -> dict[str, Any]:
        return {
            "machine": self.machine,
            "good": self.good,
            "scrap": self.scrap,
            "outside_total": self.outside_total,
        }


def station_counts(
    store: EventStore, machines: Sequence[str], start: dt.datetime, end: dt.datetime
) -> dict[str, StationCount]:
    sums: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for total in count_totals(store, start, end, machines):
        cell = sums[total.machine]
        cell[0] += total.good
        cell[1] += total.scrap
        cell[2] += total.outside_good + total.outside_scrap
    return {m: StationCount(m, g, s, o) for m, (g, s, o) in sums.items()}


def station_totals_all(
    store: EventStore, machines: Sequence[str], start: dt.datetime, end: dt.datetime
) -> dict[str, tuple[int, int]]:
    """Machine -> (good, scrap) counted in the period, inside and outside working time."""
    sums: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for total in count_totals(store, start, end, machines):
        sums[total.machine][0] += total.all_good
        sums[total.machine][1] += total.all_scrap
    return {m: (g, s) for m, (g, s) in sums.items()}


def hourly_line_output(
    store: EventStore, factory: Factory, line: str, hours: Sequence[dt.datetime]
) -> list[int]:
    """The line output (good at output operations, inside and outside working time) in each of
    the site hours beginning at ``hours`` (sorted, one hour apart)."""
    if not hours:
        return []
    machines = [m for m, ln in line_path_of(factory).items() if ln == line]
    outputs = output_operations(store, factory)
    index = {h.astimezone(dt.UTC): i for i, h in enumerate(hours)}
    values = [0] * len(hours)
    end = hours[-1] + dt.timedelta(hours=1)
    for row in hour_counts(store, hours[0], end, machines):
        at = index.get(row.hour)
        if at is not None and is_output(row.order, row.operation, outputs):
            values[at] += row.good + row.outside_good
    return values


@dataclass(frozen=True, slots=True)
class Orphan:
    """Counts naming an order the store does not know, or an operation its routing lacks."""

    machine: str
    order: str
    operation: int | None
    good: int
    scrap: int
    why: str

    def to_json(self) -> dict[str, Any]:
        return {
            "machine": self.machine,
            "order": self.order,
            "operation": self.operation,
            "good": self.good,
            "scrap": self.scrap,
            "why": self.why,
        }


def orphans(store: EventStore, factory: Factory) -> list[Orphan]:
    """Counts of unknown orders or of operations outside the order's routing (they still count
    for their machine)."""
    refs = order_refs(store)
    found: list[Orphan] = []
    for total in count_totals(store):
        if total.order is None:
            continue
        ref = refs.get(total.order)
        why: str | None = None
        if ref is None:
            why = "unknown order"
        else:
            product = _product(factory, ref.product)
            if product is None:
                why = f"unknown product {ref.product}" if ref.product else "order has no product"
            elif total.operation is None:
                why = "no operation named"
            elif total.operation not in {op.seq for op in product.routing}:
                why = f"operation {total.operation} is not in the routing of {product.sku}"
        if why is not None:
            found.append(
                Orphan(
                    total.machine,
                    total.order,
                    total.operation,
                    total.all_good,
                    total.all_scrap,
                    why,
                )
            )
    return found


def energy_by_machine(
    store: EventStore,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    machines: Sequence[str] | None = None,
    *,
    hourly: bool = False,
) -> list[EnergyTotal]:
    """Metered energy per machine and carrier (per site hour when ``hourly``) over the hours
    overlapping ``[start, end)`` (the whole log when no period), in milli-units of each meter's
    unit."""
    return energy_totals(store, start, end, machines, hourly=hourly)


def material_by_order(
    store: EventStore,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    machines: Sequence[str] | None = None,
    *,
    hourly: bool = False,
) -> list[MaterialTotal]:
    """Material consumed per machine, order, material and unit (per site hour when ``hourly``)
    over the hours overlapping ``[start, end)`` (the whole log when no period), in milli-units."""
    return material_totals(store, start, end, machines, hourly=hourly)
