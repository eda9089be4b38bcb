"""The factory model: ISA-95 equipment hierarchy, products, routings, calendars and reason codes.

Everything here is pure validated data (pydantic, frozen, no I/O). A factory file in YAML is parsed
into :class:`Factory` by :mod:`microfab.model.factory_file`; cross references (a routing naming a
machine, a line naming a calendar) are checked here so an invalid model can never be built.
"""

from __future__ import annotations

import datetime as dt
import enum
import zoneinfo
from collections.abc import Iterator
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from microfab.model.materials import Item, Location, location_tree, material_faults
from microfab.model.plc_address import (
    S7_DEFAULT_TYPE,
    check_logix_tag,
    check_s7_type,
    parse_mc,
    parse_s7,
)

Slug = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$"),
    Field(
        description="Identifier: lower-case letters, digits, '-' or '_' (max 40); used in MQTT topics"
    ),
]
"""An identifier that is safe as one MQTT topic level and one path segment."""

HolidayRegion = Literal["HK", "CN", "CN-GD", "MO", "VN", "MY", "TH", "SG"]
"""Public-holiday calendars a site can name (the ``holidays`` package; CN-GD: Guangdong, which
keeps the national holidays)."""

ClockTime = Annotated[str, StringConstraints(pattern=r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")]


class MachineKind(enum.StrEnum):
    """What a machine is; decides default telemetry and whether it produces parts."""

    CNC = "cnc"
    INJECTION_MOULDER = "injection_moulder"
    ROBOT_ARM = "robot_arm"
    AGV = "agv"
    FILLER = "filler"
    CHILLER = "chiller"
    STERILISER = "steriliser"
    PACKER = "packer"
    VISION_INSPECTION = "vision_inspection"
    ENERGY_METER = "energy_meter"
    PRESS = "press"
    PRINTER_3D = "printer_3d"
    LASER_CUTTER = "laser_cutter"
    CONVEYOR = "conveyor"
    AIR_COMPRESSOR = "air_compressor"


class ElectricitySupplier(enum.StrEnum):
    """Hong Kong's two power companies."""

    CLP = "clp"
    HK_ELECTRIC = "hk_electric"


class Weekday(enum.StrEnum):
    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"

    @property
    def iso(self) -> int:
        """ISO weekday number, Monday = 1."""
        return list(Weekday).index(self) + 1


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_enum_values=False)


# --------------------------------------------------------------------------- equipment hierarchy


class PointStream(enum.StrEnum):
    """Streams a connected data point can feed."""

    STATE = "state"
    COUNT = "count"
    TELEMETRY = "telemetry"
    ENERGY = "energy"


class PointMap(_Frozen):
    """How one data point (OPC UA node, Sparkplug metric, Modbus register) becomes events.

    - ``state``: the raw value is looked up in ``states`` (e.g. ``{1: running, 2: idle}``); a raw
      value missing from the table becomes ``unplanned_stop`` with reason ``UNMAPPED-<value>``.
    - ``count``: ``field`` is ``good`` or ``scrap``; PLC counters are usually running totals
      (``cumulative: true``, the default) and become increments; a drop is taken as a counter reset.
    - ``telemetry``: the value is reported as metric ``metric`` (default: the point's name).
    - ``energy``: a cumulative kWh reading (``scale`` converts, e.g. 0.001 for Wh).
    """

    point: str = Field(min_length=1, description="Node id, metric name or register address")
    stream: PointStream
    field: Literal["good", "scrap"] | None = None
    metric: str | None = None
    states: dict[str, str] = Field(default_factory=dict)
    cumulative: bool = True
    scale: float = 1.0

    @field_validator("states", mode="before")
    @classmethod
    def _raw_values_as_text(cls, value: object) -> object:
        # YAML reads `1: running` with an int key and `true: running` with a bool key; the
        # mapper compares raw values as text ("1", "true"), so keys are normalised the same way.
        if isinstance(value, dict):
            return {_raw_text(key): state for key, state in value.items()}
        return value

    @model_validator(mode="after")
    def _complete(self) -> PointMap:
        if self.stream is PointStream.COUNT and self.field is None:
            raise ValueError("a count point needs field: good or scrap")
        if self.stream is PointStream.STATE and not self.states:
            raise ValueError("a state point needs states: raw value -> microfab state")
        for raw, state in self.states.items():
            if state not in _STATES:
                raise ValueError(f"states[{raw!r}]: '{state}' is not one of {', '.join(_STATES)}")
        return self


def _raw_text(key: object) -> str:
    """A raw PLC value as the text the connectors compare with (``True`` -> ``"true"``)."""
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, float) and key.is_integer():
        return str(int(key))
    return str(key)


