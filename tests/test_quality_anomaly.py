"""Simulator faults as ground truth, the anomaly detector, the scoring and the health estimate."""

from __future__ import annotations

import datetime as dt
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from microfab.connect.publisher import ListPublisher
from microfab.errors import FactoryFileError
from microfab.model.events import StateChange, TelemetrySample
from microfab.model.spc import NotEnoughBaseline
from microfab.quality.anomaly import (
    DetectorSettings,
    MachineTelemetry,
    TelemetryDetector,
    ZScoreDetector,
    detect,
    machine_telemetry,
)
from microfab.quality.maintenance import machine_health, rolling_baseline, rolling_health
from microfab.quality.scoring import FaultWindow, score_alerts
from microfab.sim.engine import DEFAULT_START, FactorySimulation
from microfab.sim.scenario import SCENARIO_DIR, Behaviour, Scenario, load_scenario

UTC = dt.UTC


def with_faults(faults: list[dict[str, object]], name: str = "moulding-cell") -> Scenario:
    base = load_scenario(name)
    raw = base.behaviour.model_dump(mode="json")
    raw["faults"] = faults
    return Scenario(base.name, base.factory, Behaviour.model_validate(raw), base.factory_source)


def simulate(
    scenario: Scenario, hours: float, seed: int = 7
) -> tuple[ListPublisher, FactorySimulation]:
    publisher = ListPublisher()
    sim = FactorySimulation(scenario, publisher, seed=seed)
    sim.run_until(hours * 3600)
    return publisher, sim


def series_of(publisher: ListPublisher) -> dict[str, MachineTelemetry]:
    telemetry = [
        (e.machine, e.ts, dict(e.metrics))
        for e in publisher.events
        if isinstance(e, TelemetrySample)
    ]
    states = [
        (e.machine, e.ts, e.state.value) for e in publisher.events if isinstance(e, StateChange)
    ]
    return machine_telemetry(telemetry, states)


ROBOT = "yl/moulding/mc-1/unload/robot-1"
BEARING = {"machine": "robot-1", "kind": "bearing_wear", "onset_h": 26, "life_h": 14}


def test_an_empty_fault_list_changes_nothing() -> None:
    plain, _ = simulate(load_scenario("moulding-cell"), 6)
    empty, _ = simulate(with_faults([]), 6)
    assert [e.model_dump() for e in plain.events] == [e.model_dump() for e in empty.events]


def test_bearing_wear_raises_vibration_and_ends_in_a_logged_breakdown() -> None:
    publisher, sim = simulate(with_faults([BEARING]), 72)
    (record,) = sim.fault_log
    start = DEFAULT_START.astimezone(UTC)
    assert record.machine == ROBOT and record.kind == "bearing_wear"
    assert record.metric == "vib_rms_mm_s"
    assert record.onset == start + dt.timedelta(hours=26)
    # 14 running hours after the onset: robot-1 works two shifts a day, not round the clock
    assert start + dt.timedelta(hours=26 + 14) < record.failure < start + dt.timedelta(hours=72)
    breakdown = [
        e
        for e in publisher.events
        if isinstance(e, StateChange) and e.machine == ROBOT and e.ts == record.failure
    ]
    assert breakdown and breakdown[-1].state.value == "unplanned_stop"
    series = series_of(publisher)[ROBOT]
    vib = [(ts, m["vib_rms_mm_s"]) for ts, m in series.readings if m is not None]
    healthy = [v for ts, v in vib if ts < record.onset]
    worn = [v for ts, v in vib if record.failure - dt.timedelta(hours=3) <= ts < record.failure]
    repaired = [v for ts, v in vib if ts > record.failure + dt.timedelta(hours=4)]
    sd = float(np.std(healthy))
    assert np.mean(worn) - np.mean(healthy) > 4 * sd  # the documented 6 sd at failure, quadratic
    assert abs(np.mean(repaired) - np.mean(healthy)) < sd  # the repair cleared it


def test_a_frozen_sensor_repeats_its_last_reading() -> None:
    fault = {"machine": "chiller-1", "kind": "sensor_freeze", "onset_h": 5, "life_h": 9}
    publisher, sim = simulate(with_faults([fault]), 8)
    chiller = [
        (e.ts, e.metrics["supply_temp_c"])
        for e in publisher.events
        if isinstance(e, TelemetrySample) and e.machine.endswith("chiller-1")
    ]
    onset = DEFAULT_START.astimezone(UTC) + dt.timedelta(hours=5)
    frozen = {v for ts, v in chiller if ts >= onset}
    before = [v for ts, v in chiller if ts < onset]
    assert frozen == {before[-1]}
    assert sim.fault_log == []  # its life is not used up yet


def test_nozzle_clogging_slows_the_cycles() -> None:
    fault = {
        "machine": "imm-1",
        "kind": "nozzle_clog",
        "onset_h": 2,
        "life_h": 30,
        "shift_sd": 40,
    }
    clogged, _ = simulate(with_faults([fault]), 28)
    plain, _ = simulate(load_scenario("moulding-cell"), 28)

    def made(publisher: ListPublisher) -> int:
        return sum(
            e.good + e.scrap
            for e in publisher.events
            if e.stream == "count" and e.machine.endswith("imm-1")
        )

    assert made(clogged) < made(plain)


