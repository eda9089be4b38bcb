"""The SimPy model of a micro-factory: machines, custom orders, shifts, failures and meters.

Time in the model is seconds since ``start``. Each producing machine takes work-order operations
from its queue (same setup family first, then earliest due), sets up when the family changes,
runs cycles with a lognormal spread, scraps at its rate, stops for micro-stops and failures
(exponential time between failures counted in running time, lognormal repair), and parks in
``planned_stop`` outside its line's working time. Metered machines report cumulative kWh, every
machine reports telemetry, and every report is an event handed to the publisher.

Faults listed in the behaviour file (bearing wear, heater drift, nozzle clogging, sensor freeze)
change one telemetry metric from their onset (a ramp of the mean and spread, or a frozen reading;
a clogged nozzle also slows the cycles), wear on while the machine works (at half the rate while
it waits for work in working time) and end in a breakdown when their life (hours) is used up; the
repair clears them. ``fault_log`` records each
one with its onset and actual failure time: the ground truth for measuring anomaly detection. A
run with no faults is the same as before.

Runs are reproducible: each machine draws from its own random stream seeded by scenario, seed and
machine id, and event ids are ``{scenario}-{start}-s{seed}-{sequence}``.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
import random
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from typing import Any

import simpy

from microfab.connect.publisher import Publisher
from microfab.model.calendar import Window, working_windows
from microfab.model.events import (
    SAFETY_REASON,
    EnergyReading,
    Event,
    MachineState,
    MaterialConsumption,
    OrderEvent,
    OrderEventKind,
    PartCount,
    SafetyEvent,
    SafetyKind,
    SafetySeverity,
    StateChange,
    TelemetrySample,
    safety_stop,
)
from microfab.model.factory import Calendar, Factory, MachineKind, MachineRef, Operation, Product
from microfab.sim.demand import demand_model, inflate, processing_seconds, unit_time
from microfab.sim.scenario import (
    FAULT_DEFAULTS,
    FaultKind,
    FaultSpec,
    MachineBehaviour,
    SafetySpec,
    Scenario,
    fault_metric,
)
from microfab.sim.stockroom import Stockroom

HK = dt.timezone(dt.timedelta(hours=8))
DEFAULT_START = dt.datetime(2026, 11, 23, 8, 0, tzinfo=HK)
"""Monday 23 November 2026, 08:00 Hong Kong time: the default start, so runs are reproducible."""

_CALENDAR_HORIZON = dt.timedelta(days=14)

NO_ORDER = "NO_ORDER"
STARVED = "STARVED"
BLOCKED = "BLOCKED"
WAITING_MATERIAL = "WAITING_MATERIAL"
CHANGEOVER = "CHANGEOVER"
IDLE_REASONS = (NO_ORDER, STARVED, BLOCKED, WAITING_MATERIAL, CHANGEOVER)
"""Reason codes the simulator gives time without production (docs/oee.md): ``NO_ORDER`` is
planned no-work time (state ``planned_stop``), ``STARVED``, ``BLOCKED`` and ``WAITING_MATERIAL``
are idle losses (state ``idle``), ``CHANGEOVER`` is a mould or product change (state ``setup``).
``BLOCKED`` is time a machine holds a finished step because every machine of the next step has
a full buffer (``buffer`` in behaviour.yaml: order steps that may wait in front of it)."""

HOLDING_STATES = ("unplanned_stop", "micro_stop")
WAITING_REASONS = (STARVED, BLOCKED, WAITING_MATERIAL)

SAME_FAMILY_WINDOW_S = 4 * 3600.0
"""How much later a job of the mounted setup family may be due and still go first."""

SimProcess = Generator[simpy.Event, Any, None]


class WorkTime:
    """Working windows of one calendar, in simulation seconds, extended as time goes on."""

    def __init__(self, factory: Factory, ref: MachineRef, start: dt.datetime) -> None:
        self.calendar: Calendar = factory.calendar(ref.line.calendar)
        self.zone = ref.site.zone
        self.holidays = ref.site.holidays
        self.start = start
        self.until = start
        self.starts: list[float] = []
        self.ends: list[float] = []
        self.windows: list[Window] = []
        self._extend()

    def _extend(self) -> None:
        new_until = self.until + _CALENDAR_HORIZON
        for w in working_windows(self.calendar, self.until, new_until, self.zone, self.holidays):
            self.starts.append((w.start - self.start).total_seconds())
            self.ends.append((w.end - self.start).total_seconds())
            self.windows.append(w)
        self.until = new_until

    def _ensure(self, t: float) -> None:
        while (self.until - self.start).total_seconds() < t + 86400:
            self._extend()

    def window_at(self, t: float) -> int | None:
        """Index of the working window containing ``t``, if any."""
        self._ensure(t)
        i = bisect.bisect_right(self.starts, t) - 1
        if i >= 0 and t < self.ends[i]:
            return i
        return None

    def next_start(self, t: float) -> float:
        self._ensure(t)
        i = bisect.bisect_right(self.starts, t)
        while i >= len(self.starts):
            self._extend()
        return self.starts[i]

    def add_working(self, t: float, seconds: float) -> float:
        """The instant ``seconds`` of working time after ``t`` (time outside windows skipped)."""
        while True:
            i = self.window_at(t)
            if i is None:
                t = self.next_start(t)
                continue
            room = self.ends[i] - t
            if seconds <= room:
                return t + seconds
            seconds -= room
            t = self.ends[i]

    def window_end(self, t: float) -> float:
        """The end of the working window holding ``t``; ``t`` itself outside working time."""
        i = self.window_at(t)
        return t if i is None else self.ends[i]

    def stop_reason(self, t: float) -> str:
        """Reason code for not working at ``t``: closure, break (between windows of one shift) or no shift."""
        for closure in self.calendar.closures:
            instant = self.start + dt.timedelta(seconds=t)
            if closure.start <= instant < closure.end:
                return closure.reason
        i = bisect.bisect_right(self.starts, t) - 1
        if 0 <= i < len(self.windows) - 1:
            before, after = self.windows[i], self.windows[i + 1]
            if before.shift == after.shift and before.day == after.day:
                return "PB"
        return "PS"


@dataclass
class Job:
    """One operation of one work order, waiting for or running on a machine."""

    order: WorkOrder
    index: int
    quantity: int

    @property
    def operation(self) -> Operation:
        return self.order.product.routing[self.index]


@dataclass
class WorkOrder:
    id: str
    product: Product
    options: dict[str, str]
    quantity: int
    due_s: float
    time_factor: float
    bom: list[tuple[str, float, str]]
    step: int = 0
    """Index of the routing step the order is at (queued or running)."""
    at: str | None = None
    """Machine id holding the order's current step (in its queue or running it)."""


