"""Reliability per machine and month: MTBF, MTTR, maintenance cost, planned vs unplanned share.

- **failures**: ``unplanned_stop`` spans (any reason: breakdowns, corrective maintenance, safety
  stops) that begin in the month, from the ``state_spans`` read model; a stop continued under
  another unplanned reason (a breakdown, then ``CM`` while it is repaired) is one failure;
- **MTBF** = running hours in the month / failures; **MTTR** = unplanned-stop hours / failures
  (wall time, clipped to the month; none without a failure);
- **maintenance cost** = labour (minutes × the job's rate) + parts issued, HK$, of the jobs
  finished in the month;
- **planned / unplanned share**: hours of finished jobs (start → finish) that were preventive or
  predictive (planned) or corrective (unplanned), over all maintenance hours.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

from microfab.errors import InputError
from microfab.store import maintenance as rows
from microfab.store.production_views import spans_between
from microfab.track.plant import Plant


def parse_month(text: str) -> tuple[int, int]:
    try:
        year, month = (int(p) for p in text.split("-"))
        dt.date(year, month, 1)
    except ValueError:
        raise InputError(f"--month: '{text}' is not a month like 2026-11") from None
    return year, month


def month_range(year: int, month: int, zone: zoneinfo.ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    first = dt.datetime(year, month, 1, tzinfo=zone)
    nxt = dt.datetime(year + month // 12, month % 12 + 1, 1, tzinfo=zone)
    return first.astimezone(dt.UTC), nxt.astimezone(dt.UTC)


def reliability(
    plant: Plant, year: int, month: int, machine: str | None = None
) -> list[dict[str, Any]]:
    """One row per machine (that produces, or the one asked for) for the month."""
    factory = plant.factory()
    zone = plant.zone(factory)
    start, end = month_range(year, month, zone)
    now = min(end, max(plant.now(), start))
    refs = (
        [plant.machine(machine, factory)]
        if machine
        else [r for r in factory.machines() if r.machine.produces]
    )
    paths = [r.path for r in refs]
    spans = spans_between(plant.store, paths, start, now) if now > start else {p: [] for p in paths}
    orders = [
        o
        for o in rows.list_orders(plant.store)
        if o["state"] == "done" and o["finished_at"] is not None and start <= o["finished_at"] < end
    ]
    issues = rows.issues_of(plant.store, [int(o["id"]) for o in orders])
    parts_cost: dict[int, float] = {}
    for issue in issues:
        parts_cost[int(issue["order_id"])] = parts_cost.get(int(issue["order_id"]), 0.0) + float(
            issue["qty"]
        ) * float(issue["unit_cost"])
    out = []
    for path in paths:
        run_s = down_s = 0.0
        failures = 0
        previous = None
        for span in spans[path]:
            lo, hi = max(span.start, start), min(span.end or now, now)
            seconds = max(0.0, (hi - lo).total_seconds())
            if span.state == "running":
                run_s += seconds
            elif span.state == "unplanned_stop":
                down_s += seconds
                if previous != "unplanned_stop" and span.start >= start:
                    failures += 1
            previous = span.state
        mine = [o for o in orders if o["machine"] == path]
        planned_h = unplanned_h = 0.0
        cost = 0.0
        for o in mine:
            hours = (
                ((o["finished_at"] - o["started_at"]).total_seconds() / 3600)
                if o["started_at"]
                else 0.0
            )
            if o["kind"] == "corrective":
                unplanned_h += hours
            else:
                planned_h += hours
            cost += float(o["labour_cost"]) + parts_cost.get(int(o["id"]), 0.0)
        total_h = planned_h + unplanned_h
        out.append(
            {
                "machine": path,
                "month": f"{year:04d}-{month:02d}",
                "failures": failures,
                "run_h": round(run_s / 3600, 2),
                "unplanned_stop_h": round(down_s / 3600, 2),
                "mtbf_h": round(run_s / 3600 / failures, 2) if failures else None,
                "mttr_h": round(down_s / 3600 / failures, 2) if failures else None,
                "jobs": len(mine),
                "maintenance_cost": round(cost, 2),
                "planned_h": round(planned_h, 2),
                "unplanned_h": round(unplanned_h, 2),
                "planned_share": round(planned_h / total_h, 4) if total_h else None,
                "unplanned_share": round(unplanned_h / total_h, 4) if total_h else None,
            }
        )
    return out
