"""The clock policy: which event times are believable when they arrive, and the clamps for times
stored before it existed."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from microfab.errors import InputError
from microfab.model.clock_policy import (
    EARLIEST,
    UNLIMITED_AGE,
    ClockPolicy,
    believable_span,
    check_event_time,
    clamp_time,
    clock_offset,
)

NOW = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.UTC)
POLICY = ClockPolicy()


@pytest.mark.parametrize(
    ("ts", "words"),
    [
        (dt.datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=dt.UTC), "ahead of the receiving"),
        (dt.datetime(2300, 1, 1, tzinfo=dt.UTC), "ahead of the receiving"),
        (NOW + dt.timedelta(minutes=5, milliseconds=1), "5 min accepted"),
        (dt.datetime(1, 1, 1, tzinfo=dt.UTC), "before 2000"),
        (dt.datetime(1999, 12, 31, 23, 59, 59, tzinfo=dt.UTC), "before 2000"),
        (NOW - dt.timedelta(days=30, seconds=1), "30 days accepted"),
    ],
)
def test_times_out_of_bounds_are_bad_time_with_a_sentence(ts: dt.datetime, words: str) -> None:
    verdict = POLICY.judge(ts, NOW)
    assert not verdict.accepted
    assert verdict.reason.startswith("bad_time: ")
    assert words in verdict.reason
    assert "microfab" in verdict.reason  # says what to do


@pytest.mark.parametrize(
    "ts",
    [
        NOW,
        NOW + dt.timedelta(minutes=5),
        NOW - dt.timedelta(days=30),
        NOW - dt.timedelta(seconds=1),
    ],
)
def test_times_within_bounds_are_accepted(ts: dt.datetime) -> None:
    assert POLICY.judge(ts, NOW).accepted


def test_no_age_limit_still_has_the_floor_and_the_future_bound() -> None:
    assert UNLIMITED_AGE.judge(dt.datetime(2001, 1, 1, tzinfo=dt.UTC), NOW).accepted
    assert not UNLIMITED_AGE.judge(dt.datetime(1970, 1, 1, tzinfo=dt.UTC), NOW).accepted
    assert not UNLIMITED_AGE.judge(NOW + dt.timedelta(hours=1), NOW).accepted


@given(
    ts=st.datetimes(timezones=st.just(dt.UTC)),
    received=st.datetimes(
        min_value=dt.datetime(2000, 1, 1),
        max_value=dt.datetime(2100, 1, 1),
        timezones=st.just(dt.UTC),
    ),
    future_s=st.integers(0, 86_400),
    age_days=st.one_of(st.none(), st.integers(1, 3650)),
)
def test_judging_any_time_never_fails_and_matches_the_bounds(
    ts: dt.datetime, received: dt.datetime, future_s: int, age_days: int | None
) -> None:
    policy = ClockPolicy(
        max_future=dt.timedelta(seconds=future_s),
        max_age=None if age_days is None else dt.timedelta(days=age_days),
    )
    expected = (
        ts >= EARLIEST
        and ts - received <= policy.max_future
        and (policy.max_age is None or received - ts <= policy.max_age)
    )
    assert policy.judge(ts, received).accepted is expected


def test_options_parse_durations_and_none() -> None:
    policy = ClockPolicy.from_options("90s", "7d")
    assert policy.max_future == dt.timedelta(seconds=90)
    assert policy.max_age == dt.timedelta(days=7)
    assert ClockPolicy.from_options("0", "none").max_age is None
    with pytest.raises(InputError, match="--max-future"):
        ClockPolicy.from_options("soon", "30d")
    with pytest.raises(InputError, match="--max-age"):
        ClockPolicy.from_options("5m", "0")
    with pytest.raises(InputError, match="--max-age"):
        ClockPolicy.from_options("5m", "nan")


def test_operator_input_names_the_field() -> None:
    check_event_time(None, NOW)  # no time given: the plant clock is used
    check_event_time(NOW - dt.timedelta(days=400), NOW)  # typed in: any age since 2000
    with pytest.raises(InputError, match=r"^ts: event time 9999-12-31"):
        check_event_time(dt.datetime(9999, 12, 31, tzinfo=dt.UTC), NOW)


def test_clamps_keep_window_arithmetic_inside_the_calendar() -> None:
    high = clamp_time(dt.datetime.max.replace(tzinfo=dt.UTC))
    low = clamp_time(dt.datetime.min.replace(tzinfo=dt.UTC))
    (high + dt.timedelta(days=3650)).astimezone(dt.timezone(dt.timedelta(hours=14)))
    (low - dt.timedelta(days=3650)).astimezone(dt.timezone(dt.timedelta(hours=-12)))
    assert clamp_time(NOW) == NOW
    span = believable_span((dt.datetime(1, 1, 1, tzinfo=dt.UTC), NOW), wall_clock=NOW)
    assert span == (EARLIEST, NOW)
    far = believable_span((NOW, dt.datetime(9999, 1, 1, tzinfo=dt.UTC)), wall_clock=NOW)
    assert far is not None and far[1] < dt.datetime(2028, 1, 1, tzinfo=dt.UTC)
    assert believable_span((dt.datetime(1, 1, 1, tzinfo=dt.UTC),) * 2, wall_clock=NOW) is None


def test_clock_offset_is_signed() -> None:
    assert clock_offset(NOW + dt.timedelta(seconds=42), NOW) == 42
    assert clock_offset(NOW - dt.timedelta(hours=1), NOW) == -3600
