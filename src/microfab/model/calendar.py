"""Working time: shift windows of a calendar, less breaks, public holidays and closures.

``working_windows`` answers "when is this line planned to work between T1 and T2?" as a list of
UTC intervals, each tagged with the shift it belongs to. Everything else (breaks, holidays,
typhoon closures) is planned-stop time. Days and shifts are evaluated in the site's time zone.
"""

from __future__ import annotations

import datetime as dt
import functools
import zoneinfo
from dataclasses import dataclass

import holidays as holiday_data

from microfab.model.factory import Calendar, Shift


@dataclass(frozen=True, slots=True)
class Window:
    """A half-open UTC interval ``[start, end)`` of one shift on one day."""

    start: dt.datetime
    end: dt.datetime
    shift: str
    day: dt.date

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


@functools.lru_cache(maxsize=256)
def _holidays(country: str, subdivision: str | None, year: int) -> frozenset[dt.date]:
    found = holiday_data.country_holidays(country, subdiv=subdivision, years=year)
    return frozenset(found.keys())


_NATIONAL_ONLY = {"CN-GD": "CN"}
"""Regions whose public holidays are their country's (Guangdong keeps Mainland China's)."""


def public_holidays(calendar_code: str | None, year: int) -> frozenset[dt.date]:
    """Public holidays of a year for the site's holiday calendar (``HK``, ``CN``, ``CN-GD``,
    ``VN``, ``MY``, ``TH`` … — see :data:`microfab.model.factory.HolidayRegion` — or none)."""
    if calendar_code is None:
        return frozenset()
    code = _NATIONAL_ONLY.get(calendar_code, calendar_code)
    country, _, subdivision = code.partition("-")
    return _holidays(country, subdivision or None, year)


def _clock(day: dt.date, text: str, zone: zoneinfo.ZoneInfo) -> dt.datetime:
    if text == "24:00":
        return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0, 0), zone)
    hour, minute = (int(part) for part in text.split(":"))
    return dt.datetime.combine(day, dt.time(hour, minute), zone)


def _shift_span(
    shift: Shift, day: dt.date, zone: zoneinfo.ZoneInfo
) -> tuple[dt.datetime, dt.datetime]:
    start = _clock(day, shift.start, zone)
    end = _clock(day, shift.end, zone)
    if end <= start:  # runs past midnight
        end = _clock(day + dt.timedelta(days=1), shift.end, zone)
    return start, end


def _subtract(
    spans: list[tuple[dt.datetime, dt.datetime]], cut: tuple[dt.datetime, dt.datetime]
) -> list[tuple[dt.datetime, dt.datetime]]:
    out = []
    for start, end in spans:
        if cut[1] <= start or cut[0] >= end:
            out.append((start, end))
            continue
        if cut[0] > start:
            out.append((start, cut[0]))
        if cut[1] < end:
            out.append((cut[1], end))
    return out


def working_windows(
    calendar: Calendar,
    start: dt.datetime,
    end: dt.datetime,
    zone: zoneinfo.ZoneInfo,
    holiday_calendar: str | None = "HK",
) -> list[Window]:
    """Planned working time between ``start`` and ``end`` (aware datetimes), in UTC, sorted."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("working_windows needs aware datetimes")
    windows: list[Window] = []
    first_day = start.astimezone(zone).date() - dt.timedelta(days=1)
    last_day = end.astimezone(zone).date()
    day = first_day
    while day <= last_day:
        off = calendar.public_holidays_off and day in public_holidays(holiday_calendar, day.year)
        for shift in calendar.shifts:
            if off or dt.date.isoweekday(day) not in {d.iso for d in shift.days}:
                continue
            span_start, span_end = _shift_span(shift, day, zone)
            spans = [(span_start, span_end)]
            for brk in shift.breaks:
                b_start = _clock(day, brk.start, zone)
                if b_start < span_start:
                    b_start = _clock(day + dt.timedelta(days=1), brk.start, zone)
                b_end = _clock(b_start.astimezone(zone).date(), brk.end, zone)
                if b_end <= b_start:
                    b_end = _clock(
                        b_start.astimezone(zone).date() + dt.timedelta(days=1), brk.end, zone
                    )
                spans = _subtract(spans, (b_start, b_end))
            for closure in calendar.closures:
                spans = _subtract(spans, (closure.start, closure.end))
            for s, e in spans:
                s, e = max(s, start), min(e, end)
                if s < e:
                    windows.append(
                        Window(s.astimezone(dt.UTC), e.astimezone(dt.UTC), shift.name, day)
                    )
        day += dt.timedelta(days=1)
    windows.sort(key=lambda w: w.start)
    return windows


def is_working(windows: list[Window], instant: dt.datetime) -> bool:
    return any(w.start <= instant < w.end for w in windows)
