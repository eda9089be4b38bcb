"""Anomaly detection on telemetry: a detector per machine, trained on a healthy baseline.

Each machine's metrics form one group. While the machine runs, every reading updates rolling
features over the last ``window`` readings of each metric:

- the shift of the rolling mean, in standard errors of the baseline (≈ N(0, 1) when healthy);
- the spread: the ratio of the rolling variance to the baseline's, on the normal scale of
  the Wilson–Hilferty cube root (≈ N(0, 1) when healthy; a frozen sensor drives it far below, a
  loosening bearing above). A log ratio would not do: over 30 readings its low tail is several
  times heavier than a normal one, so quiet windows on a healthy machine raised alerts.

A robust covariance (scikit-learn's ``MinCovDet``, minimum covariance determinant) of these
features on the healthy baseline gives each new feature vector a squared Mahalanobis distance:
the anomaly score. Its correlations are shrunk toward none (Ledoit–Wolf, on disjoint windows)
and no variance is taken below 1, the features' sampling noise: a day of overlapping windows
holds too few independent ones to learn them closer. The threshold comes from a target false-alarm rate: the score's tail is taken
as a chi-square with one degree of freedom per feature, scaled so that its 95th percentile matches
the scores of a held-out part of the baseline, and cut at the per-reading probability
``false_alarms_per_day / readings_per_day``. An alert starts when ``confirm`` readings in a row
are above the threshold; no new alert starts until the score has stayed below it for
``hold_off`` readings (no alert storms). Readings taken while the machine does not run are not
scored, and a breakdown (repair) restarts the rolling window.

The comparison in ``microfab bench anomaly`` is :class:`ZScoreDetector`: every raw reading
against the mean ± 3 standard deviations of the same healthy baseline.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from microfab.model.spc import NotEnoughBaseline, chi2_quantile
from microfab.store.event_store import EventStore

RUNNING_STATES = frozenset({"running", "setup", "micro_stop"})
"""States in which a machine's telemetry describes it at work (the readings that are scored)."""


@dataclass(frozen=True, slots=True)
class DetectorSettings:
    window: int = 30
    """Readings in the rolling features."""
    confirm: int = 3
    """Readings in a row above the threshold that raise an alert."""
    hold_off: int = 60
    """Readings in a row below the threshold before another alert can start."""
    false_alarms_per_day: float = 0.1
    """Target false-alarm rate per machine, from which the threshold is set."""
    min_baseline: int = 300
    """Fewest running readings in the healthy baseline (5 h at one a minute)."""


@dataclass(frozen=True, slots=True)
class Alert:
    """An anomaly alert: when it started, how abnormal, and which metric moved most."""

    machine: str
    ts: dt.datetime
    score: float
    threshold: float
    metric: str
    evidence: dict[str, dict[str, float]] = field(default_factory=dict)
    """Per metric: ``shift_sd`` (rolling mean − baseline mean, in baseline sd) and ``spread``
    (rolling sd / baseline sd)."""

    def to_json(self) -> dict[str, Any]:
        from microfab.model.events import format_ts

        return {
            "machine": self.machine,
            "ts": format_ts(self.ts),
            "score": round(self.score, 2),
            "threshold": round(self.threshold, 2),
            "metric": self.metric,
            "evidence": self.evidence,
        }


class _AlertGate:
    """Turns a sequence of exceedances into alert onsets with confirmation and hold-off."""

    def __init__(self, confirm: int, hold_off: int) -> None:
        self.confirm = confirm
        self.hold_off = hold_off
        self.above = 0
        self.below = 0
        self.active = False

    def step(self, exceeded: bool) -> bool:
        if exceeded:
            self.above += 1
            self.below = 0
            if not self.active and self.above >= self.confirm:
                self.active = True
                return True
        else:
            self.above = 0
            self.below += 1
            if self.active and self.below >= self.hold_off:
                self.active = False
        return False