@dataclass
class ActiveFault:
    """A configured fault of one machine, in simulation seconds."""

    spec: FaultSpec
    metric: str
    onset_s: float
    life_s: float
    mean: float
    sd: float
    ran_s: float = 0.0
    """Running seconds since onset, up to the machine's last state change or meter reading."""
    frozen: float | None = None
    failed: bool = False

    def used(self, m: SimMachine, now: float) -> float:
        """Running seconds since onset until ``now``."""
        current = 0.0
        rate = wear_rate(m)
        if rate > 0:
            current = rate * max(0.0, now - max(m.state_since, self.onset_s))
        return self.ran_s + current

    def progress(self, m: SimMachine, now: float) -> float | None:
        """Share of the fault's life used up (0 at onset, 1 at failure); None when not active."""
        if self.failed or now < self.onset_s:
            return None
        return min(1.0, self.used(m, now) / self.life_s)


WEARING_STATES = ("running", "setup", "micro_stop")
"""States in which a fault's life is used up at full rate."""

WAITING_WEAR = 0.5
"""Rate at which a fault's life is used up while the machine waits for work in working time
(``idle``, or ``planned_stop`` with ``NO_ORDER``): it stays powered, a servo holds its load and a
heater band stays hot."""


def wear_rate(m: SimMachine) -> float:
    """How fast ``m`` uses up its faults' life now: 1 at work, :data:`WAITING_WEAR` while it
    waits for work in working time, 0 when stopped or outside working time."""
    if m.state in WEARING_STATES:
        return 1.0
    if m.state == MachineState.IDLE.value or (
        m.state == MachineState.PLANNED_STOP.value and m.reason == NO_ORDER
    ):
        return WAITING_WEAR
    return 0.0


@dataclass(frozen=True)
class FaultRecord:
    """Ground truth of one injected fault: when it began and when the machine broke down."""

    machine: str
    kind: str
    metric: str
    onset: dt.datetime
    failure: dt.datetime


