"""Metered energy per machine, per machine state and per work order, conserved exactly.

From cumulative meter readings to energy that belongs to orders, in four steps (all amounts in
whole milli-units of the meter's unit, 1 Wh for a kWh meter, so every split is exact):

1. **Intervals.** Consecutive readings of one meter give the energy between them
   (:func:`microfab.model.carbon.meter_intervals`: a backwards step is a reset or a rollover,
   reported, never negative energy). An interval that crosses the edge of the period is split by
   time; only the part inside counts.
2. **States.** Each interval's energy is split over the machine's states by the time spent in
   each (the meter does not say more); time with no state report is ``unknown``.
3. **Direct energy.** A production machine's interval energy goes to the (order, routing step)
   pairs it counted units for *in that interval*, by units (good + scrap). Intervals without
   counts (idle, stopped) form the machine's remainder, shared over the machine's (order, step)
   pairs by the units it counted in the whole period.
4. **Shared energy.** Facility meters (``energy_meter`` machines: panels, HVAC, compressed air,
   lighting) and machines that counted nothing in the period are shared over orders by the
   settings' ``allocation`` rule: ``units`` (finished good units of each order, at its last
   routing step), ``mass`` (those units × the product's unit mass) or ``run_time`` (each
   machine's running seconds, shared by the units it counted for each order).

Every split uses :func:`microfab.model.carbon.apportion`, so the energy allocated to orders adds
up exactly to the energy metered in the period (checked in :meth:`EnergyAccount.check`).
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from microfab.errors import InputError
from microfab.green.settings import AllocationRule
from microfab.model.carbon import (
    MILLI,
    UNITS,
    MeterAnomaly,
    apportion,
    meter_intervals,
    overlap_s,
)
from microfab.model.oee import RUNNING, UNKNOWN, StateSpan

SHARED_STEP = None
"""The routing step of shared (facility) energy in a recipient pair: none."""

Recipient = tuple[str, int | None]
"""(order, routing step); step None = shared energy allocated to the order."""
Source = tuple[str, str, str]
"""(machine path, carrier, site id) of one meter."""


@dataclass(frozen=True, slots=True)
class MeterSeries:
    """One meter's cumulative readings (milli-units), time-ordered."""

    machine: str
    carrier: str
    unit: str
    site: str
    facility: bool
    """A facility meter (panel, HVAC …): its energy is always shared."""
    readings: Sequence[tuple[dt.datetime, int]]
    rollover_at: int | None = None


@dataclass(frozen=True, slots=True)
class UnitCount:
    """Units a machine counted at one time, for one order and step."""

    machine: str
    ts: dt.datetime
    order: str | None
    operation: int | None
    good: int
    scrap: int


@dataclass(frozen=True, slots=True)
class OrderInfo:
    """What the allocation needs to know about an order."""

    order: str
    product: str
    unit_mass_kg: float
    last_step: int


@dataclass(frozen=True, slots=True)
class EnergyInputs:
    """Everything :func:`account_energy` needs, already read from the store."""

    start: dt.datetime
    end: dt.datetime
    meters: Sequence[MeterSeries]
    spans: Mapping[str, Sequence[StateSpan]]
    counts: Sequence[UnitCount]
    orders: Mapping[str, OrderInfo]
    rule: AllocationRule = "units"
    standby_states: tuple[str, ...] = ("idle", "planned_stop")
    switch_off_after_s: float = 600.0
    output_units: Mapping[str, int] | None = None
    """Finished good units per order as the production figures give them (None: from counts)."""
    input_units: Mapping[str, int] | None = None
    """Finished plus scrapped units per order, likewise (None: from counts)."""


