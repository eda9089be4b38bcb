"""The defect Pareto: inspection results counted by defect class, per product and machine.

Inspection machines report each judged unit as an ``inspection`` event (pass, or fail with a
defect class; docs/events.md). :func:`defect_pareto` counts them over a period: overall and per
(product, machine), the defect classes largest first with their share of the failures and the
running total, the Pareto view that says which few defects make most of the scrap. A fail
without a class counts as ``unclassified``; a unit with no product (no ``product`` and no known
order) is grouped under product ``None``.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

from microfab.model.events import format_ts
from microfab.store.event_store import EventStore
from microfab.store.quality import InspectionRow, inspection_rows

UNCLASSIFIED = "unclassified"


def _pareto(counts: Counter[str]) -> list[dict[str, Any]]:
    total = sum(counts.values())
    rows = []
    running = 0
    for defect, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        running += count
        rows.append(
            {
                "defect": defect,
                "count": count,
                "share": count / total,
                "cumulative": running / total,
            }
        )
    return rows


def _summary(rows: list[InspectionRow]) -> dict[str, Any]:
    failed = [r for r in rows if not r.passed]
    return {
        "inspected": len(rows),
        "failed": len(failed),
        "fail_rate": len(failed) / len(rows) if rows else None,
        "defects": _pareto(Counter(r.defect or UNCLASSIFIED for r in failed)),
    }


def defect_pareto(
    store: EventStore, *, start: dt.datetime | None = None, end: dt.datetime | None = None
) -> dict[str, Any]:
    """The JSON of ``microfab defects --json``: totals and the Pareto overall (``defects``) and
    per product and machine (``groups``, most failures first)."""
    rows = inspection_rows(store, start, end)
    groups: dict[tuple[str | None, str], list[InspectionRow]] = {}
    for row in rows:
        groups.setdefault((row.product, row.machine), []).append(row)
    per_group = [
        {"product": product, "machine": machine, **_summary(members)}
        for (product, machine), members in groups.items()
    ]
    per_group.sort(key=lambda g: (-g["failed"], g["product"] or "", g["machine"]))
    return {
        "from": format_ts(rows[0].ts) if rows else None,
        "to": format_ts(rows[-1].ts) if rows else None,
        **_summary(rows),
        "groups": per_group,
    }
