"""The stock read model: movement legs with running balances, balances now, lots; and its reads.

Updated in each append's transaction from the newly inserted ``stock`` events (like
``machine_status``), so it never disagrees with the log. Every movement becomes one *leg* per
item × lot × location it touches (a transfer two) in ``stock_moves``, holding its signed
quantity and **the balance after it** in whole micro-units of the item's stock unit (exact sums,
no float drift). The legs of one item × lot × location are ordered by (ts, event id), the total
order of events; a leg that arrives late (stamped before legs already there) is slotted in and
the balances after it recomputed up to the next count (a count *sets* the balance, so the legs
after it do not change). ``stock_balances`` holds the balance now of each item × lot × location;
``stock_lots`` each lot's supplier, expiry, cost and hold (quarantine).

On hand at any time T is then one index probe per item × lot × location: the balance of its
last leg at or before T (``ix_stock_moves_key``), whatever the length of the ledger.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, func, insert, or_, select, union_all, update
from sqlalchemy.engine import Connection

from microfab.model.events import Event, StockMove
from microfab.store import schema

if TYPE_CHECKING:
    from microfab.store.event_store import EventStore

MICRO = 1_000_000
"""Micro-units per stock unit: how quantities are kept."""
_CHUNK = 400

_Key = tuple[str, str, str]
"""item, lot ('' = none), location."""


def to_micro(qty: float) -> int:
    return round(qty * MICRO)


def from_micro(value: int) -> float:
    return value / MICRO


@dataclass(frozen=True, slots=True)
class _Leg:
    key: _Key
    ts: dt.datetime
    event_id: str
    kind: str
    delta: int  # for a count: the counted quantity
    counted: bool
    order: str
    ref: str
    unit: str


def _legs(ev: StockMove) -> list[_Leg]:
    kind = ev.kind.value
    lot = ev.lot or ""
    qty = to_micro(ev.qty)
    order = ev.order or ""
    ref = ev.ref or ""

    def leg(location: str | None, delta: int, counted: bool = False) -> _Leg:
        assert location is not None
        return _Leg(
            (ev.item, lot, location), ev.ts, ev.id, kind, delta, counted, order, ref, ev.unit
        )

    if kind in ("receipt", "adjust"):
        return [leg(ev.to_location, qty)]
    if kind == "count":
        return [leg(ev.to_location, qty, counted=True)]
    if kind in ("issue", "backflush", "scrap"):
        return [leg(ev.from_location, -qty)]
    if kind == "transfer":
        return [leg(ev.from_location, -qty), leg(ev.to_location, qty)]
    return []  # quarantine, release: no stock moves


def update_stock(conn: Connection, new: Sequence[Event]) -> None:
    """Fold newly inserted stock events into the stock read model (inside the append)."""
    moves = sorted((ev for ev in new if isinstance(ev, StockMove)), key=lambda e: (e.ts, e.id))
    if not moves:
        return
    _update_lots(conn, moves)
    by_key: dict[_Key, list[_Leg]] = defaultdict(list)
    for ev in moves:
        for leg in _legs(ev):
            by_key[leg.key].append(leg)
    if not by_key:
        return
    balances = _balances(conn, sorted({key[0] for key in by_key}))
    table = schema.stock_moves
    fresh_rows: list[dict[str, Any]] = []
    new_balances: list[dict[str, Any]] = []
    changed_balances: list[dict[str, Any]] = []
    late: list[tuple[_Key, list[_Leg]]] = []
    for key, legs in by_key.items():
        known = balances.get(key)
        if known is not None and (legs[0].ts, legs[0].event_id) < (known[1], known[2]):
            late.append((key, legs))
            continue
        running = known[0] if known is not None else 0
        for leg in legs:
            delta = leg.delta - running if leg.counted else leg.delta
            running += delta
            fresh_rows.append(_row(leg, delta, running))
        last = legs[-1]
        values = {
            "b_item": key[0],
            "b_lot": key[1],
            "b_location": key[2],
            "qty": running,
            "last_ts": last.ts,
            "last_event": last.event_id,
        }
        if known is None:
            new_balances.append(
                {
                    "item": key[0],
                    "lot": key[1],
                    "location": key[2],
                    "unit": last.unit,
                    "qty": running,
                    "first_ts": legs[0].ts,
                    "last_ts": last.ts,
                    "last_event": last.event_id,
                }
            )
        else:
            changed_balances.append(values)
    if fresh_rows:
        conn.execute(insert(table), fresh_rows)
    if new_balances:
        conn.execute(insert(schema.stock_balances), new_balances)
    if changed_balances:
        _write_balances(conn, changed_balances)
    for key, legs in late:
        _slot_in(conn, key, legs, balances[key])


def _row(leg: _Leg, delta: int, balance: int) -> dict[str, Any]:
    return {
        "event_id": leg.event_id,
        "ts": leg.ts,
        "kind": leg.kind,
        "item": leg.key[0],
        "lot": leg.key[1],
        "location": leg.key[2],
        "delta": delta,
        "balance": balance,
        "counted": 1 if leg.counted else 0,
        "order_id": leg.order,
        "ref": leg.ref,
    }


def _write_balances(conn: Connection, values: list[dict[str, Any]]) -> None:
    b = schema.stock_balances
    conn.execute(
        update(b)
        .where(
            b.c.item == _bind("b_item"),
            b.c.lot == _bind("b_lot"),
            b.c.location == _bind("b_location"),
        )
        .values(qty=_bind("qty"), last_ts=_bind("last_ts"), last_event=_bind("last_event")),
        # (a parameter named like a column would be set too: first_ts goes below)
        [{k: v for k, v in row.items() if k != "first_ts"} for row in values],
    )
    early = [v for v in values if "first_ts" in v]
    if early:
        conn.execute(
            update(b)
            .where(
                b.c.item == _bind("b_item"),
                b.c.lot == _bind("b_lot"),
                b.c.location == _bind("b_location"),
                b.c.first_ts > _bind("first_ts"),
            )
            .values(first_ts=_bind("first_ts")),
            [{k: v[k] for k in ("b_item", "b_lot", "b_location", "first_ts")} for v in early],
        )


def _bind(name: str) -> Any:
    from sqlalchemy import bindparam

    return bindparam(name)


def _balances(conn: Connection, items: list[str]) -> dict[_Key, tuple[int, dt.datetime, str]]:
    """Balance now, last time and last event of every item × lot × location of ``items``."""
    b = schema.stock_balances
    found: dict[_Key, tuple[int, dt.datetime, str]] = {}
    for start in range(0, len(items), _CHUNK):
        part = items[start : start + _CHUNK]
        rows = conn.execute(
            select(b.c.item, b.c.lot, b.c.location, b.c.qty, b.c.last_ts, b.c.last_event).where(
                b.c.item.in_(part)
            )
        )
        for item, lot, location, qty, last_ts, last_event in rows:
            found[(item, lot, location)] = (int(qty), last_ts, last_event)
    return found


def _slot_in(
    conn: Connection, key: _Key, legs: list[_Leg], known: tuple[int, dt.datetime, str]
) -> None:
    """Insert legs stamped before legs already stored, and recompute the balances after them
    (up to the next count, which sets the balance anew)."""
    m = schema.stock_moves
    same_key = and_(m.c.item == key[0], m.c.lot == key[1], m.c.location == key[2])
    first = legs[0]
    before = conn.execute(
        select(m.c.balance)
        .where(
            same_key,
            or_(m.c.ts < first.ts, and_(m.c.ts == first.ts, m.c.event_id < first.event_id)),
        )
        .order_by(m.c.ts.desc(), m.c.event_id.desc())
        .limit(1)
    ).scalar()
    after = conn.execute(
        select(m.c.seq, m.c.ts, m.c.event_id, m.c.delta, m.c.balance, m.c.counted)
        .where(
            same_key,
            or_(m.c.ts > first.ts, and_(m.c.ts == first.ts, m.c.event_id > first.event_id)),
        )
        .order_by(m.c.ts, m.c.event_id)
    ).all()
    # merge the new legs with the stored ones after the first new leg, in (ts, id) order
    merged: list[tuple[dt.datetime, str, Any]] = [(leg.ts, leg.event_id, leg) for leg in legs]
    merged += [(row.ts, row.event_id, row) for row in after]
    merged.sort(key=lambda entry: (entry[0], entry[1]))
    running = int(before) if before is not None else 0
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    last_ts, last_event = known[1], known[2]
    for ts, event_id, entry in merged:
        if isinstance(entry, _Leg):
            delta = entry.delta - running if entry.counted else entry.delta
            running += delta
            inserts.append(_row(entry, delta, running))
        else:
            delta = (entry.balance - running) if entry.counted else entry.delta
            running += delta
            if delta != entry.delta or running != entry.balance:
                updates.append({"s": entry.seq, "delta": delta, "balance": running})
        if (ts, event_id) > (last_ts, last_event):
            last_ts, last_event = ts, event_id
    if inserts:
        conn.execute(insert(m), inserts)
    if updates:
        conn.execute(
            update(m)
            .where(m.c.seq == _bind("s"))
            .values(delta=_bind("delta"), balance=_bind("balance")),
            updates,
        )
    _write_balances(
        conn,
        [
            {
                "b_item": key[0],
                "b_lot": key[1],
                "b_location": key[2],
                "qty": running,
                "first_ts": first.ts,
                "last_ts": last_ts,
                "last_event": last_event,
            }
        ],
    )


def _update_lots(conn: Connection, moves: list[StockMove]) -> None:
    """Each lot's receipt facts (first receipt's supplier, expiry, cost) and hold."""
    lots = schema.stock_lots
    wanted = sorted({(ev.item, ev.lot) for ev in moves if ev.lot is not None})
    if not wanted:
        return
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    items = sorted({item for item, _ in wanted})
    for start in range(0, len(items), _CHUNK):
        query = select(lots).where(lots.c.item.in_(items[start : start + _CHUNK]))
        for stored in conn.execute(query):
            rows[(stored.item, stored.lot)] = dict(stored._mapping)
    fresh: set[tuple[str, str]] = set()
    touched: set[tuple[str, str]] = set()
    for ev in moves:
        if ev.lot is None:
            continue
        key = (ev.item, ev.lot)
        row = rows.get(key)
        if row is None:
            row = rows[key] = {
                "item": ev.item,
                "lot": ev.lot,
                "supplier": None,
                "expiry": None,
                "received_ts": None,
                "cost_hkd": None,
                "held": 0,
                "hold_ts": None,
                "hold_event": None,
                "hold_reason": None,
            }
            fresh.add(key)
        kind = ev.kind.value
        if kind == "receipt" and (row["received_ts"] is None or ev.ts < row["received_ts"]):
            row["received_ts"] = ev.ts
            row["supplier"] = ev.supplier or row["supplier"]
            row["expiry"] = ev.expiry or row["expiry"]
            row["cost_hkd"] = ev.cost_hkd if ev.cost_hkd is not None else row["cost_hkd"]
            touched.add(key)
        elif kind == "receipt":
            if row["expiry"] is None and ev.expiry is not None:
                row["expiry"] = ev.expiry
                touched.add(key)
        elif kind in ("quarantine", "release") and (
            row["hold_ts"] is None or (ev.ts, ev.id) > (row["hold_ts"], row["hold_event"])
        ):
            row.update(
                held=1 if kind == "quarantine" else 0,
                hold_ts=ev.ts,
                hold_event=ev.id,
                hold_reason=ev.reason,
            )
            touched.add(key)
    if fresh:
        conn.execute(insert(lots), [rows[key] for key in sorted(fresh)])
    for key in sorted(touched - fresh):
        row = rows[key]
        conn.execute(
            update(lots)
            .where(lots.c.item == key[0], lots.c.lot == key[1])
            .values({k: v for k, v in row.items() if k not in ("item", "lot")})
        )


# --------------------------------------------------------------------------- reads


@dataclass(frozen=True, slots=True)
class OnHand:
    """On hand of one item × lot × location (quantity in the item's stock unit)."""

    item: str
    lot: str | None
    location: str
    qty: float
    unit: str


@dataclass(frozen=True, slots=True)
class LedgerLeg:
    """One leg of the stock ledger."""

    seq: int
    event_id: str
    ts: dt.datetime
    kind: str
    item: str
    lot: str | None
    location: str
    delta: float
    balance: float
    order: str | None
    ref: str | None


@dataclass(frozen=True, slots=True)
class Lot:
    """A lot's receipt facts and hold."""

    item: str
    lot: str
    supplier: str | None
    expiry: dt.datetime | None
    received_ts: dt.datetime | None
    cost_hkd: float | None
    held: bool
    hold_reason: str | None


def on_hand(
    store: EventStore,
    *,
    at: dt.datetime | None = None,
    item: str | None = None,
    location: str | None = None,
    lot: str | None = None,
) -> list[OnHand]:
    """On hand by item × lot × location now, or at ``at`` (movements stamped at or before it);
    zero rows left out; ordered by item, lot, location."""
    b = schema.stock_balances
    m = schema.stock_moves
    filters: list[Any] = []
    if item is not None:
        filters.append(b.c.item == item)
    if location is not None:
        filters.append(b.c.location == location)
    if lot is not None:
        filters.append(b.c.lot == lot)
    columns = (b.c.item, b.c.lot, b.c.location, b.c.unit)
    if at is None:
        queries = [select(*columns, b.c.qty.label("qty")).where(*filters, b.c.qty != 0)]
    else:
        # settled before ``at``: the balance now is the balance then; only the item × lot ×
        # locations that moved both before and after ``at`` need a probe of the ledger
        settled = select(*columns, b.c.qty.label("qty")).where(
            *filters, b.c.last_ts <= at, b.c.qty != 0
        )
        probe = (
            select(m.c.balance)
            .where(
                m.c.item == b.c.item,
                m.c.lot == b.c.lot,
                m.c.location == b.c.location,
                m.c.ts <= at,
            )
            .order_by(m.c.ts.desc(), m.c.event_id.desc())
            .limit(1)
            .scalar_subquery()
        )
        moving = select(*columns, probe.label("qty")).where(
            *filters, b.c.last_ts > at, b.c.first_ts <= at
        )
        queries = [settled, moving]
    ordered: Any
    if len(queries) == 1:
        ordered = queries[0].order_by(b.c.item, b.c.lot, b.c.location)
    else:
        both = union_all(*queries).subquery()
        ordered = select(both).order_by(both.c.item, both.c.lot, both.c.location)
    with store.engine.connect() as conn:
        rows = conn.execute(ordered).all()
    return [
        OnHand(r.item, r.lot or None, r.location, from_micro(int(r.qty)), r.unit)
        for r in rows
        if r.qty
    ]


def ledger(
    store: EventStore,
    *,
    item: str | None = None,
    lot: str | None = None,
    location: str | None = None,
    order: str | None = None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    kinds: Sequence[str] | None = None,
    limit: int | None = None,
) -> list[LedgerLeg]:
    """Ledger legs in (ts, event id) order, filtered."""
    m = schema.stock_moves
    query = select(m)
    if item is not None:
        query = query.where(m.c.item == item)
    if lot is not None:
        query = query.where(m.c.lot == lot)
    if location is not None:
        query = query.where(m.c.location == location)
    if order is not None:
        query = query.where(m.c.order_id == order)
    if start is not None:
        query = query.where(m.c.ts >= start)
    if end is not None:
        query = query.where(m.c.ts < end)
    if kinds is not None:
        query = query.where(m.c.kind.in_(list(kinds)))
    query = query.order_by(m.c.ts, m.c.event_id, m.c.location)
    if limit is not None:
        query = query.limit(limit)
    with store.engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        LedgerLeg(
            seq=int(r.seq),
            event_id=r.event_id,
            ts=r.ts,
            kind=r.kind,
            item=r.item,
            lot=r.lot or None,
            location=r.location,
            delta=from_micro(int(r.delta)),
            balance=from_micro(int(r.balance)),
            order=r.order_id or None,
            ref=r.ref or None,
        )
        for r in rows
    ]


