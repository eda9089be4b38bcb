"""Shop-floor events: one typed, versioned schema for everything a machine reports.

An event is what happened on one machine at one time. The wire shape (MQTT payload plus the machine
path from the topic) and the export shape (one JSON line) are the same object::

    {"id": "food-line-s1-00000042", "ts": "2026-11-23T00:00:00.000Z",
     "machine": "kt/food/line1/fill/filler-1", "stream": "count",
     "good": 10, "scrap": 1, "order": "WO-1", "operation": 10}

``id`` is the idempotency key: storing the same event twice is a no-op, storing a different event
under a stored id is an ``id_conflict``. ``ts`` is event time in UTC with millisecond precision.
The store adds ``ingest_ts`` (when it was committed); it is not part of the event's content.

Every number has a range, in the JSON Schema too (docs/events.md lists them): counts at most
:data:`MAX_COUNT` units per event, meter readings at most :data:`MAX_READING`, telemetry and
material quantities within :data:`MAX_MEASURE`; no number is NaN or infinite. A value out of range
is an invalid event (a dead letter ``invalid_event`` on MQTT, 422 naming the field on REST).
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import json
import math
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

EVENT_SCHEMA_VERSION = 1
"""Version of the event schema below; stored with every event."""

STREAMS = (
    "state",
    "count",
    "telemetry",
    "energy",
    "order",
    "material",
    "inspection",
    "safety",
    "stock",
    "task",
)


def format_ts(value: dt.datetime) -> str:
    """Render a UTC instant as ``YYYY-MM-DDTHH:MM:SS.mmmZ``."""
    if value.tzinfo is not dt.UTC:
        value = value.astimezone(dt.UTC)
    if value.year >= 1000:  # the same text as below, several times faster
        return value.isoformat(timespec="milliseconds")[:23] + "Z"
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def parse_ts(value: object) -> dt.datetime:
    """Accept an aware datetime or ISO-8601 text with an offset; return UTC cut to milliseconds."""
    if isinstance(value, str):
        if len(value) == 24 and value[23] == "Z" and value[10] == "T":
            # the wire form (YYYY-MM-DDTHH:MM:SS.mmmZ), parsed as it stands: already UTC and
            # in milliseconds; anything else it might be goes the long way below
            try:
                parsed = dt.datetime.fromisoformat(value)
            except ValueError:
                pass
            else:
                if parsed.tzinfo is dt.UTC:
                    return parsed
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            value = dt.datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(
                f"'{value}' is not an ISO-8601 time such as 2026-11-22T08:00:00.000Z"
            ) from None
    if not isinstance(value, dt.datetime):
        raise ValueError("expected an ISO-8601 time string such as 2026-11-22T08:00:00.000Z")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("time has no UTC offset; write it with 'Z' or '+08:00'")
    if value.tzinfo is not dt.UTC:  # (already UTC, as most are: nothing to convert)
        try:
            value = value.astimezone(dt.UTC)
        except OverflowError:
            raise ValueError(f"time {value.isoformat()} is out of range") from None
    if value.microsecond % 1000:
        value = value.replace(microsecond=value.microsecond // 1000 * 1000)
    return value


MAX_INT = 2**31 - 1
"""Largest whole number an event field takes (a 32-bit signed integer, as SQL INTEGER)."""

MAX_COUNT = 10**6
"""Most units one count event reports (good or scrap; a correction takes off as many at most)."""

MAX_READING = 1e12
"""Largest cumulative meter reading (kWh, or a fuel meter's unit): a 13-digit register."""

MAX_MEASURE = 1e15
"""Largest magnitude of a telemetry value or a consumed material quantity."""

Timestamp = Annotated[
    dt.datetime,
    PlainSerializer(format_ts, return_type=str, when_used="json"),
    Field(description="Event time, UTC, YYYY-MM-DDTHH:MM:SS.mmmZ"),
]

MachinePath = Annotated[
    str,
    StringConstraints(
        pattern=r"^[a-z0-9][a-z0-9_-]{0,39}(/[a-z0-9][a-z0-9_-]{0,39}){4}$",
    ),
    Field(description="site/area/line/cell/machine ids, as in the factory file and MQTT topic"),
]

EventId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64, pattern=r"^[\x21-\x7e]+$"),
    Field(description="Unique event id (idempotency key), 1-64 printable ASCII characters"),
]

