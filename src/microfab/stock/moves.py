"""Stock movements a user enters (CLI, import file, REST) → validated ``stock`` events.

Every movement is checked against the factory's item master and locations and against the stock
as stored: an unknown item or location, a unit that does not convert to the item's stock unit, a
lot missing on a lot-tracked item, an on-hand that would fall below zero (unless the item allows
it; judged against the stock now, with the batch's earlier rows applied), an issue from an
expired or quarantined lot, or from a quarantine location. A faulty row is
reported with where it is (``moves.csv:4:6 item: …`` — file, row, column) and nothing of it is
stored; the good rows are. An id already stored (or repeated in the file) is ignored, like every
event. Quantities are converted to the item's stock unit before they are stored. An issue's
``ref`` names the work order it went to when no ``order`` column says it.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from microfab.errors import InputError
from microfab.model.events import (
    MAX_STOCK,
    StockKind,
    StockMove,
    event_to_dict,
    format_ts,
    parse_ts,
)
from microfab.model.factory import Factory
from microfab.model.materials import Item, LocationKind, UnitError
from microfab.store.event_store import AppendResult, EventStore
from microfab.store.stock import lots, on_hand, stored_ids

IMPORT_COLUMNS = ("id", "ts", "kind", "item", "lot", "qty", "unit", "from", "to", "ref")
"""The columns of ``microfab stock import FILE.csv`` (and of ``stock export``), in this order."""
EXTRA_COLUMNS = ("order", "supplier", "expiry", "cost_hkd", "reason", "by")
"""Optional further columns an import file may carry."""
IMPORT_KINDS = ("receipt", "issue", "transfer", "adjust", "count", "scrap")
"""What an import row may be (backflush comes from counts; quarantine and release by command)."""
_TAKES = ("issue", "backflush", "transfer", "scrap")


def recorder_path(factory: Factory) -> str:
    """The machine path stock movements entered by hand are stamped with (docs/inventory.md)."""
    return f"{factory.sites[0].id}/stores/stock/desk/microfab"


@dataclass(frozen=True, slots=True)
class Problem:
    """A fault of one entered movement: its row (1 = the header of a file), column and why."""

    row: int
    column: str
    message: str


@dataclass
class Checked:
    """What a batch of entered movements came to: the events to store and the faults."""

    events: list[StockMove] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    repeated: int = 0
    """Rows whose id is already stored or came earlier in the batch (ignored)."""


@dataclass
class Stored:
    """What an import or a command stored."""

    stored: int
    ignored: int
    problems: list[str]

    def to_json(self) -> dict[str, object]:
        return {"stored": self.stored, "ignored": self.ignored, "problems": self.problems}


class _RowFault(Exception):
    def __init__(self, column: str, message: str) -> None:
        super().__init__(message)
        self.column = column
        self.message = message


def check_moves(
    store: EventStore,
    factory: Factory,
    rows: Sequence[tuple[int, Mapping[str, str | None]]],
    *,
    machine: str | None = None,
    now: dt.datetime | None = None,
) -> Checked:
    """Validate entered movements (row number, column -> text) in order; a row is judged with
    the rows before it in the batch already applied."""
    machine = machine or recorder_path(factory)
    now = now or dt.datetime.now(dt.UTC)
    out = Checked()
    ids = [str(values.get("id") or "").strip() for _, values in rows]
    known = stored_ids(store, [i for i in ids if i])
    seen: set[str] = set()
    balances: dict[tuple[str, str, str], float] = defaultdict(float)
    for row in on_hand(store):
        balances[(row.item, row.lot or "", row.location)] += row.qty
    lot_info = {(lot.item, lot.lot): lot for lot in lots(store)}
    held = {key for key, lot in lot_info.items() if lot.held}
    expiry: dict[tuple[str, str], dt.datetime | None] = {
        key: lot.expiry for key, lot in lot_info.items()
    }
    locations = factory.stock_locations()
    for row_no, values in rows:
        try:
            event = _check_row(values, factory, locations, machine, now)
        except _RowFault as fault:
            out.problems.append(Problem(row_no, fault.column, fault.message))
            continue
        if event.id in known or event.id in seen:
            out.repeated += 1
            continue
        item = factory.item(event.item)
        kind = event.kind.value
        lot_key = (event.item, event.lot or "")
        try:
            if kind in _TAKES or (kind == "adjust" and event.qty < 0):
                if event.lot is not None and lot_key in held and kind != "transfer":
                    raise _RowFault("lot", f"lot {event.lot} of {event.item} is quarantined")
                expires = expiry.get(lot_key)
                if kind in ("issue", "backflush") and expires is not None and event.ts >= expires:
                    raise _RowFault(
                        "lot",
                        f"lot {event.lot} of {event.item} expired {format_ts(expires)}; "
                        "scrap it instead",
                    )
                place = event.from_location if kind in _TAKES else event.to_location
                assert place is not None
                if kind in ("issue", "backflush") and (
                    locations[place].kind is LocationKind.QUARANTINE
                ):
                    raise _RowFault("from", f"{place} is a quarantine location; release it first")
                need = event.qty if kind in _TAKES else -event.qty
                have = balances[(event.item, event.lot or "", place)]
                if have - need < -1e-9 and not item.allow_negative:
                    raise _RowFault(
                        "qty",
                        f"only {_num(have)} {item.unit} of {event.item}"
                        + (f" lot {event.lot}" if event.lot else "")
                        + f" at {place}; taking {_num(need)} would leave it negative",
                    )
        except _RowFault as fault:
            out.problems.append(Problem(row_no, fault.column, fault.message))
            continue
        seen.add(event.id)
        _apply(balances, event)
        if kind == "receipt" and event.lot is not None and lot_key not in expiry:
            expiry[lot_key] = event.expiry
        if kind in ("quarantine", "release") and event.lot is not None:
            (held.add if kind == "quarantine" else held.discard)(lot_key)
        out.events.append(event)
        out.rows.append(row_no)
    return out


def _apply(balances: dict[tuple[str, str, str], float], event: StockMove) -> None:
    lot = event.lot or ""
    kind = event.kind.value
    if kind in ("receipt", "adjust") and event.to_location:
        balances[(event.item, lot, event.to_location)] += event.qty
    elif kind == "count" and event.to_location:
        balances[(event.item, lot, event.to_location)] = event.qty
    if kind in _TAKES and event.from_location:
        balances[(event.item, lot, event.from_location)] -= event.qty
    if kind == "transfer" and event.to_location:
        balances[(event.item, lot, event.to_location)] += event.qty


def _num(value: float) -> str:
    return f"{value:.6f}".rstrip("0").rstrip(".")


def _text(values: Mapping[str, str | None], column: str) -> str | None:
    value = values.get(column)
    if value is None:
        return None
    value = str(value).strip()
    return value or None


def _check_row(
    values: Mapping[str, str | None],
    factory: Factory,
    locations: Mapping[str, object],
    machine: str,
    now: dt.datetime,
) -> StockMove:
    event_id = _text(values, "id")
    if event_id is None:
        raise _RowFault("id", "an id is required (the idempotency key)")
    if len(event_id) > 64 or not all(0x21 <= ord(c) <= 0x7E for c in event_id):
        raise _RowFault("id", "an id is 1-64 printable ASCII characters without spaces")
    ts_text = _text(values, "ts")
    try:
        ts = parse_ts(ts_text) if ts_text is not None else now
    except ValueError as exc:
        raise _RowFault("ts", str(exc)) from None
    kind_text = _text(values, "kind")
    try:
        kind = StockKind(kind_text or "")
    except ValueError:
        raise _RowFault(
            "kind", f"'{kind_text or ''}' is not one of {', '.join(k.value for k in StockKind)}"
        ) from None
    sku = _text(values, "item")
    if sku is None:
        raise _RowFault("item", "an item is required")
    try:
        item = factory.item(sku)
    except KeyError:
        raise _RowFault("item", f"'{sku}' is not an item of the factory model") from None
    lot = _text(values, "lot")
    if kind in (StockKind.QUARANTINE, StockKind.RELEASE) and lot is None:
        raise _RowFault("lot", f"a {kind.value} names the lot it holds or frees")
    if lot is None and item.lot_tracked:
        raise _RowFault("lot", f"{sku} is lot-tracked: every movement names a lot")
    if lot is not None and len(lot) > 64:
        raise _RowFault("lot", "a lot number has at most 64 characters")
    from_loc = _text(values, "from")
    to_loc = _text(values, "to")
    for column, place in (("from", from_loc), ("to", to_loc)):
        if place is not None and place not in locations:
            raise _RowFault(column, f"'{place}' is not a location of the factory model")
    qty = _quantity(values, item, kind)
    expiry_text = _text(values, "expiry")
    expiry: dt.datetime | None = None
    if expiry_text is not None:
        try:
            if "T" in expiry_text:
                expiry = parse_ts(expiry_text)
            else:  # a date alone: the start of that day in site time
                day = dt.date.fromisoformat(expiry_text)
                expiry = dt.datetime.combine(day, dt.time(), factory.sites[0].zone)
                expiry = expiry.astimezone(dt.UTC)
        except ValueError as exc:
            raise _RowFault("expiry", str(exc)) from None
    elif kind is StockKind.RECEIPT and item.shelf_life_days is not None:
        expiry = ts + dt.timedelta(days=item.shelf_life_days)
    cost_text = _text(values, "cost_hkd")
    cost: float | None = None
    if cost_text is not None:
        try:
            cost = float(cost_text)
        except ValueError:
            raise _RowFault("cost_hkd", f"'{cost_text}' is not a number") from None
    data: dict[str, object] = {
        "id": event_id,
        "ts": ts,
        "machine": machine,
        "kind": kind.value,
        "item": sku,
        "lot": lot,
        "qty": qty,
        "unit": item.unit,
        "from_location": from_loc,
        "to_location": to_loc,
        "ref": _text(values, "ref"),
        "order": _text(values, "order")
        or (_text(values, "ref") if kind in (StockKind.ISSUE, StockKind.BACKFLUSH) else None),
        "supplier": _text(values, "supplier"),
        "expiry": expiry if kind is StockKind.RECEIPT else None,
        "cost_hkd": cost,
        "reason": _text(values, "reason"),
        "by": _text(values, "by"),
    }
    try:
        return StockMove.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        field_name = str(first["loc"][0]) if first["loc"] else "kind"
        column = {"from_location": "from", "to_location": "to"}.get(field_name, field_name)
        message = first["msg"].removeprefix("Value error, ")
        message = message.replace("'from_location'", "'from'").replace("'to_location'", "'to'")
        if not first["loc"]:  # the movement's shape: name the place it is about
            column = "from" if "'from'" in message else "to" if "'to'" in message else "kind"
        raise _RowFault(column, message) from None


def _quantity(values: Mapping[str, str | None], item: Item, kind: StockKind) -> float:
    text = _text(values, "qty")
    if kind in (StockKind.QUARANTINE, StockKind.RELEASE):
        if text not in (None, "0"):
            raise _RowFault("qty", f"a {kind.value} moves no stock: leave qty empty")
        return 0.0
    if text is None:
        raise _RowFault("qty", "a quantity is required")
    try:
        value = float(text)
    except ValueError:
        raise _RowFault("qty", f"'{text}' is not a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise _RowFault("qty", f"'{text}' is not a finite number")
    unit = _text(values, "unit") or item.unit
    try:
        qty = item.to_stock(value, unit)
    except UnitError as exc:
        raise _RowFault("unit", str(exc)) from None
    if abs(qty) > MAX_STOCK:
        raise _RowFault("qty", f"at most {MAX_STOCK:.0e} {item.unit} per movement")
    if kind is StockKind.ADJUST and qty == 0:
        raise _RowFault("qty", "an adjust needs a non-zero, signed quantity")
    if kind is StockKind.COUNT and qty < 0:
        raise _RowFault("qty", "a count is the quantity counted, ≥ 0")
    if kind not in (StockKind.ADJUST, StockKind.COUNT) and qty <= 0:
        raise _RowFault("qty", f"a {kind.value} quantity must be > 0")
    return round(qty, 6)


def store_moves(store: EventStore, checked: Checked) -> AppendResult:
    """Store the good movements of a checked batch (one append)."""
    return store.append(checked.events)


# --------------------------------------------------------------------------- files


def read_import(path: Path) -> tuple[list[tuple[int, dict[str, str | None]]], dict[str, int]]:
    """The rows of a stock import file (row numbers from 2, the header being row 1) and each
    column's 1-based position; :class:`InputError` when the file or its header is wrong."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(f"cannot read the stock file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise InputError(f"cannot read the stock file {path}: not UTF-8 text") from None
    return parse_import(text, str(path))