_STATES = ("running", "idle", "setup", "planned_stop", "unplanned_stop", "micro_stop", "offline")


class OpcUaSource(_Frozen):
    """Subscribe to OPC UA nodes of one server."""

    endpoint: str = Field(pattern=r"^opc\.tcp://", description="e.g. opc.tcp://10.0.0.5:4840")
    publishing_interval_ms: int = Field(default=500, ge=10)
    points: list[PointMap] = Field(
        min_length=1, description="point = node id, e.g. ns=2;s=Press1.State"
    )


class SparkplugSource(_Frozen):
    """Metrics of one Sparkplug B edge node (or one device of it)."""

    group: str = Field(min_length=1)
    edge_node: str = Field(min_length=1)
    device: str | None = Field(
        default=None, description="Device id; none = the edge node's own metrics"
    )
    points: list[PointMap] = Field(min_length=1, description="point = Sparkplug metric name")


class ModbusRegister(PointMap):
    """A Modbus register (or register pair) polled over Modbus TCP; point = register address.

    The address is 0-based, as on the wire (holding register 40001 of a PLC manual is ``"0"``); a
    decimal holding address 40001-49999 or input address 30001-39999 is refused as the 4xxxx/3xxxx
    convention (write a register that really has such an address in hex, ``"0x9c47"``). A count
    register must be a running total: a polled register is read again at every poll, so
    ``cumulative: false`` would count the same parts again.
    """

    table: Literal["holding", "input", "coil", "discrete"] = "holding"
    data_type: Literal["uint16", "int16", "uint32", "int32", "float32", "bool"] = "uint16"
    word_order: Literal["big", "little"] = "big"
    deadband: float = Field(
        default=0.0,
        ge=0,
        description="telemetry: store a new reading only when it differs from the last stored "
        "one by more than this (after scale); 0 = on any change",
    )

    @model_validator(mode="after")
    def _pollable(self) -> ModbusRegister:
        if self.stream is PointStream.COUNT and not self.cumulative:
            raise ValueError(
                "cumulative: false cannot be used with Modbus: a register is read again at every "
                "poll, so the same parts would be counted again; map the PLC's running total "
                "(cumulative: true, the default)"
            )
        if self.deadband and self.stream is not PointStream.TELEMETRY:
            raise ValueError("deadband is for telemetry points only")
        text = self.point.strip()
        digit = {"holding": 4, "input": 3}.get(self.table)
        if digit is not None and text.isdigit():
            address = int(text)
            # 4xxxx: 40001-49999 are registers 0-9998; 6 digits: 400001-465536 are 0-65535
            for first, last in ((digit * 10_000 + 1, digit * 10_000 + 9_999),
                                (digit * 100_000 + 1, digit * 100_000 + 65_536)):  # fmt: skip
                if first <= address <= last:
                    real = (
                        f" (if the device really uses address {address}, write it in hex: "
                        f"'{address:#x}')"
                        if address <= 0xFFFF
                        else ""
                    )
                    raise ValueError(
                        f"point '{self.point}' looks like a {digit}xxxx reference; write the "
                        f"0-based address {address - first}{real}"
                    )
        return self


