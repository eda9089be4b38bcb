"""``microfab plan solve``: one JSON object, and every schedule it prints passes ``plan check``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from conftest import BENCHMARKS
from microfab.commands.plan import plan_app
from microfab.errors import MicrofabError

app = typer.Typer()
app.add_typer(plan_app, name="plan")
runner = CliRunner()


def invoke(*args: str) -> tuple[int, str]:
    """Run ``microfab plan …`` in-process; microfab errors become their exit code and message."""
    result = runner.invoke(app, ["plan", *args])
    if isinstance(result.exception, MicrofabError):
        return result.exception.exit_code, str(result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout


# (file, format, optimum): small shipped instances of each format, solved at short limits
SAMPLE = [
    ("jssp/ft06.txt", "jssp", 55),
    ("jssp/la01.txt", "jssp", 666),
    ("fjsp/brandimarte/Mk01.fjs", "fjs", 40),
    ("fjsp/kacem/Kacem1.fjs", "fjs", 11),
    ("fjsp/hurink/rdata/mt06.fjs", "fjs", 47),
    ("fjsp/fattahi_sdst/Fattahi_setup_01.fjs", "fjs-sdst", None),
    ("fjsp/fattahi_sdst/Fattahi_setup_07.fjs", "fjs-sdst", None),
]


@pytest.mark.parametrize(("name", "fmt", "optimum"), SAMPLE, ids=[s[0] for s in SAMPLE])
def test_every_printed_schedule_passes_plan_check(
    tmp_path: Path, name: str, fmt: str, optimum: int | None
) -> None:
    instance = BENCHMARKS / name
    code, text = invoke(
        "solve", str(instance), "--format", fmt, "--time-limit", "2", "--workers", "2", "--json"
    )
    assert code == 0, text
    assert text.count("\n") == 1  # one JSON object on one line
    document = json.loads(text)
    assert {"makespan", "status", "lower_bound", "runtime_s", "assignments"} <= set(document)
    assert document["status"] in ("optimal", "feasible")
    assert document["makespan"] == max(a["end"] for a in document["assignments"])
    assert document["lower_bound"] is None or document["lower_bound"] <= document["makespan"]
    if optimum is not None:
        assert document["makespan"] >= optimum
        if document["status"] == "optimal":
            assert document["makespan"] == optimum
    machines = {a["machine"] for a in document["assignments"]}
    assert min(machines) >= 0  # 0-based even for .fjs files, which number machines from 1
    schedule = tmp_path / "schedule.json"
    schedule.write_text(text)
    assert invoke("check", str(instance), str(schedule), "--format", fmt)[0] == 0


def test_small_instances_are_solved_to_optimality() -> None:
    code, text = invoke("solve", str(BENCHMARKS / "jssp" / "ft06.txt"), "--time-limit", "10")
    assert code == 0
    assert text.startswith("ft06: makespan 55 (optimal, lower bound 55); 36 operations on 6")


def test_the_dispatching_heuristic_alone(tmp_path: Path) -> None:
    instance = BENCHMARKS / "fjsp" / "brandimarte" / "Mk02.fjs"
    out = tmp_path / "mk02.json"
    code, text = invoke(
        "solve", str(instance), "--solver", "dispatch", "--time-limit", "0.2", "--out", str(out)
    )
    assert code == 0 and "Mk02: makespan" in text and "(feasible)" in text
    assert invoke("check", str(instance), str(out))[0] == 0


def test_an_unschedulable_instance_is_a_status_with_reasons(tmp_path: Path) -> None:
    instance = tmp_path / "none.fjs"
    instance.write_text("2 2 1\n1 0\n1 1 2 5\n")  # job 1's only operation: no machine
    code, text = invoke("solve", str(instance), "--json")
    assert code == 0
    document = json.loads(text)
    assert document["status"] == "infeasible"
    assert document["makespan"] is None and document["assignments"] == []
    assert document["reasons"] == ["job 0 operation 0: no machine can run it"]
    code, text = invoke("solve", str(instance))
    assert (code, text) == (0, "none: infeasible\n  job 0 operation 0: no machine can run it\n")


def test_a_malformed_instance_is_a_located_input_error(tmp_path: Path) -> None:
    instance = tmp_path / "bad.fjs"
    instance.write_text("2 2 1\n1 1 1 5\n1 1 3 5\n")
    assert invoke("solve", str(instance), "--json") == (
        2,
        f"{instance}:3: expected job 2 operation 1: a machine number (1 to 2) between 1 and 2, "
        "found 3",
    )
    assert invoke("solve", str(tmp_path / "missing.txt"))[0] == 2
    assert invoke("solve", str(instance), "--solver", "magic")[0] == 2


def test_other_objectives(tmp_path: Path) -> None:
    instance = tmp_path / "two.fjs"
    instance.write_text("2 2\n2 2 1 3 2 4 1 2 2\n1 1 1 5\n")
    code, text = invoke("solve", str(instance), "--objective", "makespan,setup_time", "--json")
    assert code == 0
    document = json.loads(text)
    assert document["status"] == "optimal" and document["makespan"] == 6
    assert document["objective_criteria"] == "makespan then setup_time"


def test_the_neighbourhood_chooser_follows_success_and_never_drops_a_kind() -> None:
    import random
    from collections import Counter

    from microfab.plan.solvers.cpsat.neighbourhoods import KINDS, Chooser

    chooser = Chooser(random.Random(7))
    for _ in range(100):  # "critical" improves every time it is tried, the others never
        kind = chooser.pick()
        chooser.reward(kind, kind == "critical")
    for kind in KINDS:
        chooser.reward(kind, kind == "critical")
    picks = Counter(chooser.pick() for _ in range(2000))

    assert picks.most_common(1)[0][0] == "critical"
    assert picks["critical"] > 0.5 * 2000  # against 0.2 each when chosen in turn
    assert set(picks) == set(KINDS)  # every kind keeps its floor share
    assert min(picks.values()) > 0.5 * Chooser.FLOOR * 2000
