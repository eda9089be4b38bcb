"""Statistical process control maths: control limits, run rules and process capability. Pure.

Control charts (Shewhart, 3-sigma) with limits computed from a *baseline* (phase I) and applied to
every point, baseline and later (phase II):

==========  =======================================  ============================================
chart       plotted                                  limits
==========  =======================================  ============================================
X̄-R        subgroup means and ranges, n = 2…25      X̿ ± A2·R̄;  R̄·D3 … R̄·D4
X̄-S        subgroup means and standard deviations   X̿ ± A3·s̄;  s̄·B3 … s̄·B4
I-MR        individual values, moving ranges of 2    X̄ ± 2.66·MR̄ (3/d2, d2 = 1.128);  0 … 3.267·MR̄
p           fraction defective per subgroup          p̄ ± 3·√(p̄(1−p̄)/nᵢ) (limits per subgroup)
u           defects per unit per subgroup            ū ± 3·√(ū/nᵢ)
==========  =======================================  ============================================

The constants A2, A3, D3, D4, B3, B4 come from d2, D4 and c4 (ASTM E2587 / Montgomery, Appendix
VI); c4 is computed exactly, d2 and D4 are the tabulated values.

Run rules (Nelson 1984; the Western Electric set is rules 1, 5, 6 and "8 on one side"):

1. one point beyond 3σ;  2. nine in a row on one side of the centre;  3. six in a row steadily
rising or falling;  4. fourteen in a row alternating up and down;  5. two of three beyond 2σ on
one side;  6. four of five beyond 1σ on one side;  7. fifteen in a row within 1σ;  8. eight in a
row beyond 1σ on either side.

Capability: Cp = (USL − LSL)/6σ_within, Cpk = min(USL − μ, μ − LSL)/3σ_within; Pp and Ppk the same
with the overall standard deviation. Confidence intervals: chi-square for Cp/Pp, Bissell's normal
approximation for Cpk/Ppk (Montgomery, section 8.3.5).
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from microfab.errors import InputError

ChartKind = Literal["xbar-r", "xbar-s", "imr", "p", "u"]
CHART_KINDS: tuple[ChartKind, ...] = ("xbar-r", "xbar-s", "imr", "p", "u")
RuleSet = Literal["nelson", "western-electric"]

MIN_BASELINE_SUBGROUPS = 20
"""Fewest baseline subgroups (or individual values) for trustworthy limits (Montgomery: 20–25)."""

# d2 and D4 for subgroup sizes 2..25 (ASTM E2587, table 6; Montgomery, appendix VI).
_D2 = {
    2: 1.128, 3: 1.693, 4: 2.059, 5: 2.326, 6: 2.534, 7: 2.704, 8: 2.847, 9: 2.970, 10: 3.078,
    11: 3.173, 12: 3.258, 13: 3.336, 14: 3.407, 15: 3.472, 16: 3.532, 17: 3.588, 18: 3.640,
    19: 3.689, 20: 3.735, 21: 3.778, 22: 3.819, 23: 3.858, 24: 3.895, 25: 3.931,
}  # fmt: skip
_D4 = {
    2: 3.267, 3: 2.574, 4: 2.282, 5: 2.114, 6: 2.004, 7: 1.924, 8: 1.864, 9: 1.816, 10: 1.777,
    11: 1.744, 12: 1.717, 13: 1.693, 14: 1.672, 15: 1.653, 16: 1.637, 17: 1.622, 18: 1.608,
    19: 1.597, 20: 1.585, 21: 1.575, 22: 1.566, 23: 1.557, 24: 1.548, 25: 1.541,
}  # fmt: skip
"""D4 as printed (D3 = 2 − D4, at least 0); d3 = (D4 − 1)·d2/3 follows from them."""


@dataclass(frozen=True, slots=True)
class ChartConstants:
    """Shewhart constants for subgroups of size ``n``."""

    n: int
    d2: float
    d3: float
    c4: float

    @property
    def a2(self) -> float:
        return 3 / (self.d2 * math.sqrt(self.n))

    @property
    def a3(self) -> float:
        return 3 / (self.c4 * math.sqrt(self.n))

    @property
    def d3_lower(self) -> float:
        """D3 (lower range factor)."""
        return max(0.0, 1 - 3 * self.d3 / self.d2)

    @property
    def d4_upper(self) -> float:
        """D4 (upper range factor)."""
        return 1 + 3 * self.d3 / self.d2

    @property
    def b3(self) -> float:
        return max(0.0, 1 - 3 * math.sqrt(1 - self.c4**2) / self.c4)

    @property
    def b4(self) -> float:
        return 1 + 3 * math.sqrt(1 - self.c4**2) / self.c4


def c4(n: int) -> float:
    """Bias of the sample standard deviation: E[s] = c4·σ for normal samples of size n."""
    return math.sqrt(2 / (n - 1)) * math.exp(math.lgamma(n / 2) - math.lgamma((n - 1) / 2))


def constants(n: int) -> ChartConstants:
    if n not in _D2:
        raise InputError(f"subgroup size {n} is not supported; use 2 to 25 values per subgroup")
    return ChartConstants(n, _D2[n], (_D4[n] - 1) * _D2[n] / 3, c4(n))


@dataclass(frozen=True, slots=True)
class Limits:
    """Centre line and control limits of one plotted statistic (lower may be 0, never below)."""

    center: float
    lower: float
    upper: float

    @property
    def sigma(self) -> float:
        """One sigma of the plotted statistic (a third of the distance centre → upper limit)."""
        return (self.upper - self.center) / 3


@dataclass(frozen=True, slots=True)
class Violation:
    """Rule ``rule`` (Nelson numbering) is broken at point ``index`` (the last point of the run)."""

    rule: int
    index: int


@dataclass(frozen=True, slots=True)
class ChartSeries:
    """One plotted statistic: its values, limits per point and the rule violations."""

    name: str
    values: list[float]
    limits: list[Limits]
    violations: list[Violation] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ControlChart:
    """A control chart: the main series (means, values, fractions) and, for variables, the
    dispersion series (ranges, standard deviations or moving ranges)."""

    kind: ChartKind
    baseline: int
    """Number of points (subgroups or values) the limits were computed from."""
    main: ChartSeries
    dispersion: ChartSeries | None
    sigma_within: float | None
    """Short-term process sigma estimated from the baseline (variables charts only)."""

    @property
    def out_of_control(self) -> list[int]:
        """Indices of points that break any rule on any series, in order."""
        found = {v.index for v in self.main.violations}
        if self.dispersion is not None:
            found |= {v.index for v in self.dispersion.violations}
        return sorted(found)


class NotEnoughBaseline(InputError):
    """Too little baseline data to compute limits; the message says how much more is needed."""

    key = "not_enough_baseline"


def _need(have: int, need: int, what: str) -> None:
    if have < need:
        raise NotEnoughBaseline(
            f"the baseline has {have} {what}; control limits need at least {need} "
            f"({need - have} more)"
        )


def _check_finite(values: Sequence[float], what: str) -> None:
    for v in values:
        if not math.isfinite(v):
            raise InputError(f"{what} holds {v}; every value must be a finite number")


def xbar_r_chart(
    subgroups: Sequence[Sequence[float]],
    baseline: int | None = None,
    *,
    rules: RuleSet = "nelson",
    min_baseline: int = MIN_BASELINE_SUBGROUPS,
) -> ControlChart:
    """X̄-R chart; limits from the first ``baseline`` subgroups (default: all)."""
    return _xbar_chart("xbar-r", subgroups, baseline, rules, min_baseline)


def xbar_s_chart(
    subgroups: Sequence[Sequence[float]],
    baseline: int | None = None,
    *,
    rules: RuleSet = "nelson",
    min_baseline: int = MIN_BASELINE_SUBGROUPS,
) -> ControlChart:
    """X̄-S chart; limits from the first ``baseline`` subgroups (default: all)."""
    return _xbar_chart("xbar-s", subgroups, baseline, rules, min_baseline)


def _xbar_chart(
    kind: ChartKind,
    subgroups: Sequence[Sequence[float]],
    baseline: int | None,
    rules: RuleSet,
    min_baseline: int,
) -> ControlChart:
    sizes = {len(g) for g in subgroups}
    if len(sizes) > 1:
        raise InputError(f"subgroups must all have one size; got sizes {sorted(sizes)}")
    m = len(subgroups) if baseline is None else baseline
    _need(min(m, len(subgroups)), min_baseline, "subgroups")
    n = sizes.pop()
    k = constants(n)
    for g in subgroups:
        _check_finite(g, "a subgroup")
    means = [statistics.fmean(g) for g in subgroups]
    grand = statistics.fmean(means[:m])
    if kind == "xbar-r":
        spread = [max(g) - min(g) for g in subgroups]
        bar = statistics.fmean(spread[:m])
        main = Limits(grand, grand - k.a2 * bar, grand + k.a2 * bar)
        disp = Limits(bar, k.d3_lower * bar, k.d4_upper * bar)
        sigma = bar / k.d2
        name = "range"
    else:
        spread = [statistics.stdev(g) for g in subgroups]
        bar = statistics.fmean(spread[:m])
        main = Limits(grand, grand - k.a3 * bar, grand + k.a3 * bar)
        disp = Limits(bar, k.b3 * bar, k.b4 * bar)
        sigma = bar / k.c4
        name = "stdev"
    count = len(subgroups)
    return ControlChart(
        kind,
        m,
        _series("mean", means, [main] * count, rules),
        _series(name, spread, [disp] * count, rules, dispersion=True),
        sigma,
    )


def imr_chart(
    values: Sequence[float],
    baseline: int | None = None,
    *,
    rules: RuleSet = "nelson",
    min_baseline: int = MIN_BASELINE_SUBGROUPS,
) -> ControlChart:
    """Individuals and moving-range chart; limits from the first ``baseline`` values."""
    m = len(values) if baseline is None else baseline
    _need(min(m, len(values)), min_baseline, "values")
    _check_finite(values, "the data")
    moving = [abs(b - a) for a, b in itertools.pairwise(values)]
    center = statistics.fmean(values[:m])
    mr_bar = statistics.fmean(moving[: m - 1])
    k = constants(2)
    sigma = mr_bar / k.d2
    main = Limits(center, center - 3 * sigma, center + 3 * sigma)
    disp = Limits(mr_bar, 0.0, k.d4_upper * mr_bar)
    count = len(values)
    return ControlChart(
        "imr",
        m,
        _series("value", list(values), [main] * count, rules),
        # the first value has no moving range: the series starts at index 1, shown as index - 1
        _series("moving_range", moving, [disp] * len(moving), rules, dispersion=True, offset=1),
        sigma,
    )


def p_chart(
    defectives: Sequence[int],
    sizes: Sequence[int],
    baseline: int | None = None,
    *,
    rules: RuleSet = "nelson",
    min_baseline: int = MIN_BASELINE_SUBGROUPS,
) -> ControlChart:
    """Fraction-defective chart; limits vary with each subgroup's size."""
    _attribute_input(defectives, sizes, "defectives", bounded=True)
    m = len(sizes) if baseline is None else baseline
    _need(min(m, len(sizes)), min_baseline, "subgroups")
    p_bar = sum(defectives[:m]) / sum(sizes[:m])
    limits = []
    for n in sizes:
        half = 3 * math.sqrt(p_bar * (1 - p_bar) / n)
        limits.append(Limits(p_bar, max(0.0, p_bar - half), min(1.0, p_bar + half)))
    values = [d / n for d, n in zip(defectives, sizes, strict=True)]
    return ControlChart("p", m, _series("fraction", values, limits, rules), None, None)


