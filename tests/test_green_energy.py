"""Energy accounting: exact apportionment, meter resets and rollovers, conservation for any data."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from microfab.errors import InputError
from microfab.green.energy import (
    EnergyInputs,
    MeterSeries,
    OrderInfo,
    UnitCount,
    account_energy,
)
from microfab.green.factors import load_factors
from microfab.model.carbon import apportion, meter_intervals
from microfab.model.oee import StateSpan

T0 = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)


def _t(minutes: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


@given(
    st.integers(-(10**9), 10**9),
    st.lists(st.integers(0, 10**6), min_size=1, max_size=12).filter(any),
)
def test_apportion_parts_add_up_exactly(total: int, weights: list[int]) -> None:
    parts = apportion(total, dict(enumerate(weights)))
    assert sum(parts.values()) == total
    for key, weight in enumerate(weights):
        if weight == 0:
            assert parts[key] == 0
        exact = total * weight / sum(weights)
        assert abs(parts[key] - exact) < 1


def test_backwards_meter_is_a_reset_and_a_rollover_when_configured() -> None:
    readings = [(_t(0), 9_000), (_t(1), 9_900), (_t(2), 50)]
    intervals, anomalies = meter_intervals(readings)
    assert [i.milli for i in intervals] == [900, 50]
    assert anomalies[0].kind == "reset"
    intervals, anomalies = meter_intervals(readings, rollover_at=10_000)
    assert [i.milli for i in intervals] == [900, 150]
    assert anomalies[0].kind == "rollover"
    assert "rolled over" in anomalies[0].describe("m", "kWh")


def test_no_production_is_a_clear_message() -> None:
    inputs = EnergyInputs(
        start=_t(0),
        end=_t(60),
        meters=[
            MeterSeries(
                "a/b/c/d/panel", "electricity", "kWh", "a", True, [(_t(0), 0), (_t(60), 5_000)]
            )
        ],
        spans={},
        counts=[],
        orders={},
    )
    with pytest.raises(InputError, match="no production between"):
        account_energy(inputs)


def test_shipped_factor_table_falls_back_to_an_earlier_year_and_knows_none_before() -> None:
    table = load_factors()
    choice = table.choose("electricity/clp", 2026)
    assert choice is not None and choice.fallback and choice.factor.year == 2023
    assert table.choose("electricity/clp", 2018) is None
    co2_only = table.choose("electricity/clp", 2019)
    assert co2_only is not None and co2_only.factor.gas == "CO2"


MACHINES = ("s/a/l/c/m1", "s/a/l/c/m2")
STATES = ("running", "idle", "unplanned_stop")


@st.composite
def _period(draw: st.DrawFn) -> EnergyInputs:
    orders = {f"WO{i}": OrderInfo(f"WO{i}", "P", draw(st.floats(0.1, 5)), 20) for i in range(3)}
    meters = []
    spans: dict[str, list[StateSpan]] = {}
    for machine in (*MACHINES, "s/a/l/c/panel"):
        times = sorted(draw(st.lists(st.integers(-30, 150), min_size=2, max_size=12, unique=True)))
        values = draw(st.lists(st.integers(0, 50_000), min_size=len(times), max_size=len(times)))
        rollover = draw(st.sampled_from([None, 60_000]))
        meters.append(
            MeterSeries(
                machine,
                "electricity",
                "kWh",
                "s",
                machine.endswith("panel"),
                [(_t(t), v) for t, v in zip(times, values, strict=True)],
                rollover,
            )
        )
        cuts = sorted(draw(st.lists(st.integers(1, 119), max_size=5, unique=True)))
        edges = [0, *cuts, 120]
        spans[machine] = [
            StateSpan(_t(a), _t(b), draw(st.sampled_from(STATES)))
            for a, b in itertools.pairwise(edges)
        ]
    counts = [
        UnitCount(
            draw(st.sampled_from(MACHINES)),
            _t(draw(st.integers(0, 119))),
            draw(st.sampled_from([*orders, None])),
            draw(st.sampled_from([10, 20])),
            draw(st.integers(0, 40)),
            draw(st.integers(0, 3)),
        )
        for _ in range(draw(st.integers(1, 25)))
    ]
    counts.append(UnitCount(MACHINES[0], _t(5), "WO0", 20, 1, 0))  # at least one finished unit
    return EnergyInputs(
        start=_t(0),
        end=_t(120),
        meters=meters,
        spans=spans,
        counts=counts,
        orders=orders,
        rule=draw(st.sampled_from(["units", "mass", "run_time"])),
    )


@settings(max_examples=150, deadline=None)
@given(_period())
def test_allocated_energy_adds_up_exactly_to_metered_energy(inputs: EnergyInputs) -> None:
    try:
        account = account_energy(inputs)
    except InputError as exc:  # run_time with no running machine that counted units
        assert "no production" in exc.message
        return
    for meter in account.meters:
        parts = account.flows[(meter.machine, meter.carrier, meter.site)]
        assert sum(parts.values()) == meter.milli
        assert sum(meter.by_state.values()) == meter.milli
        assert all(milli >= 0 for milli in parts.values())
        assert meter.milli >= 0
        assert 0 <= meter.saving_milli <= meter.standby_milli
    assert account.allocated() == account.metered()