@dataclass
class SimMachine:
    """Runtime state of one simulated machine."""

    ref: MachineRef
    behaviour: MachineBehaviour
    rng: random.Random
    worktime: WorkTime
    queue: list[Job] = field(default_factory=list)
    state: str | None = None
    reason: str | None = None
    state_since: float = 0.0
    kwh: float = 0.0
    family: str | None = None
    order: str | None = None
    ttf: float = 0.0
    wakeup: simpy.Event | None = None
    unblock: simpy.Event | None = None
    """Set while the machine holds a finished step for a full downstream buffer."""
    faults: list[ActiveFault] = field(default_factory=list)
    last_metrics: dict[str, float] = field(default_factory=dict)
    safety: list[SafetySpec] = field(default_factory=list)
    """Safety events still to inject, soonest first."""
    hold_until: float = 0.0
    """An e-stop holds the machine stopped until then (simulation seconds)."""

    @property
    def id(self) -> str:
        return self.ref.machine.id

    def buffered(self) -> int:
        """Order steps waiting in front of the machine that came from the step before."""
        return sum(1 for j in self.queue if j.index > 0)

    def has_room(self) -> bool:
        limit = self.behaviour.buffer
        return limit is None or self.buffered() < limit

    def queued_seconds(self) -> float:
        return sum(
            j.quantity * j.operation.machines[self.id] * j.order.time_factor for j in self.queue
        )


