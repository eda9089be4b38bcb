"""Times and time ranges as users write them: ISO-8601 with an offset, local site time, or a date.

``2026-11-23T08:00:00+08:00`` and ``2026-11-23T00:00Z`` are taken as written;
``2026-11-23 08:00`` (no offset) is the site's local time; ``2026-11-23`` is local midnight.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

from microfab.errors import TimeRangeError


def parse_time(text: str, zone: zoneinfo.ZoneInfo, *, field: str = "time") -> dt.datetime:
    """An aware UTC datetime for ``text``; :class:`TimeRangeError` names ``field`` if it fails."""
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
