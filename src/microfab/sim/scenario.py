"""Simulator scenarios: a factory file plus a behaviour file describing how each machine behaves.

A scenario is a folder with ``factory.yaml`` (an ordinary factory file) and ``behaviour.yaml``
(cycle-time spread, scrap rate, MTBF/MTTR, micro-stops, power draw per state, telemetry, order
arrivals, and optionally labelled faults to inject). The shipped ones live in ``microfab/sim/scenarios/``; ``--scenario`` also takes a path
to a folder of your own.
"""

from __future__ import annotations

import enum
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from microfab.errors import FactoryFileError, UnknownScenarioError
from microfab.model.events import SafetyKind, SafetySeverity
from microfab.model.factory import Factory
from microfab.model.factory_file import load_factory
from microfab.model.located_yaml import Loc, load_located_file

SCENARIO_DIR = Path(__file__).with_name("scenarios")


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class MachineBehaviour(_Strict):
    """Stochastic behaviour of one machine."""

    batch: int = Field(
        default=1, ge=1, description="Units per cycle (cavities, chiller load, AGV trip)"
    )
    cycle_cv: float = Field(
        default=0.05, ge=0, le=1, description="Coefficient of variation of cycle time"
    )
    scrap_rate: float = Field(default=0.0, ge=0, le=1)
    mtbf_h: float = Field(default=24.0, gt=0, description="Mean running hours between failures")
    mttr_min: float = Field(default=15.0, gt=0, description="Mean minutes to repair")
    failure_reasons: list[str] = Field(default_factory=lambda: ["UB"])
    micro_stops_per_h: float = Field(default=0.0, ge=0)
    micro_stop_s: float = Field(default=0.0, ge=0)
    power_kw: dict[str, float] = Field(default_factory=dict)
    telemetry: dict[str, tuple[float, float]] = Field(default_factory=dict)
    utility: bool = Field(default=False, description="Runs whenever the line works; makes no parts")
    buffer: int | None = Field(
        default=None,
        ge=1,
        description="Order steps that may wait in front of this machine from the step before it "
        "(racks, trolleys, a parts bin); when every machine of the next step has a full buffer, "
        "the machine that finished its step holds it, idle and BLOCKED. None: no limit",
    )

    def power(self, state: str) -> float:
        if state == "offline":
            return 0.0
        if state == "micro_stop":
            return self.power_kw.get("micro_stop", self.power_kw.get("running", 0.0))
        return self.power_kw.get(state, self.power_kw.get("idle", 0.0))


class FacilityMeter(_Strict):
    """A panel meter for shared loads: a base draw plus extra while the line works."""

    base_kw: float = Field(ge=0)
    shift_kw: float = Field(default=0.0, ge=0)


class OrderArrivals(_Strict):
    """Where the orders come from: a demand model sized to the line (``target_load``, see
    :mod:`microfab.sim.demand`) or, in older scenario folders, a fixed inter-arrival time."""

    initial: int = Field(default=2, ge=0, description="Orders waiting when the run starts")
    target_load: float | None = Field(
        default=None,
        gt=0,
        lt=1,
        description="Share of the bottleneck's working time the orders fill (demand model)",
    )
    due_slack_h: tuple[float, float] = Field(
        default=(4.0, 24.0),
        description="With target_load: working hours of slack on top of the quoted lead time",
    )
    efficiency: float = Field(
        default=0.8,
        gt=0,
        le=1,
        description="With target_load: share of working time the line is expected to produce "
        "(due dates stretch the lead time by it)",
    )
    mean_interarrival_min: float | None = Field(
        default=None, gt=0, description="Without target_load: mean minutes between orders"
    )
    quantity: tuple[int, int]
    due_after_h: tuple[float, float] = Field(
        default=(8.0, 48.0), description="Without target_load: hours from release to due"
    )
    products: dict[str, float] = Field(min_length=1, description="SKU -> relative weight")
    material_wait: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="Chance that an order's materials are not at the line when its first step "
        "could start (the machine idles 'waiting_material')",
    )
    material_wait_min: float = Field(default=20.0, gt=0, description="Mean minutes of that wait")

    @model_validator(mode="after")
    def _one_source(self) -> OrderArrivals:
        if (self.target_load is None) == (self.mean_interarrival_min is None):
            raise ValueError("give either target_load (demand model) or mean_interarrival_min")
        return self


class FaultKind(enum.StrEnum):
    """A degradation the simulator can inject (see docs/simulator.md and docs/quality.md)."""

    BEARING_WEAR = "bearing_wear"
    HEATER_DRIFT = "heater_drift"
    NOZZLE_CLOG = "nozzle_clog"
    SENSOR_FREEZE = "sensor_freeze"


