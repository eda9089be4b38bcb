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
    assert "Re-planning after a breakdown" in module.replan_markdown(result)
    assert [name for name, _, _ in module.sections(result)] == ["plan", "plan_replan"]


def test_the_ablation_reports_the_median_and_the_spread_of_its_seeds() -> None:
    module, _ = find_benchmark("plan")
    bounds = {"Mk02": (24, 26, ""), "Mk06": (33, 57, ""), "Mk07": (139, 139, "")}
    bounds |= {"Mk10": (165, 189, ""), "ft10": (930, 930, "")}
    runs = {"Mk02": [26, 27, 26], "Mk06": [59, 59, 60], "Mk07": [141, 140, 142]}
    runs |= {"Mk10": [204, 212, 208], "ft10": [930, 930, 930]}

    row = module._ablation_row("ours", runs, bounds)
    text = module.ablation_markdown({"time_limit_s": 30.0, "workers": 2, "seeds": 3, "rows": [row]})

    assert row["median"] == {"Mk02": 26, "Mk06": 59, "Mk07": 141, "Mk10": 208, "ft10": 930}
    gaps = [0.0, 100 * 2 / 57, 100 * 2 / 139, 100 * 19 / 189, 0.0]
    assert row["mean_gap"] == round(sum(gaps) / 5, 2)
    worst = [100 / 26, 100 * 3 / 57, 100 * 3 / 139, 100 * 23 / 189, 0.0]
    assert row["worst_gap"] == round(sum(worst) / 5, 2)
    assert "| ours | 26 (26–27) | 59 (59–60) | 141 (140–142) | 208 (204–212) | 930 |" in text
    assert "3 runs per cell (seeds 0–2)" in text


def test_the_hurink_section_reports_each_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MICROFAB_BENCHMARKS", str(BENCHMARKS))  # ships rdata/mt06 alone
    module, _ = find_benchmark("plan")

    result = module.hurink(time_limit=3.0, workers=1)
    text = module.hurink_markdown(result)

    (row,) = result["rows"]
    assert row["instance"] == "rdata/mt06" and row["ours"] == 47 and row["status"] == "optimal"
    assert result["violations"] == 0 and list(result["families"]) == ["hurink_rdata"]
    assert "| rdata | 1 | **0.0** | 1 | 1 | rdata/mt06 (0.0) |" in text