class FactorySimulation:
    """A running simulation of one scenario; advance it with :meth:`run_until`."""

    def __init__(
        self,
        scenario: Scenario,
        publisher: Publisher,
        *,
        seed: int = 1,
        start: dt.datetime = DEFAULT_START,
    ) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be an aware datetime")
        self.scenario = scenario
        self.factory = scenario.factory
        self.behaviour = scenario.behaviour
        self.publisher = publisher
        self.seed = seed
        self.start = start.astimezone(dt.UTC)
        self.env = simpy.Environment()
        self.sequence = 0
        self.published = 0  # events handed to the publisher so far
        self.id_prefix = f"{scenario.name}-{self.start:%Y%m%dT%H%M%SZ}-s{seed}-"
        self.orders_released = 0
        self.orders_completed = 0
        self.orders_late = 0
        self.breakdowns = 0
        """Breakdowns so far (failures and faults ending in one)."""
        """Completed orders whose last step finished after their due date."""
        self.open_orders: dict[str, WorkOrder] = {}
        self.demand = demand_model(self.factory, self.behaviour)
        self.machines: dict[str, SimMachine] = {}
        self.fault_log: list[FaultRecord] = []
        """Faults that ended in a breakdown so far, in order."""
        self._order_rng = self._rng("orders")
        self._lot_counter: dict[str, int] = {}
        for ref in self.factory.machines():
            mb = self.behaviour.machines.get(ref.machine.id, MachineBehaviour())
            m = SimMachine(
                ref, mb, self._rng(ref.machine.id), WorkTime(self.factory, ref, self.start)
            )
            m.kwh = round(m.rng.uniform(2_000, 60_000), 1)  # meters are not new
            m.ttf = m.rng.expovariate(1.0 / (mb.mtbf_h * 3600.0))
            self.machines[ref.machine.id] = m
        for spec in self.behaviour.faults:
            m = self.machines[spec.machine]
            metric = fault_metric(spec, m.behaviour.telemetry)
            assert metric is not None  # checked when the scenario was loaded
            mean, sd = m.behaviour.telemetry[metric]
            m.faults.append(
                ActiveFault(spec, metric, spec.onset_h * 3600, spec.life_h * 3600, mean, sd)
            )
        for trip in sorted(self.behaviour.safety, key=lambda t: t.at_h):
            self.machines[trip.machine].safety.append(trip)
        self.safety_log: list[SafetyEvent] = []
        """Safety events injected so far."""
        for m in self.machines.values():
            if m.safety:
                self.env.process(self._safety_at_once(m))
            if m.ref.machine.kind is MachineKind.ENERGY_METER:
                self.env.process(self._panel_meter(m))
            elif m.ref.machine.produces and not m.behaviour.utility:
                self.env.process(self._producer(m))
            else:
                self.env.process(self._utility(m))
            if m.ref.machine.has_meter:
                self.env.process(self._meter(m))
            if m.behaviour.telemetry:
                self.env.process(self._telemetry(m))
        self._bottleneck_refs = (
            [self.machines[mid] for mid in sorted(self.demand.bottleneck.machines)]
            if self.demand is not None
            else []
        )
        self.env.process(self._order_arrivals())
        self.stockroom: Stockroom | None = None
        """Materials, deliveries and the AGV's transfer tasks, when the scenario has ``stock``."""
        if self.behaviour.stock is not None:
            self.stockroom = Stockroom(self, self.behaviour.stock)

    # ------------------------------------------------------------------ public

    @property
    def now(self) -> dt.datetime:
        return self.start + dt.timedelta(seconds=self.env.now)

    def run_until(self, seconds: float) -> None:
        """Advance the simulation clock to ``seconds`` after start (events flushed by the caller)."""
        if seconds > self.env.now:
            self.env.run(until=seconds)

    def paced(
        self, until: float | None, speed: float | None, tick_s: float = 0.25
    ) -> Iterator[float]:
        """Advance in steps to ``until`` seconds (None: forever), flushing the publisher after each.

        ``speed`` is simulated seconds per real second (None: as fast as possible); each step
        covers ``speed * tick_s`` simulated seconds and is padded to ``tick_s`` of real time.
        Yields the simulation clock after every step, so callers can redraw or report progress.
        """
        step = 600.0 if speed is None else speed * tick_s
        while until is None or self.env.now < until:
            began = time.perf_counter()
            target = self.env.now + step
            self.run_until(target if until is None else min(target, until))
            self.publisher.flush()
            if speed is not None:
                time.sleep(max(0.0, tick_s - (time.perf_counter() - began)))
            yield self.env.now

    # ------------------------------------------------------------------ events

    def _rng(self, name: str) -> random.Random:
        return random.Random(f"{self.scenario.name}:{self.seed}:{name}")

    def _ts(self) -> dt.datetime:
        return self.start + dt.timedelta(milliseconds=round(self.env.now * 1000))

    def _next_id(self) -> str:
        self.sequence += 1
        return f"{self.id_prefix}{self.sequence:07d}"

    def _emit(self, event: Event) -> None:
        self.publisher.publish(event)
        self.published += 1

    def _set_state(self, m: SimMachine, state: MachineState, reason: str | None = None) -> None:
        if m.state == state.value and m.reason == reason:
            return
        self._accumulate(m)
        m.state, m.reason = state.value, reason
        self._emit(
            StateChange(
                id=self._next_id(), ts=self._ts(), machine=m.ref.path, state=state, reason=reason
            )
        )
        for other in self.machines.values():  # a stop upstream may starve an idle machine
            if other is not m and other.wakeup is not None and not other.wakeup.triggered:
                other.wakeup.succeed()

    def _accumulate(self, m: SimMachine) -> None:
        """Integrate the machine's power draw since its last state change into its meter."""
        now = self.env.now
        if m.state is not None:
            m.kwh += m.behaviour.power(m.state) * (now - m.state_since) / 3600.0
        for fault in m.faults:
            fault.ran_s = fault.used(m, now)
        m.state_since = now

    # ------------------------------------------------------------------ orders

    def _order_arrivals(self) -> SimProcess:
        arrivals = self.behaviour.orders
        for _ in range(arrivals.initial):
            self._release_order()
        if self.demand is None:
            assert arrivals.mean_interarrival_min is not None  # checked when loaded
            while True:
                yield self.env.timeout(
                    self._order_rng.expovariate(1.0 / (arrivals.mean_interarrival_min * 60))
                )
                self._release_order()
        clock = self._bottleneck_refs[0].worktime
        per_second = self.demand.rate_per_working_h / 3600.0
        while True:  # a Poisson stream in working time (see microfab.sim.demand)
            gap = self._order_rng.expovariate(per_second)
            yield self.env.timeout(clock.add_working(self.env.now, gap) - self.env.now)
            self._release_order()

    def _quote_due(self, product: Product, quantity: int, factor: float) -> float:
        """Due date as a planner quotes it: bottleneck backlog plus the order's own processing,
        at the line's expected efficiency, plus slack, at the end of that working window."""
        assert self.demand is not None
        arrivals = self.behaviour.orders
        bottleneck = self.demand.bottleneck.machines
        backlog = 0.0
        for order in self.open_orders.values():
            for op in order.product.routing[order.step :]:
                if frozenset(op.machines) == bottleneck:
                    backlog += order.quantity * order.time_factor * unit_time(op.machines)
        own = processing_seconds(product, quantity, factor)
        slack = self._order_rng.uniform(*arrivals.due_slack_h) * 3600
        clock = self._bottleneck_refs[0].worktime
        ready = clock.add_working(self.env.now, inflate(backlog + own, arrivals.efficiency))
        return clock.window_end(clock.add_working(ready, slack))

    def _release_order(self) -> None:
        rng = self._order_rng
        arrivals = self.behaviour.orders
        skus = list(arrivals.products)
        product = self.factory.product(
            rng.choices(skus, weights=[arrivals.products[s] for s in skus])[0]
        )
        options: dict[str, str] = {}
        factor = 1.0
        bom = [(b.material, b.qty, b.unit) for b in product.bom]
        for option in product.options:
            choice = rng.choice(option.choices)
            options[option.name] = choice.code
            factor *= choice.time_factor
            bom += [(b.material, b.qty, b.unit) for b in choice.bom_add]
        quantity = rng.randint(*arrivals.quantity)
        if self.demand is None:
            due_s = self.env.now + rng.uniform(*arrivals.due_after_h) * 3600
        else:
            due_s = self._quote_due(product, quantity, factor)
        self.orders_released += 1
        order = WorkOrder(
            id=f"WO{self.start.astimezone(HK):%y%m%d}{self.seed % 100:02d}-{self.orders_released:03d}",
            product=product,
            options=options,
            quantity=quantity,
            due_s=due_s,
            time_factor=factor,
            bom=bom,
        )
        first = self._choose_machine(product.routing[0])
        assert first is not None  # without room: every eligible machine
        self.open_orders[order.id] = order
        self._emit(
            OrderEvent(
                id=self._next_id(),
                ts=self._ts(),
                machine=first.ref.path,
                order=order.id,
                event=OrderEventKind.RELEASED,
                product=product.sku,
                quantity=quantity,
                options=options or None,
                due=self.start + dt.timedelta(seconds=round(due_s)),
            )
        )
        self._enqueue(Job(order, 0, quantity), first)

    def _choose_machine(self, op: Operation, *, room: bool = False) -> SimMachine | None:
        """The eligible machine with the least queued work (with ``room``: among those whose
        buffer has room; None when none has)."""
        eligible = [self.machines[mid] for mid in op.machines]
        if room:
            eligible = [m for m in eligible if m.has_room()]
        return min(eligible, key=lambda m: m.queued_seconds()) if eligible else None

    def _enqueue(self, job: Job, m: SimMachine) -> None:
        job.order.step, job.order.at = job.index, m.id
        m.queue.append(job)
        if m.wakeup is not None and not m.wakeup.triggered:
            m.wakeup.succeed()

    def _pick(self, m: SimMachine) -> Job:
        """Earliest due date first, as the planner's ``edd`` rule; a job of the mounted setup
        family may go first when it is due within :data:`SAME_FAMILY_WINDOW_S` of that one."""
        candidates = m.queue
        if self.stockroom is not None:  # orders whose materials are at the line go first
            candidates = [j for j in m.queue if self.stockroom.ready(m, j)] or m.queue
        first = min(candidates, key=lambda j: (j.order.due_s, j.order.id))
        same = [
            j
            for j in candidates
            if m.family is not None
            and j.operation.setup_family == m.family
            and j.order.due_s <= first.order.due_s + SAME_FAMILY_WINDOW_S
        ]
        job = min(same, key=lambda j: (j.order.due_s, j.order.id)) if same else first
        m.queue.remove(job)
        if job.index > 0:  # room in the buffer: a machine blocked on it may hand over now
            for waiting in self.machines.values():
                if waiting.unblock is not None and not waiting.unblock.triggered:
                    waiting.unblock.succeed()
        return job

    def _idle_reason(self, m: SimMachine) -> str:
        """Why ``m`` has nothing to do: *starved* when an order on its way to it is held up by
        a stopped or waiting machine upstream, else *no_order* (nothing released for it yet)."""
        for order in self.open_orders.values():
            if order.at is None or order.at == m.id:
                continue
            ahead = order.product.routing[order.step + 1 :]
            if not any(m.id in op.machines for op in ahead):
                continue
            holder = self.machines[order.at]
            if holder.state in HOLDING_STATES or (
                holder.state == MachineState.IDLE.value and holder.reason in WAITING_REASONS
            ):
                return STARVED
        return NO_ORDER

    # ------------------------------------------------------------------ machine processes

    def _wait_for_work_time(self, m: SimMachine) -> Iterator[simpy.Event]:
        """While outside working time, sit in planned_stop; returns when the line works again."""
        while m.worktime.window_at(self.env.now) is None:
            self._set_state(m, MachineState.PLANNED_STOP, m.worktime.stop_reason(self.env.now))
            yield self.env.timeout(m.worktime.next_start(self.env.now) - self.env.now)

    def _run_for(
        self,
        m: SimMachine,
        seconds: float,
        state: MachineState = MachineState.RUNNING,
        reason: str | None = None,
    ) -> Iterator[simpy.Event]:
        """Run for ``seconds`` of running time, breaking down whenever time-to-failure runs out."""
        remaining = seconds
        while remaining > 0:
            self._set_state(m, state, reason)
            due = self._fault_due(m)
            if due is not None and due[1] < min(remaining, m.ttf):
                fault, wait = due
                if wait > 0:
                    yield self.env.timeout(wait)
                m.ttf -= wait
                remaining -= wait
                yield from self._fault_failure(m, fault)
                continue
            if m.ttf >= remaining:
                m.ttf -= remaining
                yield self.env.timeout(remaining)
                return
            yield self.env.timeout(m.ttf)
            remaining -= m.ttf
            yield from self._breakdown(m)

    def _fault_due(self, m: SimMachine) -> tuple[ActiveFault, float] | None:
        """The next fault of ``m`` to end in a breakdown and the seconds until then (0: overdue)."""
        pending = [f for f in m.faults if not f.failed]
        if not pending:
            return None
        now = self.env.now

        def left(f: ActiveFault) -> float:  # running continuously from now
            return max(0.0, f.onset_s - now) + f.life_s - f.used(m, now)

        fault = min(pending, key=left)
        return fault, max(0.0, left(fault))

    def _fault_failure(self, m: SimMachine, fault: ActiveFault) -> Iterator[simpy.Event]:
        spec = fault.spec
        fault.failed = True
        self.breakdowns += 1
        self._set_state(
            m, MachineState.UNPLANNED_STOP, spec.reason or m.behaviour.failure_reasons[0]
        )
        self.fault_log.append(
            FaultRecord(
                m.ref.path,
                spec.kind.value,
                fault.metric,
                self.start + dt.timedelta(seconds=fault.onset_s),
                self._ts(),
            )
        )
        mean, sigma = spec.repair_min * 60, 0.5
        yield self.env.timeout(m.rng.lognormvariate(math.log(mean) - sigma**2 / 2, sigma))
        for later in m.faults:  # the next fault of this machine starts after the repair at soonest
            if not later.failed and later.onset_s < self.env.now:
                later.onset_s = self.env.now

    def _cycle_factor(self, m: SimMachine) -> float:
        """How much slower a clogged nozzle makes the cycle (1.0 with no clog)."""
        factor = 1.0
        for fault in m.faults:
            progress = fault.progress(m, self.env.now)
            if progress is not None and fault.spec.kind is FaultKind.NOZZLE_CLOG:
                _, shift, _, shape = FAULT_DEFAULTS[fault.spec.kind]
                shift = fault.spec.shift_sd if fault.spec.shift_sd is not None else shift
                shape = fault.spec.shape or shape
                factor *= 1 + progress**shape * shift * fault.sd / fault.mean
        return factor

    def _faulty(self, m: SimMachine, name: str, value: float, idle_reading: bool) -> float:
        """A reading as the faults of ``m`` distort it (mean shift and spread, or frozen)."""
        for fault in m.faults:
            progress = fault.progress(m, self.env.now)
            if fault.metric != name or progress is None:
                continue
            spec = fault.spec
            if spec.kind is FaultKind.SENSOR_FREEZE:
                if fault.frozen is None:
                    fault.frozen = m.last_metrics.get(name, value)
                return fault.frozen
            if idle_reading:
                continue
            _, shift, spread, shape = FAULT_DEFAULTS[spec.kind]
            shift = spec.shift_sd if spec.shift_sd is not None else shift
            spread = spec.spread if spec.spread is not None else spread
            ramp = progress ** (spec.shape or shape)
            value = (
                fault.mean
                + (value - fault.mean) * (1 + ramp * (spread - 1))
                + ramp * shift * fault.sd
            )
        return value

    def _safety_event(self, m: SimMachine, trip: SafetySpec, kind: SafetyKind) -> SafetyEvent:
        event = SafetyEvent(
            id=self._next_id(),
            ts=self._ts(),
            machine=m.ref.path,
            kind=kind,
            severity=trip.severity if kind == trip.kind else SafetySeverity.INFO,
            zone=trip.zone,
            source=f"{m.id}-safety",
        )
        self._emit(event)
        self.safety_log.append(event)
        return event

    def _safety_trip(self, m: SimMachine, trip: SafetySpec) -> Iterator[simpy.Event]:
        """Report a safety event at once; an e-stop stops the machine (reason SAFETY) until it
        is released ``stop_min`` later: the machine's own process finishes the cycle under way
        (its drives are cut; the parts are counted when the cycle's time is up) and then waits
        in the stop until the release (:meth:`_held`)."""
        event = self._safety_event(m, trip, trip.kind)
        stop = safety_stop(event)
        if stop is None:
            return
        m.hold_until = self.env.now + trip.stop_min * 60
        self._set_state(m, stop.state, stop.reason)
        yield self.env.timeout(trip.stop_min * 60)
        self._safety_event(m, trip, SafetyKind.ESTOP_RELEASED)
        if m.wakeup is not None and not m.wakeup.triggered:  # a machine waiting for work
            m.wakeup.succeed()

    def _held(self, m: SimMachine) -> Iterator[simpy.Event]:
        """Stay in the e-stop's unplanned stop until it is released."""
        while m.hold_until > self.env.now:
            self._set_state(m, MachineState.UNPLANNED_STOP, SAFETY_REASON)
            yield self.env.timeout(m.hold_until - self.env.now)

    def _safety_at_once(self, m: SimMachine) -> SimProcess:
        """Inject the machine's safety events at their times, whatever it is doing."""
        while m.safety:
            trip = m.safety.pop(0)
            yield self.env.timeout(max(0.0, trip.at_h * 3600 - self.env.now))
            yield from self._safety_trip(m, trip)

    def _breakdown(self, m: SimMachine) -> Iterator[simpy.Event]:
        mb = m.behaviour
        self.breakdowns += 1
        self._set_state(m, MachineState.UNPLANNED_STOP, m.rng.choice(mb.failure_reasons))
        mean = mb.mttr_min * 60
        sigma = 0.5
        repair = m.rng.lognormvariate(math.log(mean) - sigma**2 / 2, sigma)
        yield self.env.timeout(repair)
        m.ttf = m.rng.expovariate(1.0 / (mb.mtbf_h * 3600.0))

    def _producer(self, m: SimMachine) -> SimProcess:
        mb = m.behaviour
        while True:
            yield from self._held(m)
            yield from self._wait_for_work_time(m)
            if not m.queue:
                reason = self._idle_reason(m)
                if reason == NO_ORDER:  # planned no-work time (ISO 22400: not planned busy time)
                    self._set_state(m, MachineState.PLANNED_STOP, NO_ORDER)
                else:
                    self._set_state(m, MachineState.IDLE, reason)
                m.wakeup = self.env.event()
                window = m.worktime.window_at(self.env.now)
                assert window is not None
                end = m.worktime.ends[window]
                yield m.wakeup | self.env.timeout(end - self.env.now)
                m.wakeup = None
                continue
            job = self._pick(m)
            op = job.operation
            setup = self.factory.setup_seconds(m.ref.machine, m.family, op.setup_family)
            if setup > 0:
                yield from self._run_for(
                    m, setup * m.rng.uniform(0.9, 1.2), MachineState.SETUP, CHANGEOVER
                )
            m.family = op.setup_family or m.family
            arrivals = self.behaviour.orders
            late_material = arrivals.material_wait > 0 and job.index == 0
            if late_material and m.rng.random() < arrivals.material_wait:
                self._set_state(m, MachineState.IDLE, WAITING_MATERIAL)
                yield self.env.timeout(m.rng.expovariate(1.0 / (arrivals.material_wait_min * 60)))
                yield from self._wait_for_work_time(m)
            stock = self.stockroom if job.index == 0 else None
            if stock is not None:
                if not (yield from stock.wait_for(m, job)):
                    m.queue.append(job)  # another order's materials are there: that one first
                    continue
                yield from self._wait_for_work_time(m)
            m.order = job.order.id
            self._order_event(m, job.order.id, OrderEventKind.STARTED, op.seq)
            if job.index == 0:
                self._consume_materials(m, job)
            if stock is not None:
                stock.issue(m, job)
            per_unit = op.machines[m.id] * job.order.time_factor
            left, good_out = job.quantity, 0
            while left > 0:
                yield from self._wait_for_work_time(m)
                if m.hold_until > self.env.now:
                    yield from self._held(m)
                    continue
                if mb.micro_stops_per_h > 0 and mb.micro_stop_s > 0:
                    p = 1 - math.exp(-mb.micro_stops_per_h * per_unit * mb.batch / 3600)
                    if m.rng.random() < p:
                        self._set_state(m, MachineState.MICRO_STOP, "US")
                        yield self.env.timeout(m.rng.expovariate(1.0 / mb.micro_stop_s))
                units = min(mb.batch, left)
                cycle = per_unit * units * _lognormal_factor(m.rng, mb.cycle_cv)
                if m.faults:
                    cycle *= self._cycle_factor(m)
                yield from self._run_for(m, cycle)
                scrap = sum(1 for _ in range(units) if m.rng.random() < mb.scrap_rate)
                good = units - scrap
                self._emit(
                    PartCount(
                        id=self._next_id(),
                        ts=self._ts(),
                        machine=m.ref.path,
                        good=good,
                        scrap=scrap,
                        order=job.order.id,
                        operation=op.seq,
                    )
                )
                left -= units
                good_out += good
            if stock is not None:
                stock.step_done(m, job, job.quantity)
            self._order_event(m, job.order.id, OrderEventKind.COMPLETED, op.seq)
            m.order = None
            yield from self._handover(m, job, good_out)

    def _order_event(
        self, m: SimMachine, order: str, kind: OrderEventKind, operation: int | None
    ) -> None:
        """A step (or, with no operation, the whole order) started or completed on ``m``."""
        self._emit(
            OrderEvent(
                id=self._next_id(),
                ts=self._ts(),
                machine=m.ref.path,
                order=order,
                event=kind,
                operation=operation,
            )
        )

    def _handover(self, m: SimMachine, job: Job, good_out: int) -> Iterator[simpy.Event]:
        """Hand the finished step to the next one; while every machine of the next step has a
        full buffer, hold it: idle and ``BLOCKED`` in working time, planned stop outside it."""
        routing = job.order.product.routing
        if job.index + 1 < len(routing) and good_out > 0:
            nxt = routing[job.index + 1]
            while (target := self._choose_machine(nxt, room=True)) is None:
                if m.worktime.window_at(self.env.now) is None:
                    yield from self._wait_for_work_time(m)
                    continue
                self._set_state(m, MachineState.IDLE, BLOCKED)
                m.unblock = self.env.event()
                end = m.worktime.window_end(self.env.now)
                yield m.unblock | self.env.timeout(max(end - self.env.now, 1.0))
                m.unblock = None
            self._enqueue(Job(job.order, job.index + 1, good_out), target)
            return
        self.orders_completed += 1
        self.orders_late += self.env.now > job.order.due_s
        job.order.at = None
        self.open_orders.pop(job.order.id, None)
        self._order_event(m, job.order.id, OrderEventKind.COMPLETED, None)

    def _consume_materials(self, m: SimMachine, job: Job) -> None:
        day = self.now.astimezone(HK).strftime("%y%m%d")
        for material, qty, unit in job.order.bom:
            self._lot_counter[material] = self._lot_counter.get(material, 0) + 1
            self._emit(
                MaterialConsumption(
                    id=self._next_id(),
                    ts=self._ts(),
                    machine=m.ref.path,
                    material=material,
                    lot=f"L{day}-{material[:6]}-{1 + self._lot_counter[material] // 20:02d}",
                    qty=round(qty * job.quantity, 4),
                    unit=unit,
                    order=job.order.id,
                )
            )

    def _utility(self, m: SimMachine) -> SimProcess:
        """Utilities and non-producing equipment: run while the line works, stop otherwise."""
        while True:
            yield from self._wait_for_work_time(m)
            window = m.worktime.window_at(self.env.now)
            assert window is not None
            yield from self._run_for(m, m.worktime.ends[window] - self.env.now)

    def _panel_meter(self, m: SimMachine) -> SimProcess:
        self._set_state(m, MachineState.RUNNING)
        return
        yield  # pragma: no cover - makes this a generator

    def _meter(self, m: SimMachine) -> SimProcess:
        every = self.behaviour.meter_every_s
        facility = self.behaviour.facility.get(m.id)
        while True:
            if facility is not None:
                working = m.worktime.window_at(self.env.now) is not None
                m.kwh += (facility.base_kw + (facility.shift_kw if working else 0.0)) * every / 3600
                reading = m.kwh
            else:
                self._accumulate(m)
                reading = m.kwh
            self._emit(
                EnergyReading(
                    id=self._next_id(), ts=self._ts(), machine=m.ref.path, kwh=round(reading, 3)
                )
            )
            yield self.env.timeout(every)

    def _telemetry(self, m: SimMachine) -> SimProcess:
        every = self.behaviour.telemetry_every_s
        yield self.env.timeout(every / 2)  # offset from meter readings
        while True:
            running = m.state in ("running", "setup", "micro_stop")
            metrics = {}
            for name, (mean, sd) in m.behaviour.telemetry.items():
                value = m.rng.gauss(mean, sd)
                idle_reading = not running and ("vib" in name or "pressure" in name)
                if idle_reading:
                    value = abs(m.rng.gauss(0, sd / 4))
                if m.faults:
                    value = self._faulty(m, name, value, idle_reading)
                metrics[name] = round(value, 3)
            m.last_metrics = metrics
            self._emit(
                TelemetrySample(
                    id=self._next_id(), ts=self._ts(), machine=m.ref.path, metrics=metrics
                )
            )
            yield self.env.timeout(every)


def _lognormal_factor(rng: random.Random, cv: float) -> float:
    """A multiplier with mean 1 and the given coefficient of variation."""
    if cv <= 0:
        return 1.0
    sigma = math.sqrt(math.log(1 + cv * cv))
    return rng.lognormvariate(-sigma * sigma / 2, sigma)


def parse_duration(text: str) -> float:
    """``90s``, ``45m``, ``8h``, ``2d`` or a plain number of seconds -> seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    value = text.strip().lower()
    try:
        if value and value[-1] in units:
            seconds = float(value[:-1]) * units[value[-1]]
        else:
            seconds = float(value)
    except ValueError:
        raise ValueError(f"'{text}' is not a duration; write e.g. 30m, 8h or 2d") from None
    if seconds <= 0 or math.isinf(seconds) or math.isnan(seconds):
        raise ValueError(f"duration must be positive, got '{text}'")
    return seconds
