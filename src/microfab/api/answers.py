"""What the JSON routes answer, as pydantic models: /openapi.json documents every route's response
with them, and FastAPI checks each answer against its model.

The models describe the JSON the domain services already produce (their ``to_json``); they do not
reshape it. Each allows fields it does not name (``extra="allow"``) and the routes answer with
``response_model_exclude_unset=True``, so an answer has exactly the fields the
service gave it, in its order: a field the service leaves out stays out, none is added as
``null``. Times are UTC ISO-8601 strings (``2026-11-23T08:00:00.000Z``); ``from``/``to`` are
aliases, since they are Python keywords.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from microfab.green.pact import ProductFootprint

Number = int | float
"""A measure: a whole number stays one in the JSON (no ``5`` turned into ``5.0``)."""


class Answer(BaseModel):
    """Base of the answers: fields in the service's order, other fields passed on."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class Window(Answer):
    start: str | None = Field(default=None, alias="from", description="Window start (UTC)")
    end: str | None = Field(default=None, alias="to", description="Window end (UTC, exclusive)")


# ---------------------------------------------------------------------------- plant, events


class StoreStatus(Answer):
    """Where the data comes from and how far it goes."""

    store: str | None = Field(
        default=None,
        description="The store's URL, password masked (shown only to callers who may manage "
        "users, i.e. admins; left out for everyone else)",
    )
    backend: str = Field(description="sqlite or postgresql")
    last_seq: int = Field(description="Grows with every stored event")
    clock: str = Field(description="The plant clock: the newest event time")
    factory_version: int | None = Field(description="The factory model applied last, or null")


class Machine(Answer):
    """A machine of the factory tree."""

    id: str
    path: str = Field(description="site/area/line/cell/machine")
    name: str
    kind: str
    ideal_cycle_s: Number | None
    produces: bool
    metered: bool
    connected: bool = Field(description="The factory file says how it is connected")


class MachineState(Machine):
    """A machine and its live state (``null`` state before its first report)."""

    line: str = Field(description="The line's path")
    cell: str
    state: str | None
    reason: str | None
    since: str | None = Field(description="Since when it is in this state")
    order: str | None = Field(description="The work order it runs")
    good: int = Field(description="Good units since the store began (corrections included)")
    scrap: int
    kwh: Number | None
    last_event: str | None
    events: int


class ReasonCodeNode(Answer):
    code: str
    name: str | None
    name_zh: str | None
    children: list[ReasonCodeNode]


class DowntimeReasons(Answer):
    planned: list[ReasonCodeNode]
    unplanned: list[ReasonCodeNode]


class Cell(Answer):
    id: str
    name: str
    path: str
    machines: list[Machine]


class Line(Answer):
    id: str
    name: str
    path: str
    calendar: str | None
    cells: list[Cell]


class Area(Answer):
    id: str
    name: str
    path: str
    lines: list[Line]


class Site(Answer):
    id: str
    name: str
    timezone: str
    path: str
    areas: list[Area]


class RoutingStep(Answer):
    seq: int
    name: str | None
    machines: dict[str, Any] = Field(description="Machine id or path -> its cycle time")


class Product(Answer):
    sku: str
    name: str | None
    routing: list[RoutingStep]


class FactoryTree(Answer):
    """The factory model (ISA-95): site → area → line → cell → machine, products, reasons."""

    version: int | None
    company: dict[str, Any]
    sites: list[Site]
    products: list[Product]
    downtime_reasons: DowntimeReasons


class StoredEventAnswer(Answer):
    """An event in its export shape (docs/events.md) plus where the store keeps it."""

    id: str
    ts: str
    machine: str
    stream: str
    seq: int = Field(description="The store's sequence number")
    ingest_ts: str = Field(description="When the store received it")


class InspectionAnswer(Answer):
    """The ``inspection`` event a station stored for an uploaded image, in its export shape
    (docs/events.md, docs/vision.md): the verdict, the model's scores and the image kept."""

    id: str
    ts: str
    machine: str
    stream: str
    result: str = Field(description="pass or fail")
    defect: str | None = Field(default=None, description="The top defect class of a fail")


class EventPage(Answer):
    """One page of events."""

    events: list[StoredEventAnswer]
    next: str | None = Field(description="Cursor of the next page; null on the last")
    limit: int


# ---------------------------------------------------------------------------- operator input


class Stop(Answer):
    """A stop of a machine and its reason."""

    event: str = Field(description="The state event's id")
    ts: str
    until: str | None
    seconds: Number | None
    state: str
    reason: str | None
    explained: bool
    reason_by: str | None


