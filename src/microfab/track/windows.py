"""The window of an OEE or downtime query over the stored data: parsed, cut to it, capped.

The API routes and ``microfab oee``/``microfab downtime`` both turn their ``from``/``to`` text
into times here, so the two take the same windows and refuse the same ones
(:func:`microfab.model.timerange.query_window` holds the rules).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

from microfab.model.clock_policy import believable_span
from microfab.model.factory import Factory
from microfab.model.timerange import MAX_QUERY_DAYS, query_window
from microfab.store import EventStore
from microfab.store.production import time_span
from microfab.track.oee import select_lines


def data_window(
    store: EventStore,
    factory: Factory,
    line: str | None,
    start: str | None,
    end: str | None,
    zone: zoneinfo.ZoneInfo,
    *,
    max_days: int = MAX_QUERY_DAYS,
    fields: tuple[str, str] = ("from", "to"),
) -> tuple[dt.datetime | None, dt.datetime | None]:
    """``start``/``end`` text as a window cut to the days the selected lines' machines have
    state or count events, at most ``max_days`` long (a :class:`~microfab.errors.TimeRangeError`
    naming ``fields`` otherwise)."""
    paths = [ref.path for refs in select_lines(factory, line) for ref in refs]
    span = believable_span(time_span(store, paths)) if paths else None
    return query_window(start, end, zone, span=span, max_days=max_days, fields=fields)