@dataclass(slots=True)
class MachineEnergy:
    """One meter's energy in the period, by state, with its anomalies and idle waste."""

    machine: str
    carrier: str
    unit: str
    site: str
    facility: bool
    milli: int = 0
    by_state: dict[str, int] = field(default_factory=dict)
    state_s: dict[str, Fraction] = field(default_factory=dict)
    anomalies: list[MeterAnomaly] = field(default_factory=list)
    standby_milli: int = 0
    saving_milli: int = 0
    """Estimated avoidable energy: standby spells cut to ``switch_off_after``."""

    def energy(self) -> Any:
        return UNITS.Quantity(self.milli / MILLI, self.unit)

    def to_json(self) -> dict[str, Any]:
        return {
            "machine": self.machine,
            "carrier": self.carrier,
            "unit": self.unit,
            "facility": self.facility,
            "energy": self.milli / MILLI,
            "by_state": {state: milli / MILLI for state, milli in sorted(self.by_state.items())},
            "standby": self.standby_milli / MILLI,
            "standby_saving_estimate": self.saving_milli / MILLI,
            "anomalies": [a.describe(self.machine, self.unit) for a in self.anomalies],
        }


@dataclass(slots=True)
class EnergyAccount:
    """Energy of a period: per meter, and per (source meter, recipient order and step)."""

    start: dt.datetime
    end: dt.datetime
    rule: AllocationRule
    meters: list[MachineEnergy]
    flows: dict[Source, dict[Recipient, int]]
    """Milli-units from each meter to each (order, step); step None = shared energy."""
    output_units: dict[str, int]
    """Finished good units of each order in the period (counted at its last routing step)."""
    input_units: dict[str, int]
    """Units whose material was used up: finished good units plus units scrapped at any step
    (work in progress is left out, so that material and output units match)."""
    keys: dict[str, Fraction]
    """Each order's allocation key for shared energy (units, kg or running seconds)."""

    def metered(self, carrier: str | None = None) -> int:
        return sum(m.milli for m in self.meters if carrier in (None, m.carrier))

    def allocated(self, carrier: str | None = None) -> int:
        return sum(
            milli
            for (_, c, _), parts in self.flows.items()
            if carrier in (None, c)
            for milli in parts.values()
        )

    def check(self) -> None:
        """Allocated energy adds up exactly to metered energy, meter by meter."""
        for m in self.meters:
            got = sum(self.flows.get((m.machine, m.carrier, m.site), {}).values())
            if got != m.milli:  # pragma: no cover - a bug, not an input error
                raise AssertionError(
                    f"{m.machine} {m.carrier}: allocated {got} ≠ metered {m.milli}"
                )

    def anomalies(self) -> list[str]:
        return [a.describe(m.machine, m.unit) for m in self.meters for a in m.anomalies]

    def for_orders(self, orders: Iterable[str]) -> dict[Source, dict[Recipient, int]]:
        """The flows that reach ``orders`` only."""
        wanted = set(orders)
        return {
            source: {r: milli for r, milli in parts.items() if r[0] in wanted}
            for source, parts in self.flows.items()
        }


# ---------------------------------------------------------------------------- the accounting


