"""Predictive maintenance: a health index and remaining-useful-life estimate per machine.

For every metric of a machine, the healthy baseline gives a mean and standard deviation. Over the
recent running readings the metric's *shift* is the mean of the last ``window`` readings less the
baseline mean, in baseline standard deviations, and its *trend* the least-squares slope of those
readings against time (sd per hour). A metric is taken to fail when its shift reaches
``failure_sd`` (6 sd by default: the simulator's faults end in a breakdown at 5–6 sd; set it
from your own failure history). Then::

    metric health  = 1 − |shift| / failure_sd          (clipped to 0 … 1)
    frozen reading = rolling sd < 5 % of the baseline sd → health 0 (a sensor to check)
    machine health = the lowest metric health
    RUL            = (failure_sd − |shift|) / |trend|   when the trend moves the shift outward
                     and is significant (|t| ≥ 3); otherwise none (no degradation trend);
                     the machine's RUL is its metrics' shortest

Each machine comes with a recommendation and the evidence behind it (the metric, its baseline,
its recent level and slope), so a technician can check the reasoning.

The healthy baseline rolls (:func:`rolling_baseline`): it is the machine's running readings in
the ``window`` (default one day) before its recent period, leaving out every period with an
alert on that machine — a stored alert from its first to its last reading (one not closed, to
the end), and everything from the first alert of the machine's anomaly detector on — so a fault
that has been noticed does not become the new normal. A machine that runs little reaches
further back for its ``min_baseline`` readings (the warm-up), so every monitored machine gets a
score once it has run :data:`ROLLING_MIN_BASELINE` + ``readings`` readings (1½ running hours
at one reading a minute), not only the machines that were busy on the first day.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from microfab.model.events import format_ts
from microfab.model.spc import NotEnoughBaseline
from microfab.quality.anomaly import MachineTelemetry, baseline_end_of, detect, stored_telemetry
from microfab.store.event_store import EventStore

FROZEN_SPREAD = 0.05

ROLLING_MIN_BASELINE = 60
"""Fewest readings in a rolling baseline: an hour of running at one reading a minute."""

Interval = tuple[dt.datetime, dt.datetime | None]
"""A period to leave out of the baseline: from, to (None: still going on)."""


@dataclass(frozen=True, slots=True)
class MetricHealth:
    metric: str
    baseline_mean: float
    baseline_sd: float
    recent_mean: float
    shift_sd: float
    spread: float
    trend_sd_per_h: float
    trend_t: float
    health: float
    rul_h: float | None
    frozen: bool

    def to_json(self) -> dict[str, Any]:
        def r(x: float, places: int = 3) -> float:
            return round(x, places)

        return {
            "metric": self.metric,
            "baseline_mean": r(self.baseline_mean),
            "baseline_sd": r(self.baseline_sd, 4),
            "recent_mean": r(self.recent_mean),
            "shift_sd": r(self.shift_sd, 2),
            "spread": r(self.spread, 2),
            "trend_sd_per_h": r(self.trend_sd_per_h, 4),
            "trend_t": r(self.trend_t, 1),
            "health": r(self.health, 2),
            "rul_h": None if self.rul_h is None else r(self.rul_h, 1),
            "frozen": self.frozen,
        }


@dataclass(frozen=True, slots=True)
class MachineHealth:
    machine: str
    at: dt.datetime
    health: float
    rul_h: float | None
    recommendation: str
    metrics: list[MetricHealth]

    def to_json(self) -> dict[str, Any]:
        return {
            "machine": self.machine,
            "at": format_ts(self.at),
            "health": round(self.health, 2),
            "rul_h": None if self.rul_h is None else round(self.rul_h, 1),
            "recommendation": self.recommendation,
            "evidence": [m.to_json() for m in self.metrics],
        }


def machine_health(
    series: MachineTelemetry,
    baseline_end: dt.datetime,
    *,
    at: dt.datetime | None = None,
    recent_h: float = 8.0,
    window: int = 30,
    failure_sd: float = 6.0,
    min_baseline: int = 120,
) -> MachineHealth:
    """Health of one machine at ``at`` (default: its last reading) against the fixed baseline of
    its running readings before ``baseline_end``."""
    _, rows = series.until(baseline_end)
    recent_all = [(ts, m) for ts, m in series.since(baseline_end) if m is not None]
    if at is not None:
        recent_all = [(ts, m) for ts, m in recent_all if ts <= at]
    return _health(series, rows, recent_all, recent_h, window, failure_sd, min_baseline)


def rolling_baseline(
    series: MachineTelemetry,
    before: dt.datetime,
    *,
    window: dt.timedelta,
    min_readings: int,
    excluded: Sequence[Interval] = (),
) -> list[dict[str, float]]:
    """The healthy baseline of a machine: its running readings in ``window`` before ``before``
    that fall in no ``excluded`` period; when that holds fewer than ``min_readings``, the last
    ``min_readings`` such readings however old (a machine that runs little reaches back)."""

    def healthy(ts: dt.datetime) -> bool:
        return not any(start <= ts and (end is None or ts <= end) for start, end in excluded)

    kept = [(ts, m) for ts, m in series.readings if m is not None and ts < before and healthy(ts)]
    within = [m for ts, m in kept if ts >= before - window]
    if len(within) >= min_readings:
        return within
    return [m for _, m in kept[-min_readings:]]


def rolling_health(
    series: MachineTelemetry,
    *,
    window: dt.timedelta = dt.timedelta(days=1),
    excluded: Sequence[Interval] = (),
    recent_h: float = 8.0,
    readings: int = 30,
    failure_sd: float = 6.0,
    min_baseline: int = ROLLING_MIN_BASELINE,
) -> MachineHealth:
    """Health of one machine at its last reading against its rolling healthy baseline: the
    recent period is the last ``recent_h`` hours of running (at least ``readings`` readings), the
    baseline the ``window`` before it with the ``excluded`` periods (alerts) left out."""
    running = [(ts, m) for ts, m in series.readings if m is not None]
    if len(running) < readings:
        raise NotEnoughBaseline(
            f"{series.machine}: {len(running)} running readings; health needs at least "
            f"{min_baseline + readings} ({min_baseline + readings - len(running)} more)"
        )
    last = running[-1][0]
    recent = [(ts, m) for ts, m in running if ts >= last - dt.timedelta(hours=recent_h)]
    if len(recent) < readings:
        recent = running[-readings:]
    rows = rolling_baseline(
        series, recent[0][0], window=window, min_readings=min_baseline, excluded=excluded
    )
    return _health(series, rows, recent, recent_h, readings, failure_sd, min_baseline)


def _health(
    series: MachineTelemetry,
    rows: list[dict[str, float]],
    recent_all: list[tuple[dt.datetime, dict[str, float]]],
    recent_h: float,
    window: int,
    failure_sd: float,
    min_baseline: int,
) -> MachineHealth:
    metrics = series.metrics()
    if len(rows) < min_baseline:
        raise NotEnoughBaseline(
            f"{series.machine}: the healthy baseline has {len(rows)} running readings; health "
            f"needs at least {min_baseline} ({min_baseline - len(rows)} more)"
        )
    if len(recent_all) < window:
        raise NotEnoughBaseline(
            f"{series.machine}: {len(recent_all)} running readings after the baseline; health "
            f"needs at least {window} ({window - len(recent_all)} more)"
        )
    last = recent_all[-1][0]
    since = last - dt.timedelta(hours=recent_h)
    recent = [(ts, m) for ts, m in recent_all if ts >= since]
    if len(recent) < window:
        recent = recent_all[-window:]
    found = []
    for name in metrics:
        base = np.array([r[name] for r in rows if name in r], dtype=float)
        points = [(ts, m[name]) for ts, m in recent if name in m]
        if len(base) < 2 or len(points) < window:
            continue
        found.append(_metric_health(name, base, points, window, failure_sd))
    if not found:
        raise NotEnoughBaseline(f"{series.machine}: no metric has enough readings for health")
    trending = [h for h in found if h.rul_h is not None]
    frozen = [h for h in found if h.frozen]
    if frozen or not trending:
        worst = min(found, key=lambda h: h.health)
    else:
        worst = min(trending, key=lambda h: h.rul_h if h.rul_h is not None else math.inf)
    rul = min((h.rul_h for h in trending if h.rul_h is not None), default=None)
    return MachineHealth(
        series.machine,
        last,
        worst.health,
        rul,
        _recommend(series.machine, worst, failure_sd),
        found,
    )


def _metric_health(
    name: str,
    base: np.ndarray[Any, Any],
    points: list[tuple[dt.datetime, float]],
    window: int,
    failure_sd: float,
) -> MetricHealth:
    mean = float(base.mean())
    sd = float(base.std(ddof=1)) or 1e-9
    values = np.array([v for _, v in points], dtype=float)
    hours = np.array([(ts - points[0][0]).total_seconds() / 3600 for ts, _ in points])
    tail = values[-window:]
    recent_mean = float(tail.mean())
    shift = (recent_mean - mean) / sd
    spread = float(tail.std(ddof=1)) / sd
    frozen = spread < FROZEN_SPREAD
    slope, t_value = _trend((values - mean) / sd, hours)
    health = 0.0 if frozen else max(0.0, min(1.0, 1 - abs(shift) / failure_sd))
    rul = None
    if not frozen and abs(t_value) >= 3 and slope * shift > 0:
        rul = max(0.0, (failure_sd - abs(shift)) / abs(slope))
    return MetricHealth(
        name, mean, sd, recent_mean, shift, spread, slope, t_value, health, rul, frozen
    )


def _trend(z: np.ndarray[Any, Any], hours: np.ndarray[Any, Any]) -> tuple[float, float]:
    """Least-squares slope of ``z`` against ``hours`` and its t statistic."""
    n = len(z)
    if n < 3 or float(np.ptp(hours)) <= 0:
        return 0.0, 0.0
    x = hours - hours.mean()
    sxx = float((x * x).sum())
    slope = float((x * (z - z.mean())).sum()) / sxx
    residual = z - z.mean() - slope * x
    se = math.sqrt(float((residual * residual).sum()) / (n - 2) / sxx)
    return slope, (slope / se if se > 0 else 0.0)


def _recommend(machine: str, worst: MetricHealth, failure_sd: float) -> str:
    name = machine.rsplit("/", 1)[-1]
    if worst.frozen:
        return (
            f"check the {worst.metric} sensor of {name}: its reading has not changed "
            f"(spread {worst.spread:.0%} of normal)"
        )
    direction = "above" if worst.shift_sd > 0 else "below"
    if worst.rul_h is not None:
        return (
            f"plan maintenance of {name} within {hours_text(worst.rul_h)}: {worst.metric} is "
            f"{abs(worst.shift_sd):.1f} sd {direction} its healthy level and moving "
            f"{abs(worst.trend_sd_per_h):.2f} sd/h toward the failure level ({failure_sd:g} sd)"
        )
    if worst.health < 0.5:
        return (
            f"inspect {name}: {worst.metric} is {abs(worst.shift_sd):.1f} sd {direction} its "
            "healthy level (no steady trend)"
        )
    return f"{name} is healthy: no metric is far from its healthy level or trending away"


def health_report(
    store: EventStore,
    machines: list[str],
    *,
    baseline_s: float = 86400.0,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    recent_h: float = 8.0,
    failure_sd: float = 6.0,
) -> dict[str, Any]:
    """Health of every machine with telemetry (the JSON of ``microfab health --json``) against
    its rolling healthy baseline of ``baseline_s`` before its recent ``recent_h`` hours, with the
    periods of its alerts left out; machines with too little data say how much more they need.
    ``baseline_end`` is when the latest machine's baseline ends."""
    series = stored_telemetry(store, machines, start, end)
    if not series:
        raise NotEnoughBaseline("these machines reported no telemetry while running")
    alerts = alert_periods(store)
    for path, periods in detected_periods(
        series, baseline_end_of(series, baseline_s, start)
    ).items():
        alerts.setdefault(path, []).extend(periods)
    out: list[dict[str, Any]] = []
    ends: list[dt.datetime] = []
    for path, machine in series.items():
        try:
            found = rolling_health(
                machine,
                window=dt.timedelta(seconds=baseline_s),
                excluded=alerts.get(path, []),
                recent_h=recent_h,
                failure_sd=failure_sd,
            )
        except NotEnoughBaseline as exc:
            out.append({"machine": path, "health": None, "rul_h": None, "note": exc.message})
            continue
        ends.append(found.at - dt.timedelta(hours=recent_h))
        out.append(found.to_json())
    out.sort(key=lambda d: (d["health"] is None, d["health"] or 0.0))
    baseline_end = max(ends, default=None)
    return {
        "baseline_end": None if baseline_end is None else format_ts(baseline_end),
        "baseline_window_h": round(baseline_s / 3600, 2),
        "machines": out,
    }