def _with_sampling_floor(covariance: NDArray[np.float64]) -> NDArray[np.float64]:
    """The features' covariance with each variance raised to at least its sampling noise, 1.

    Over a window of independent readings of a steady process every feature is ≈ N(0, 1);
    serially correlated readings only add to that. A short baseline holds few independent
    windows (a day at one reading a minute: about 20), so the robust estimate can come out
    below this noise, which turns a chance quiet or busy window on a healthy machine into an
    alert."""
    out = np.array(covariance, dtype=float)
    diagonal = np.diag_indices_from(out)
    out[diagonal] = np.maximum(out[diagonal], 1.0)
    return out


def _shrunk(
    covariance: NDArray[np.float64], independent: NDArray[np.float64]
) -> NDArray[np.float64]:
    """The covariance with its correlations shrunk toward none, by Ledoit–Wolf's intensity.

    Overlapping windows make the baseline's feature rows far from independent: a day holds about
    20 disjoint windows, too few to tell a true correlation between features from a chance one,
    and a chance correlation inflates the score of a window whose features happen to move
    against it. The intensity comes from the disjoint windows (``independent``), the target is
    the covariance's own diagonal, so the result stays positive definite."""
    from sklearn.covariance import ledoit_wolf_shrinkage  # type: ignore[import-untyped]

    if len(independent) < 2:
        return covariance
    weight = float(ledoit_wolf_shrinkage(independent))
    diagonal = np.diag(np.diag(covariance))
    return np.asarray((1 - weight) * covariance + weight * diagonal)


def _spread_scale(window: int) -> tuple[float, float]:
    """Mean and sd of the cube root of a variance ratio over ``window`` normal readings."""
    k = 2 / (9 * (window - 1))
    return 1 - k, math.sqrt(k)


def spread_feature(variance_ratio: NDArray[np.float64], window: int) -> NDArray[np.float64]:
    """Rolling variance ÷ baseline variance as a standard normal deviate (Wilson–Hilferty)."""
    centre, sd = _spread_scale(window)
    return (np.cbrt(variance_ratio) - centre) / sd


def spread_ratio(feature: float, window: int) -> float:
    """The rolling sd ÷ baseline sd that a spread feature stands for."""
    centre, sd = _spread_scale(window)
    return math.sqrt(max(0.0, feature * sd + centre) ** 3)


def _readings_per_day(times: Sequence[dt.datetime], count: int) -> float:
    if len(times) < 2:
        return float(count)
    days = max((times[-1] - times[0]).total_seconds() / 86400, 1 / 24)
    return count / days