def account_energy(inputs: EnergyInputs) -> EnergyAccount:
    """Meter readings, states and counts of a period → energy per meter, state and order."""
    start, end = inputs.start, inputs.end
    counts_by_machine: dict[str, list[UnitCount]] = defaultdict(list)
    for count in inputs.counts:
        if start <= count.ts < end:
            counts_by_machine[count.machine].append(count)
    machine_units = {m: _units_by_recipient(rows) for m, rows in counts_by_machine.items()}

    meters: list[MachineEnergy] = []
    flows: dict[Source, dict[Recipient, int]] = {}
    shared: dict[Source, int] = {}
    meter_units: dict[Source, str] = {}
    for series in inputs.meters:
        energy = MachineEnergy(
            series.machine, series.carrier, series.unit, series.site, series.facility
        )
        meters.append(energy)
        intervals, energy.anomalies = meter_intervals(series.readings, series.rollover_at)
        spans = inputs.spans.get(series.machine, ())
        near = _overlapping(spans)
        counted = _counted_between(counts_by_machine.get(series.machine, []))
        direct: dict[Recipient, int] = defaultdict(int)
        remainder = 0
        for interval in intervals:
            inside = _inside(interval.start, interval.end, interval.milli, start, end)
            if inside == 0 and interval.milli != 0:
                continue
            c0, c1 = max(interval.start, start), min(interval.end, end)
            if c1 < c0:
                continue
            energy.milli += inside
            for state, milli in _by_state(inside, c0, c1, near(c0, c1)).items():
                energy.by_state[state] = energy.by_state.get(state, 0) + milli
            if series.facility:
                continue
            units = _units_by_recipient(counted(c0, c1))
            if units and inside:
                for recipient, milli in apportion(inside, units).items():
                    direct[recipient] += milli
            else:
                remainder += inside
        whole = machine_units.get(series.machine, {})
        if remainder and whole:
            for recipient, milli in apportion(remainder, whole).items():
                direct[recipient] += milli
            remainder = 0
        source = (series.machine, series.carrier, series.site)
        meter_units[source] = series.unit
        flows[source] = {r: m for r, m in direct.items() if m}
        if series.facility:
            shared[source] = energy.milli
        elif remainder:
            shared[source] = remainder
        _standby(energy, spans, inputs)

    output_units, input_units = _order_units(inputs.counts, inputs.orders, start, end)
    if inputs.output_units is not None:
        output_units = {o: max(0, u) for o, u in inputs.output_units.items()}
    if inputs.input_units is not None:
        input_units = {o: max(0, u) for o, u in inputs.input_units.items()}
    keys = _keys(inputs, output_units, machine_units)
    for source, milli in shared.items():
        if milli == 0:
            continue
        if not any(keys.values()):
            raise InputError(
                f"no production between {start.isoformat()} and {end.isoformat()}: "
                f"{milli / MILLI:g} {meter_units[source]} of shared {source[1]} has no order to go to "
                f"(allocation by {inputs.rule}); choose a period in which orders finished units"
            )
        parts = flows.setdefault(source, {})
        for order, part in apportion(milli, keys).items():
            if part:
                key = (order, SHARED_STEP)
                parts[key] = parts.get(key, 0) + part
    account = EnergyAccount(start, end, inputs.rule, meters, flows, output_units, input_units, keys)
    account.check()
    return account


def _inside(
    t0: dt.datetime, t1: dt.datetime, milli: int, start: dt.datetime, end: dt.datetime
) -> int:
    """The part of an interval's energy inside ``[start, end)``, split by time."""
    if t0 >= start and t1 <= end:
        return milli if t1 > t0 or start <= t0 < end else 0
    total = overlap_s(t0, t1, t0, t1)
    inside = overlap_s(t0, t1, start, end)
    if total == 0 or inside == 0:
        return 0
    return apportion(milli, {"in": inside, "out": total - inside})["in"]


def _overlapping(
    spans: Sequence[StateSpan],
) -> Callable[[dt.datetime, dt.datetime], Sequence[StateSpan]]:
    """The spans that may overlap ``[c0, c1)``, in their order: a bisected slice when the spans
    are in time order (they are, per machine), all of them otherwise. The same spans with a share,
    in the same order, as a scan of all of them — only faster on long periods."""
    starts = [s.start for s in spans]
    ends = [s.end for s in spans]
    if starts != sorted(starts) or ends != sorted(ends):
        return lambda c0, c1: spans

    def pick(c0: dt.datetime, c1: dt.datetime) -> Sequence[StateSpan]:
        return spans[bisect.bisect_right(ends, c0) : bisect.bisect_left(starts, c1)]

    return pick


def _counted_between(
    rows: list[UnitCount],
) -> Callable[[dt.datetime, dt.datetime], Iterable[UnitCount]]:
    """The counts with ``c0 <= ts < c1``, in their order (bisected when in time order)."""
    times = [c.ts for c in rows]
    if times != sorted(times):
        return lambda c0, c1: [c for c in rows if c0 <= c.ts < c1]
    return lambda c0, c1: rows[bisect.bisect_left(times, c0) : bisect.bisect_left(times, c1)]