class ModbusSource(_Frozen):
    """Poll registers of one Modbus TCP device."""

    host: str = Field(min_length=1)
    port: int = Field(default=502, ge=1, le=65535)
    unit: int = Field(default=1, ge=0, le=255, description="Modbus unit (slave) id")
    poll_s: float = Field(default=1.0, gt=0)
    heartbeat_s: float = Field(
        default=60.0,
        gt=0,
        description="telemetry and energy are stored when they change, and at least this often "
        "while unchanged",
    )
    points: list[ModbusRegister] = Field(min_length=1)


def _polled_count_is_a_running_total(point: PointMap, protocol: str) -> None:
    if point.stream is PointStream.COUNT and not point.cumulative:
        raise ValueError(
            f"cumulative: false cannot be used with {protocol}: a point is read again at every "
            "poll, so the same parts would be counted again; map the PLC's running total "
            "(cumulative: true, the default)"
        )


class S7Point(PointMap):
    """A Siemens S7 address (``DB1.DBW0``, ``DB1.DBX14.0``, ``MW10``, ``I0.0``); big-endian."""

    data_type: Literal["bool", "byte", "int16", "uint16", "int32", "uint32", "real"] | None = Field(
        default=None, description="default: bool for a bit, byte, int16 for a word, int32 for DBD"
    )

    @model_validator(mode="after")
    def _address(self) -> S7Point:
        _polled_count_is_a_running_total(self, "S7")
        address = parse_s7(self.point)
        check_s7_type(address, self.data_type or S7_DEFAULT_TYPE[address.width])
        return self


class S7Source(_Frozen):
    """Poll data blocks and the M, I, Q areas of one Siemens S7 PLC (S7-300/400/1200/1500)."""

    host: str = Field(min_length=1)
    port: int = Field(default=102, ge=1, le=65535)
    rack: int = Field(default=0, ge=0, le=7)
    slot: int = Field(default=1, ge=0, le=31)
    poll_s: float = Field(default=1.0, gt=0)
    heartbeat_s: float = Field(
        default=60.0, gt=0, description="telemetry is stored on change, and at least this often"
    )
    points: list[S7Point] = Field(min_length=1)


class McPoint(PointMap):
    """A Mitsubishi device (``D100``, ``M10``, ``X0``, ``D200:2`` for a 32-bit pair)."""

    data_type: Literal["bool", "int16", "uint16", "int32", "uint32", "real"] | None = Field(
        default=None, description="default: bool for a bit device, int16 for a word, int32 for :2"
    )

    @model_validator(mode="after")
    def _address(self) -> McPoint:
        _polled_count_is_a_running_total(self, "MC protocol")
        address = parse_mc(self.point)
        wanted = self.data_type
        if wanted is not None:
            fits = {0: ("bool",), 1: ("int16", "uint16", "bool"), 2: ("int32", "uint32", "real")}
            if wanted not in fits[address.words]:
                raise ValueError(
                    f"data_type {wanted} does not fit '{self.point}'; use "
                    f"{' or '.join(fits[address.words])} (a 32-bit value is a pair: D200:2)"
                )
        return self


class McSource(_Frozen):
    """Poll devices of one Mitsubishi MELSEC PLC over MC protocol (3E frame, binary)."""

    host: str = Field(min_length=1)
    port: int = Field(default=5007, ge=1, le=65535)
    poll_s: float = Field(default=1.0, gt=0)
    heartbeat_s: float = Field(
        default=60.0, gt=0, description="telemetry is stored on change, and at least this often"
    )
    points: list[McPoint] = Field(min_length=1)


class EnipPoint(PointMap):
    """A Logix tag read over EtherNet/IP (``Line1.State``, ``Counts[2]``)."""

    @model_validator(mode="after")
    def _tag(self) -> EnipPoint:
        _polled_count_is_a_running_total(self, "EtherNet/IP")
        check_logix_tag(self.point)
        return self


class EnipSource(_Frozen):
    """Poll tags of one Allen-Bradley ControlLogix/CompactLogix (or compatible) PLC."""

    host: str = Field(min_length=1)
    port: int = Field(default=44818, ge=1, le=65535)
    slot: int = Field(default=0, ge=0, le=31, description="slot of the CPU in the backplane")
    poll_s: float = Field(default=1.0, gt=0)
    heartbeat_s: float = Field(
        default=60.0, gt=0, description="telemetry is stored on change, and at least this often"
    )
    points: list[EnipPoint] = Field(min_length=1)