def parse_import(
    text: str, name: str = "stock.csv"
) -> tuple[list[tuple[int, dict[str, str | None]]], dict[str, int]]:
    reader = csv.reader(io.StringIO(text))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise InputError(
            f"{name}:1:1 the file is empty; expected {','.join(IMPORT_COLUMNS)}"
        ) from None
    missing = [c for c in IMPORT_COLUMNS if c not in header]
    if missing:
        raise InputError(
            f"{name}:1:1 header lacks {', '.join(missing)}; expected {','.join(IMPORT_COLUMNS)}"
        )
    unknown = [c for c in header if c not in IMPORT_COLUMNS and c not in EXTRA_COLUMNS]
    if unknown:
        where = header.index(unknown[0]) + 1
        raise InputError(
            f"{name}:1:{where} unknown column '{unknown[0]}'; columns are "
            f"{','.join(IMPORT_COLUMNS)} (and optionally {','.join(EXTRA_COLUMNS)})"
        )
    positions = {column: header.index(column) + 1 for column in header}
    rows: list[tuple[int, dict[str, str | None]]] = []
    for number, cells in enumerate(reader, start=2):
        if not any(cell.strip() for cell in cells):
            continue
        values: dict[str, str | None] = {
            column: (cells[i] if i < len(cells) else None) for i, column in enumerate(header)
        }
        if len(cells) > len(header):
            values["__extra__"] = "1"
        rows.append((number, values))
    return rows, positions


