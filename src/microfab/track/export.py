"""CSV of tracking rows for a spreadsheet: the columns of the OEE and downtime exports, one
writer, shared by ``microfab oee --csv`` and ``/api/v1/oee.csv`` / ``/api/v1/downtime.csv``.
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


def csv_text(rows: Iterable[dict[str, Any]], columns: Sequence[str]) -> str:
    """``rows`` (JSON documents) as CSV with a header row; ``null`` becomes an empty cell."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row.get(k) is None else row[k] for k in columns})
    return buffer.getvalue()