class MTConnectSource(_Frozen):
    """Read DataItems of one device of an MTConnect agent (``current``, then ``sample``)."""

    agent: str = Field(pattern=r"^https?://", description="e.g. http://10.0.0.7:5000")
    device: str | None = Field(default=None, description="device name; none = the agent's all")
    poll_s: float = Field(default=1.0, gt=0)
    heartbeat_s: float = Field(
        default=60.0, gt=0, description="telemetry is stored on change, and at least this often"
    )
    points: list[PointMap] = Field(min_length=1, description="point = DataItem id")


class MachineConnect(_Frozen):
    """Where a machine's data comes from when it does not publish microfab events itself."""

    opcua: OpcUaSource | None = None
    sparkplug: SparkplugSource | None = None
    modbus: ModbusSource | None = None
    s7: S7Source | None = None
    mc: McSource | None = None
    enip: EnipSource | None = None
    mtconnect: MTConnectSource | None = None


class Machine(_Frozen):
    """An ISA-95 equipment unit: the thing that runs, stops, counts parts and draws power."""

    id: Slug
    name: str = ""
    kind: MachineKind
    ideal_cycle_s: float | None = Field(
        default=None, gt=0, description="Ideal (nameplate) time for one unit, seconds"
    )
    metered: bool = Field(default=False, description="Has its own cumulative electricity meter")
    setup_matrix: str | None = Field(
        default=None,
        description="Name of the setup matrix used on this machine (see setup_matrices)",
    )
    connect: MachineConnect | None = Field(
        default=None,
        description="How microfab reads this machine over OPC UA, Sparkplug B, Modbus TCP, S7, "
        "MC protocol, EtherNet/IP or MTConnect",
    )
    inspection_model: str | None = Field(
        default=None,
        min_length=1,
        max_length=500,
        description="A vision inspection station's model card (YAML, docs/vision.md), relative "
        "to where microfab runs: images uploaded for this machine are judged by its model",
    )

    @property
    def produces(self) -> bool:
        """True when the machine makes or handles countable units (it has an ideal cycle time)."""
        return self.ideal_cycle_s is not None

    @property
    def has_meter(self) -> bool:
        return self.metered or self.kind is MachineKind.ENERGY_METER

    @model_validator(mode="after")
    def _meter_has_no_cycle(self) -> Machine:
        if self.kind is MachineKind.ENERGY_METER and self.ideal_cycle_s is not None:
            raise ValueError("an energy_meter makes no parts: leave ideal_cycle_s out")
        return self


class Cell(_Frozen):
    """An ISA-95 work cell: a group of machines that work together."""

    id: Slug
    name: str = ""
    machines: list[Machine] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> Cell:
        _check_unique("machines", [m.id for m in self.machines])
        return self


class Line(_Frozen):
    """An ISA-95 production line, run to one shift calendar."""

    id: Slug
    name: str = ""
    calendar: Slug = Field(description="Id of an entry in calendars")
    cells: list[Cell] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> Line:
        _check_unique("cells", [c.id for c in self.cells])
        return self


class Area(_Frozen):
    """An ISA-95 area of a site."""

    id: Slug
    name: str = ""
    lines: list[Line] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> Area:
        _check_unique("lines", [ln.id for ln in self.lines])
        return self


