"""Order intake: customer and work orders from a CSV or Excel file, idempotent by order id.

Columns (a header row, any order): ``order`` (the external id: importing the same file again
stores nothing), ``product``, ``quantity``, and optionally ``due`` (site time, an offset, or a
date alone: the end of that day), ``priority`` (1–9), ``options`` (``name=choice;name=choice``),
``release`` (yes/no). Each row is checked like ``microfab orders create``; a faulty row is named
``file:row:column field: message`` and nothing of it is stored, the good rows are.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from microfab.errors import InputError
from microfab.model.factory import Factory
from microfab.model.orders import WorkOrderRequest, parse_due
from microfab.store.event_store import EventStore
from microfab.track.orders import create_order

COLUMNS = ("order", "product", "quantity", "due", "priority", "options", "release")
REQUIRED = ("order", "product", "quantity")


@dataclass
class Intake:
    """What an import did."""

    created: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {"created": self.created, "unchanged": self.unchanged, "problems": self.problems}


def read_rows(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header and rows (row number, cells as text) of a CSV or an Excel (.xlsx) file."""
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        return _excel_rows(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or "not UTF-8 text"
        raise InputError(f"cannot read the order file {path}: {reason}") from None
    reader = list(csv.reader(io.StringIO(text)))
    if not reader:
        raise InputError(f"{path}:1:1 the file is empty; expected {','.join(REQUIRED)}, …")
    return [h.strip() for h in reader[0]], list(enumerate(reader[1:], start=2))


def _excel_rows(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    import openpyxl  # type: ignore[import-untyped]

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # zipfile, XML and openpyxl's own errors: not a readable workbook
        raise InputError(f"cannot read the order workbook {path}: {exc}") from None
    try:
        sheet = book.worksheets[0]
        rows = [
            ["" if v is None else _cell_text(v) for v in row]
            for row in sheet.iter_rows(values_only=True)
        ]
    finally:
        book.close()
    if not rows:
        raise InputError(f"{path}:1:1 the sheet is empty; expected {','.join(REQUIRED)}, …")
    return [h.strip() for h in rows[0]], list(enumerate(rows[1:], start=2))


def _cell_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)


def import_orders(
    store: EventStore, factory: Factory, path: Path, *, release: bool = False
) -> Intake:
    """Create the orders of a CSV or Excel file (see the module doc)."""
    header, rows = read_rows(path)
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise InputError(
            f"{path}:1:1 header lacks {', '.join(missing)}; columns: {','.join(COLUMNS)}"
        )
    for index, name in enumerate(header):
        if name and name not in COLUMNS:
            raise InputError(
                f"{path}:1:{index + 1} unknown column '{name}'; columns: {','.join(COLUMNS)}"
            )
    where = {name: i + 1 for i, name in enumerate(header)}
    zone = factory.sites[0].zone
    out = Intake()
    for number, cells in rows:
        if not any(c.strip() for c in cells):
            continue
        values = {
            name: (cells[i].strip() if i < len(cells) else "") for i, name in enumerate(header)
        }

        def located(column: str, message: str, number: int = number) -> str:
            return f"{path}:{number}:{where.get(column, 1)} {column}: {message}"

        try:
            request = _request(values, zone)
        except _Fault as fault:
            out.problems.append(located(fault.column, fault.message))
            continue
        wanted = release or values.get("release", "").lower() in ("yes", "y", "true", "1")
        try:
            change = create_order(store, factory, request, release=wanted)
        except InputError as exc:
            column, _, message = exc.message.partition(": ")
            if column not in where:
                column, message = "order", exc.message
            out.problems.append(located(column, message))
            continue
        (out.created if change.stored else out.unchanged).append(change.view.order)
    return out


class _Fault(Exception):
    def __init__(self, column: str, message: str) -> None:
        super().__init__(message)
        self.column = column
        self.message = message


def _request(values: dict[str, str], zone: Any) -> WorkOrderRequest:
    if not values.get("order"):
        raise _Fault("order", "the order id is required (it makes a re-import safe)")
    try:
        quantity = int(values.get("quantity", ""))
    except ValueError:
        raise _Fault("quantity", f"'{values.get('quantity')}' is not a whole number") from None
    priority = 5
    if values.get("priority"):
        try:
            priority = int(values["priority"])
        except ValueError:
            raise _Fault("priority", f"'{values['priority']}' is not a whole number") from None
    options: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in values.get("options", "").split(";"))):
        name, sep, choice = part.partition("=")
        if not sep:
            raise _Fault("options", f"'{part}' is not NAME=CHOICE")
        options[name.strip()] = choice.strip()
    due = None
    if values.get("due"):
        try:
            due = parse_due(values["due"], zone)
        except InputError as exc:
            raise _Fault("due", exc.message.removeprefix("due: ")) from None
    return WorkOrderRequest(
        order=values["order"],
        product=values.get("product", ""),
        options=options,
        quantity=quantity,
        due=due,
        priority=priority,
    )