def test_bad_faults_are_located(tmp_path: Path) -> None:
    source = SCENARIO_DIR / "moulding-cell"
    shutil.copy(source / "factory.yaml", tmp_path / "factory.yaml")
    behaviour = (source / "behaviour.yaml").read_text(encoding="utf-8")
    bad = "faults:\n  - {machine: vision-1, kind: bearing_wear, onset_h: 1, life_h: 2}\n"
    (tmp_path / "behaviour.yaml").write_text(behaviour + bad, encoding="utf-8")
    with pytest.raises(FactoryFileError, match=r"faults\[0\]\.metric: vision-1 reports no"):
        load_scenario(str(tmp_path))
    late = "faults:\n  - {machine: robot-1, kind: bearing_wear, onset_h: 9, life_h: 0}\n"
    (tmp_path / "behaviour.yaml").write_text(behaviour + late, encoding="utf-8")
    with pytest.raises(
        FactoryFileError, match=r"faults\[0\]\.life_h: Input should be greater than 0"
    ):
        load_scenario(str(tmp_path))


def test_the_detector_catches_bearing_wear_before_the_failure() -> None:
    publisher, sim = simulate(with_faults([BEARING]), 72)
    (record,) = sim.fault_log
    series = series_of(publisher)
    baseline_end = DEFAULT_START.astimezone(UTC) + dt.timedelta(hours=24)
    detector, alerts = detect(series[ROBOT], baseline_end, DetectorSettings(min_baseline=200))
    assert alerts, "no alert at all"
    first = alerts[0]
    assert record.onset <= first.ts < record.failure
    assert first.metric == "vib_rms_mm_s"
    lead = (record.failure - first.ts) / (record.failure - record.onset)
    assert lead > 0.3
    assert first.evidence["vib_rms_mm_s"]["shift_sd"] > 0
    assert isinstance(detector, TelemetryDetector)
    # The robot tends two moulders and waits between their batches: 12 h of history hold enough
    # of its running readings for the trend. Its last readings before the failure come while
    # the wear is at about 3 sd (it wears on, more slowly, while it waits).
    health = machine_health(
        series[ROBOT], baseline_end, at=record.failure - dt.timedelta(hours=1), recent_h=12
    )
    assert health.health < 0.6
    assert health.rul_h is not None and health.rul_h < 24
    assert "robot-1" in health.recommendation and "vib_rms_mm_s" in health.recommendation


def _stationary(n: int, seed: int) -> tuple[list[dt.datetime], np.ndarray]:
    rng = random.Random(seed)
    t0 = dt.datetime(2026, 11, 23, tzinfo=UTC)
    times = [t0 + dt.timedelta(minutes=i) for i in range(n)]
    values = np.array([[rng.gauss(10, 1), rng.gauss(50, 5)] for _ in range(n)])
    return times, values


def test_streaming_scores_equal_the_batch_scores() -> None:
    times, values = _stationary(900, 1)
    detector = TelemetryDetector("m", ["a", "b"], DetectorSettings(min_baseline=300))
    detector.fit(times[:600], values[:600])
    batch = detector.scores(values[600:])
    streamed = []
    for row in values[600:]:
        detector.update(times[0], {"a": row[0], "b": row[1]})
        streamed.append(np.nan if detector.last_score is None else detector.last_score)
    np.testing.assert_allclose(batch, streamed, rtol=1e-9, equal_nan=True)


def test_the_threshold_keeps_false_alarms_near_the_target_on_healthy_data() -> None:
    times, values = _stationary(600 + 14 * 1440, 2)
    detector = TelemetryDetector("m", ["a", "b"], DetectorSettings(false_alarms_per_day=0.5))
    detector.fit(times[:600], values[:600])
    alerts = detector.run(
        (ts, {"a": row[0], "b": row[1]}) for ts, row in zip(times[600:], values[600:], strict=True)
    )
    assert len(alerts) <= 14  # 0.5 a day over 14 days is 7; allow for chance
    comparison = ZScoreDetector("m", ["a", "b"])
    comparison.fit(times[:600], values[:600])
    noisy = comparison.run(
        (ts, {"a": row[0], "b": row[1]}) for ts, row in zip(times[600:], values[600:], strict=True)
    )
    assert len(noisy) > 5 * max(1, len(alerts))


def test_too_little_baseline_says_how_much_more() -> None:
    times, values = _stationary(100, 3)
    with pytest.raises(NotEnoughBaseline, match=r"has 100 running readings.*\(200 more\)"):
        TelemetryDetector("m", ["a", "b"]).fit(times, values)