class Site(_Frozen):
    """An ISA-95 site: one plant, in one time zone, supplied by one power company."""

    id: Slug
    name: str = ""
    timezone: str = "Asia/Hong_Kong"
    electricity_supplier: ElectricitySupplier = ElectricitySupplier.CLP
    holidays: HolidayRegion | None = Field(
        default="HK", description="Public-holiday calendar applied to every line of the site"
    )
    areas: list[Area] = Field(min_length=1)
    # multi-site settings (issue 20), all optional: a Hong Kong site needs none of them
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] = Field(
        default="HKD", description="ISO 4217 currency of the site's own money figures"
    )
    grid_factor: str | None = Field(
        default=None,
        description="Emission factor key of the site's grid electricity, e.g. electricity/cn-national "
        "or electricity/vn-national [default: from electricity_supplier]",
    )
    order_prefix: Annotated[str, StringConstraints(pattern=r"^[A-Z0-9][A-Z0-9-]{0,11}$")] | None = (
        Field(
            default=None,
            description="Start of the site's automatic work-order ids, e.g. GD1- (GD1-WO261207-001), "
            "so that orders stay unique when HQ holds several sites",
        )
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"'{value}' is not an IANA time zone such as Asia/Hong_Kong") from None
        return value

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    @model_validator(mode="after")
    def _unique(self) -> Site:
        _check_unique("areas", [a.id for a in self.areas])
        return self


# --------------------------------------------------------------------------- products


class BomItem(_Frozen):
    """One material in a bill of materials, per unit of product."""

    material: str = Field(min_length=1, description="Material SKU")
    qty: float = Field(gt=0, description="Quantity per unit of product")
    unit: str = Field(min_length=1, description="Unit of qty, e.g. kg, g, pcs, l")


class OptionChoice(_Frozen):
    """One choice of a variant option; may add materials or stretch processing times."""

    code: str = Field(min_length=1)
    name: str = ""
    bom_add: list[BomItem] = Field(default_factory=list)
    time_factor: float = Field(default=1.0, gt=0, description="Multiplies every processing time")


class VariantOption(_Frozen):
    """An option a customer chooses per custom order (size, colour, flavour, …)."""

    name: str = Field(min_length=1)
    choices: list[OptionChoice] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> VariantOption:
        _check_unique("choices", [c.code for c in self.choices])
        return self


class Operation(_Frozen):
    """One routing step: where it can run, how long per unit on each machine, its setup family."""

    seq: int = Field(ge=1, description="Step number as written on the routing, e.g. 10, 20, 30")
    name: str = Field(min_length=1)
    machines: dict[Slug, float] = Field(
        min_length=1,
        description="Eligible machine id -> processing time per unit on it, seconds",
    )
    setup_family: str | None = None

    @field_validator("machines")
    @classmethod
    def _positive_times(cls, value: dict[str, float]) -> dict[str, float]:
        for machine, seconds in value.items():
            if seconds <= 0:
                raise ValueError(
                    f"processing time on '{machine}' must be > 0 seconds, got {seconds}"
                )
        return value


class Product(_Frozen):
    """A product the factory sells, made to order in variants."""

    sku: str = Field(min_length=1)
    name: str = ""
    unit_mass_kg: float = Field(gt=0)
    unit_price_hkd: float = Field(ge=0)
    options: list[VariantOption] = Field(default_factory=list)
    bom: list[BomItem] = Field(default_factory=list)
    routing: list[Operation] = Field(min_length=1)

    @model_validator(mode="after")
    def _routing_order(self) -> Product:
        seqs = [op.seq for op in self.routing]
        if seqs != sorted(set(seqs)):
            raise ValueError(f"routing step numbers must be unique and increasing, got {seqs}")
        _check_unique("options", [o.name for o in self.options])
        return self


# --------------------------------------------------------------------------- calendars and reasons


class Break(_Frozen):
    name: str = "break"
    start: ClockTime
    end: ClockTime


class Shift(_Frozen):
    """A recurring shift; ``end`` before ``start`` means it runs past midnight."""

    name: str = Field(min_length=1)
    start: ClockTime
    end: ClockTime
    days: list[Weekday] = Field(
        default_factory=lambda: [Weekday.MON, Weekday.TUE, Weekday.WED, Weekday.THU, Weekday.FRI]
    )
    breaks: list[Break] = Field(default_factory=list)


class Closure(_Frozen):
    """An ad-hoc closure entered as a planned stop: typhoon signal 8, black rainstorm, stock-take."""

    start: dt.datetime
    end: dt.datetime
    reason: str = Field(min_length=1, description="Downtime reason code, e.g. PX-T8")
    note: str = ""

    @model_validator(mode="after")
    def _ordered(self) -> Closure:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError(
                "closure start and end need a UTC offset, e.g. 2026-09-01T06:00:00+08:00"
            )
        if self.end <= self.start:
            raise ValueError("closure end must be after its start")
        return self


