"""Part counts from a CSV file, for machines with no connection at all (a clipboard, a spreadsheet).

The file needs a header line; columns may come in any order::

    ts,machine,good,scrap,order,operation
    2026-11-23T09:00:00+08:00,kt/plant/line1/machining/cnc-1,120,3,WO-1001,10
    2026-11-23 10:00,cnc-2,95,,,

- ``ts`` (required): ISO-8601 time. With an offset (``+08:00``, ``Z``) it is taken as written;
  without one it is the local time of the machine's site (``timezone`` of the site, e.g.
  Asia/Hong_Kong). A space may separate date and time.
- ``machine`` (required): the full path ``site/area/line/cell/machine`` or just the machine id
  (machine ids are unique in a factory).
- ``good`` (required), ``scrap`` (default 0): units made since the previous count, not totals.
- ``order``, ``operation`` (optional): work order and routing step number.

The file is UTF-8 (a byte-order mark is allowed); blank lines and unnamed columns are ignored and
missing trailing cells are empty.

Each row becomes one ``count`` event whose id is ``csv-`` and a SHA-256 digest of the row's
meaning (time, machine path, numbers, order, operation), not of the file name or line number:
importing the same rows again, from any file, stores nothing new. Two identical rows are the same
event. The events go to a publisher; nothing here touches the store.

A bad row stops the import with a located :class:`~microfab.errors.ImportFileError`
(``FILE:LINE: column: what was expected``) after the rows before it are published and flushed,
like ``microfab events import``.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from microfab.connect.publisher import Publisher
from microfab.errors import ImportFileError
from microfab.model.events import PartCount, describe_validation_error, format_ts
from microfab.model.factory import Factory, MachineRef

COLUMNS = ("ts", "machine", "good", "scrap", "order", "operation")
REQUIRED = ("ts", "machine", "good")
ID_PREFIX = "csv-"
_NOT_UTF8 = "not UTF-8 text; save the file as 'CSV UTF-8'"


@dataclass
class CsvReport:
    """What an import read and handed to the publisher."""

    path: Path
    lines: int = 0
    """Last line number read (the header is line 1)."""
    rows: int = 0
    """Data rows turned into events."""
    machines: int = 0
    """Distinct machines the rows named."""


class _RowError(Exception):
    def __init__(self, column: str, message: str) -> None:
        super().__init__(f"{column}: {message}")


def import_counts_csv(path: Path, factory: Factory, publisher: Publisher) -> CsvReport:
    """Publish one :class:`PartCount` per data row of ``path``; see the module docstring."""
    report = CsvReport(path=path)
    resolver = _MachineResolver(factory)
    seen_machines: set[str] = set()

    def fail(line: int, message: str) -> ImportFileError:
        _flush(publisher)
        return ImportFileError(
            f"{path}:{line}: {message}. Import stopped there; the {report.rows} rows before it "
            "were imported. Fix the line and import the file again: rows already stored are "
            "skipped."
        )

    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ImportFileError(f"{path}: cannot read ({exc.strerror})") from None
    text, bad_line = _decode(raw)
    reader = csv.reader(io.StringIO(text, newline=""))
    columns: list[str] | None = None
    while True:
        line = reader.line_num + 1  # where the next record starts
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise fail(line, f"not valid CSV ({exc})") from None
        report.lines = reader.line_num
        if not any(cell.strip() for cell in row):
            continue  # blank line
        if columns is None:
            try:
                columns = _header(row)
            except ValueError as exc:
                raise fail(line, str(exc)) from None
            continue
        if len(row) > len(columns):
            raise fail(
                line, f"expected {len(columns)} fields ({','.join(columns)}), found {len(row)}"
            )
        row += [""] * (len(columns) - len(row))  # missing trailing cells are empty
        try:
            event = _event(dict(zip(columns, row, strict=True)), resolver)
        except _RowError as exc:
            raise fail(line, str(exc)) from None
        publisher.publish(event)
        report.rows += 1
        seen_machines.add(event.machine)
    if bad_line is not None:
        raise fail(bad_line, _NOT_UTF8)
    if columns is None:
        raise fail(1, f"the file is empty; expected a header line {','.join(COLUMNS)}")
    _flush(publisher)
    report.machines = len(seen_machines)
    return report


def count_event_id(
    ts: dt.datetime,
    machine: str,
    good: int,
    scrap: int,
    order: str | None,
    operation: int | None,
) -> str:
    """The id of a CSV row's count event: equal for equal content, 64 characters."""
    content = "\x1f".join(
        (
            format_ts(ts),
            machine,
            str(good),
            str(scrap),
            order or "",
            "" if operation is None else str(operation),
        )
    )
    return ID_PREFIX + hashlib.sha256(content.encode("utf-8")).hexdigest()[: 64 - len(ID_PREFIX)]


