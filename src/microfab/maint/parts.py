"""Spare parts: a minimal parts list with stock on hand, a minimum per critical part, and parts
issued to a work order on use.

**The seam for the stock ledger.** Everything that moves stock goes through :class:`PartsLedger`
(``on_hand``, ``issue``, ``receive``). :class:`PartsList` is the stand-in over the small
``spare_parts`` table; when the stock ledger (``stock/``) lands, an adapter implementing the same
three methods over it replaces :class:`PartsList` in :func:`ledger_for`, and work orders, the
technician page and ``maintenance parts`` keep working unchanged. An issue is refused, with
nothing written, when the part is unknown or fewer are on hand than asked for.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any, Protocol

from microfab.errors import InputError, NotFoundError
from microfab.store import maintenance as rows
from microfab.store.audit import append_audit
from microfab.store.event_store import EventStore


class PartsLedger(Protocol):
    """What maintenance needs of a stock ledger."""

    def on_hand(self, part: str) -> float: ...

    def issue(self, order_id: int, items: list[tuple[str, float]], actor: str) -> None: ...

    def receive(self, part: str, qty: float, actor: str) -> None: ...


def _qty(value: float, what: str) -> float:
    if not math.isfinite(value) or value <= 0 or value > 1e9:
        raise InputError(f"{what}: {value:g} is not a quantity more than 0")
    return value


class PartsList:
    """The minimal parts list (``spare_parts``, ``part_issues``) as a :class:`PartsLedger`."""

    def __init__(self, store: EventStore) -> None:
        self.store = store

    def on_hand(self, part: str) -> float:
        row = rows.get_part(self.store, part)
        if row is None:
            raise NotFoundError(f"no spare part '{part}' in the parts list")
        return float(row["on_hand"])

    def issue(self, order_id: int, items: list[tuple[str, float]], actor: str) -> None:
        """Issue every item to the work order in one transaction: all or nothing."""
        if not items:
            raise InputError("parts: give at least one PART:QTY")
        now = dt.datetime.now(dt.UTC)
        with self.store.transaction() as conn:
            order = rows.order_row(conn, order_id)
            if order is None:
                raise NotFoundError(f"no maintenance work order {order_id}")
            if order["state"] in ("done", "cancelled"):
                raise InputError(
                    f"work order {order_id} is {order['state']}: no parts issued to it"
                )
            wanted: dict[str, float] = {}
            for part, qty in items:
                wanted[part] = wanted.get(part, 0.0) + _qty(qty, f"part {part}")
            for part, qty in wanted.items():
                row = rows.part_row(conn, part)
                if row is None:
                    raise NotFoundError(f"part {part}: not in the parts list")
                if float(row["on_hand"]) < qty:
                    raise InputError(
                        f"part {part}: {qty:g} {row['unit']} asked for, {float(row['on_hand']):g} "
                        "in stock"
                    )
                rows.change_on_hand(conn, part, -qty)
                rows.insert_issue(
                    conn,
                    {
                        "order_id": order_id,
                        "part": part,
                        "qty": qty,
                        "unit_cost": float(row["unit_cost"]),
                        "at": now,
                        "by": actor,
                    },
                )
            append_audit(
                conn,
                actor=actor,
                action="maint.parts",
                target=f"maint:{order_id}",
                after={"issued": [{"part": p, "qty": q} for p, q in wanted.items()]},
            )

    def receive(self, part: str, qty: float, actor: str) -> None:
        qty = _qty(qty, f"part {part}")
        with self.store.transaction() as conn:
            row = rows.part_row(conn, part)
            if row is None:
                raise NotFoundError(f"no spare part '{part}' in the parts list")
            rows.change_on_hand(conn, part, qty)
            append_audit(
                conn,
                actor=actor,
                action="maint.receive",
                target=f"part:{part}",
                before={"on_hand": float(row["on_hand"])},
                after={"on_hand": float(row["on_hand"]) + qty},
            )


def ledger_for(store: EventStore) -> PartsLedger:
    """The ledger maintenance moves parts through (the stock ledger's adapter, once it lands)."""
    return PartsList(store)


def define_part(
    store: EventStore,
    actor: str,
    *,
    part: str,
    name: str,
    unit: str = "pc",
    on_hand: float = 0.0,
    min_stock: float = 0.0,
    critical: bool = False,
    unit_cost: float = 0.0,
) -> None:
    """Add a part to the parts list or change its details."""
    part = part.strip()
    if not part or len(part) > 64:
        raise InputError("part: 1–64 characters")
    for value, what in ((on_hand, "on hand"), (min_stock, "min stock"), (unit_cost, "unit cost")):
        if not math.isfinite(value) or value < 0:
            raise InputError(f"{what}: {value:g} must be 0 or more")
    values = {
        "part": part,
        "name": name.strip() or part,
        "unit": unit.strip() or "pc",
        "on_hand": on_hand,
        "min_stock": min_stock,
        "critical": int(critical),
        "unit_cost": unit_cost,
    }
    with store.transaction() as conn:
        before = rows.part_row(conn, part)
        rows.upsert_part(conn, values)
        append_audit(
            conn,
            actor=actor,
            action="maint.part",
            target=f"part:{part}",
            before=before,
            after=values,
        )


def parts_json(store: EventStore) -> list[dict[str, Any]]:
    """The parts list, with ``low`` set on a critical part below its minimum."""
    return [
        {
            "part": p["part"],
            "name": p["name"],
            "unit": p["unit"],
            "on_hand": float(p["on_hand"]),
            "min_stock": float(p["min_stock"]),
            "critical": bool(p["critical"]),
            "unit_cost": float(p["unit_cost"]),
            "low": bool(p["critical"]) and float(p["on_hand"]) < float(p["min_stock"]),
        }
        for p in rows.list_parts(store)
    ]


def parse_items(values: list[str]) -> list[tuple[str, float]]:
    """``PART:QTY`` texts (``PART`` alone: 1)."""
    items = []
    for value in values:
        part, sep, qty = value.partition(":")
        if not part.strip():
            raise InputError(f"parts: '{value}': expected PART:QTY, e.g. HB-200:2")
        try:
            number = float(qty) if sep else 1.0
        except ValueError:
            raise InputError(f"parts: '{value}': '{qty}' is not a number") from None
        items.append((part.strip(), number))
    return items