def u_chart(
    defects: Sequence[int],
    units: Sequence[int],
    baseline: int | None = None,
    *,
    rules: RuleSet = "nelson",
    min_baseline: int = MIN_BASELINE_SUBGROUPS,
) -> ControlChart:
    """Defects-per-unit chart; limits vary with each subgroup's number of units."""
    _attribute_input(defects, units, "defects", bounded=False)
    m = len(units) if baseline is None else baseline
    _need(min(m, len(units)), min_baseline, "subgroups")
    u_bar = sum(defects[:m]) / sum(units[:m])
    limits = []
    for n in units:
        half = 3 * math.sqrt(u_bar / n)
        limits.append(Limits(u_bar, max(0.0, u_bar - half), u_bar + half))
    values = [d / n for d, n in zip(defects, units, strict=True)]
    return ControlChart("u", m, _series("per_unit", values, limits, rules), None, None)


def _attribute_input(
    counts: Sequence[int], sizes: Sequence[int], what: str, *, bounded: bool
) -> None:
    if len(counts) != len(sizes):
        raise InputError(f"{len(counts)} {what} counts for {len(sizes)} subgroup sizes")
    for d, n in zip(counts, sizes, strict=True):
        if n <= 0 or d < 0 or (bounded and d > n):
            raise InputError(
                f"a subgroup of {n} with {d} {what}: sizes must be positive and counts "
                f"between 0{' and the size' if bounded else ''}"
            )