def detected_periods(
    series: dict[str, MachineTelemetry], first_baseline_end: dt.datetime
) -> dict[str, list[Interval]]:
    """Per machine, the periods its anomaly detector (trained on the run's first baseline, as
    ``microfab anomalies`` does) flags: from its first alert on, as an alert nobody has closed
    (a repair of another failure need not clear a wearing part, so no reading after the alert
    is taken as healthy). A machine the detector cannot learn yet has none."""
    found: dict[str, list[Interval]] = {}
    for path, machine in series.items():
        try:
            _, alerts = detect(machine, first_baseline_end)
        except NotEnoughBaseline:
            continue
        if alerts:
            found[path] = [(alerts[0].ts, None)]
    return found


def alert_periods(store: EventStore) -> dict[str, list[Interval]]:
    """Per machine path, the periods of its stored alerts: first to last reading, an alert that
    is not closed to the end."""
    from microfab.model.alerts import AlertState
    from microfab.store.alerts import list_alerts

    found: dict[str, list[Interval]] = {}
    for alert in list_alerts(store):
        end = alert.last_ts if alert.state is AlertState.CLOSED else None
        found.setdefault(alert.machine, []).append((alert.first_ts, end))
    return found


def hours_text(value: float) -> str:
    """RUL as text: one decimal below 10 h."""
    return f"{value:.1f} h" if value < 10 else f"{value:.0f} h"
