"""Items and stock locations of the factory model: the item master and the location tree.

Pure validated data (pydantic, frozen, no I/O), part of :class:`microfab.model.factory.Factory`
(``items:`` and ``locations:`` in the factory file). An item has one *stock unit* (a pint unit
such as ``kg``, ``g``, ``l`` or ``pcs``); quantities entered in another unit are converted to it,
by pint (``g`` → ``kg``) or by the item's own pack sizes (``units: {carton: 24}``: one carton is
24 stock units). Locations form a tree (warehouse → zone → bin; line-side buffers, cold rooms,
quarantine), each with the storage condition it keeps; a line-side location may carry kanban
rules (min/max per item, refilled from a source location).
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Iterator
from typing import Annotated, Any

import pint
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

LocationId = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$"),
    Field(description="Location id: lower-case letters, digits, '-' or '_' (max 40)"),
]
Sku = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"),
    Field(description="Item code (SKU): letters, digits, '_', '.' or '-' (max 64)"),
]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_enum_values=False)


class ItemKind(enum.StrEnum):
    MATERIAL = "material"
    PACKAGING = "packaging"
    WIP = "wip"
    FINISHED = "finished"


class StorageCondition(enum.StrEnum):
    AMBIENT = "ambient"
    CHILLED = "chilled"
    FROZEN = "frozen"


class LocationKind(enum.StrEnum):
    WAREHOUSE = "warehouse"
    ZONE = "zone"
    BIN = "bin"
    RECEIVING = "receiving"
    LINE_SIDE = "line_side"
    COLD_ROOM = "cold_room"
    QUARANTINE = "quarantine"
    SHIPPING = "shipping"


class UnitError(ValueError):
    """A quantity's unit does not convert to the item's stock unit."""


@functools.cache
def units() -> pint.UnitRegistry[Any]:
    """The unit registry of stock quantities: pint's, with pieces (``pcs``, ``ea``)."""
    registry: pint.UnitRegistry[Any] = pint.UnitRegistry()
    registry.define("piece = [piece] = pcs = ea")
    return registry


def _pint_unit(text: str) -> Any:
    try:
        return units().Unit(text)
    except Exception:  # pint's parser raises errors of several kinds on odd text
        return None


class Item(_Frozen):
    """One item of the item master: a material, packaging, work in progress or finished good."""

    sku: Sku
    name: str = ""
    name_zh: str = ""
    kind: ItemKind = ItemKind.MATERIAL
    unit: str = Field(min_length=1, description="Stock unit, a pint unit: kg, g, l, pcs …")
    units: dict[str, float] = Field(
        default_factory=dict,
        description="Pack units of this item: name -> how many stock units one holds, e.g. "
        "carton: 24",
    )
    lot_tracked: bool = Field(default=True, description="Every movement names a lot")
    shelf_life_days: int | None = Field(
        default=None, ge=1, description="Days from receipt to expiry (perishables)"
    )
    storage: StorageCondition = StorageCondition.AMBIENT
    standard_cost_hkd: float = Field(default=0.0, ge=0, description="HK$ per stock unit")
    allow_negative: bool = Field(default=False, description="On hand may go below zero")
    backflush: bool = Field(
        default=False, description="Issued automatically from counts × BOM (not picked)"
    )
    supplier: str | None = None
    lead_time_days: float = Field(default=0.0, ge=0, description="Supplier lead time, days")
    service_level: float = Field(
        default=0.95, gt=0, lt=1, description="Chance of no stock-out in a lead time, e.g. 0.95"
    )
    moq: float = Field(default=0.0, ge=0, description="Minimum order quantity, stock units")
    pack_size: float | None = Field(
        default=None, gt=0, description="Orders are whole multiples of this, stock units"
    )
    order_cover_days: float = Field(
        default=7.0, ge=0, description="Days of mean demand an order covers above the reorder point"
    )
    demand_days: int = Field(
        default=28, ge=1, le=366, description="Days of consumption the reorder point looks at"
    )

    @field_validator("unit")
    @classmethod
    def _known_unit(cls, value: str) -> str:
        if _pint_unit(value) is None:
            raise ValueError(f"'{value}' is not a unit pint knows (kg, g, l, ml, pcs, m …)")
        return value

    @field_validator("units")
    @classmethod
    def _pack_units(cls, value: dict[str, float]) -> dict[str, float]:
        for name, size in value.items():
            if not name.strip():
                raise ValueError("a pack unit needs a name")
            if not size > 0:
                raise ValueError(f"pack unit '{name}' must hold more than 0 stock units")
        return value

    def to_stock(self, qty: float, unit: str) -> float:
        """``qty`` ``unit`` in this item's stock unit; :class:`UnitError` when it does not
        convert (a pack unit of the item, or any pint unit of the same dimension)."""
        if unit == self.unit:
            return qty
        if unit in self.units:
            return qty * self.units[unit]
        source = _pint_unit(unit)
        target = _pint_unit(self.unit)
        if source is None or target is None:
            raise UnitError(
                f"unit '{unit}' does not convert to {self.sku}'s stock unit {self.unit} "
                f"(known: {', '.join([self.unit, *self.units])} or a pint unit of the same kind)"
            )
        try:
            return float(units().Quantity(qty, source).to(target).magnitude)
        except pint.errors.DimensionalityError:
            raise UnitError(
                f"unit '{unit}' does not convert to {self.sku}'s stock unit {self.unit}"
            ) from None


