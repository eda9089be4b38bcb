"""``microfab bench anomaly`` at CI smoke size: the documented shape, and better than the baseline."""

from __future__ import annotations

from microfab.benchmarks import find_benchmark

KEYS = {
    "name",
    "precision",
    "recall",
    "f1",
    "false_alarms_per_day",
    "lead_time_fraction",
    "baseline_f1",
}


def test_quick_anomaly_benchmark() -> None:
    module, _ = find_benchmark("anomaly")
    assert not set(module.SEEDS) & set(module.TUNING_SEEDS)
    result = module.run(repeat=1, quick=True)
    sources = result["sources"]
    assert [s["name"] for s in sources] == list(module.SOURCES)
    for source in sources:
        assert set(source) >= KEYS
        assert source["name"].startswith("sim-")
        assert source["faults"] >= 1
        assert 0 <= source["precision"] <= 1 and 0 <= source["recall"] <= 1
        assert source["f1"] > source["baseline_f1"], source
    text = module.markdown(result)
    assert text.count("| sim-") == len(sources)