Label = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class MachineState(enum.StrEnum):
    """Machine states used for OEE; every state change names one."""

    RUNNING = "running"
    IDLE = "idle"
    SETUP = "setup"
    PLANNED_STOP = "planned_stop"
    UNPLANNED_STOP = "unplanned_stop"
    MICRO_STOP = "micro_stop"
    OFFLINE = "offline"


class OrderEventKind(enum.StrEnum):
    """What happened to a work order (or, with ``operation``, to one of its routing steps).

    ``created`` records an order in the office before it goes to the floor; ``released`` sends it
    to the floor; ``cancelled`` withdraws it (only the whole order, no ``operation``)."""

    CREATED = "created"
    RELEASED = "released"
    STARTED = "started"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class FuelCarrier(enum.StrEnum):
    TOWNGAS = "towngas"
    LPG = "lpg"
    DIESEL = "diesel"


class _EventBase(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: EventId
    ts: Timestamp
    machine: MachinePath

    @field_validator("ts", mode="before")
    @classmethod
    def _ts(cls, value: object) -> dt.datetime:
        return parse_ts(value)


class StateChange(_EventBase):
    """The machine entered ``state`` at ``ts`` (and stays there until the next state change).

    A *restatement* (``corrects`` set) gives a reason to a stop already reported: same ``ts`` and
    ``state`` as the event it corrects, the reason code, and an ``id`` that sorts after that
    event's id, so that every reader taking state changes in (ts, id) order applies it."""

    stream: Literal["state"] = "state"
    state: MachineState
    reason: Label | None = Field(default=None, description="Downtime reason code, if any")
    corrects: EventId | None = Field(
        default=None, description="Id of the state event this one restates (operator input)"
    )
    by: Label | None = Field(
        default=None, description="Who entered it (operator input); none = the machine"
    )


class PartCount(_EventBase):
    """Units finished since the machine's previous count event (increments, never totals).

    A *correction* (``corrects`` set) compensates a count event already stored: its ``good`` and
    ``scrap`` are signed adjustments (``-2`` takes two units off), stamped with the corrected
    event's ``ts``, ``order`` and ``operation``, so every sum over any period comes out right."""

    stream: Literal["count"] = "count"
    corrects: EventId | None = Field(
        default=None,
        description="Id of the count event this one corrects; then good and scrap are signed "
        "adjustments",
    )
    good: int = Field(
        ge=-MAX_COUNT, le=MAX_COUNT, description="Units, 0–10⁶; ≥ 0 unless a correction"
    )
    scrap: int = Field(
        default=0, ge=-MAX_COUNT, le=MAX_COUNT, description="Units, 0–10⁶; ≥ 0 unless a correction"
    )
    order: Label | None = None
    operation: int | None = Field(
        default=None, ge=1, le=MAX_INT, description="Routing step number, e.g. 10"
    )
    by: Label | None = Field(
        default=None, description="Who entered it (operator input); none = the machine"
    )

    @field_validator("good", "scrap")
    @classmethod
    def _increment(cls, value: int, info: ValidationInfo) -> int:
        if value < 0 and info.data.get("corrects") is None:
            raise ValueError(
                "Input should be greater than or equal to 0 (only a correction, with "
                "'corrects', takes units off)"
            )
        return value


class TelemetrySample(_EventBase):
    """Named numeric readings taken at ``ts``."""

    stream: Literal["telemetry"] = "telemetry"
    metrics: dict[
        Annotated[str, StringConstraints(min_length=1, max_length=64)],
        Annotated[float, Field(ge=-MAX_MEASURE, le=MAX_MEASURE, allow_inf_nan=False)],
    ] = Field(min_length=1, description="Metric name -> finite value, |value| ≤ 10¹⁵")

    @field_validator("metrics", mode="before")
    @classmethod
    def _finite(cls, value: object) -> object:
        if isinstance(value, dict):
            for name, number in value.items():
                if isinstance(number, float) and not math.isfinite(number):
                    raise ValueError(f"metric '{name}' is not a finite number")
        return value


class EnergyReading(_EventBase):
    """A cumulative meter reading: electricity in kWh, or a fuel meter's quantity."""

    stream: Literal["energy"] = "energy"
    kwh: float | None = Field(
        default=None,
        ge=0,
        le=MAX_READING,
        allow_inf_nan=False,
        description="Cumulative electricity, kWh, 0–10¹²",
    )
    carrier: FuelCarrier | None = Field(default=None, description="Fuel meters only")
    quantity: float | None = Field(
        default=None,
        ge=0,
        le=MAX_READING,
        allow_inf_nan=False,
        description="Cumulative fuel quantity, 0–10¹²",
    )
    unit: Label | None = Field(default=None, description="Unit of quantity, e.g. MJ, kg, l")

    @model_validator(mode="after")
    def _electricity_or_fuel(self) -> EnergyReading:
        if self.carrier is None:
            if self.kwh is None:
                raise ValueError("an electricity reading needs 'kwh' (cumulative kWh)")
            if self.quantity is not None or self.unit is not None:
                raise ValueError("'quantity' and 'unit' belong to fuel meters; add 'carrier'")
        elif self.quantity is None or self.unit is None:
            raise ValueError(f"a {self.carrier.value} reading needs 'quantity' and 'unit'")
        return self


class OrderEvent(_EventBase):
    """A work order or one of its operations was released, started or completed on this machine."""

    stream: Literal["order"] = "order"
    order: Label
    event: OrderEventKind
    operation: int | None = Field(
        default=None, ge=1, le=MAX_INT, description="Routing step; none = whole order"
    )
    product: Label | None = Field(default=None, description="Product SKU (on release)")
    quantity: int | None = Field(
        default=None, ge=1, le=MAX_INT, description="Ordered units (on release)"
    )
    options: dict[Label, Label] | None = Field(
        default=None, description="Chosen variant options, option name -> choice code (on release)"
    )
    due: Timestamp | None = Field(default=None, description="Due time (on release)")
    priority: int | None = Field(
        default=None, ge=1, le=9, description="1 (most urgent) to 9; none = 5 (on create/release)"
    )

    @field_validator("due", mode="before")
    @classmethod
    def _due(cls, value: object) -> dt.datetime | None:
        return None if value is None else parse_ts(value)


class MaterialConsumption(_EventBase):
    """A quantity of a material lot was consumed, optionally for a work order."""

    stream: Literal["material"] = "material"
    material: Label
    lot: Label | None = None
    qty: float = Field(
        gt=0, le=MAX_MEASURE, allow_inf_nan=False, description="Quantity used, > 0, ≤ 10¹⁵"
    )
    unit: Label
    order: Label | None = None


class InspectionVerdict(enum.StrEnum):
    PASS = "pass"
    FAIL = "fail"


class DefectScore(BaseModel):
    """A class an inspection model scored for the unit (vision inspection)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: Label
    score: float = Field(ge=-MAX_MEASURE, le=MAX_MEASURE, allow_inf_nan=False)


class DefectBox(BaseModel):
    """Where a detection model found a defect, in pixels of the image (x1, y1, x2, y2)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: Label
    score: float = Field(ge=0, le=1, allow_inf_nan=False)
    box: list[Annotated[float, Field(ge=-1e6, le=1e6, allow_inf_nan=False)]] = Field(
        min_length=4, max_length=4
    )


class InspectionResult(_EventBase):
    """An inspection (a vision system, a gauge, a person) judged one unit or sample at ``ts``:
    pass or fail, and on a fail the defect class."""

    stream: Literal["inspection"] = "inspection"
    result: InspectionVerdict
    defect: Label | None = Field(
        default=None, description="Defect class of a fail, e.g. short_shot, flash, scratch"
    )
    order: Label | None = Field(default=None, description="Work order of the inspected unit")
    product: Label | None = Field(default=None, description="Product SKU of the inspected unit")
    unit: Label | None = Field(default=None, description="Serial or sample id, if any")
    image: Annotated[str, StringConstraints(min_length=1, max_length=512)] | None = Field(
        default=None, description="Where the image is kept: a file name or URL (never the image)"
    )
    score: float | None = Field(
        default=None,
        ge=0,
        le=1,
        allow_inf_nan=False,
        description="The classifier's confidence in ``defect``, 0–1",
    )
    # vision inspection (AI 品檢, docs/vision.md): what the model said and which model said it
    lot: Label | None = Field(default=None, description="Lot or batch of the inspected unit")
    defects: list[DefectScore] | None = Field(
        default=None, max_length=50, description="Classes the model scored, highest first"
    )
    boxes: list[DefectBox] | None = Field(
        default=None, max_length=100, description="Defects a detection model located"
    )
    model: Label | None = Field(default=None, description="Id of the model that judged the unit")
    model_version: Label | None = Field(default=None, description="Version of that model")
    latency_ms: float | None = Field(
        default=None,
        ge=0,
        le=3_600_000,
        allow_inf_nan=False,
        description="Time the model took for this image, ms",
    )

    @model_validator(mode="after")
    def _defect_only_on_fail(self) -> InspectionResult:
        if self.result is InspectionVerdict.PASS and self.defect is not None:
            raise ValueError("a passed inspection has no 'defect'; send result 'fail'")
        return self


class SafetyKind(enum.StrEnum):
    """What a safety device or detector reported (the ``safety`` stream)."""

    ESTOP_PRESSED = "estop_pressed"
    ESTOP_RELEASED = "estop_released"
    LIGHT_CURTAIN = "light_curtain"
    """A light curtain was interrupted."""
    AREA_SCANNER = "area_scanner"
    """An area (laser) scanner saw someone in its protective field."""
    GUARD_OPEN = "guard_open"
    """A guard door was opened while the machine ran."""
    PERSON_IN_ZONE = "person_in_zone"
    """A person in a danger zone, from an external vision detector."""
    GAS_LIMIT = "gas_limit"
    TEMPERATURE_LIMIT = "temperature_limit"


class SafetySeverity(enum.StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


STOPPING_SAFETY_KINDS = frozenset({SafetyKind.ESTOP_PRESSED})
"""Safety events that stop the machine: it enters ``unplanned_stop`` with reason
:data:`SAFETY_REASON` (the safety relay cuts the drives)."""

SAFETY_REASON = "SAFETY"
"""The downtime reason code of a stop a safety device caused."""


class SafetyEvent(_EventBase):
    """A safety device or detector at this machine reported ``kind`` at ``ts``, with a severity.

    ``zone`` names the guarded area; ``value`` and ``limit`` carry a gas or temperature reading
    and the limit it crossed; ``source`` names the device (``estop-2``, ``cam-3``)."""

    stream: Literal["safety"] = "safety"
    kind: SafetyKind
    severity: SafetySeverity
    zone: Label | None = Field(default=None, description="Guarded zone, e.g. imm-2-rear")
    source: Label | None = Field(default=None, description="Device or detector that reported it")
    value: float | None = Field(
        default=None,
        ge=-MAX_MEASURE,
        le=MAX_MEASURE,
        allow_inf_nan=False,
        description="The reading (gas ppm, °C) of a limit event",
    )
    limit: float | None = Field(
        default=None,
        ge=-MAX_MEASURE,
        le=MAX_MEASURE,
        allow_inf_nan=False,
        description="The limit the reading crossed",
    )


class StockKind(enum.StrEnum):
    """What a stock movement is (docs/inventory.md)."""

    RECEIPT = "receipt"
    ISSUE = "issue"
    BACKFLUSH = "backflush"
    TRANSFER = "transfer"
    ADJUST = "adjust"
    COUNT = "count"
    SCRAP = "scrap"
    QUARANTINE = "quarantine"
    RELEASE = "release"


MAX_STOCK = 1e9
"""Largest quantity of one stock movement, in the item's stock unit."""

_STOCK_PLACES: dict[str, tuple[bool, bool]] = {
    "receipt": (False, True),
    "issue": (True, False),
    "backflush": (True, False),
    "transfer": (True, True),
    "adjust": (False, True),
    "count": (False, True),
    "scrap": (True, False),
    "quarantine": (False, False),
    "release": (False, False),
}
"""Stock kind -> (needs from_location, needs to_location)."""


class StockMove(_EventBase):
    """A stock movement of one item (and lot) between locations, in the item's stock unit.

    ``machine`` names what recorded it (a stores terminal, a scale, an AGV); ``qty`` is in the
    item's stock unit (the CLI, import and REST convert what is typed). ``receipt`` puts stock at
    ``to_location``; ``issue``, ``backflush`` and ``scrap`` take it from ``from_location``;
    ``transfer`` moves it; ``adjust`` adds a signed quantity at ``to_location``; ``count`` sets
    the counted quantity at ``to_location``; ``quarantine`` and ``release`` hold and free a lot
    (no quantity moves)."""

    stream: Literal["stock"] = "stock"
    kind: StockKind
    item: Label
    lot: Label | None = Field(default=None, description="Lot (batch) number; none = untracked")
    qty: float = Field(
        default=0.0,
        ge=-MAX_STOCK,
        le=MAX_STOCK,
        allow_inf_nan=False,
        description="Stock units; > 0 but for adjust (signed), count (≥ 0), quarantine/release",
    )
    unit: Label
    from_location: Label | None = Field(default=None, description="Location taken from")
    to_location: Label | None = Field(default=None, description="Location put to (or counted)")
    order: Label | None = Field(default=None, description="Work order it was issued to")
    operation: int | None = Field(default=None, ge=1, le=MAX_INT, description="Routing step")
    ref: Label | None = Field(default=None, description="Purchase order, delivery note, task …")
    supplier: Label | None = Field(default=None, description="Supplier (receipt)")
    expiry: Timestamp | None = Field(default=None, description="Lot expiry (receipt)")
    cost_hkd: float | None = Field(
        default=None, ge=0, le=MAX_MEASURE, allow_inf_nan=False, description="HK$ per stock unit"
    )
    reason: Label | None = Field(default=None, description="Why (adjust, count, scrap, hold)")
    by: Label | None = Field(default=None, description="Who: an operator, an AGV, a robot")

    @field_validator("expiry", mode="before")
    @classmethod
    def _expiry(cls, value: object) -> dt.datetime | None:
        return None if value is None else parse_ts(value)

    @model_validator(mode="after")
    def _shape(self) -> StockMove:
        kind = self.kind.value
        a = "an" if kind[0] in "aeiou" else "a"
        needs_from, needs_to = _STOCK_PLACES[kind]
        if needs_from and self.from_location is None:
            raise ValueError(f"{a} {kind} needs 'from_location'")
        if needs_to and self.to_location is None:
            raise ValueError(f"{a} {kind} needs 'to_location'")
        if not needs_from and self.from_location is not None:
            raise ValueError(f"{a} {kind} has no 'from_location'")
        if not needs_to and self.to_location is not None:
            raise ValueError(f"{a} {kind} has no 'to_location'")
        if kind == "transfer" and self.from_location == self.to_location:
            raise ValueError("a transfer needs two different locations")
        if kind in ("quarantine", "release"):
            if self.lot is None:
                raise ValueError(f"a {kind} names the 'lot' it holds or frees")
            if self.qty != 0:
                raise ValueError(f"a {kind} moves no stock: leave 'qty' out")
        elif kind == "adjust":
            if self.qty == 0:
                raise ValueError("an adjust needs a non-zero 'qty' (signed)")
        elif kind == "count":
            if self.qty < 0:
                raise ValueError("a count's 'qty' is the quantity counted, ≥ 0")
        elif self.qty <= 0:
            raise ValueError(f"{a} {kind}'s 'qty' must be > 0")
        return self


class TaskStatus(enum.StrEnum):
    """Where a transfer task stands: microfab assigns it; the AGV (or person) reports the rest."""

    ASSIGNED = "assigned"
    ACKNOWLEDGED = "acknowledged"
    STARTED = "started"
    DONE = "done"
    FAILED = "failed"


class TransferTaskUpdate(_EventBase):
    """A transfer task assigned to an AGV, robot or person (``machine``), or its progress.

    microfab stores and publishes ``assigned`` (with what to move, from where, to where) on
    ``microfab/v1/{machine}/task``; the AGV answers on the same topic with ``acknowledged``,
    ``started``, ``done`` or ``failed`` (with a ``reason``), each a new event id. The stock
    itself moves by a ``stock`` transfer whose ``ref`` is the task id (docs/inventory.md)."""

    stream: Literal["task"] = "task"
    task: Label
    status: TaskStatus
    item: Label | None = None
    lot: Label | None = None
    qty: float | None = Field(
        default=None, gt=0, le=MAX_STOCK, allow_inf_nan=False, description="Stock units"
    )
    unit: Label | None = None
    from_location: Label | None = None
    to_location: Label | None = None
    reason: Label | None = Field(default=None, description="Why it failed")

    @model_validator(mode="after")
    def _assigned_says_what(self) -> TransferTaskUpdate:
        if self.status is TaskStatus.ASSIGNED:
            missing = [
                name
                for name in ("item", "qty", "unit", "from_location", "to_location")
                if getattr(self, name) is None
            ]
            if missing:
                raise ValueError(f"an assigned task needs {', '.join(missing)}")
        return self


Event = Annotated[
    StateChange
    | PartCount
    | TelemetrySample
    | EnergyReading
    | OrderEvent
    | MaterialConsumption
    | InspectionResult
    | SafetyEvent
    | StockMove
    | TransferTaskUpdate,
    Field(discriminator="stream"),
]
"""Any microfab event; the ``stream`` field says which."""

_EVENT_UNION: Any = Event  # an Annotated union; typed loosely here so every mypy accepts it
EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(_EVENT_UNION)

_COMMON = ("id", "ts", "machine", "stream")
_KEPT_WHEN_NULL = {
    "state": ("reason",),
    "count": ("order", "operation"),
    "order": ("operation",),
    "material": ("lot", "order"),
    "inspection": ("defect", "order", "product"),
    "safety": ("zone",),
    "stock": ("lot", "from_location", "to_location"),
}
"""Fields of the contract that are written even when empty, so every line of a stream has one shape."""


def event_from_dict(data: dict[str, Any]) -> Event:
    """Validate a plain object as an event; raise :class:`ValueError` with every fault named."""
    try:
        return EVENT_ADAPTER.validate_python(data)
    except ValidationError as exc:
        raise ValueError(describe_validation_error(exc)) from None


def describe_validation_error(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False):
        path = err["loc"][1:] if err["loc"] and err["loc"][0] in STREAMS else err["loc"]
        loc = ".".join(str(p) for p in path) or "(event)"  # first part is the stream tag
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "union_tag_invalid":
            msg = f"stream must be one of {', '.join(STREAMS)}"
        elif err["type"] == "union_tag_not_found":
            msg = "field 'stream' is missing"
        parts.append(f"{loc}: {msg}")
    return "; ".join(parts)


def event_to_dict(event: Event) -> dict[str, Any]:
    """The export/wire shape: common fields first, then the stream's fields; unset fields left out."""
    fast = _flat_dict(event)
    return fast if fast is not None else _serialized_dict(event)


def _serialized_dict(event: Event) -> dict[str, Any]:
    """:func:`event_to_dict` through pydantic's serializer (any event)."""
    data = event.model_dump(mode="json")
    kept = _KEPT_WHEN_NULL.get(event.stream, ())
    head = {k: data.pop(k) for k in _COMMON}
    return {**head, **{k: v for k, v in data.items() if v is not None or k in kept}}


_PLAIN = (str, int, float)


def _flat_dict(event: Event) -> dict[str, Any] | None:
    """:func:`event_to_dict` without pydantic's serializer, for the common case of an event whose
    fields are all plain values (text, numbers, enums, times, flat dicts of text or numbers):
    what ``model_dump(mode="json")`` gives, built directly (the serializer costs more than the
    rest of an ingest's per-event work). None for anything else (nested models, lists), which
    goes the serializer's way. Fields are in the model's order, like the serializer's."""
    kept = _KEPT_WHEN_NULL.get(event.stream, ())
    values = event.__dict__
    out: dict[str, Any] = {
        "id": values["id"],
        "ts": format_ts(values["ts"]),
        "machine": values["machine"],
        "stream": values["stream"],
    }
    for key, value in values.items():
        kind = type(value)
        if kind is str or kind is int or kind is float:
            if key not in _COMMON:
                out[key] = value
        elif value is None:
            if key in kept:
                out[key] = None
        elif isinstance(value, enum.Enum):
            out[key] = value.value
        elif kind is dt.datetime:
            if key != "ts":
                out[key] = format_ts(value)
        elif kind is dict:
            for item in value.values():
                if type(item) not in _PLAIN:
                    return None
            out[key] = dict(value)
        else:
            return None  # bool, lists, nested models: the serializer knows
    return out


def event_body(event: Event) -> dict[str, Any]:
    """The stream-specific fields only (what the store keeps in its ``body`` column)."""
    data = event_to_dict(event)
    for key in _COMMON:
        data.pop(key)
    return data


def event_digest(event: Event) -> str:
    """SHA-256 of the canonical JSON of the event: equal for equal content, whatever the key order."""
    return digest_of(event_to_dict(event))


def json_encoder(
    *, sort_keys: bool = False, separators: tuple[str, str] = (", ", ": ")
) -> Callable[[Any], str]:
    """``json.dumps(value, sort_keys=…, separators=…)`` (every other option at its default) as a
    reusable function: the same text, without building a new encoder on every call, which costs
    more than encoding a small event. Only for values without reference cycles, such as export
    dicts (the cycle check is what it leaves out)."""
    encoder = json.JSONEncoder(sort_keys=sort_keys, separators=separators)
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # no C accelerator
        return encoder.encode
    item_separator, key_separator = separators
    chunks = make(
        None,  # markers: no cycle check
        encoder.default,
        json.encoder.encode_basestring_ascii,  # ensure_ascii
        None,  # indent
        key_separator,
        item_separator,
        sort_keys,
        False,  # skipkeys
        True,  # allow_nan
    )

    def dumps(value: Any) -> str:
        return "".join(chunks(value, 0))

    probe = {"b": [1, 2.5, None, True, "é\n\u2028"], "a": {"z": -0.0, "y": 1e300, "x": 10**20}}
    return dumps if dumps(probe) == encoder.encode(probe) else encoder.encode


_canonical_json = json_encoder(sort_keys=True, separators=(",", ":"))
"""``json.dumps(data, sort_keys=True, separators=(",", ":"))``: the canonical text of an event."""


def digest_of(data: dict[str, Any]) -> str:
    """:func:`event_digest` of an event already turned into its export dict."""
    return hashlib.sha256(_canonical_json(data).encode("utf-8")).hexdigest()


def split_body(data: dict[str, Any]) -> dict[str, Any]:
    """The stream-specific part of an export dict (what :func:`event_body` returns)."""
    return {k: v for k, v in data.items() if k not in _COMMON}


def events_json_schema() -> dict[str, Any]:
    """JSON Schema of one event (written to docs/events.schema.json)."""
    schema = EVENT_ADAPTER.json_schema(mode="serialization")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"urn:microfab:schema:events:v{EVENT_SCHEMA_VERSION}",
        "title": f"microfab event, schema version {EVENT_SCHEMA_VERSION}",
        **schema,
    }


def safety_stop(event: Event) -> StateChange | None:
    """The state change a stopping safety event implies (an e-stop: ``unplanned_stop``, reason
    ``SAFETY``, same time, id = the safety event's id + ``~stop``), or None."""
    if not isinstance(event, SafetyEvent) or event.kind not in STOPPING_SAFETY_KINDS:
        return None
    return StateChange(
        id=event.id[:59] + "~stop",
        ts=event.ts,
        machine=event.machine,
        state=MachineState.UNPLANNED_STOP,
        reason=SAFETY_REASON,
    )
