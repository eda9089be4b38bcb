"""Periods as people say them ("yesterday", "上個禮拜", "last shift", "11月") resolved in site time.

A period word is found in the question (:func:`find_period`) and turned into a window
(:func:`resolve`) against the plant clock, in the site's time zone, with the line's shift calendar
for "this shift" / "last shift" (:func:`microfab.model.calendar.working_windows`). Weeks start on
Monday. A window that reaches past the plant clock ends at the plant clock plus 1 ms, as the
dashboard's "today" does, so "today's OEE" is the dashboard's figure.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from dataclasses import dataclass

from microfab.model.calendar import working_windows
from microfab.model.factory import Calendar

MONTHS = {
    name: number
    for number, names in enumerate(
        [
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ],
        start=1,
    )
    for name in names
}

ZH_DIGITS = {"一": 1, "二": 2, "兩": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8,
             "九": 9, "十": 10}  # fmt: skip

PERIOD_WORDS: list[tuple[str, tuple[str, ...]]] = [
    # the longer, more specific phrases first
    ("day_before", ("day before yesterday", "前日", "前天")),
    ("last_shift", ("last shift", "previous shift", "上一更", "上個更", "上一個更", "上更",
                    "上一班", "上個班次", "上一個班次")),
    ("this_shift", ("this shift", "current shift", "今更", "呢更", "呢一更", "今個更", "本更",
                    "當更", "今班", "本班次", "這一更", "這班")),
    ("yesterday", ("yesterday", "yday", "昨日", "昨天", "尋日", "琴日", "噚日", "擒日")),
    ("today", ("today", "今日", "今天", "今朝", "而家為止", "到目前為止")),
    ("last_week", ("last week", "previous week", "上週", "上周", "上星期", "上個星期",
                   "上個禮拜", "上禮拜", "上一個星期", "上一週")),
    ("this_week", ("this week", "本週", "本周", "今個星期", "呢個星期", "今個禮拜", "呢個禮拜",
                   "這週", "這個星期", "今星期", "今個week", "本星期")),
    ("last_month", ("last month", "previous month", "上個月", "上月", "上一個月")),
    ("this_month", ("this month", "本月", "今個月", "呢個月", "這個月", "今月")),
]  # fmt: skip
"""Period words in English, written Chinese and Cantonese, by period kind."""

_LAST_DAYS = re.compile(
    r"(?:last|past|previous)\s+(\d{1,3})\s+days?|(?:過去|最近|近|前)\s*(\d{1,3}|[一二兩三四五六七八九十])\s*(?:日|天)"
)
_ISO_DAY = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
_SLASH_DAY = re.compile(r"(?<![\d/])(\d{1,2})/(\d{1,2})(?![\d/])")
_ZH_DAY = re.compile(r"(\d{1,2})\s*月\s*(\d{1,2})\s*(?:日|號|号)")
_ZH_MONTH = re.compile(
    r"(?<![\d上今本呢])(\d{1,2}|[一二三四五六七八九十]|十[一二])\s*月(?:份)?(?!\s*\d)"
)
_EN_MONTH = re.compile(
    r"\b(" + "|".join(sorted(MONTHS, key=len, reverse=True)) + r")\b(?:\s+(\d{4}))?"
)

_MONTH_NAMES = "|".join(sorted(MONTHS, key=len, reverse=True))
_EN_DAY = re.compile(
    rf"\b(?:({_MONTH_NAMES})\s+(\d{{1,2}})(?:st|nd|rd|th)?|(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?({_MONTH_NAMES}))\b"
)

Q = dt.timedelta(milliseconds=1)


@dataclass(frozen=True, slots=True)
class PeriodWord:
    """A period found in a question: its kind and the kind's parameter."""

    kind: str
    """today, yesterday, day_before, this_week, last_week, this_month, last_month, this_shift,
    last_shift, last_days, day, month."""
    value: str = ""
    """last_days: the number; day: YYYY-MM-DD or MM-DD; month: MM or YYYY-MM."""
    text: str = ""
    """The words of the question it came from."""