def _series(
    name: str,
    values: list[float],
    limits: list[Limits],
    rules: RuleSet,
    *,
    dispersion: bool = False,
    offset: int = 0,
) -> ChartSeries:
    # Dispersion charts are skewed; only rule 1 (beyond the limits) is applied to them.
    chosen = (
        (1,)
        if dispersion
        else (RULES_WESTERN_ELECTRIC if rules == "western-electric" else RULES_NELSON)
    )
    found = [Violation(v.rule, v.index + offset) for v in rule_violations(values, limits, chosen)]
    return ChartSeries(name, values, limits, found)


RULES_NELSON = (1, 2, 3, 4, 5, 6, 7, 8)
RULES_WESTERN_ELECTRIC = (1, 5, 6, 9)
"""Western Electric: beyond 3σ, 2 of 3 beyond 2σ, 4 of 5 beyond 1σ, 8 in a row on one side
(numbered 9 here, to keep Nelson's numbers for the others)."""


def rule_violations(
    values: Sequence[float], limits: Sequence[Limits], rules: Sequence[int] = RULES_NELSON
) -> list[Violation]:
    """Every point at which a run rule fires (the last point of the offending run)."""
    zs: list[float] = []
    for x, lim in zip(values, limits, strict=True):
        s = lim.sigma
        zs.append(0.0 if s <= 0 else (x - lim.center) / s)
    found: list[Violation] = []
    for i in range(len(values)):
        for rule in rules:
            if _fires(rule, i, values, limits, zs):
                found.append(Violation(rule, i))
    return found


