"""OEE maths (model/oee.py): the issue's worked example and properties of the definitions."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from microfab.model.oee import (
    Count,
    Interval,
    Transition,
    clip_to_windows,
    downtime,
    oee_figures,
    reliability,
    state_spans,
)

HKT = dt.timezone(dt.timedelta(hours=8))


def at(hhmm: str) -> dt.datetime:
    h, m = (int(x) for x in hhmm.split(":"))
    return dt.datetime(2026, 11, 23, h, m, tzinfo=HKT)


# Shift 08:00–16:00 with a planned break 12:00–12:30: two working windows.
WINDOWS = [Interval(at("08:00"), at("12:00")), Interval(at("12:30"), at("16:00"))]
TRANSITIONS = [
    Transition(at("08:00"), "running"),
    Transition(at("10:00"), "unplanned_stop", "BRK-SPINDLE"),
    Transition(at("10:30"), "running"),
    Transition(at("12:00"), "planned_stop", "BREAK"),
    Transition(at("12:30"), "running"),
]


def worked_example_counts() -> list[Count]:
    # 780 parts (760 good, 20 scrap) at an ideal cycle of 30 s, spread over the running time
    counts = [Count(at("09:00"), 300, 10, 30.0), Count(at("11:00"), 200, 5, 30.0)]
    return [*counts, Count(at("15:00"), 260, 5, 30.0)]


def test_the_issue_worked_example() -> None:
    spans = state_spans(TRANSITIONS, at("08:00"), at("16:00"))
    f = oee_figures(clip_to_windows(spans, WINDOWS), WINDOWS, worked_example_counts())
    assert f.planned_busy_s == 27_000
    assert f.run_s == 25_200
    assert (f.total, f.good) == (780, 760)
    assert f.ideal_cycle_s == 30.0
    assert f.availability == pytest.approx(0.9333, abs=5e-5)
    assert f.performance == pytest.approx(0.9286, abs=5e-5)
    assert f.quality == pytest.approx(0.9744, abs=5e-5)
    assert f.oee == pytest.approx(0.8444, abs=5e-5)


def test_planned_stop_inside_a_window_reduces_planned_busy_time() -> None:
    transitions = [*TRANSITIONS[:3], Transition(at("15:00"), "planned_stop", "PM")]
    spans = state_spans(transitions, at("08:00"), at("16:00"))
    f = oee_figures(clip_to_windows(spans, WINDOWS), WINDOWS, [])
    assert f.planned_busy_s == 27_000 - 3600
    assert f.run_s == (2 + 1.5 + 2.5) * 3600  # running until the planned stop at 15:00
    assert f.availability == pytest.approx(21_600 / 23_400)
    assert (f.performance, f.quality, f.oee) == (0.0, None, None)  # ran, counted nothing


def test_counts_outside_working_time_are_set_aside() -> None:
    spans = state_spans(TRANSITIONS, at("08:00"), at("16:00"))
    counts = [
        *worked_example_counts(),
        Count(at("12:10"), 7, 0, 30.0),
        Count(at("16:00"), 3, 0, 30.0),
    ]
    f = oee_figures(clip_to_windows(spans, WINDOWS), WINDOWS, counts)
    assert (f.total, f.outside_total) == (780, 10)


def test_time_before_the_first_state_is_unknown_and_a_loss() -> None:
    spans = state_spans(TRANSITIONS[1:], at("08:00"), at("16:00"))
    losses = {(e.state, e.reason): e for e in downtime(spans, WINDOWS)}
    assert losses[("unknown", "NO-DATA")].seconds == 2 * 3600
    assert losses[("unplanned_stop", "BRK-SPINDLE")].seconds == 1800


def test_repeated_state_reports_do_not_split_a_span() -> None:
    transitions = [TRANSITIONS[0], Transition(at("09:00"), "running"), *TRANSITIONS[1:]]
    spans = state_spans(transitions, at("08:00"), at("16:00"))
    assert [s.state for s in spans] == [
        "running",
        "unplanned_stop",
        "running",
        "planned_stop",
        "running",
    ]


def test_initial_state_comes_from_before_the_period() -> None:
    spans = state_spans(TRANSITIONS[1:], at("08:00"), at("16:00"), initial=TRANSITIONS[0])
    assert spans[0].state == "running" and spans[0].start == at("08:00")


def test_reliability_counts_a_stop_cut_by_a_break_once() -> None:
    transitions = [
        Transition(at("08:00"), "running"),
        Transition(at("11:30"), "unplanned_stop", "JAM"),
        Transition(at("13:00"), "running"),
    ]
    spans = state_spans(transitions, at("08:00"), at("16:00"))
    r = reliability(spans, WINDOWS)
    assert r.failures == 1
    assert r.repair_s == 1800 + 1800  # 11:30–12:00 and 12:30–13:00; the break is not repair time
    assert r.run_s == 3.5 * 3600 + 3 * 3600
    assert r.mttr_s == 3600 and r.mtbf_s == r.run_s
    (jam,) = downtime(spans, WINDOWS)
    assert (jam.reason, jam.seconds, jam.stops) == ("JAM", 3600, 1)


states = st.sampled_from(
    ["running", "idle", "setup", "planned_stop", "unplanned_stop", "micro_stop"]
)


@given(
    st.lists(st.tuples(st.integers(0, 8 * 60), states), max_size=40),
    st.lists(
        st.tuples(st.integers(0, 8 * 60 - 1), st.integers(0, 50), st.integers(0, 5)), max_size=20
    ),
)
def test_ratios_stay_in_range_and_times_add_up(
    changes: list[tuple[int, str]], counts: list[tuple[int, int, int]]
) -> None:
    base = at("08:00")
    transitions = sorted(
        (Transition(base + dt.timedelta(minutes=m), s) for m, s in changes), key=lambda t: t.ts
    )
    spans = state_spans(transitions, base, at("16:00"))
    inside = clip_to_windows(spans, WINDOWS)
    f = oee_figures(inside, WINDOWS, [])
    assert sum(f.state_s.values()) == pytest.approx(f.working_s)
    assert f.working_s == 7.5 * 3600
    assert 0 <= f.run_s <= f.planned_busy_s <= f.working_s
    if f.availability is not None:
        assert 0 <= f.availability <= 1
    # ideal work never exceeds the run time when units are only counted while running at most
    # at ideal speed: here only the quality ratio is checked for range
    g = oee_figures(
        inside,
        WINDOWS,
        [Count(base + dt.timedelta(minutes=m), good, scrap, 30.0) for m, good, scrap in counts],
    )
    if g.quality is not None:
        assert 0 <= g.quality <= 1
    assert g.total + g.outside_total == sum(good + scrap for _, good, scrap in counts)