class CountCorrection(Answer):
    event: str
    good: int
    scrap: int
    by: str | None
    recorded: str


class CountLine(Answer):
    """A count as reported and as it stands after corrections."""

    event: str
    ts: str
    order: str | None
    operation: int | None
    reported: dict[str, int] = Field(description="good and scrap as first reported")
    good: int
    scrap: int
    by: str | None
    corrections: list[CountCorrection]


class EventEntry(Answer):
    """What an operator entry stored (``stored`` false: a repeat, nothing new)."""

    stored: bool
    event: dict[str, Any] = Field(description="The event in its export shape (docs/events.md)")


# ---------------------------------------------------------------------------- OEE, downtime


class OeeRowAnswer(Window):
    """OEE per ISO 22400-2 for a machine or a line, in a window."""

    machine: str | None
    line: str | None
    level: str = Field(description="machine or line")
    shift: str | None
    day: str | None
    planned_busy_s: Number
    run_s: Number
    ideal_cycle_s: Number | None
    total: int
    good: int
    scrap: int
    outside_total: int
    availability: Number | None
    performance: Number | None
    quality: Number | None
    oee: Number | None
    bottleneck: str | None
    output_good: int | None


class ParetoRow(Answer):
    state: str
    reason: str | None
    category: str | None
    seconds: Number
    stops: int
    share: Number
    machines: list[str]


class ReliabilityRow(Answer):
    machine: str
    failures: int
    run_s: Number
    repair_s: Number
    mtbf_s: Number | None
    mttr_s: Number | None


class Downtime(Answer):
    """The downtime Pareto and MTBF/MTTR per machine."""

    pareto: list[ParetoRow]
    reliability: list[ReliabilityRow]


# ---------------------------------------------------------------------------- orders


class OperationMachine(Answer):
    machine: str
    good: int
    scrap: int


class OrderOperation(Answer):
    operation: int
    name: str | None
    status: str
    planned: int | None
    good: int
    scrap: int
    wip: int
    wip_machine: str | None
    progress: Number | None
    started: str | None
    completed: str | None
    machines: list[OperationMachine]


class WorkOrder(Answer):
    """A work order as of the plant clock."""

    order: str
    product: str | None
    product_name: str | None
    options: dict[str, str] | None
    quantity: int | None
    due: str | None
    priority: int | None
    status: str
    created: str | None
    released: str | None
    started: str | None
    completed: str | None
    cancelled: str | None
    good: int
    scrap: int
    wip: int
    progress: Number | None
    expected_completion: str | None
    expected_basis: str | None = Field(
        description="plan (the plan's planned end), observed (the order's own rate), standard "
        "(routing times) or completed"
    )
    late: bool
    completed_late: bool | None
    operation: int | None
    machine: str | None
    operations: list[OrderOperation]
    as_of: str | None


class OrderChangeAnswer(Answer):
    """A create, release or cancel: whether it stored an event, and the order after it."""

    stored: int | bool = Field(description="Events stored (0: it was done already)")
    order: WorkOrder


class Lot(Answer):
    material: str
    lot: str
    qty: Number | None
    unit: str | None


class OrderTrace(Answer):
    """An order's genealogy: route steps, count batches and the material lots they used."""

    order: str
    product: str | None
    options: dict[str, str] | None
    quantity: int | None
    status: str
    due: str | None
    created: str | None
    released: str | None
    completed: str | None
    cancelled: str | None
    good: int
    scrap: int
    lots: list[Lot]
    lot_sources: list[dict[str, Any]]
    steps: list[dict[str, Any]]
    batches: list[dict[str, Any]]
    unassigned_lots: list[dict[str, Any]]


class WipByMachine(Answer):
    machine: str
    units: int
    orders: int


class WipByOperation(Answer):
    product: str | None
    operation: int
    name: str | None
    units: int
    orders: int


class WipRow(Answer):
    order: str
    product: str | None
    operation: int
    operation_name: str | None
    machine: str | None
    units: int


class WorkInProgress(Answer):
    """Units of the open orders by order step, machine and routing step."""

    as_of: str | None
    units: int
    by_machine: list[WipByMachine]
    by_operation: list[WipByOperation]
    rows: list[WipRow]


# ---------------------------------------------------------------------------- planning


class PlanDocument(Answer):
    """The plan document, as the plan file holds it (``microfab plan schedule``)."""

    plan: dict[str, Any] | None = Field(
        default=None, description="Start, objective, solver status and figures, reasons"
    )
    orders: list[dict[str, Any]] | None = Field(
        default=None, description="Per order: planned start, end and lateness"
    )
    operations: list[dict[str, Any]] | None = Field(
        default=None, description="Per operation: machine, start, end, setup"
    )
    warnings: list[str] | None = None
    schedule: dict[str, Any] | None = Field(default=None, description="The solver's schedule")


