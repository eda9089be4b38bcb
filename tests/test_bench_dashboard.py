"""``microfab bench dashboard`` at a smoke size: every probe event reaches the live stream."""

from __future__ import annotations

from microfab.benchmarks import find_benchmark


def test_dashboard_latency_benchmark_smoke() -> None:
    module, _ = find_benchmark("dashboard")
    result = module.run(repeat=1, events=2)
    assert result["samples"] == 2 and result["machines"] == 8
    assert result["stored_events"] > 10_000  # a simulated day of the food line
    assert 0 < result["p50_ms"] <= result["p99_ms"] <= result["max_ms"]
    assert result["baseline_p50_ms"] is not None and result["update_kb_median"] > 0
    text = module.markdown(result)
    assert "event → dashboard update" in text and f"| {result['p50_ms']} |" in text