class TelemetryDetector:
    """The detector of one machine's metric group (see the module docstring)."""

    def __init__(
        self, machine: str, metrics: Sequence[str], settings: DetectorSettings | None = None
    ) -> None:
        if not metrics:
            raise ValueError("a detector needs at least one metric")
        self.machine = machine
        self.metrics = list(metrics)
        self.settings = settings or DetectorSettings()
        self.mean = np.zeros(len(self.metrics))
        self.sd = np.ones(len(self.metrics))
        self.location = np.zeros(2 * len(self.metrics))
        self.precision: NDArray[np.float64] = np.eye(2 * len(self.metrics))
        self.scale = np.ones(2 * len(self.metrics))
        self.threshold = math.inf
        self.readings_per_day = 0.0
        self.fitted = False
        self.last_score: float | None = None
        """Score of the latest reading (None while the rolling window fills)."""
        self._window: deque[NDArray[np.float64]] = deque(maxlen=self.settings.window)
        self._gate = _AlertGate(self.settings.confirm, self.settings.hold_off)

    # ------------------------------------------------------------------ training

    def fit(self, times: Sequence[dt.datetime], values: NDArray[np.float64]) -> None:
        """Learn the healthy baseline from running readings (rows in time order, one column per
        metric); NotEnoughBaseline says how many more readings it needs."""
        from sklearn.covariance import MinCovDet

        s = self.settings
        n = len(values)
        if n < s.min_baseline:
            raise NotEnoughBaseline(
                f"{self.machine}: the healthy baseline has {n} running readings; the detector "
                f"needs at least {s.min_baseline} ({s.min_baseline - n} more)"
            )
        self.mean = values.mean(axis=0)
        self.sd = values.std(axis=0, ddof=1)
        self.sd[self.sd <= 0] = 1e-9
        features = self.features(values)
        cut = int(len(features) * 0.6)
        train, calibrate = features[:cut], features[cut:]
        mcd = MinCovDet(random_state=0, support_fraction=0.9).fit(train)
        covariance = _with_sampling_floor(_shrunk(mcd.covariance_, train[:: s.window]))
        self.location = mcd.location_
        self.precision = np.asarray(np.linalg.inv(covariance), dtype=np.float64)
        self.scale = np.sqrt(np.diag(covariance))
        held_out = self._distances(calibrate)
        dof = features.shape[1]
        reference = chi2_quantile(0.95, dof)
        stretch = max(1.0, float(np.quantile(held_out, 0.95)) / reference)
        self.readings_per_day = _readings_per_day(times, n)
        per_reading = min(0.5, s.false_alarms_per_day / max(self.readings_per_day, 1.0))
        self.threshold = stretch * chi2_quantile(1 - per_reading, dof)
        self.fitted = True
        self.reset()

    def features(self, values: NDArray[np.float64]) -> NDArray[np.float64]:
        """Rolling features of consecutive readings: one row per complete window."""
        w = self.settings.window
        z = (values - self.mean) / self.sd
        if len(z) < w:
            return np.empty((0, 2 * z.shape[1]))
        zero = np.zeros((1, z.shape[1]))
        c1 = np.concatenate([zero, np.cumsum(z, axis=0)])
        c2 = np.concatenate([zero, np.cumsum(z * z, axis=0)])
        s1 = c1[w:] - c1[:-w]
        s2 = c2[w:] - c2[:-w]
        mean = s1 / w
        var = np.clip((s2 - w * mean * mean) / (w - 1), 0.0, None)
        return self._assemble(mean, var)

    def _assemble(self, mean: NDArray[np.float64], var: NDArray[np.float64]) -> NDArray[np.float64]:
        w = self.settings.window
        return np.concatenate([mean * math.sqrt(w), spread_feature(var, w)], axis=1)

    def _distances(self, features: NDArray[np.float64]) -> NDArray[np.float64]:
        centred = features - self.location
        return np.asarray(np.einsum("ij,jk,ik->i", centred, self.precision, centred))

    def scores(self, values: NDArray[np.float64]) -> NDArray[np.float64]:
        """Scores of consecutive running readings (NaN for the first ``window - 1``)."""
        out = np.full(len(values), np.nan)
        features = self.features(values)
        if len(features):
            out[self.settings.window - 1 :] = self._distances(features)
        return out

    # ------------------------------------------------------------------ streaming

    def reset(self) -> None:
        """Forget the rolling window (after a repair) and any alert in progress."""
        self._window.clear()
        self._gate = _AlertGate(self.settings.confirm, self.settings.hold_off)

    def update(self, ts: dt.datetime, metrics: dict[str, float]) -> Alert | None:
        """Feed one running reading; an :class:`Alert` when one starts."""
        if not self.fitted:
            raise RuntimeError("fit the detector on a healthy baseline first")
        try:
            row = np.array([metrics[name] for name in self.metrics], dtype=float)
        except KeyError:
            return None  # a reading without the whole metric group is not scored
        self._window.append((row - self.mean) / self.sd)
        self.last_score = None
        if len(self._window) < self.settings.window:
            return None
        block = np.array(self._window)
        mean = block.mean(axis=0, keepdims=True)
        var = block.var(axis=0, ddof=1, keepdims=True)
        features = self._assemble(mean, var)
        score = float(self._distances(features)[0])
        self.last_score = score
        if self._gate.step(score > self.threshold):
            return self._alert(ts, score, features[0])
        return None

    def _alert(self, ts: dt.datetime, score: float, features: NDArray[np.float64]) -> Alert:
        k = len(self.metrics)
        w = self.settings.window
        standardised = np.abs((features - self.location) / self.scale)
        top = int(np.argmax(standardised)) % k
        evidence = {
            name: {
                "shift_sd": round(float(features[i]) / math.sqrt(w), 2),
                "spread": round(spread_ratio(float(features[k + i]), w), 2),
            }
            for i, name in enumerate(self.metrics)
        }
        return Alert(self.machine, ts, score, self.threshold, self.metrics[top], evidence)

    def run(self, readings: Iterable[tuple[dt.datetime, dict[str, float] | None]]) -> list[Alert]:
        """Stream readings through the detector; ``None`` marks a repair (the window restarts)."""
        alerts = []
        for ts, metrics in readings:
            if metrics is None:
                self.reset()
                continue
            alert = self.update(ts, metrics)
            if alert is not None:
                alerts.append(alert)
        return alerts