class Replanned(PlanDocument):
    """A re-plan: the plan document, and whether it was written to the plan file."""

    saved: bool = Field(description="false: no schedule found, the earlier plan stays")


class ActualBar(Answer):
    order: str
    operation: int | None
    start: str
    end: str
    running: bool
    good: int
    scrap: int


class GanttLane(Answer):
    machine: str
    name: str
    plan: list[dict[str, Any]]
    actual: list[ActualBar]
    stops: list[dict[str, Any]]


class Gantt(Window):
    """Plan against actual, one lane per machine."""

    now: str
    zone: str
    utc_offset_s: int
    plan: dict[str, Any] | None
    late_orders: list[str]
    machines: list[GanttLane]


# ---------------------------------------------------------------------------- quality


class AlertAnswer(Answer):
    """An alert (the same JSON as its MQTT and webhook payload)."""

    id: int | str
    state: str = Field(description="open, acknowledged or closed")
    rule: str
    kind: str
    severity: str
    machine: str | None
    cause: str | None
    message: str
    first_ts: str | None
    last_ts: str | None
    occurrences: int
    raised_at: str | None
    acked_at: str | None
    acked_by: str | None
    closed_at: str | None
    closed_by: str | None
    details: dict[str, Any] | None


class Alerts(Answer):
    alerts: list[AlertAnswer]


class DefectRow(Answer):
    defect: str
    count: int
    share: Number
    cumulative: Number


class DefectGroup(Answer):
    product: str | None
    machine: str
    inspected: int
    failed: int
    fail_rate: Number | None
    defects: list[DefectRow]


class Defects(Window):
    """The defect Pareto overall and per product and machine (``microfab defects --json``)."""

    inspected: int
    failed: int
    fail_rate: Number | None
    defects: list[DefectRow]
    groups: list[DefectGroup]


# ---------------------------------------------------------------------------- dashboard, carbon


class Tile(Answer):
    machine: str
    state: str
    reason: str | None
    since: str | None
    order: str | None
    good: int
    scrap: int


class OrderCard(Answer):
    order: str
    product: str | None
    quantity: int | None
    status: str
    good: int
    scrap: int
    machine: str | None
    operation: int | None
    released: str | None
    completed: str | None
    due: str | None
    late: bool
    progress: Number | None
    expected: str | None = Field(
        default=None,
        description="The open order's expected completion: the plan's planned end while a plan "
        "holds it, else the estimate from progress (the order's expected_completion)",
    )


class OrderBoard(Answer):
    queued: list[OrderCard]
    in_progress: list[OrderCard]
    done: list[OrderCard]
    done_total: int


class Dashboard(Window):
    """Everything the dashboard shows, today (site midnight to the plant clock)."""

    seq: int
    factory_version: int | None
    clock: str
    machines: list[Tile]
    orders: OrderBoard
    oee: list[OeeRowAnswer]
    downtime: list[ParetoRow]
    output_per_hour: dict[str, Any]
    oee_per_shift: dict[str, Any]


class CarbonIntensity(Window):
    """Energy and carbon per unit by line and product, and idle energy per machine."""

    seq: int
    settings_file: str | None
    rows: list[dict[str, Any]] = Field(
        description="Per line and product: units, kWh, kgCO2e, per unit, upstream_included"
    )
    idle: list[dict[str, Any]] = Field(description="Per machine: standby and avoidable kWh")
    message: str | None
    notes: list[str]


# ---------------------------------------------------------------------------- PACT


class PactFootprintList(BaseModel):
    """PACT ``ListFootprints`` answer (PACT's own shape, documented only)."""

    data: list[ProductFootprint]


class PactFootprintAnswer(BaseModel):
    """PACT ``GetFootprint`` answer (PACT's own shape, documented only)."""

    data: ProductFootprint


# --------------------------------------------------------------------------- plant assistant


class AskValue(Answer):
    name: str
    value: Any = Field(description="The number (ratios 0–1), or a time, status or flag")
    unit: str


class AskPeriod(Answer):
    from_: str | None = Field(alias="from", description="Start, site time (ISO-8601)")
    to: str | None = Field(description="End (exclusive), site time (ISO-8601)")


class AskAnswer(Answer):
    """An answer of the plant assistant; a declined question has ``tool`` null and no values."""

    question: str
    answer: str
    values: list[AskValue]
    tool: str | None
    arguments: dict[str, Any]
    period: AskPeriod
    link: str | None
