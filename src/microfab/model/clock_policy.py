"""The clock policy: whether an event's time is believable when it arrives, and why not.

A device's clock is not the plant's clock. A PLC whose real-time clock reset to 2000-01-01, or
jumped to 2106, reports times that would otherwise become the plant clock (the newest stored
event) and move every "today", OEE window and due date with them. So an event is judged against
the time it was *received* by the receiving clock (the wall clock; the simulation's clock in the
demo and ``microfab sim``):

- more than ``max_future`` ahead of it (default 5 minutes) → rejected;
- more than ``max_age`` behind it (default 30 days; ``None`` takes any age: ``events import`` and
  ``deadletters replay`` take older data on purpose) → rejected;
- before :data:`EARLIEST` (2000-01-01) → rejected, whatever the options.

A rejected event is not an event: ingest keeps it as a dead letter with reason ``bad_time`` (see
:data:`BAD_TIME`). An accepted event may still come from a clock that drifts: :func:`clock_offset`
gives the offset to show per device.

Pure and typed: no I/O, no clock of its own (the caller passes the time of receipt).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from microfab.errors import InputError

BAD_TIME = "bad_time"
"""Reason prefix of a dead letter whose event time broke the clock policy."""

EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
"""No event time before this is believable (a reset real-time clock shows 2000-01-01 or 1970)."""

DEFAULT_MAX_FUTURE = dt.timedelta(minutes=5)
"""How far ahead of the receiving clock an event time may be (clocks are never quite in step)."""

DEFAULT_MAX_AGE = dt.timedelta(days=30)
"""How far behind the receiving clock an event time may be, where ingest sets an age limit."""

DRIFT_SHOWN = dt.timedelta(seconds=30)
"""A device whose accepted events are off the receiving clock by more than this shows as
"clock off by N s" in the ingest status."""


@dataclass(frozen=True, slots=True)
class TimeVerdict:
    """What the policy says about one event time: accepted, or rejected with a sentence."""

    accepted: bool
    reason: str = ""
    """Empty when accepted; else ``bad_time: <fault>; <what to do>`` (a dead letter's reason)."""
    fault: str = ""
    """What is wrong with the time, without the advice (for a person typing it in)."""


ACCEPTED = TimeVerdict(True)


@dataclass(frozen=True, slots=True)
class ClockPolicy:
    """The bounds an event time must keep relative to the time it was received."""

    max_future: dt.timedelta = DEFAULT_MAX_FUTURE
    max_age: dt.timedelta | None = DEFAULT_MAX_AGE
    """``None``: any age since :data:`EARLIEST` is accepted."""

    def __post_init__(self) -> None:
        if self.max_future < dt.timedelta(0):
            raise ValueError("max_future must not be negative")
        if self.max_age is not None and self.max_age <= dt.timedelta(0):
            raise ValueError("max_age must be positive (or None for no limit)")

    def judge(self, ts: dt.datetime, received_at: dt.datetime) -> TimeVerdict:
        """Accept ``ts`` or reject it with reason ``bad_time: …`` (both times aware)."""
        if ts < EARLIEST:
            return _rejected(
                f"event time {_show(ts)} is before {EARLIEST.year}",
                "the device's clock is not set; set it, then replay with "
                "'microfab deadletters replay'",
            )
        ahead = _seconds_between(received_at, ts)
        if ahead > self.max_future.total_seconds():
            return _rejected(
                f"event time {_show(ts)} is {_duration(ahead)} ahead of the receiving clock "
                f"({_show(received_at)}; at most {_duration(self.max_future.total_seconds())} "
                "accepted)",
                "the device's clock runs ahead; set it, then replay with "
                "'microfab deadletters replay --shift-ts SECONDS'",
            )
        if self.max_age is not None and -ahead > self.max_age.total_seconds():
            return _rejected(
                f"event time {_show(ts)} is {_duration(-ahead)} behind the receiving clock "
                f"({_show(received_at)}; at most {_duration(self.max_age.total_seconds())} "
                "accepted)",
                "old data goes in with 'microfab events import'; a slow clock is set, then "
                "replayed with 'microfab deadletters replay --shift-ts SECONDS'",
            )
        return ACCEPTED

    @classmethod
    def from_options(cls, max_future: str, max_age: str) -> ClockPolicy:
        """The policy of ``--max-future`` (e.g. ``5m``) and ``--max-age`` (e.g. ``30d``, or
        ``none`` for no age limit); :class:`InputError` naming the option when one is not a
        duration."""
        future = _option_duration(max_future, "--max-future", zero_ok=True)
        age = (
            None
            if max_age.strip().lower() in ("none", "off")
            else _option_duration(max_age, "--max-age", zero_ok=False)
        )
        return cls(max_future=future, max_age=age)


UNLIMITED_AGE = ClockPolicy(max_age=None)
"""Future bound and floor only: what operator input and replays are judged by."""


def check_event_time(
    ts: dt.datetime | None,
    received_at: dt.datetime,
    *,
    field: str = "ts",
    policy: ClockPolicy = UNLIMITED_AGE,
) -> None:
    """Raise :class:`InputError` naming ``field`` when a time typed in (operator input) breaks
    ``policy``; ``None`` (no time given) passes. Input typed in has no age limit by default: an
    operator may enter counts an earlier shift missed."""
    if ts is None:
        return
    verdict = policy.judge(ts, received_at)
    if not verdict.accepted:
        raise InputError(f"{field}: {verdict.fault}; give the time the units were made")


def clock_offset(ts: dt.datetime, received_at: dt.datetime) -> float:
    """Seconds the event time is ahead of the receiving clock (negative: behind)."""
    return _seconds_between(received_at, ts)


CLAMP_MARGIN = dt.timedelta(days=100 * 366)
"""How far inside year 1..9999 :func:`clamp_time` keeps a time: room for any window, forecast
(10 years at most) or time-zone shift built on it."""


def clamp_time(value: dt.datetime, *, margin: dt.timedelta = CLAMP_MARGIN) -> dt.datetime:
    """``value`` moved, if need be, far enough inside year 1..9999 that adding or subtracting
    ``margin`` (a window, a day's offset to local time) cannot overflow; returned in UTC. For
    times already stored before the clock policy existed."""
    low = dt.datetime.min.replace(tzinfo=dt.UTC) + margin
    high = dt.datetime.max.replace(tzinfo=dt.UTC) - margin
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return min(max(value, low), high).astimezone(dt.UTC)


LATEST_AHEAD = dt.timedelta(days=366)
"""Stored data more than this ahead of the wall clock is left out of default windows."""


def believable_span(
    span: tuple[dt.datetime, dt.datetime] | None, *, wall_clock: dt.datetime | None = None
) -> tuple[dt.datetime, dt.datetime] | None:
    """The first and last stored event time, cut to the believable band (from :data:`EARLIEST`
    to :data:`LATEST_AHEAD` past the wall clock), for windows built from the stored data when the
    user gives none: one event stamped 0001-01-01 or 9999-12-31 before the clock policy existed
    must not stretch them over millennia. None when nothing is left."""
    if span is None:
        return None
    latest = (wall_clock or dt.datetime.now(dt.UTC)) + LATEST_AHEAD
    first, last = max(span[0], EARLIEST), min(span[1], latest)
    return (first, last) if first <= last else None


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _option_duration(text: str, option: str, *, zero_ok: bool) -> dt.timedelta:
    """``90s``, ``5m``, ``8h``, ``30d`` or a plain number of seconds, as a timedelta."""
    value = text.strip().lower()
    try:
        if value and value[-1] in _UNITS:
            seconds = float(value[:-1]) * _UNITS[value[-1]]
        else:
            seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds < 0 or (seconds == 0 and not zero_ok):
        raise InputError(
            f"{option}: '{text}' is not a {'' if zero_ok else 'positive '}duration; "
            "write e.g. 90s, 5m, 8h or 30d"
            + (", or 'none' for no limit" if option == "--max-age" else "")
        )
    if seconds > 100 * 365 * 86400:
        raise InputError(f"{option}: '{text}' is more than 100 years")
    return dt.timedelta(seconds=seconds)


def _seconds_between(earlier: dt.datetime, later: dt.datetime) -> float:
    """``(later - earlier)`` in seconds, for any two aware times (no overflow)."""
    return (later - earlier).total_seconds()


def _rejected(fault: str, advice: str) -> TimeVerdict:
    return TimeVerdict(False, f"{BAD_TIME}: {fault}; {advice}", fault)


def _show(value: dt.datetime) -> str:
    value = value.astimezone(dt.UTC) if value.tzinfo is not None else value
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value.year >= 1000 else value.isoformat()


def _duration(seconds: float) -> str:
    """``90 s``, ``12 min``, ``5 h``, ``40 days``: the largest unit that keeps it readable."""
    seconds = abs(seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:,.0f} days"