class ZScoreDetector:
    """The simple comparison: each raw reading against mean ± ``k`` sd of the healthy baseline."""

    def __init__(
        self,
        machine: str,
        metrics: Sequence[str],
        settings: DetectorSettings | None = None,
        k: float = 3.0,
    ) -> None:
        self.machine = machine
        self.metrics = list(metrics)
        self.settings = settings or DetectorSettings()
        self.k = k
        self.mean = np.zeros(len(self.metrics))
        self.sd = np.ones(len(self.metrics))
        self._gate = _AlertGate(1, self.settings.hold_off)

    def fit(self, times: Sequence[dt.datetime], values: NDArray[np.float64]) -> None:
        self.mean = values.mean(axis=0)
        self.sd = values.std(axis=0, ddof=1)
        self.sd[self.sd <= 0] = 1e-9

    def run(self, readings: Iterable[tuple[dt.datetime, dict[str, float] | None]]) -> list[Alert]:
        alerts = []
        for ts, metrics in readings:
            if metrics is None:
                continue
            try:
                row = np.array([metrics[name] for name in self.metrics], dtype=float)
            except KeyError:
                continue
            z = np.abs((row - self.mean) / self.sd)
            if self._gate.step(bool(z.max() > self.k)):
                top = int(np.argmax(z))
                alerts.append(Alert(self.machine, ts, float(z[top]), self.k, self.metrics[top]))
        return alerts


@dataclass(slots=True)
class MachineTelemetry:
    """One machine's telemetry in time order, with the running flag and repair marks."""

    machine: str
    readings: list[tuple[dt.datetime, dict[str, float] | None]] = field(default_factory=list)
    """Running readings, and ``(ts, None)`` where a breakdown began."""

    def metrics(self) -> list[str]:
        names: dict[str, None] = {}
        for _, m in self.readings:
            if m is not None:
                names.update(dict.fromkeys(m))
        return list(names)

    def until(self, end: dt.datetime) -> tuple[list[dt.datetime], list[dict[str, float]]]:
        times, rows = [], []
        for ts, m in self.readings:
            if ts >= end:
                break
            if m is not None:
                times.append(ts)
                rows.append(m)
        return times, rows

    def since(self, start: dt.datetime) -> list[tuple[dt.datetime, dict[str, float] | None]]:
        return [(ts, m) for ts, m in self.readings if ts >= start]