def test_scoring_per_fault_event() -> None:
    t = dt.datetime(2026, 11, 23, tzinfo=UTC)
    h = dt.timedelta(hours=1)
    faults = [FaultWindow("a", t + 10 * h, t + 20 * h), FaultWindow("b", t + 5 * h, t + 15 * h)]
    alerts = [("a", t + 12 * h), ("a", t + 18 * h), ("a", t + 30 * h), ("c", t + 1 * h)]
    score = score_alerts(alerts, faults, monitored_days=2)
    assert (score.detected, score.false_alarms, score.faults) == (1, 2, 2)
    assert score.precision == pytest.approx(1 / 3) and score.recall == 0.5
    assert score.f1 == pytest.approx(0.4)
    assert score.lead_time_fraction == pytest.approx(0.8)  # (20 − 12) / (20 − 10)
    assert score.false_alarms_per_day == 1


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("ab"), st.integers(0, 100)), max_size=30))
def test_every_alert_is_either_a_detection_or_a_false_alarm(alerts: list[tuple[str, int]]) -> None:
    t = dt.datetime(2026, 11, 23, tzinfo=UTC)
    h = dt.timedelta(hours=1)
    faults = [FaultWindow("a", t + 10 * h, t + 20 * h), FaultWindow("a", t + 40 * h, t + 60 * h)]
    timed = [(m, t + k * h) for m, k in alerts]
    score = score_alerts(timed, faults, monitored_days=1)
    inside = sum(
        any(f.machine == m and f.onset <= ts <= f.failure for f in faults) for m, ts in timed
    )
    assert score.false_alarms == len(timed) - inside
    assert score.detected <= min(inside, len(faults))
    assert 0 <= score.precision <= 1 and 0 <= score.recall <= 1
    assert all(0 <= f <= 1 for f in score.lead_fractions)


@settings(max_examples=10, deadline=None)
@given(
    st.floats(min_value=0.01, max_value=100),
    st.floats(min_value=-1000, max_value=1000),
    st.floats(min_value=0.01, max_value=100),
)
def test_scores_do_not_depend_on_units(scale_a: float, offset: float, scale_b: float) -> None:
    """Changing a metric's unit or zero (°C → °F, mm/s → in/s) leaves every score the same."""
    times, values = _stationary(800, 4)
    values[700:, 0] += np.linspace(0, 3, 100)  # a drift to score
    moved = values * np.array([scale_a, scale_b]) + np.array([offset, -offset])
    one = TelemetryDetector("m", ["a", "b"], DetectorSettings(min_baseline=300))
    two = TelemetryDetector("m", ["a", "b"], DetectorSettings(min_baseline=300))
    one.fit(times[:600], values[:600])
    two.fit(times[:600], moved[:600])
    np.testing.assert_allclose(one.scores(values[600:]), two.scores(moved[600:]), rtol=1e-6)
    assert one.threshold == pytest.approx(two.threshold, rel=1e-6)


def test_every_monitored_machine_gets_a_health_score_from_a_rolling_baseline() -> None:
    """Over four days of the food line, the machines that run little (vision, AGV, packer) get a
    health score too, not only the bottleneck that ran most of the first day."""
    base = load_scenario("food-line")
    raw = base.behaviour.model_dump(mode="json")
    raw["telemetry_every_s"] = 20
    scenario = Scenario(base.name, base.factory, Behaviour.model_validate(raw), base.factory_source)
    publisher, _ = simulate(scenario, 96, seed=1)
    series = series_of(publisher)
    monitored = {
        ref.path for ref in base.factory.machines() if base.behaviour.machines.get(ref.machine.id)
    }
    monitored = {p for p in monitored if base.behaviour.machines[p.rsplit("/", 1)[-1]].telemetry}
    assert set(series) == monitored
    for path, machine in series.items():
        health = rolling_health(machine, window=dt.timedelta(days=1))
        assert 0.5 < health.health <= 1.0, (path, health.recommendation)
        assert "healthy" in health.recommendation, health.recommendation


def test_the_rolling_baseline_leaves_out_alert_periods_and_reaches_back_when_short() -> None:
    t0 = dt.datetime(2026, 11, 23, tzinfo=UTC)
    series = MachineTelemetry(
        "m", [(t0 + dt.timedelta(minutes=i), {"a": float(i)}) for i in range(600)]
    )
    before = t0 + dt.timedelta(minutes=500)
    window = dt.timedelta(minutes=100)
    rows = rolling_baseline(series, before, window=window, min_readings=50)
    assert [r["a"] for r in rows] == [float(i) for i in range(400, 500)]
    alert = (t0 + dt.timedelta(minutes=450), t0 + dt.timedelta(minutes=479))
    rows = rolling_baseline(series, before, window=window, min_readings=50, excluded=[alert])
    assert [r["a"] for r in rows] == [float(i) for i in [*range(400, 450), *range(480, 500)]]
    # An open alert leaves out everything after it began; the baseline reaches back for enough.
    rows = rolling_baseline(
        series, before, window=window, min_readings=50, excluded=[(alert[0], None)]
    )
    assert [r["a"] for r in rows] == [float(i) for i in range(400, 450)]
    rows = rolling_baseline(
        series, before, window=window, min_readings=80, excluded=[(alert[0], None)]
    )
    assert [r["a"] for r in rows] == [float(i) for i in range(370, 450)]