FAULT_DEFAULTS: dict[FaultKind, tuple[str, float, float, float]] = {
    FaultKind.BEARING_WEAR: ("vib", 6.0, 2.0, 2.0),
    FaultKind.HEATER_DRIFT: ("temp", 5.0, 1.0, 1.0),
    FaultKind.NOZZLE_CLOG: ("cycle", 6.0, 1.0, 1.5),
    FaultKind.SENSOR_FREEZE: ("temp", 0.0, 1.0, 1.0),
}
"""Per kind: the metric it affects by default (first telemetry metric whose name contains this),
the mean shift at failure in standard deviations of the metric, the spread factor at failure,
and the shape of the ramp (progress ** shape; progress is the share of the fault's life used up:
0 at onset, 1 at failure)."""


class FaultSpec(_Strict):
    """A labelled degradation of one machine. It starts at ``onset_h`` (or when the repair of the
    machine's previous fault is over, if that is later), wears on while the machine runs, and ends
    in a breakdown after ``life_h`` hours of running; the repair clears it."""

    machine: str
    kind: FaultKind
    onset_h: float = Field(ge=0, description="Hours after the start of the run")
    life_h: float = Field(gt=0, description="Running hours from onset to the breakdown")
    metric: str | None = Field(default=None, description="Telemetry metric it shows in")
    shift_sd: float | None = Field(default=None, ge=0, description="Mean shift at failure, in sd")
    spread: float | None = Field(default=None, ge=1, description="Noise factor at failure")
    shape: float | None = Field(default=None, gt=0, description="Ramp exponent")
    reason: str | None = Field(default=None, description="Reason code of the breakdown")
    repair_min: float = Field(default=120.0, gt=0, description="Mean minutes to repair")


class SafetySpec(_Strict):
    """A safety event to inject: at ``at_h`` hours after the start (at the machine's next cycle
    in working time, or at once for a machine that does not produce), ``kind`` with
    ``severity``; an e-stop holds the machine in ``unplanned_stop`` (reason ``SAFETY``) for
    ``stop_min`` minutes, then is released."""

    machine: str
    kind: SafetyKind
    at_h: float = Field(ge=0, description="Hours after the start of the run")
    severity: SafetySeverity = SafetySeverity.CRITICAL
    zone: str | None = Field(default=None, min_length=1, max_length=64)
    stop_min: float = Field(default=10.0, gt=0, le=24 * 60, description="E-stop: minutes held")


class OpeningStock(_Strict):
    """Stock on hand when the run starts (one lot per line)."""

    item: str
    qty: float = Field(gt=0, description="Stock units")
    location: str


class Delivery(_Strict):
    """A standing supplier delivery: ``qty`` of ``item`` received at ``to`` at ``at`` (site
    time) on the given weekdays, as a new lot."""

    item: str
    qty: float = Field(gt=0, description="Stock units")
    to: str
    at: str = Field(default="07:00", pattern=r"^\d{2}:\d{2}$")
    days: list[str] = Field(default_factory=lambda: ["mon", "tue", "wed", "thu", "fri", "sat"])
    supplier: str | None = None


class LateDelivery(_Strict):
    """One delivery of ``item`` on day ``day`` of the run (1 = the first) arrives ``hours`` late."""

    item: str
    day: int = Field(ge=1)
    hours: float = Field(gt=0)


class StockBehaviour(_Strict):
    """Opt-in materials (docs/simulator.md): the first routing step issues its BOM from the
    line's line-side location and waits (idle ``WAITING_MATERIAL``) while it is short; the
    line-side kanban rules call transfer tasks that ``agv`` carries (``travel_min`` each way);
    suppliers deliver on a schedule, and ``late`` deliveries make the line run short."""

    agv: str = Field(description="Machine id of the AGV that carries the transfer tasks")
    travel_min: float = Field(default=4.0, gt=0, description="Minutes one way, per trip")
    opening: list[OpeningStock] = Field(default_factory=list)
    deliveries: list[Delivery] = Field(default_factory=list)
    late: list[LateDelivery] = Field(default_factory=list)


class Behaviour(_Strict):
    description: str = ""
    meter_every_s: float = Field(default=60.0, gt=0)
    telemetry_every_s: float = Field(default=60.0, gt=0)
    orders: OrderArrivals
    facility: dict[str, FacilityMeter] = Field(default_factory=dict)
    machines: dict[str, MachineBehaviour] = Field(default_factory=dict)
    faults: list[FaultSpec] = Field(default_factory=list)
    safety: list[SafetySpec] = Field(default_factory=list)
    stock: StockBehaviour | None = Field(
        default=None, description="Materials: stock, deliveries and the AGV (opt-in)"
    )


@dataclass(frozen=True)
class Scenario:
    """A factory and how it behaves, ready to simulate."""

    name: str
    factory: Factory
    behaviour: Behaviour
    factory_source: str
    folder: Path | None = None
    """Where it was read from; the demo looks there for ``alerts.yaml`` (alert rules)."""

    @property
    def description(self) -> str:
        return self.behaviour.description