@dataclass(frozen=True, slots=True)
class Window:
    start: dt.datetime
    end: dt.datetime
    label_en: str
    label_zh: str


def _zh_number(text: str) -> int:
    if text.isdigit():
        return int(text)
    if text.startswith("十") and len(text) == 2:
        return 10 + ZH_DIGITS[text[1]]
    return ZH_DIGITS[text]


def find_period(question: str) -> PeriodWord | None:
    """The period a question names (the first one found), or None."""
    lower = question.lower()
    for kind, words in PERIOD_WORDS:
        for word in words:
            if word in lower:
                return PeriodWord(kind, "", word)
    if m := _LAST_DAYS.search(lower):
        number = m.group(1) or m.group(2)
        return PeriodWord("last_days", str(_zh_number(number)), m.group(0))
    if m := _ISO_DAY.search(lower):
        return PeriodWord("day", m.group(0), m.group(0))
    if m := _ZH_DAY.search(lower):
        return PeriodWord("day", f"{int(m.group(1)):02d}-{int(m.group(2)):02d}", m.group(0))
    if m := _SLASH_DAY.search(lower):  # dd/mm, as Hong Kong writes it
        day, month = int(m.group(1)), int(m.group(2))
        if 1 <= month <= 12 and 1 <= day <= 31:
            return PeriodWord("day", f"{month:02d}-{day:02d}", m.group(0))
    if m := _EN_DAY.search(lower):
        month = MONTHS[m.group(1) or m.group(4)]
        day = int(m.group(2) or m.group(3))
        if 1 <= day <= 31:
            return PeriodWord("day", f"{month:02d}-{day:02d}", m.group(0))
    if m := _EN_MONTH.search(lower):
        month = MONTHS[m.group(1)]
        if m.group(1) == "may" and not re.search(r"\bin may\b|\bmay\s+\d{4}", lower):
            return None  # "may" is a verb more often than a month
        value = f"{m.group(2)}-{month:02d}" if m.group(2) else f"{month:02d}"
        return PeriodWord("month", value, m.group(0))
    if m := _ZH_MONTH.search(lower):
        month = _zh_number(m.group(1))
        if 1 <= month <= 12:
            return PeriodWord("month", f"{month:02d}", m.group(0))
    return None


def period_kinds(question: str) -> set[str]:
    """Every period kind a question names by word ("琴日 … 前日" names two): a question naming
    two periods compares them, which one answer cannot."""
    lower = question.lower()
    kinds: set[str] = set()
    taken: list[str] = []
    for kind, words in PERIOD_WORDS:
        for word in sorted(words, key=len, reverse=True):
            if word in lower and not any(word in t for t in taken):
                kinds.add(kind)
                taken.append(word)
    return kinds


def _midnight(day: dt.date, zone: zoneinfo.ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), zone)


def _latest_day(month: int, day: int, today: dt.date) -> dt.date | None:
    """The latest date with this month and day not after ``today``."""
    for year in (today.year, today.year - 1):
        try:
            found = dt.date(year, month, day)
        except ValueError:
            return None
        if found <= today:
            return found
    return None


def shift_spans(
    calendar: Calendar, now: dt.datetime, zone: zoneinfo.ZoneInfo
) -> list[tuple[dt.datetime, dt.datetime, str, dt.date]]:
    """The shifts (start, end, name, day) of the last week up to ``now``'s day, breaks included."""
    windows = working_windows(
        calendar, now - dt.timedelta(days=7), now + dt.timedelta(days=1), zone
    )
    spans: dict[tuple[dt.date, str], list[dt.datetime]] = {}
    for w in windows:
        found = spans.setdefault((w.day, w.shift), [w.start, w.end])
        found[0], found[1] = min(found[0], w.start), max(found[1], w.end)
    rows = [(s, e, shift, day) for (day, shift), (s, e) in spans.items()]
    return sorted(rows)