def lots(store: EventStore, *, item: str | None = None, lot: str | None = None) -> list[Lot]:
    """Every lot (or those of one item / lot number), by item and lot."""
    t = schema.stock_lots
    query = select(t).order_by(t.c.item, t.c.lot)
    if item is not None:
        query = query.where(t.c.item == item)
    if lot is not None:
        query = query.where(t.c.lot == lot)
    with store.engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        Lot(
            item=r.item,
            lot=r.lot,
            supplier=r.supplier,
            expiry=r.expiry,
            received_ts=r.received_ts,
            cost_hkd=r.cost_hkd,
            held=bool(r.held),
            hold_reason=r.hold_reason,
        )
        for r in rows
    ]


def issued_by_order(store: EventStore, orders: Sequence[str]) -> dict[tuple[str, str], float]:
    """Stock units issued (issue, backflush, less returns) per (order, item)."""
    m = schema.stock_moves
    found: dict[tuple[str, str], float] = {}
    wanted = list(orders)
    with store.engine.connect() as conn:
        for start in range(0, len(wanted), _CHUNK):
            rows = conn.execute(
                select(m.c.order_id, m.c.item, func.sum(m.c.delta))
                .where(
                    m.c.order_id.in_(wanted[start : start + _CHUNK]),
                    m.c.kind.in_(["issue", "backflush"]),
                )
                .group_by(m.c.order_id, m.c.item)
            )
            for order_id, item, total in rows:
                found[(order_id, item)] = -from_micro(int(total))
    return found


def newest_stock_ts(store: EventStore) -> dt.datetime | None:
    """The time of the newest stock movement, or None when there is none."""
    m = schema.stock_moves
    with store.engine.connect() as conn:
        value = conn.execute(select(func.max(m.c.ts))).scalar()
    return schema.as_utc(value) if value is not None else None


def stored_ids(store: EventStore, ids: Sequence[str]) -> set[str]:
    """Those of ``ids`` already stored as events (any stream)."""
    found: set[str] = set()
    wanted = sorted(set(ids))
    events = schema.events
    with store.engine.connect() as conn:
        for start in range(0, len(wanted), _CHUNK):
            found.update(
                conn.execute(
                    select(events.c.id).where(events.c.id.in_(wanted[start : start + _CHUNK]))
                ).scalars()
            )
    return found
