"""``microfab bench plan --quick`` is a CI-size smoke of the planning benchmark."""

from __future__ import annotations

import pytest

from conftest import BENCHMARKS
from microfab.benchmarks import find_benchmark


def test_quick_planning_benchmark(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MICROFAB_BENCHMARKS", str(BENCHMARKS))
    module, _ = find_benchmark("plan")
    assert module.NAME == "plan" and module.TITLE
    result = module.run(repeat=1, quick=True)
    assert result["quick"] and result["time_limit_s"] == 3.0
    assert [row["instance"] for row in result["rows"]] == ["Mk01", "Mk04", "ft06", "la16"]
    assert result["violations"] == 0
    for row in result["rows"]:
        assert row["ours"] is not None and row["ours"] >= row["best_lb"]
        assert row["plain"] is not None and row["dispatch"] >= row["ours"]
    (replan,) = result["replans"]
    assert replan["instance"] == "la16" and replan["started"] > 0
    assert replan["repair"] >= replan["full"] * 0.5
    text = module.markdown(result)
    assert "| la16 | 10×10 | 945 |" in text
    assert "**Quick smoke run**" in text
    assert "Re-planning after a breakdown" in text