def resolve(
    word: PeriodWord,
    now: dt.datetime,
    zone: zoneinfo.ZoneInfo,
    calendar: Calendar | None = None,
) -> Window | None:
    """The window of ``word`` against the plant clock ``now``; None when there is none (no shift
    in the calendar yet, a date that does not exist)."""
    local = now.astimezone(zone)
    today = local.date()
    cap = now + Q
    start: dt.datetime
    end: dt.datetime
    kind = word.kind
    if kind == "today":
        start, end, en, zh = _midnight(today, zone), cap, "today", "今日"
    elif kind in ("yesterday", "day_before"):
        back = 1 if kind == "yesterday" else 2
        day = today - dt.timedelta(days=back)
        start, end = _midnight(day, zone), _midnight(day + dt.timedelta(days=1), zone)
        en = ("yesterday" if back == 1 else "the day before yesterday") + f" ({day:%a %d/%m})"
        zh = ("昨日" if back == 1 else "前日") + f"（{day:%d/%m}）"
    elif kind in ("this_week", "last_week"):
        monday = today - dt.timedelta(days=today.weekday())
        if kind == "this_week":
            start, end, en, zh = _midnight(monday, zone), cap, "this week", "今個星期"
        else:
            first = monday - dt.timedelta(days=7)
            start, end = _midnight(first, zone), _midnight(monday, zone)
            en, zh = f"last week ({first:%d/%m}–{monday - dt.timedelta(days=1):%d/%m})", "上星期"
    elif kind in ("this_month", "last_month"):
        first = today.replace(day=1)
        if kind == "this_month":
            start, end, en, zh = _midnight(first, zone), cap, f"this month ({first:%B})", "今個月"
        else:
            previous = (first - dt.timedelta(days=1)).replace(day=1)
            start, end = _midnight(previous, zone), _midnight(first, zone)
            en, zh = f"last month ({previous:%B %Y})", f"上個月（{previous.month}月）"
    elif kind == "last_days":
        days = max(1, min(int(word.value), 366))
        start, end = _midnight(today - dt.timedelta(days=days - 1), zone), cap
        en, zh = f"the last {days} days", f"過去{days}日"
    elif kind == "day":
        parts = [int(p) for p in word.value.split("-")]
        try:
            day_found: dt.date | None = (
                dt.date(parts[0], parts[1], parts[2])
                if len(parts) == 3
                else _latest_day(parts[0], parts[1], today)
            )
        except ValueError:
            day_found = None
        if day_found is None:
            return None
        start = _midnight(day_found, zone)
        end = min(_midnight(day_found + dt.timedelta(days=1), zone), cap)
        en, zh = (
            f"{day_found:%a %d/%m/%Y}",
            f"{day_found.year}年{day_found.month}月{day_found.day}日",
        )
    elif kind == "month":
        parts = [int(p) for p in word.value.split("-")]
        month = parts[-1]
        year = (
            parts[0]
            if len(parts) == 2
            else (today.year if month <= today.month else today.year - 1)
        )
        first = dt.date(year, month, 1)
        following = (first + dt.timedelta(days=32)).replace(day=1)
        start, end = _midnight(first, zone), min(_midnight(following, zone), cap)
        en, zh = f"{first:%B %Y}", f"{year}年{month}月"
    elif kind in ("this_shift", "last_shift"):
        if calendar is None:
            return None
        spans = [s for s in shift_spans(calendar, now, zone) if s[0] <= now]
        if not spans:
            return None
        running = [s for s in spans if s[0] <= now < s[1]]
        if kind == "this_shift":
            chosen = spans[-1]
        elif running:
            if len(spans) < 2:
                return None
            chosen = spans[-2]
        else:
            chosen = spans[-1]  # between shifts: the one that just ended
        start, end = chosen[0], min(chosen[1], cap)
        day, name = chosen[3], chosen[2]
        en = f"the {name} shift of {day:%a %d/%m}"
        zh = f"{day:%d/%m} {name} 更"
    else:  # pragma: no cover - find_period gives only the kinds above
        return None
    return Window(start.astimezone(dt.UTC), end.astimezone(dt.UTC), en, zh)


def default_today(now: dt.datetime, zone: zoneinfo.ZoneInfo) -> Window:
    """Today so far: the dashboard's window (site midnight to the plant clock + 1 ms)."""
    window = resolve(PeriodWord("today"), now, zone)
    assert window is not None
    return window