class Kanban(_Frozen):
    """A line-side kanban: refill ``item`` from ``source`` up to ``max`` when it falls to ``min``."""

    item: str = Field(min_length=1)
    min: float = Field(ge=0, description="Refill when on hand falls to this, stock units")
    max: float = Field(gt=0, description="Refill up to this, stock units")
    source: LocationId = Field(description="Location the refill comes from")

    @model_validator(mode="after")
    def _ordered(self) -> Kanban:
        if self.max <= self.min:
            raise ValueError(f"kanban max {self.max} must be above min {self.min}")
        return self


class Location(_Frozen):
    """A stock location; ``children`` make the tree (warehouse → zone → bin)."""

    id: LocationId
    name: str = ""
    name_zh: str = ""
    kind: LocationKind = LocationKind.BIN
    storage: StorageCondition = StorageCondition.AMBIENT
    line: str | None = Field(default=None, description="Line id a line-side buffer feeds")
    transfer_minutes: float = Field(
        default=0.0, ge=0, description="Time to bring stock here from the store, minutes"
    )
    kanban: list[Kanban] = Field(default_factory=list)
    children: list[Location] = Field(default_factory=list)

    def walk(
        self, loc: tuple[str | int, ...], parent: str | None
    ) -> Iterator[tuple[Location, tuple[str | int, ...], str | None]]:
        """This location and every one below it, each with its field path and parent id."""
        yield self, loc, parent
        for index, child in enumerate(self.children):
            yield from child.walk((*loc, "children", index), self.id)


def location_tree(
    roots: list[Location],
) -> Iterator[tuple[Location, tuple[str | int, ...], str | None]]:
    """Every location of the tree (roots under ``locations``) with its path and parent id."""
    for index, root in enumerate(roots):
        yield from root.walk(("locations", index), None)


def material_faults(
    items: list[Item], roots: list[Location], line_ids: set[str]
) -> list[tuple[tuple[str | int, ...], str]]:
    """Cross-reference faults of the item master and location tree, as (field path, message):
    repeated SKUs or location ids, kanban rules naming an unknown item or source, a line-side
    buffer naming an unknown line."""
    faults: list[tuple[tuple[str | int, ...], str]] = []
    skus: set[str] = set()
    for index, item in enumerate(items):
        if item.sku in skus:
            faults.append((("items", index, "sku"), f"item '{item.sku}' appears more than once"))
        skus.add(item.sku)
    tree = list(location_tree(roots))
    ids: set[str] = set()
    for location, loc, _ in tree:
        if location.id in ids:
            faults.append(
                ((*loc, "id"), f"location id '{location.id}' is used twice; ids must be unique")
            )
        ids.add(location.id)
    for location, loc, _ in tree:
        if location.line is not None and line_ids and location.line not in line_ids:
            faults.append(((*loc, "line"), f"'{location.line}' is not a line id of this factory"))
        for ki, rule in enumerate(location.kanban):
            if rule.item not in skus:
                faults.append(
                    ((*loc, "kanban", ki, "item"), f"'{rule.item}' is not an item of this factory")
                )
            if rule.source not in ids:
                faults.append(
                    ((*loc, "kanban", ki, "source"), f"'{rule.source}' is not a location id")
                )
            elif rule.source == location.id:
                faults.append(
                    ((*loc, "kanban", ki, "source"), "a kanban cannot refill from itself")
                )
    return faults