def _fires(
    rule: int, i: int, values: Sequence[float], limits: Sequence[Limits], zs: Sequence[float]
) -> bool:
    def side_run(length: int) -> bool:
        if i + 1 < length:
            return False
        window = zs[i + 1 - length : i + 1]
        return all(z > 0 for z in window) or all(z < 0 for z in window)

    def k_of_m(k: int, m: int, beyond: float) -> bool:
        if i + 1 < m:
            return False
        window = zs[i + 1 - m : i + 1]
        if zs[i] > beyond:
            return sum(z > beyond for z in window) >= k
        if zs[i] < -beyond:
            return sum(z < -beyond for z in window) >= k
        return False

    if rule == 1:
        return values[i] > limits[i].upper or values[i] < limits[i].lower
    if rule == 2:
        return side_run(9)
    if rule == 9:
        return side_run(8)
    if rule == 3:
        if i < 5:
            return False
        steps = [values[j + 1] - values[j] for j in range(i - 5, i)]
        return all(d > 0 for d in steps) or all(d < 0 for d in steps)
    if rule == 4:
        if i < 13:
            return False
        steps = [values[j + 1] - values[j] for j in range(i - 13, i)]
        return all(a * b < 0 for a, b in itertools.pairwise(steps))
    if rule == 5:
        return k_of_m(2, 3, 2.0)
    if rule == 6:
        return k_of_m(4, 5, 1.0)
    if rule == 7:
        return i >= 14 and all(abs(z) < 1 for z in zs[i - 14 : i + 1])
    if rule == 8:
        return i >= 7 and all(abs(z) > 1 for z in zs[i - 7 : i + 1])
    raise ValueError(f"unknown rule {rule}")


# ---------------------------------------------------------------------------- capability


@dataclass(frozen=True, slots=True)
class Interval:
    """A two-sided confidence interval."""

    low: float
    high: float


@dataclass(frozen=True, slots=True)
class Capability:
    """Capability indices with their confidence intervals (None when a spec limit is missing)."""

    n: int
    mean: float
    sigma_within: float
    sigma_overall: float
    lsl: float | None
    usl: float | None
    confidence: float
    cp: float | None
    cpk: float
    pp: float | None
    ppk: float
    cp_ci: Interval | None
    cpk_ci: Interval
    pp_ci: Interval | None
    ppk_ci: Interval