def machine_telemetry(
    telemetry: Iterable[tuple[str, dt.datetime, dict[str, float]]],
    states: Iterable[tuple[str, dt.datetime, str]],
) -> dict[str, MachineTelemetry]:
    """Merge telemetry and state changes (each in time order) into running readings per machine.

    A reading is kept when the machine's last state at or before it is a running state; a change
    to ``unplanned_stop`` adds a repair mark."""
    events: list[tuple[dt.datetime, int, str, Any]] = []
    events += [(ts, 0, machine, state) for machine, ts, state in states]
    events += [(ts, 1, machine, metrics) for machine, ts, metrics in telemetry]
    events.sort(key=lambda e: (e[0], e[1]))
    state: dict[str, str] = {}
    out: dict[str, MachineTelemetry] = {}
    for ts, kind, machine, payload in events:
        series = out.setdefault(machine, MachineTelemetry(machine))
        if kind == 0:
            if payload == "unplanned_stop" and state.get(machine) != "unplanned_stop":
                series.readings.append((ts, None))
            state[machine] = payload
        elif state.get(machine) in RUNNING_STATES:
            series.readings.append((ts, payload))
    return {machine: s for machine, s in out.items() if any(m for _, m in s.readings)}


def detect(
    series: MachineTelemetry,
    baseline_end: dt.datetime,
    settings: DetectorSettings | None = None,
    *,
    comparison: bool = False,
) -> tuple[TelemetryDetector | ZScoreDetector, list[Alert]]:
    """Train on the readings before ``baseline_end`` and return the alerts after it."""
    metrics = series.metrics()
    times, rows = series.until(baseline_end)
    values = np.array([[r.get(m, np.nan) for m in metrics] for r in rows], dtype=float)
    keep = ~np.isnan(values).any(axis=1) if len(values) else np.zeros(0, dtype=bool)
    values = values[keep] if len(values) else np.empty((0, len(metrics)))
    kept_times = [t for t, k in zip(times, keep, strict=True) if k]
    detector: TelemetryDetector | ZScoreDetector
    if comparison:
        detector = ZScoreDetector(series.machine, metrics, settings)
    else:
        detector = TelemetryDetector(series.machine, metrics, settings)
    detector.fit(kept_times, values)
    return detector, detector.run(series.since(baseline_end))


# ---------------------------------------------------------------------------- stored data


def stored_telemetry(
    store: EventStore,
    machines: Sequence[str],
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
) -> dict[str, MachineTelemetry]:
    """Running readings per machine from the store (machines with telemetry only)."""
    from microfab.store.quality import state_changes, telemetry_rows

    rows = telemetry_rows(store, machines, start, end)
    states = state_changes(store, machines, None, end)
    return machine_telemetry(
        ((r.machine, r.ts, r.metrics) for r in rows),
        ((m, ts, s) for m, ts, s, _ in states),
    )


def baseline_end_of(
    series: dict[str, MachineTelemetry], baseline_s: float, start: dt.datetime | None
) -> dt.datetime:
    """End of the healthy baseline: ``baseline_s`` after ``start`` or the first reading."""
    if start is None:
        firsts = [s.readings[0][0] for s in series.values() if s.readings]
        if not firsts:
            raise NotEnoughBaseline("no telemetry taken while machines ran; nothing to learn from")
        start = min(firsts)
    return start + dt.timedelta(seconds=baseline_s)


def anomaly_report(
    store: EventStore,
    machines: Sequence[str],
    *,
    baseline_s: float = 86400.0,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    settings: DetectorSettings | None = None,
) -> dict[str, Any]:
    """Train each machine's detector on the baseline and list the alerts after it (the JSON of
    ``microfab anomalies --json``)."""
    from microfab.model.events import format_ts

    series = stored_telemetry(store, machines, start, end)
    if not series:
        raise NotEnoughBaseline("these machines reported no telemetry while running")
    baseline_end = baseline_end_of(series, baseline_s, start)
    out: list[dict[str, Any]] = []
    for path, machine in series.items():
        try:
            detector, alerts = detect(machine, baseline_end, settings)
        except NotEnoughBaseline as exc:
            out.append({"machine": path, "note": exc.message, "alerts": []})
            continue
        assert isinstance(detector, TelemetryDetector)
        out.append(
            {
                "machine": path,
                "metrics": detector.metrics,
                "threshold": round(detector.threshold, 2),
                "readings_per_day": round(detector.readings_per_day),
                "alerts": [a.to_json() for a in alerts],
            }
        )
    return {"baseline_end": format_ts(baseline_end), "machines": out}
