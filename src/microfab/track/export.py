"""CSV of tracking rows for a spreadsheet: the columns of the OEE and downtime exports, one
writer, shared by ``microfab oee --csv`` and ``/api/v1/oee.csv`` / ``/api/v1/downtime.csv``.

Text from the shop floor (a downtime reason sent over MQTT, a machine or order name) may begin
with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return, which a spreadsheet runs as a formula
(``=HYPERLINK(…)``, ``@SUM(1+9)*cmd|' /C calc'!A0``). The writer neutralises such text cells with a
leading apostrophe, as OWASP recommends; numbers are written as they are.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

OEE_COLUMNS = (
    "machine",
    "from",
    "to",
    "shift",
    "day",
    "planned_busy_s",
    "run_s",
    "ideal_cycle_s",
    "total",
    "good",
    "scrap",
    "outside_total",
    "availability",
    "performance",
    "quality",
    "oee",
    "bottleneck",
    "output_good",
)
"""An OEE row's fields, as ``microfab oee --csv`` writes them."""

OEE_API_COLUMNS = ("machine", "line", "level", *OEE_COLUMNS[1:])
"""The API's OEE CSV also says which line a row belongs to and whether it is a machine or a line."""

DOWNTIME_COLUMNS = ("state", "reason", "category", "seconds", "stops", "share", "machines")


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
"""What a text cell must not begin with: a spreadsheet would take it for a formula."""


def neutral_cell(value: Any) -> Any:
    """``value`` as a CSV cell: ``None`` empty, text that a spreadsheet would run as a formula
    behind an apostrophe, anything else unchanged."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def csv_text(rows: Iterable[dict[str, Any]], columns: Sequence[str]) -> str:
    """``rows`` (JSON documents) as CSV with a header row; ``null`` becomes an empty cell, and
    text cells are neutralised (see the module docstring)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: neutral_cell(row.get(k)) for k in columns})
    return buffer.getvalue()
