"""SPC maths (model/spc.py): textbook worked examples reproduced, and invariants of the charts."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from microfab.errors import InputError
from microfab.model.spc import (
    Limits,
    NotEnoughBaseline,
    capability,
    chi2_cdf,
    chi2_quantile,
    constants,
    cp_interval,
    cpk_interval,
    imr_chart,
    p_chart,
    rule_violations,
    u_chart,
    xbar_r_chart,
    xbar_s_chart,
)

DATA = Path(__file__).parent / "data"


def piston_rings() -> list[list[float]]:
    """Montgomery's piston-ring inside diameters: 25 phase-I then 15 phase-II samples of 5."""
    lines = [
        line
        for line in (DATA / "spc_piston_rings.csv").read_text(encoding="utf-8").splitlines()
        if not line.startswith("#")
    ]
    return [[float(row[f"x{i}"]) for i in range(1, 6)] for row in csv.DictReader(lines)]


# Montgomery, table 7.1: frozen-orange-juice cans, 30 samples of 50, nonconforming cans.
ORANGE_JUICE = [12, 15, 8, 10, 4, 7, 16, 9, 14, 10, 5, 6, 17, 12, 22, 8, 10, 5, 13, 11, 20, 18]
ORANGE_JUICE += [24, 15, 9, 12, 7, 13, 9, 6]
# Montgomery, section 7.3 (u chart): nonconformities in 20 samples of 5 personal computers.
COMPUTERS = [10, 12, 8, 14, 10, 16, 11, 7, 10, 15, 9, 5, 7, 11, 12, 6, 8, 10, 7, 5]


def test_shewhart_constants_match_the_printed_table() -> None:
    k = constants(5)
    assert round(k.a2, 3) == 0.577
    assert round(k.a3, 3) == 1.427
    assert round(k.c4, 4) == 0.9400
    assert round(k.d4_upper, 3) == 2.114 and k.d3_lower == 0
    assert round(k.b4, 3) == 2.089 and k.b3 == 0
    assert round(constants(2).d4_upper, 3) == 3.267
    assert round(constants(10).b3, 3) == 0.284 and round(constants(10).b4, 3) == 1.716


def test_piston_rings_xbar_r_phase_one_limits() -> None:
    """The book: x̿ = 74.001, R̄ = 0.023, x̄ chart 73.988 … 74.014, R chart 0 … 0.049 (from the
    rounded R̄; 0.0481 unrounded, as qcc prints)."""
    chart = xbar_r_chart(piston_rings(), baseline=25)
    mean, spread = chart.main.limits[0], chart.dispersion.limits[0]  # type: ignore[union-attr]
    assert round(mean.center, 3) == 74.001
    assert round(spread.center, 3) == 0.023
    assert round(mean.lower, 3) == 73.988 and round(mean.upper, 3) == 74.014
    assert spread.lower == 0 and spread.upper == pytest.approx(0.049, abs=0.001)
    assert round(0.023 * constants(5).d4_upper, 3) == 0.049
    # phase I is in control by rule 1; phase II shows the shift: samples 37, 38, 39 beyond the UCL
    beyond = [v.index + 1 for v in chart.main.violations if v.rule == 1]
    assert beyond == [37, 38, 39]
    assert all(i >= 25 for i in chart.out_of_control)


def test_piston_rings_xbar_s_agrees_with_xbar_r() -> None:
    chart = xbar_s_chart(piston_rings(), baseline=25)
    mean = chart.main.limits[0]
    assert round(mean.lower, 3) == 73.988 and round(mean.upper, 3) == 74.014
    assert chart.dispersion is not None and chart.dispersion.limits[0].lower == 0
    s_bar = chart.dispersion.limits[0].center
    assert chart.dispersion.limits[0].upper == pytest.approx(2.089 * s_bar, rel=1e-3)
    assert chart.sigma_within == pytest.approx(s_bar / 0.9400, rel=1e-3)
    assert [v.index + 1 for v in chart.main.violations if v.rule == 1] == [37, 38, 39]


def test_piston_rings_capability() -> None:
    """The book: σ̂ = R̄/d2 = 0.023/2.326 = 0.0099 and, with specs 74 ± 0.05, Cp = 1.68."""
    rings = piston_rings()[:25]
    values = [x for sample in rings for x in sample]
    book = capability(values, lsl=73.95, usl=74.05, sigma_within=0.0099)
    assert book.cp is not None and round(book.cp, 2) == 1.68
    exact = capability(values, lsl=73.95, usl=74.05, sigma_within=xbar_r_chart(rings).sigma_within)
    assert exact.cp is not None and exact.pp is not None
    assert exact.cpk <= exact.cp and exact.ppk <= exact.pp
    assert exact.cp_ci is not None and exact.cp_ci.low < exact.cp < exact.cp_ci.high


def test_capability_confidence_intervals_of_the_book() -> None:
    """Montgomery section 8.3.5: n = 20, Ĉp = 2.29 → 1.57 ≤ Cp ≤ 3.01 (χ²: 8.91 and 32.85);
    Ĉpk = 1.33 → 0.88 ≤ Cpk ≤ 1.78 (Bissell)."""
    assert round(chi2_quantile(0.025, 19), 2) == 8.91
    assert round(chi2_quantile(0.975, 19), 2) == 32.85
    cp = cp_interval(2.29, 20)
    assert (round(cp.low, 2), round(cp.high, 2)) == (1.57, 3.01)
    cpk = cpk_interval(1.33, 20)
    assert (round(cpk.low, 2), round(cpk.high, 2)) == (0.88, 1.78)