class Calendar(_Frozen):
    """Shift calendar of one or more lines."""

    id: Slug
    shifts: list[Shift] = Field(min_length=1)
    public_holidays_off: bool = Field(
        default=True, description="No shifts on the site's public holidays"
    )
    closures: list[Closure] = Field(default_factory=list)


class ReasonCategory(enum.StrEnum):
    PLANNED = "planned"
    UNPLANNED = "unplanned"


class ReasonCode(_Frozen):
    """A node of the downtime reason-code tree."""

    code: Annotated[str, StringConstraints(pattern=r"^[A-Z0-9][A-Z0-9_.-]{0,31}$")]
    name: str = Field(min_length=1)
    name_zh: str = ""
    children: list[ReasonCode] = Field(default_factory=list)

    def walk(self) -> Iterator[ReasonCode]:
        yield self
        for child in self.children:
            yield from child.walk()


class DowntimeReasons(_Frozen):
    planned: list[ReasonCode] = Field(default_factory=list)
    unplanned: list[ReasonCode] = Field(default_factory=list)

    def category_of(self, code: str) -> ReasonCategory | None:
        for category, roots in (
            (ReasonCategory.PLANNED, self.planned),
            (ReasonCategory.UNPLANNED, self.unplanned),
        ):
            for root in roots:
                if any(node.code == code for node in root.walk()):
                    return category
        return None

    def codes(self) -> list[str]:
        return [node.code for root in [*self.planned, *self.unplanned] for node in root.walk()]


class Company(_Frozen):
    """The legal entity that owns the factory (used by funding and carbon reports)."""

    name: str = Field(min_length=1)
    name_zh: str = ""
    br_number: str | None = Field(
        default=None, description="Hong Kong Business Registration number"
    )
    cr_number: str | None = Field(default=None, description="Companies Registry number (Cap. 622)")


# --------------------------------------------------------------------------- the factory


class MachineRef(BaseModel):
    """A machine together with where it sits in the hierarchy."""

    model_config = ConfigDict(frozen=True)

    site: Site
    area: Area
    line: Line
    cell: Cell
    machine: Machine

    @property
    def path(self) -> str:
        return "/".join((self.site.id, self.area.id, self.line.id, self.cell.id, self.machine.id))


