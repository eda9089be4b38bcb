"""The demand model of a simulated plant: how many orders arrive, sized to the line's capacity.

A scenario that gives ``orders.target_load`` gets its orders from here instead of a fixed
inter-arrival time. The model reads the factory: for every group of machines that can do a
routing step (one machine, or parallel ones like two moulders) it works out the expected work an
order brings to that group (product mix × mean quantity × mean option time factor × the group's
time per unit, parallel machines sharing it by speed, plus the expected mould or product change),
and calls the group with the most work per order the *bottleneck*. Orders then arrive in working
time (a Poisson stream counted in the line calendar's working seconds: customers ring while the
office works) at the rate that fills ``target_load`` of the bottleneck's available time::

    rate (orders per working hour) = target_load / bottleneck work per order (hours)

So the offered load does not depend on how long a shift is or how many days a week the line
works: the calendar decides when orders come, the bottleneck decides how many.

Due dates are quoted as a planner would: the bottleneck's backlog (work released and not yet
through it) plus the order's own processing time along its routing, stretched by the line's
expected efficiency (breakdowns and slower cycles), plus a slack drawn from
``orders.due_slack_h`` working hours, rounded up to the end of that working window (delivery at
the end of a shift). An order is never promised sooner than the line could make it undisturbed.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from microfab.model.factory import Factory, Product
from microfab.sim.scenario import Behaviour, OrderArrivals

TARGET_BAND = (0.75, 0.90)
"""The offered load a believable demo plant runs at: busy, with room to catch up."""


@dataclass(frozen=True)
class MachineGroup:
    """Machines that can do one routing step (one machine, or parallel ones)."""

    machines: frozenset[str]
    work_s: float
    """Expected seconds of this group's time one order brings (parallel machines share it),
    setup included."""
    setup_s: float = 0.0
    """The expected setup part of ``work_s``."""


def option_factor(product: Product) -> float:
    """Mean time factor of a product's options, each choice equally likely."""
    factor = 1.0
    for option in product.options:
        factor *= sum(c.time_factor for c in option.choices) / len(option.choices)
    return factor


def unit_time(machines: dict[str, float]) -> float:
    """Seconds per unit of a step that parallel machines share in proportion to their speed."""
    return 1.0 / sum(1.0 / seconds for seconds in machines.values())


@dataclass(frozen=True)
class DemandModel:
    """Order arrivals sized to a factory's bottleneck (see the module docstring)."""

    groups: tuple[MachineGroup, ...]
    bottleneck: MachineGroup
    target_load: float
    rate_per_working_h: float
    """Orders per working hour of the line calendar."""
    mean_quantity: float

    @property
    def offered_load(self) -> float:
        """Expected share of the bottleneck's working time the arriving orders need."""
        return self.rate_per_working_h * self.bottleneck.work_s / 3600.0

    @property
    def mean_interarrival_working_min(self) -> float:
        return 60.0 / self.rate_per_working_h

    @property
    def processing_load(self) -> float:
        """The part of :attr:`offered_load` that is processing (setups left out)."""
        return self.rate_per_working_h * (self.bottleneck.work_s - self.bottleneck.setup_s) / 3600

    def load_of(self, group: MachineGroup) -> float:
        return self.rate_per_working_h * group.work_s / 3600.0


def demand_model(factory: Factory, behaviour: Behaviour) -> DemandModel | None:
    """The demand model of a scenario; None when it gives a fixed inter-arrival time instead."""
    arrivals = behaviour.orders
    if arrivals.target_load is None:
        return None
    groups = machine_groups(factory, arrivals)
    bottleneck = max(groups, key=lambda g: (g.work_s, sorted(g.machines)))
    rate = arrivals.target_load * 3600.0 / bottleneck.work_s
    low, high = arrivals.quantity
    return DemandModel(
        tuple(groups), bottleneck, arrivals.target_load, rate, mean_quantity=(low + high) / 2
    )


def machine_groups(factory: Factory, arrivals: OrderArrivals) -> list[MachineGroup]:
    """Every machine group of the ordered products' routings with its expected work per order."""
    total = sum(arrivals.products.values())
    low, high = arrivals.quantity
    mean_quantity = (low + high) / 2
    work: dict[frozenset[str], float] = {}
    families: dict[frozenset[str], dict[str, float]] = {}
    for sku, weight in arrivals.products.items():
        product = factory.product(sku)
        share = weight / total
        factor = option_factor(product)
        for op in product.routing:
            key = frozenset(op.machines)
            work[key] = work.get(key, 0.0) + share * mean_quantity * factor * unit_time(op.machines)
            if op.setup_family is not None:
                mix = families.setdefault(key, {})
                mix[op.setup_family] = mix.get(op.setup_family, 0.0) + share
    groups = []
    for key, seconds in work.items():
        setup = _expected_setup(factory, key, families.get(key, {}))
        groups.append(MachineGroup(key, seconds + setup / len(key), setup / len(key)))
    return groups


def _expected_setup(factory: Factory, machines: frozenset[str], mix: dict[str, float]) -> float:
    """Expected change time per order on one machine of the group: the next order's family
    differs from the mounted one with the mix's odds (an upper bound; batching by family helps)."""
    if not mix:
        return 0.0
    by_id = {ref.machine.id: ref.machine for ref in factory.machines()}
    per_machine = []
    for machine_id in sorted(machines):
        machine = by_id[machine_id]
        expected = sum(
            mix[a] * mix[b] * factory.setup_seconds(machine, a, b)
            for a, b in itertools.product(mix, mix)
            if a != b
        )
        per_machine.append(expected)
    return sum(per_machine) / len(per_machine)


def processing_seconds(product: Product, quantity: int, time_factor: float) -> float:
    """Seconds an order takes through its whole routing, one step after another, on the fastest
    machine of each step and with no disturbance: no line can make it sooner."""
    return sum(quantity * time_factor * min(op.machines.values()) for op in product.routing)


def inflate(seconds: float, efficiency: float) -> float:
    """Working seconds a job of ``seconds`` takes at the line's expected ``efficiency``."""
    return seconds / efficiency if efficiency > 0 else math.inf
