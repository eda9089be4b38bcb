"""A period's meters, machine states, unit counts and orders, read from the store for accounting.

Builds the :class:`~microfab.green.energy.EnergyInputs` of a time range (default: the first to the
last stored state or count event) and runs the energy accounting on them. An order's units (its
finished good units at its output operation, and those plus its scrap) come from
:mod:`microfab.track.production`, the one service every view reads, so a footprint per unit
divides by the good figure the order board shows. Direct energy is still shared by the counts
stamped within each meter interval (finer than the read model's hour), so the period's count
events are read as well; see docs/green.md.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from microfab.errors import InputError
from microfab.green.energy import (
    EnergyAccount,
    EnergyInputs,
    MeterSeries,
    OrderInfo,
    UnitCount,
    account_energy,
)
from microfab.green.settings import CarbonSettings
from microfab.model.carbon import to_milli
from microfab.model.clock_policy import believable_span
from microfab.model.factory import Factory, MachineKind
from microfab.model.oee import state_spans
from microfab.model.timerange import check_range
from microfab.store.energy import meter_readings
from microfab.store.event_store import EventStore
from microfab.store.production import part_counts, state_transitions, time_span
from microfab.track.orders import order_histories
from microfab.track.production import order_outputs, output_operations


@dataclass(frozen=True, slots=True)
class OrderDetails:
    """An order's product, chosen options and ordered quantity (from its release)."""

    order: str
    product: str
    options: dict[str, str]
    quantity: int | None
    started: dt.datetime | None


@dataclass(frozen=True, slots=True)
class Period:
    """An accounted period: its energy account and the orders that were known."""

    account: EnergyAccount
    orders: dict[str, OrderDetails]


def period_range(
    store: EventStore, factory: Factory, start: dt.datetime | None, end: dt.datetime | None
) -> tuple[dt.datetime, dt.datetime]:
    """``start``/``end`` with the first and last stored event filling in what is not given."""
    check_range(start, end)
    if start is None or end is None:
        span = believable_span(time_span(store, [ref.path for ref in factory.machines()]))
        if span is None:
            raise InputError(
                "no machine events are stored yet, so there is no period to account; "
                "record production first (or run microfab demo)"
            )
        start = start or span[0]
        end = end or (span[1] + dt.timedelta(milliseconds=1))
    check_range(start, end)
    return start, end


def account_period(
    store: EventStore,
    factory: Factory,
    settings: CarbonSettings,
    start: dt.datetime,
    end: dt.datetime,
) -> Period:
    """Read the period from the store and account its energy."""
    refs = factory.machines()
    paths = [ref.path for ref in refs]
    by_path = {ref.path: ref for ref in refs}
    readings = meter_readings(store, paths, start, end)
    series: dict[tuple[str, str], list[tuple[dt.datetime, int]]] = {}
    units: dict[tuple[str, str], str] = {}
    for r in readings:
        series.setdefault((r.machine, r.carrier), []).append((r.ts, to_milli(r.value)))
        units[(r.machine, r.carrier)] = r.unit
    meters = []
    for (machine, carrier), values in series.items():
        ref = by_path.get(machine)
        if ref is None:
            continue
        setting = settings.meters.get(machine)
        rollover = setting.rollover_at if setting else None
        meters.append(
            MeterSeries(
                machine=machine,
                carrier=carrier,
                unit=units[(machine, carrier)],
                site=ref.site.id,
                facility=ref.machine.kind is MachineKind.ENERGY_METER,
                readings=values,
                rollover_at=to_milli(rollover) if rollover is not None else None,
            )
        )
    spans = {
        machine: state_spans(changes, start, end, initial)
        for machine, (initial, changes) in state_transitions(store, paths, start, end).items()
    }
    counts = [
        UnitCount(c.machine, c.ts, c.order, c.operation, c.good, c.scrap)
        for c in part_counts(store, paths, start, end)
    ]
    details: dict[str, OrderDetails] = {}
    infos: dict[str, OrderInfo] = {}
    skus = {p.sku: p for p in factory.products}
    outputs = order_outputs(store, factory, start=start, end=end)
    operations = output_operations(store, factory)
    for order, history in order_histories(store).items():
        ev = history.details
        if ev is None or ev.product is None or ev.product not in skus:
            continue
        product = skus[ev.product]
        details[order] = OrderDetails(
            order, product.sku, dict(ev.options or {}), ev.quantity, history.started
        )
        infos[order] = OrderInfo(
            order,
            product.sku,
            product.unit_mass_kg,
            operations.get(order) or product.routing[-1].seq,
        )
    inputs = EnergyInputs(
        start=start,
        end=end,
        meters=meters,
        spans=spans,
        counts=counts,
        orders=infos,
        rule=settings.allocation,
        standby_states=tuple(settings.standby_states),
        switch_off_after_s=settings.switch_off_after_min * 60,
        output_units={o: out.good for o, out in outputs.items() if o in infos},
        input_units={o: out.good + out.scrap for o, out in outputs.items() if o in infos},
    )
    return Period(account_energy(inputs), details)