def scenario_names() -> list[str]:
    return sorted(p.name for p in SCENARIO_DIR.iterdir() if (p / "factory.yaml").is_file())


def load_scenario(name_or_path: str) -> Scenario:
    """Load a shipped scenario by name, or a scenario folder by path."""
    folder = SCENARIO_DIR / name_or_path
    if not (folder / "factory.yaml").is_file():
        folder = Path(name_or_path)
    if not (folder / "factory.yaml").is_file():
        raise UnknownScenarioError(
            f"unknown scenario '{name_or_path}'; choose one of: {', '.join(scenario_names())} "
            "(or give a folder holding factory.yaml and behaviour.yaml)"
        )
    factory_path = folder / "factory.yaml"
    factory = load_factory(factory_path)
    behaviour_path = folder / "behaviour.yaml"
    behaviour = load_located_file(
        behaviour_path,
        Behaviour,
        what="scenario behaviour",
        expected="'orders' and the machines' behaviour",
        error=FactoryFileError,
        check=lambda b: _reference_faults(factory, b),
    )
    return Scenario(folder.name, factory, behaviour, str(factory_path), folder)


def _reference_faults(factory: Factory, behaviour: Behaviour) -> list[tuple[Loc, str]]:
    """Machines, products and reason codes of the behaviour that the factory does not have."""
    ids = {ref.machine.id: ref.machine for ref in factory.machines()}
    faults: list[tuple[Loc, str]] = []
    for part in ("machines", "facility"):
        for machine_id in getattr(behaviour, part):
            if machine_id not in ids:
                faults.append(((part, machine_id), "not a machine of the factory"))
    for sku in behaviour.orders.products:
        if sku not in {p.sku for p in factory.products}:
            faults.append((("orders", "products", sku), "not a product SKU of the factory"))
    codes = set(factory.downtime_reasons.codes())
    for machine_id, mb in behaviour.machines.items():
        for code in mb.failure_reasons:
            if codes and code not in codes:
                faults.append(
                    (
                        ("machines", machine_id, "failure_reasons"),
                        f"'{code}' is not a reason code",
                    )
                )
    for i, fault in enumerate(behaviour.faults):
        telemetry = behaviour.machines.get(fault.machine, MachineBehaviour()).telemetry
        if fault.machine not in ids:
            faults.append(((("faults", i, "machine")), f"'{fault.machine}' is not a machine"))
        elif fault_metric(fault, telemetry) is None:
            faults.append(
                (
                    ("faults", i, "metric"),
                    f"{fault.machine} reports no telemetry metric for a {fault.kind.value} "
                    f"fault; name one of: {', '.join(telemetry) or 'none'}",
                )
            )
        if fault.reason is not None and codes and fault.reason not in codes:
            faults.append((("faults", i, "reason"), f"'{fault.reason}' is not a reason code"))
    for i, trip in enumerate(behaviour.safety):
        if trip.machine not in ids:
            faults.append((("safety", i, "machine"), f"'{trip.machine}' is not a machine"))
    if behaviour.stock is not None:
        faults += _reference_stock(factory, behaviour.stock, ids)
    return faults


def _reference_stock(
    factory: Factory, stock: StockBehaviour, machine_ids: Collection[str]
) -> list[tuple[Loc, str]]:
    """Items, locations and the AGV of the stock section that the factory does not have."""
    faults: list[tuple[Loc, str]] = []
    skus = {item.sku for item in factory.items}
    places = factory.stock_locations()
    if stock.agv not in machine_ids:
        faults.append((("stock", "agv"), f"'{stock.agv}' is not a machine"))
    lines = {loc.line for loc in places.values() if loc.line is not None}
    for ref in factory.machines():
        if ref.machine.produces and ref.line.id not in lines:
            faults.append((("stock",), f"line {ref.line.id} has no line-side location"))
            break
    for part in ("opening", "deliveries", "late"):
        for i, entry in enumerate(getattr(stock, part)):
            if entry.item not in skus:
                faults.append((("stock", part, i, "item"), f"'{entry.item}' is not an item"))
            place = getattr(entry, "location", None) or getattr(entry, "to", None)
            if place is not None and place not in places:
                faults.append((("stock", part, i), f"'{place}' is not a location"))
    return faults


def fault_metric(fault: FaultSpec, telemetry: dict[str, tuple[float, float]]) -> str | None:
    """The telemetry metric a fault shows in: the one named, or the first that fits its kind."""
    if fault.metric is not None:
        return fault.metric if fault.metric in telemetry else None
    hint = FAULT_DEFAULTS[fault.kind][0]
    return next((name for name in telemetry if hint in name), None)
