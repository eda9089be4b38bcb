"""Times and time ranges as users write them, and the limits every query window keeps.

``2026-11-23T08:00:00+08:00`` and ``2026-11-23T00:00Z`` are taken as written;
``2026-11-23 08:00`` (no offset) is the site's local time; ``2026-11-23`` is local midnight.

**Limits** (docs/security.md, *Limits*), the same for the API, the pages and the CLI:

- a time a user writes lies in :data:`EARLIEST_TIME` … :data:`LATEST_TIME` (1970 to 2200);
  0001-01-01 or 9999-12-31 is refused with the field named (a :class:`TimeRangeError`, 400
  ``invalid_time_range`` in the API, as an event time the clock policy refuses), never carried
  into arithmetic that overflows;
- :func:`clamp_window` cuts a query window to the whole site days that hold stored data (a window
  from 1970 to 2100 over one week of events is that week);
- :func:`check_window` refuses a window longer than the cap (``MICROFAB_MAX_QUERY_DAYS``, default
  :data:`MAX_QUERY_DAYS`) with a :class:`LimitError` (422 ``over_limit``) naming the limit; a window left open on one side starts or ends at the
  cap from the other.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

from microfab.errors import LimitError, TimeRangeError

EARLIEST_TIME = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
"""The earliest time a user may write (a query bound, a due date, an expiry), as written: in the
offset it gives or the site's time."""
LATEST_TIME = dt.datetime(2200, 1, 1, tzinfo=dt.UTC)
"""The first time past the latest one a user may write (as written, too)."""
MAX_QUERY_DAYS = 366
"""The longest window one request or command may ask for, unless configured otherwise."""
_LATEST_NAIVE = LATEST_TIME.replace(tzinfo=None)


def parse_time(text: str, zone: zoneinfo.ZoneInfo, *, field: str = "time") -> dt.datetime:
    """An aware UTC datetime for ``text``; :class:`TimeRangeError` names ``field`` if it fails or
    lies outside 1970–2200 as written (in its own offset or the site's time)."""
    raw = text.strip()
    value = raw[:-1] + "+00:00" if raw.endswith(("Z", "z")) else raw
    try:
        if len(value) == 10:
            parsed = dt.datetime.combine(dt.date.fromisoformat(value), dt.time(0, 0))
        else:
            parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise TimeRangeError(
            f"{field}: '{text}' is not a time such as 2026-11-23, 2026-11-23T08:00 (site time) "
            "or 2026-11-23T08:00:00+08:00"
        ) from None
    if not EARLIEST_TIME.replace(tzinfo=None) <= parsed.replace(tzinfo=None) < _LATEST_NAIVE:
        raise TimeRangeError(  # as written: 1970-01-01 is a time in every site's zone
            f"{field}: '{text}' is outside the times microfab takes "
            f"({EARLIEST_TIME:%Y-%m-%d} to {LATEST_TIME:%Y-%m-%d})"
        )
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return parsed.astimezone(dt.UTC)


def check_range(start: dt.datetime | None, end: dt.datetime | None) -> None:
    """Raise :class:`TimeRangeError` when both ends are given and ``end`` is not after ``start``."""
    if start is not None and end is not None and end <= start:
        raise TimeRangeError(
            f"the time range ends ({end.isoformat()}) before or when it starts "
            f"({start.isoformat()}); give --to after --from"
        )


def _midnight(when: dt.datetime, zone: zoneinfo.ZoneInfo, days: int = 0) -> dt.datetime:
    local = when.astimezone(zone).date() + dt.timedelta(days=days)
    return dt.datetime.combine(local, dt.time(0), tzinfo=zone).astimezone(dt.UTC)


def clamp_window(
    start: dt.datetime | None,
    end: dt.datetime | None,
    span: tuple[dt.datetime, dt.datetime] | None,
    zone: zoneinfo.ZoneInfo,
) -> tuple[dt.datetime | None, dt.datetime | None]:
    """``start``/``end`` cut to the site days holding stored data: from the local midnight
    before the first stored event to the one after the last. Figures within those days do not
    change; days before the first event or after the last, which hold nothing, are left out.
    An end left open stays open; with nothing stored (``span`` None) the window is as given. A
    window wholly outside the data becomes an empty one at its edge."""
    if span is None:
        return start, end
    floor, ceiling = _midnight(span[0], zone), _midnight(span[1], zone, days=1)
    first = None if start is None else min(max(start, floor), ceiling)
    last = None if end is None else max(min(end, ceiling), floor)
    if first is not None and last is not None and last <= first:
        last = first + dt.timedelta(seconds=1)  # nothing there: an empty, valid window
    return first, last


def check_window(
    start: dt.datetime | None,
    end: dt.datetime | None,
    max_days: int,
    *,
    fields: tuple[str, str] = ("from", "to"),
    span: tuple[dt.datetime, dt.datetime] | None = None,
) -> tuple[dt.datetime | None, dt.datetime | None]:
    """Refuse a window longer than ``max_days`` (a :class:`LimitError` saying the limit).

    An open end is taken from ``span`` (the stored data) as the routes do; when that makes the
    window too long, the open end is moved to ``max_days`` from the given one (a query with no
    ``from`` over years of data shows the last ``max_days``) rather than refused."""
    check_range(start, end)
    cap = dt.timedelta(days=max_days)
    if start is not None and end is not None:
        if end - start > cap:
            raise LimitError(
                f"{fields[0]}/{fields[1]}: the window {start:%Y-%m-%d} to {end:%Y-%m-%d} is "
                f"{(end - start).days} days; one query covers at most {max_days} days "
                "(MICROFAB_MAX_QUERY_DAYS): ask for it in parts"
            )
        return start, end
    if span is None:
        return start, end
    if start is None and end is None:
        if span[1] - span[0] > cap:
            return span[1] - cap, None
        return None, None
    if start is None:
        assert end is not None
        return (end - cap if end - span[0] > cap else None), end
    assert start is not None
    return start, (start + cap if span[1] - start > cap else None)


def query_window(
    start: str | None,
    end: str | None,
    zone: zoneinfo.ZoneInfo,
    *,
    span: tuple[dt.datetime, dt.datetime] | None,
    max_days: int = MAX_QUERY_DAYS,
    fields: tuple[str, str] = ("from", "to"),
) -> tuple[dt.datetime | None, dt.datetime | None]:
    """A query's ``from``/``to`` text as a bounded window: parsed (:func:`parse_time`), checked
    for order, cut to the stored data (:func:`clamp_window`) and capped (:func:`check_window`).
    The one place the API and the CLI turn a window's text into times."""
    first = parse_time(start, zone, field=fields[0]) if start else None
    last = parse_time(end, zone, field=fields[1]) if end else None
    if first is not None and last is not None and last <= first:
        if fields[1].startswith("--"):  # the command's words
            raise TimeRangeError(
                f"{fields[1]} {end} is not after {fields[0]} {start}; give a later {fields[1]}"
            )
        raise TimeRangeError(
            f"the time range is empty or inverted: '{fields[1]}' ({end}) is not after "
            f"'{fields[0]}' ({start}); give a '{fields[1]}' later than '{fields[0]}'"
        )
    first, last = clamp_window(first, last, span, zone)
    return check_window(first, last, max_days, fields=fields, span=span)