def capability(
    values: Sequence[float],
    *,
    lsl: float | None,
    usl: float | None,
    sigma_within: float | None = None,
    confidence: float = 0.95,
) -> Capability:
    """Cp, Cpk, Pp, Ppk of ``values`` against the spec limits, with confidence intervals.

    ``sigma_within`` is the short-term sigma from a control chart (R̄/d2, s̄/c4 or MR̄/d2); when not
    given, the overall standard deviation stands in (then Cp = Pp). Intervals use n − 1 degrees
    of freedom, n the number of values."""
    if lsl is None and usl is None:
        raise InputError("capability needs a lower or an upper spec limit (--lsl / --usl)")
    if lsl is not None and usl is not None and usl <= lsl:
        raise InputError(f"the upper spec limit {usl} is not above the lower one {lsl}")
    _need(len(values), 2, "values")
    _check_finite(values, "the data")
    n = len(values)
    mean = statistics.fmean(values)
    overall = statistics.stdev(values)
    within = overall if sigma_within is None else sigma_within
    if overall <= 0 or within <= 0:
        raise InputError("the values do not vary; capability needs a spread")

    def indices(sigma: float) -> tuple[float | None, float]:
        sides = []
        if usl is not None:
            sides.append((usl - mean) / (3 * sigma))
        if lsl is not None:
            sides.append((mean - lsl) / (3 * sigma))
        potential = None if lsl is None or usl is None else (usl - lsl) / (6 * sigma)
        return potential, min(sides)

    cp, cpk = indices(within)
    pp, ppk = indices(overall)
    return Capability(
        n,
        mean,
        within,
        overall,
        lsl,
        usl,
        confidence,
        cp,
        cpk,
        pp,
        ppk,
        None if cp is None else cp_interval(cp, n, confidence),
        cpk_interval(cpk, n, confidence),
        None if pp is None else cp_interval(pp, n, confidence),
        cpk_interval(ppk, n, confidence),
    )


def cp_interval(cp: float, n: int, confidence: float = 0.95) -> Interval:
    """Chi-square interval: Cp·√(χ²_{α/2,n−1}/(n−1)) ≤ Cp ≤ Cp·√(χ²_{1−α/2,n−1}/(n−1))."""
    alpha = 1 - confidence
    df = n - 1
    return Interval(
        cp * math.sqrt(chi2_quantile(alpha / 2, df) / df),
        cp * math.sqrt(chi2_quantile(1 - alpha / 2, df) / df),
    )


def cpk_interval(cpk: float, n: int, confidence: float = 0.95) -> Interval:
    """Bissell (1990): Cpk·(1 ± z·√(1/(9n·Cpk²) + 1/(2(n−1))))."""
    z = statistics.NormalDist().inv_cdf(1 - (1 - confidence) / 2)
    half = z * math.sqrt(1 / (9 * n) + cpk**2 / (2 * (n - 1)))
    return Interval(cpk - half, cpk + half)


def chi2_quantile(p: float, df: int) -> float:
    """The ``p`` quantile of the chi-square distribution with ``df`` degrees of freedom."""
    if not 0 < p < 1 or df < 1:
        raise ValueError("chi2_quantile needs 0 < p < 1 and df ≥ 1")
    low, high = 0.0, max(1.0, df + 10 * math.sqrt(2 * df))
    while chi2_cdf(high, df) < p:
        high *= 2
    for _ in range(200):
        mid = (low + high) / 2
        if chi2_cdf(mid, df) < p:
            low = mid
        else:
            high = mid
        if high - low < 1e-12 * max(1.0, high):
            break
    return (low + high) / 2


def chi2_cdf(x: float, df: int) -> float:
    """P(X ≤ x) for chi-square with ``df`` degrees of freedom (regularised lower gamma)."""
    if x <= 0:
        return 0.0
    return _lower_gamma_regularised(df / 2, x / 2)


def _lower_gamma_regularised(a: float, x: float) -> float:
    log_prefix = a * math.log(x) - x - math.lgamma(a)
    if x < a + 1:  # series
        term = total = 1 / a
        k = a
        for _ in range(1000):
            k += 1
            term *= x / k
            total += term
            if abs(term) < abs(total) * 1e-15:
                break
        return total * math.exp(log_prefix)
    # continued fraction for the upper tail (Lentz)
    tiny = 1e-300
    b = x + 1 - a
    c = 1 / tiny
    d = 1 / b
    h = d
    for i in range(1, 1000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-15:
            break
    return 1 - math.exp(log_prefix) * h