def test_orange_juice_p_chart() -> None:
    """The book: p̄ = 0.2313, UCL = 0.4102, LCL = 0.0524; samples 15 and 23 above the UCL."""
    chart = p_chart(ORANGE_JUICE, [50] * 30)
    limits = chart.main.limits[0]
    assert round(limits.center, 4) == 0.2313
    assert round(limits.upper, 4) == 0.4102 and round(limits.lower, 4) == 0.0524
    assert [v.index + 1 for v in chart.main.violations if v.rule == 1] == [15, 23]


def test_personal_computers_u_chart() -> None:
    """The book: ū = 1.93, UCL = 3.79, LCL = 0.07; the process is in control."""
    chart = u_chart(COMPUTERS, [5] * 20)
    limits = chart.main.limits[0]
    assert round(limits.center, 2) == 1.93
    assert round(limits.upper, 2) == 3.79 and round(limits.lower, 2) == 0.07
    assert chart.out_of_control == []


def test_individuals_chart_by_hand() -> None:
    """2, 4, 6, 4, 2, 4, 6, 4: x̄ = 4, MR̄ = 2, σ̂ = 2/1.128, limits 4 ± 5.319."""
    chart = imr_chart([2, 4, 6, 4, 2, 4, 6, 4], min_baseline=8)
    limits = chart.main.limits[0]
    assert limits.center == 4
    assert round(limits.upper, 3) == 9.319 and round(limits.lower, 3) == -1.319
    assert chart.dispersion is not None
    assert round(chart.dispersion.limits[0].upper, 3) == round(3.267 * 2, 3)


def test_too_little_baseline_says_how_much_more() -> None:
    with pytest.raises(NotEnoughBaseline, match=r"has 12 values.*at least 20 \(8 more\)"):
        imr_chart([1.0, 2.0] * 6)
    with pytest.raises(NotEnoughBaseline, match="5 more"):
        xbar_r_chart(piston_rings()[:15])


def test_bad_input_is_one_sentence() -> None:
    with pytest.raises(InputError, match="finite"):
        imr_chart([1.0] * 19 + [math.nan])
    with pytest.raises(InputError, match="subgroup size 1"):
        xbar_r_chart([[1.0]] * 25)
    with pytest.raises(InputError, match="spec limit"):
        capability([1.0, 2.0], lsl=None, usl=None)


def test_nelson_rules_fire_on_their_patterns() -> None:
    lim = Limits(0.0, -3.0, 3.0)

    def fired(values: list[float], rule: int) -> list[int]:
        return [v.index for v in rule_violations(values, [lim] * len(values), (rule,))]

    assert fired([0, 0, 3.5, 0], 1) == [2]
    assert fired([0.5] * 9, 2) == [8]
    assert fired([-1, -0.5, 0, 0.5, 1, 1.5], 3) == [5]
    assert fired([0.5, -0.5] * 7, 4) == [13]
    assert fired([2.5, 0, 2.5], 5) == [2]
    assert fired([1.5, 1.5, 0, 1.5, 1.5], 6) == [4]
    assert fired([0.1] * 7 + [-0.1] * 8, 7) == [14]
    assert fired([1.5, -1.5] * 4, 8) == [7]
    assert fired([0.5] * 8, 9) == [7]


finite = st.floats(min_value=-1e3, max_value=1e3, allow_nan=False)


@given(
    st.lists(st.lists(finite, min_size=4, max_size=4), min_size=20, max_size=40),
    st.floats(min_value=-100, max_value=100),
    st.floats(min_value=0.1, max_value=10),
)
def test_xbar_limits_move_with_the_data(
    groups: list[list[float]], shift: float, scale: float
) -> None:
    """Limits are affine-equivariant: scaling and shifting the data does the same to the limits."""
    base = xbar_r_chart(groups)
    moved = xbar_r_chart([[x * scale + shift for x in g] for g in groups])
    a, b = base.main.limits[0], moved.main.limits[0]
    assert b.center == pytest.approx(a.center * scale + shift, abs=1e-6)
    assert b.upper - b.center == pytest.approx((a.upper - a.center) * scale, rel=1e-6, abs=1e-6)
    assert a.upper - a.center == pytest.approx(a.center - a.lower, abs=1e-6)


@given(
    st.lists(st.tuples(st.integers(1, 500), st.floats(0, 1)), min_size=20, max_size=40),
)
def test_p_chart_limits_stay_within_zero_and_one(groups: list[tuple[int, float]]) -> None:
    sizes = [n for n, _ in groups]
    defectives = [round(n * f) for n, f in groups]
    chart = p_chart(defectives, sizes)
    rule_one = {v.index for v in chart.main.violations if v.rule == 1}
    for i, (value, limits) in enumerate(zip(chart.main.values, chart.main.limits, strict=True)):
        assert 0 <= limits.lower <= limits.center <= limits.upper <= 1
        assert (i in rule_one) == (value > limits.upper or value < limits.lower)


@given(st.floats(min_value=0.001, max_value=0.999), st.integers(min_value=1, max_value=200))
def test_chi2_quantile_inverts_the_cdf(p: float, df: int) -> None:
    assert chi2_cdf(chi2_quantile(p, df), df) == pytest.approx(p, abs=1e-9)


@given(st.floats(min_value=0.1, max_value=5), st.integers(min_value=5, max_value=500))
def test_capability_intervals_hold_the_estimate_and_narrow_with_n(cp: float, n: int) -> None:
    small, large = cp_interval(cp, n), cp_interval(cp, n * 4)
    assert small.low < cp < small.high
    assert large.high - large.low < small.high - small.low
    k = cpk_interval(cp, n)
    assert k.low < cp < k.high