def import_moves(
    store: EventStore, factory: Factory, path: Path, *, kinds: Iterable[str] = IMPORT_KINDS
) -> Stored:
    """Import a stock CSV: good rows stored, each bad row reported as ``file:row:column``."""
    rows, positions = read_import(path)
    allowed = set(kinds)
    problems: list[Problem] = []
    good: list[tuple[int, dict[str, str | None]]] = []
    for number, values in rows:
        if values.pop("__extra__", None):
            problems.append(Problem(number, "", "more cells than header columns"))
            continue
        kind = (values.get("kind") or "").strip()
        if kind in {k.value for k in StockKind} and kind not in allowed:
            problems.append(
                Problem(number, "kind", f"'{kind}' is not one of {', '.join(IMPORT_KINDS)}")
            )
            continue
        good.append((number, values))
    checked = check_moves(store, factory, good)
    checked.problems = sorted(problems + checked.problems, key=lambda p: p.row)
    result = store_moves(store, checked)
    return Stored(
        stored=result.inserted,
        ignored=checked.repeated + result.duplicates,
        problems=[_located(str(path), p, positions) for p in checked.problems],
    )


def _located(name: str, problem: Problem, positions: Mapping[str, int]) -> str:
    column = positions.get(problem.column, 1)
    label = f" {problem.column}:" if problem.column else ""
    return f"{name}:{problem.row}:{column}{label} {problem.message}"


