"""The pure logic of alerts: dedup and hold-off decisions, excursions beyond a limit, long stops."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from microfab.model.alerts import (
    AlertFinding,
    AlertState,
    Decision,
    LatestAlert,
    decide,
    excursions,
    stops,
)

T0 = dt.datetime(2026, 11, 23, 0, 0, tzinfo=dt.UTC)
HOLD = dt.timedelta(minutes=60)


def at(minutes: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def finding(start: float, end: float | None = None) -> AlertFinding:
    return AlertFinding(
        "r", "threshold", "warning", "kt/plant/line1/machining/cnc-1", "temp_c",
        at(start), at(end if end is not None else start), "hot",
    )  # fmt: skip


def test_a_first_finding_raises_an_alert() -> None:
    assert decide(finding(0), None, at(1), HOLD) == Decision.RAISE


@pytest.mark.parametrize("state", [AlertState.OPEN, AlertState.ACKNOWLEDGED])
def test_a_repeat_while_the_alert_is_open_is_folded_into_it(state: AlertState) -> None:
    latest = LatestAlert(1, state, at(5), None)
    assert decide(finding(30), latest, at(31), HOLD) == Decision.UPDATE


def test_after_a_close_the_same_occurrence_is_known_and_a_new_one_waits_out_the_hold_off() -> None:
    closed = LatestAlert(1, AlertState.CLOSED, at(10), closed_at=at(100))
    assert decide(finding(5), closed, at(101), HOLD) == Decision.KNOWN
    assert decide(finding(120), closed, at(130), HOLD) == Decision.HELD_OFF
    assert decide(finding(120), closed, at(159), HOLD) == Decision.HELD_OFF
    assert decide(finding(120), closed, at(160), HOLD) == Decision.RAISE


def test_excursions_are_runs_beyond_the_limit_of_at_least_confirm_readings() -> None:
    values = [1, 5, 6, 1, 7, 1, 8, 9, 9.5, 1]
    samples = [(at(i), float(v)) for i, v in enumerate(values)]
    found = excursions(samples, above=4)
    assert [(e.start, e.readings, e.extreme) for e in found] == [
        (at(1), 2, 6.0),
        (at(4), 1, 7.0),
        (at(6), 3, 9.5),
    ]
    assert [e.start for e in excursions(samples, above=4, confirm=3)] == [at(6)]
    low = excursions(samples, below=2, confirm=1)
    assert [e.start for e in low] == [at(0), at(3), at(5), at(9)]
    assert all(e.extreme == 1 for e in low)
    with pytest.raises(ValueError):
        excursions(samples)


@given(st.lists(st.floats(-10, 10), max_size=60), st.floats(-5, 5), st.integers(1, 4))
def test_every_reading_beyond_the_limit_is_in_exactly_one_excursion_when_confirm_is_one(
    values: list[float], limit: float, confirm: int
) -> None:
    samples = [(at(i), v) for i, v in enumerate(values)]
    found = excursions(samples, above=limit)
    assert sum(e.readings for e in found) == sum(1 for v in values if v > limit)
    confirmed = excursions(samples, above=limit, confirm=confirm)
    assert all(e.readings >= confirm for e in confirmed)
    assert {e.start for e in confirmed} <= {e.start for e in found}


def test_stops_span_down_states_and_a_restated_reason_continues_the_stop() -> None:
    changes = [
        (at(0), "running", None),
        (at(10), "unplanned_stop", None),
        (at(11), "unplanned_stop", "UB-MECH"),
        (at(40), "running", None),
        (at(50), "unplanned_stop", "UB-ELEC"),
    ]
    found = stops(changes, ["unplanned_stop"])
    assert [(s.start, s.end, s.reason) for s in found] == [
        (at(10), at(40), "UB-MECH"),
        (at(50), None, "UB-ELEC"),
    ]
    assert found[0].minutes(at(999)) == 30
    assert found[1].minutes(at(95)) == 45