class Factory(_Frozen):
    """A whole factory model, as written in a factory file."""

    schema_version: Literal[1] = 1
    company: Company
    sites: list[Site] = Field(min_length=1)
    calendars: list[Calendar] = Field(min_length=1)
    downtime_reasons: DowntimeReasons = Field(default_factory=DowntimeReasons)
    setup_matrices: dict[str, dict[str, dict[str, float]]] = Field(
        default_factory=dict,
        description="Matrix name -> from family -> to family -> setup seconds (missing = 0)",
    )
    products: list[Product] = Field(default_factory=list)
    items: list[Item] = Field(
        default_factory=list, description="The item master: materials, packaging, WIP, goods"
    )
    locations: list[Location] = Field(
        default_factory=list, description="Stock locations, a tree (docs/inventory.md)"
    )

    # ------------------------------------------------------------------ look-ups

    def machines(self) -> list[MachineRef]:
        """Every machine with its place in the hierarchy, in file order."""
        return [
            MachineRef(site=s, area=a, line=ln, cell=c, machine=m)
            for s in self.sites
            for a in s.areas
            for ln in a.lines
            for c in ln.cells
            for m in c.machines
        ]

    def machine(self, path: str) -> MachineRef:
        for ref in self.machines():
            if ref.path == path:
                return ref
        raise KeyError(path)

    def calendar(self, calendar_id: str) -> Calendar:
        for cal in self.calendars:
            if cal.id == calendar_id:
                return cal
        raise KeyError(calendar_id)

    def product(self, sku: str) -> Product:
        for product in self.products:
            if product.sku == sku:
                return product
        raise KeyError(sku)

    def item(self, sku: str) -> Item:
        for item in self.items:
            if item.sku == sku:
                return item
        raise KeyError(sku)

    def stock_locations(self) -> dict[str, Location]:
        """Every stock location of the tree by id, in file order."""
        return {location.id: location for location, _, _ in location_tree(self.locations)}

    def setup_seconds(
        self, machine: Machine, from_family: str | None, to_family: str | None
    ) -> float:
        """Sequence-dependent setup time on ``machine`` when switching between two families."""
        if machine.setup_matrix is None or from_family is None or to_family is None:
            return 0.0
        return self.setup_matrices[machine.setup_matrix].get(from_family, {}).get(to_family, 0.0)

    # ------------------------------------------------------------------ cross references

    @model_validator(mode="after")
    def _cross_references(self) -> Factory:
        _check_unique("sites", [s.id for s in self.sites])
        _check_unique("calendars", [c.id for c in self.calendars])
        _check_unique("products", [p.sku for p in self.products])
        _check_unique("downtime_reasons", self.downtime_reasons.codes())
        calendar_ids = {c.id for c in self.calendars}
        machine_by_id: dict[str, Machine] = {}
        for si, site in enumerate(self.sites):
            for ai, area in enumerate(site.areas):
                for li, line in enumerate(area.lines):
                    line_loc: tuple[str | int, ...] = ("sites", si, "areas", ai, "lines", li)
                    if line.calendar not in calendar_ids:
                        raise _LocatedError(
                            (*line_loc, "calendar"),
                            f"'{line.calendar}' is not a calendar id; known: "
                            + ", ".join(sorted(calendar_ids)),
                        )
                    for ci, cell in enumerate(line.cells):
                        for mi, machine in enumerate(cell.machines):
                            loc = (*line_loc, "cells", ci, "machines", mi)
                            if machine.id in machine_by_id:
                                raise _LocatedError(
                                    (*loc, "id"),
                                    f"machine id '{machine.id}' is used twice; machine ids must be "
                                    "unique in a factory so that routings can name them",
                                )
                            machine_by_id[machine.id] = machine
                            matrix = machine.setup_matrix
                            if matrix is not None and matrix not in self.setup_matrices:
                                raise _LocatedError(
                                    (*loc, "setup_matrix"),
                                    f"'{matrix}' is not a key of setup_matrices",
                                )
        reason_codes = set(self.downtime_reasons.codes())
        for ci, cal in enumerate(self.calendars):
            for ki, closure in enumerate(cal.closures):
                if reason_codes and closure.reason not in reason_codes:
                    raise _LocatedError(
                        ("calendars", ci, "closures", ki, "reason"),
                        f"'{closure.reason}' is not a downtime reason code",
                    )
        for pi, product in enumerate(self.products):
            for oi, op in enumerate(product.routing):
                for machine_id in op.machines:
                    eligible = machine_by_id.get(machine_id)
                    if eligible is None:
                        raise _LocatedError(
                            ("products", pi, "routing", oi, "machines", machine_id),
                            f"'{machine_id}' is not a machine id of this factory",
                        )
                    if not eligible.produces:
                        raise _LocatedError(
                            ("products", pi, "routing", oi, "machines", machine_id),
                            f"machine '{machine_id}' ({eligible.kind.value}) has no ideal_cycle_s, "
                            "so it cannot run a routing step",
                        )
        line_ids = {ln.id for s in self.sites for a in s.areas for ln in a.lines}
        for loc, message in material_faults(self.items, self.locations, line_ids)[:1]:
            raise _LocatedError(loc, message)
        return self


class _LocatedError(ValueError):
    """A cross-reference fault with the field path it belongs to (reported by the file loader)."""

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc
        self.message = message


def _check_unique(what: str, ids: list[str]) -> None:
    seen: set[str] = set()
    for item in ids:
        if item in seen:
            raise ValueError(f"{what}: '{item}' appears more than once; ids must be unique")
        seen.add(item)