def export_rows(store: EventStore) -> list[dict[str, str]]:
    """Every stored stock movement as an import row (the import's columns and the optional
    ones), in (ts, id) order: ``stock export`` then ``stock import`` is a no-op."""
    out: list[dict[str, str]] = []
    for stored in store.events(stream="stock"):
        data = event_to_dict(stored.event)
        out.append(
            {
                "id": data["id"],
                "ts": data["ts"],
                "kind": data["kind"],
                "item": data["item"],
                "lot": data.get("lot") or "",
                "qty": _num(float(data.get("qty") or 0)),
                "unit": data["unit"],
                "from": data.get("from_location") or "",
                "to": data.get("to_location") or "",
                "ref": data.get("ref") or "",
                "order": data.get("order") or "",
                "supplier": data.get("supplier") or "",
                "expiry": data.get("expiry") or "",
                "cost_hkd": "" if data.get("cost_hkd") is None else str(data["cost_hkd"]),
                "reason": data.get("reason") or "",
                "by": data.get("by") or "",
            }
        )
    return out


def write_export(rows: list[dict[str, str]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(
        buffer, fieldnames=[*IMPORT_COLUMNS, *EXTRA_COLUMNS], lineterminator="\n"
    )
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def enter_move(
    store: EventStore,
    factory: Factory,
    values: Mapping[str, str | None],
    *,
    now: dt.datetime | None = None,
) -> tuple[StockMove | None, bool]:
    """Check and store one movement typed in (CLI, REST): (event, stored); a fault raises
    :class:`InputError` naming the field (``qty: only 3 kg of …``); a repeated id stores nothing."""
    checked = check_moves(store, factory, [(1, values)], now=now)
    if checked.problems:
        problem = checked.problems[0]
        raise InputError(f"{problem.column}: {problem.message}")
    if not checked.events:
        return None, False
    result = store_moves(store, checked)
    return checked.events[0], result.inserted == 1