# --------------------------------------------------------------------------- parsing


def _decode(raw: bytes) -> tuple[str, int | None]:
    """The text of the file up to its first line that is not UTF-8, and that line's number."""
    try:
        return raw.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        cut = raw.rfind(b"\n", 0, exc.start) + 1
        return raw[:cut].decode("utf-8-sig", errors="replace"), raw.count(b"\n", 0, cut) + 1


def _header(row: list[str]) -> list[str]:
    columns = [cell.strip().lower() for cell in row]
    for name in columns:
        if name and name not in COLUMNS:  # an unnamed column (a trailing comma) is ignored
            raise ValueError(
                f"unknown column '{name}' in the header; the columns are {', '.join(COLUMNS)}"
            )
    duplicated = sorted({c for c in columns if c and columns.count(c) > 1})
    if duplicated:
        raise ValueError(f"column '{duplicated[0]}' appears twice in the header")
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise ValueError(
            f"the header has no {', '.join(missing)} column; required are {', '.join(REQUIRED)}"
        )
    return columns


class _MachineResolver:
    def __init__(self, factory: Factory) -> None:
        refs = factory.machines()
        self.by_path = {ref.path: ref for ref in refs}
        self.by_id = {ref.machine.id: ref for ref in refs}

    def resolve(self, text: str) -> MachineRef:
        ref = self.by_path.get(text) or self.by_id.get(text)
        if ref is None:
            example = next(iter(self.by_id), "cnc-1")
            raise _RowError(
                "machine",
                f"'{text}' is not a machine of the factory model; expected a machine id such as "
                f"'{example}' or its full path site/area/line/cell/machine",
            )
        return ref


def _event(cells: dict[str, str], resolver: _MachineResolver) -> PartCount:
    ts_text = cells["ts"].strip()
    local = _parse_time(ts_text)
    machine_text = cells["machine"].strip()
    if not machine_text:
        raise _RowError("machine", "empty; expected a machine id or path")
    ref = resolver.resolve(machine_text)
    if local.tzinfo is None:
        local = local.replace(tzinfo=ref.site.zone)
    ts = local.astimezone(dt.UTC)
    ts = ts.replace(microsecond=ts.microsecond // 1000 * 1000)
    good = _whole(cells["good"], "good", required=True)
    scrap = _whole(cells.get("scrap", ""), "scrap", required=False)
    order = cells.get("order", "").strip() or None
    if order is not None and len(order) > 64:
        raise _RowError("order", f"{len(order)} characters; expected at most 64")
    operation_text = cells.get("operation", "").strip()
    operation: int | None = None
    if operation_text:
        operation = _whole(operation_text, "operation", required=True)
        if operation < 1:
            raise _RowError("operation", f"'{operation_text}': expected a routing step number ≥ 1")
    try:
        return PartCount(
            id=count_event_id(ts, ref.path, good, scrap, order, operation),
            ts=ts,
            machine=ref.path,
            good=good,
            scrap=scrap,
            order=order,
            operation=operation,
        )
    except ValidationError as exc:
        problem = describe_validation_error(exc)
        column, _, message = problem.partition(": ")
        raise _RowError(column if column in COLUMNS else "row", message or problem) from None


def _parse_time(text: str) -> dt.datetime:
    if not text:
        raise _RowError("ts", "empty; expected an ISO-8601 time such as 2026-11-23T09:00:00+08:00")
    iso = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
    try:
        return dt.datetime.fromisoformat(iso)
    except ValueError:
        raise _RowError(
            "ts",
            f"'{text}' is not an ISO-8601 time; expected e.g. 2026-11-23T09:00:00+08:00 "
            "(or 2026-11-23 09:00 in the site's time zone)",
        ) from None


def _whole(text: str, column: str, *, required: bool) -> int:
    value = text.strip()
    if not value:
        if required:
            raise _RowError(column, "empty; expected a whole number ≥ 0")
        return 0
    try:
        number = int(value)
    except ValueError:
        try:
            as_float = float(value)
        except ValueError:
            as_float = float("nan")
        if not as_float.is_integer():
            raise _RowError(column, f"'{value}' is not a whole number ≥ 0") from None
        number = int(as_float)
    if number < 0:
        raise _RowError(column, f"'{value}' is negative; expected a whole number ≥ 0")
    return number


def _flush(publisher: Publisher) -> None:
    publisher.flush()