def _by_state(
    milli: int, c0: dt.datetime, c1: dt.datetime, spans: Sequence[StateSpan]
) -> dict[str, int]:
    seconds: dict[str, Fraction] = defaultdict(Fraction)
    for span in spans:
        share = overlap_s(span.start, span.end, c0, c1)
        if share:
            seconds[span.state] += share
    covered = sum(seconds.values(), Fraction(0))
    rest = overlap_s(c0, c1, c0, c1) - covered
    if rest > 0:
        seconds[UNKNOWN] += rest
    if not seconds:
        seconds[UNKNOWN] = Fraction(1)
    if len(seconds) == 1:  # one state over the whole interval: all of it (as apportion gives)
        return {next(iter(seconds)): milli}
    return apportion(milli, dict(seconds))


def _units_by_recipient(rows: Iterable[UnitCount]) -> dict[Recipient, int]:
    units: dict[Recipient, int] = defaultdict(int)
    for row in rows:
        if row.order is not None:
            units[(row.order, row.operation)] += row.good + row.scrap
    return {r: u for r, u in units.items() if u > 0}


def _order_units(
    counts: Sequence[UnitCount],
    orders: Mapping[str, OrderInfo],
    start: dt.datetime,
    end: dt.datetime,
) -> tuple[dict[str, int], dict[str, int]]:
    output: dict[str, int] = defaultdict(int)
    entered: dict[str, int] = defaultdict(int)
    for c in counts:
        info = orders.get(c.order or "")
        if info is None or not start <= c.ts < end:
            continue
        if c.operation == info.last_step:
            output[info.order] += c.good
        entered[info.order] += c.scrap
        if c.operation == info.last_step:
            entered[info.order] += c.good
    return (
        {o: max(0, u) for o, u in output.items()},
        {o: max(0, u) for o, u in entered.items()},
    )


def _keys(
    inputs: EnergyInputs,
    output_units: Mapping[str, int],
    machine_units: Mapping[str, Mapping[Recipient, int]],
) -> dict[str, Fraction]:
    orders = sorted(inputs.orders)
    if inputs.rule == "units":
        return {o: Fraction(output_units.get(o, 0)) for o in orders}
    if inputs.rule == "mass":
        return {
            o: output_units.get(o, 0)
            * Fraction(inputs.orders[o].unit_mass_kg).limit_denominator(10**9)
            for o in orders
        }
    keys: dict[str, Fraction] = dict.fromkeys(orders, Fraction(0))
    for machine, units in machine_units.items():
        running = sum(
            (s.end - s.start for s in inputs.spans.get(machine, ()) if s.state == RUNNING),
            dt.timedelta(0),
        )
        run_s = Fraction(running.days * 86_400 + running.seconds) + Fraction(
            running.microseconds, 1_000_000
        )
        total = sum(units.values())
        by_order: dict[str, int] = defaultdict(int)
        for (order, _), u in units.items():
            by_order[order] += u
        for order, u in by_order.items():
            if order in keys and total:
                keys[order] += run_s * u / total
    return keys


def _standby(energy: MachineEnergy, spans: Sequence[StateSpan], inputs: EnergyInputs) -> None:
    """Standby energy, and the part a switch-off after ``switch_off_after_s`` would have saved."""
    standby = set(inputs.standby_states)
    energy.standby_milli = sum(m for s, m in energy.by_state.items() if s in standby)
    spells: list[Fraction] = []
    current = Fraction(0)
    standby_s = Fraction(0)
    for span in spans:
        seconds = overlap_s(span.start, span.end, inputs.start, inputs.end)
        if span.state in standby:
            current += seconds
            standby_s += seconds
        elif current:
            spells.append(current)
            current = Fraction(0)
    if current:
        spells.append(current)
    cut = Fraction(inputs.switch_off_after_s).limit_denominator(1000)
    avoidable = sum((max(Fraction(0), s - cut) for s in spells), Fraction(0))
    if standby_s and energy.standby_milli:
        energy.saving_milli = int(energy.standby_milli * avoidable / standby_s)
