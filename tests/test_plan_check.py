"""The independent feasibility check catches every kind of violation, and nothing else."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from microfab.commands.plan import plan_app
from microfab.errors import InputError, MicrofabError
from microfab.plan.check import KINDS, check_schedule, read_schedule
from microfab.plan.problem import Fixed, Job, Machine, Mode, Operation, Problem
from microfab.plan.result import Assignment

# Machine 0 is unavailable 20–25; machine 1 has setups between classes 0 and 1 (3 each way)
# and starts set up for class 0. Job 2's only operation has started on machine 1 (fixed).
PROBLEM = Problem(
    machines=(Machine(unavailable=((20, 25),)), Machine(initial_setup_class=1)),
    jobs=(
        Job(
            (
                Operation((Mode(0, 4), Mode(1, 5)), setup_class=0),
                Operation((Mode(1, 3),), setup_class=1),
            )
        ),
        Job(
            (Operation((Mode(0, 6),)), Operation((Mode(0, 2), Mode(1, 2)), setup_class=0)),
            release=2,
        ),
        Job((Operation((Mode(1, 2),), setup_class=0, fixed=Fixed(1, 0, 2)),)),
    ),
    setups=(None, ((0, 3), (3, 0))),
)

FEASIBLE = [
    Assignment(2, 0, 1, 0, 2),  # fixed
    Assignment(0, 0, 0, 0, 4),
    Assignment(1, 0, 0, 4, 10),
    Assignment(0, 1, 1, 5, 8),  # class 0 → 1 on machine 1: 3 after job 2 ends at 2
    Assignment(1, 1, 1, 11, 13),  # class 1 → 0: 3 after job 0 op 1 ends at 8
]


def _with(*changes: Assignment, drop: tuple[int, int] | None = None) -> list[Assignment]:
    replaced = {(a.job, a.op): a for a in changes}
    kept = [replaced.pop((a.job, a.op), a) for a in FEASIBLE if (a.job, a.op) != drop]
    return kept + list(replaced.values())


def _kinds(assignments: list[Assignment], **kwargs: int) -> set[str]:
    return {v.kind for v in check_schedule(PROBLEM, assignments, **kwargs)}


def test_the_feasible_schedule_passes() -> None:
    assert check_schedule(PROBLEM, FEASIBLE) == []
    assert check_schedule(PROBLEM, FEASIBLE, stated_makespan=13) == []


@pytest.mark.parametrize(
    ("kind", "assignments"),
    [
        ("missing", _with(drop=(1, 1))),
        ("unknown", [*FEASIBLE, Assignment(5, 0, 0, 30, 31)]),
        ("duplicate", [*FEASIBLE, Assignment(1, 1, 0, 30, 32)]),
        ("machine", _with(Assignment(1, 0, 1, 14, 20))),
        ("duration", _with(Assignment(0, 0, 0, 0, 5))),
        ("precedence", _with(Assignment(1, 1, 0, 9, 11))),
        ("release", _with(Assignment(1, 0, 0, 1, 7), Assignment(0, 0, 1, 2, 7))),
        ("overlap", _with(Assignment(1, 0, 0, 3, 9))),
        ("setup", _with(Assignment(0, 1, 1, 4, 7))),
        ("setup", _with(Assignment(0, 0, 1, 0, 5), Assignment(2, 0, 1, 0, 2))),
        ("calendar", _with(Assignment(1, 0, 0, 18, 24), Assignment(1, 1, 1, 25, 27))),
        ("fixed", _with(Assignment(2, 0, 1, 1, 3))),
    ],
)
def test_each_kind_of_violation_is_caught(kind: str, assignments: list[Assignment]) -> None:
    assert kind in _kinds(assignments)


def test_overlap_counts_setup_and_fixed_operations() -> None:
    # job 0 op 0 on machine 1 from 1: overlaps the started job 2 (0–2)
    found = check_schedule(PROBLEM, _with(Assignment(0, 0, 1, 1, 6), Assignment(0, 1, 1, 6, 9)))
    # … and job 0's two operations follow each other with no time for the change-over
    assert [v.kind for v in found] == ["overlap", "setup", "setup"]
    assert found[0].message == ("machine 1: job 2 op 0 (0–2) overlaps job 0 op 0 (1–6)")
    # machine 1 starts in class 1: job 2's class-0 start would need 3, but it is a started fact
    assert check_schedule(PROBLEM, FEASIBLE) == []


def test_the_initial_setup_counts() -> None:
    moved = dataclasses.replace(
        PROBLEM,
        jobs=(*PROBLEM.jobs[:2], Job((Operation((Mode(1, 2),), setup_class=0),))),
    )
    assert {v.kind for v in check_schedule(moved, FEASIBLE)} == {"setup"}
    shifted = [a if a.job != 2 else Assignment(2, 0, 1, 0, 2) for a in FEASIBLE]
    message = check_schedule(moved, shifted)[0].message
    assert "change-over from the machine's initial setup takes 3" in message


def test_a_stated_makespan_must_be_the_latest_end() -> None:
    assert _kinds(FEASIBLE, stated_makespan=12) == {"makespan"}


def test_every_kind_is_documented_in_the_module() -> None:
    import microfab.plan.check as module

    assert module.__doc__ is not None
    for kind in KINDS:
        assert f"\n{kind} " in module.__doc__


def test_the_check_reuses_no_solver_code() -> None:
    import ast

    source = Path(__file__).resolve().parents[1] / "src" / "microfab" / "plan" / "check.py"
    imported = set()
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
    assert not {m for m in imported if "solvers" in m or "ortools" in m or "dispatch" in m}
    assert imported & {"microfab.plan.problem", "microfab.plan.result"}


# ---------------------------------------------------------------------------- reading and CLI

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


def test_plan_check_command(tmp_path: Path) -> None:
    instance = tmp_path / "two.fjs"
    instance.write_text("2 2 1.5\n2 2 1 3 2 4 1 2 2\n1 1 1 5\n", encoding="utf-8")
    good = tmp_path / "good.json"
    good.write_text(
        json.dumps(
            {
                "makespan": 8,
                "assignments": [
                    {"job": 0, "op": 0, "machine": 1, "start": 0, "end": 4},
                    {"job": 0, "op": 1, "machine": 1, "start": 4, "end": 6},
                    {"job": 1, "op": 0, "machine": 0, "start": 0, "end": 5},
                ],
            }
        )
    )
    code, text = invoke("check", str(instance), str(good))
    assert (code, text) == (1, text)  # stated makespan 8, latest end 6
    assert "makespan: the schedule states makespan 8, its latest end is 6" in text
    document = json.loads(good.read_text())
    document["makespan"] = 6
    good.write_text(json.dumps(document))
    assert invoke("check", str(instance), str(good)) == (
        0,
        "feasible: 3 operations on 2 machines, makespan 6\n",
    )
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            [
                {"job": 0, "op": 0, "machine": 0, "start": 0, "end": 3},
                {"job": 0, "op": 1, "machine": 1, "start": 2, "end": 4},
            ]
        )
    )
    code, text = invoke("check", str(instance), str(bad), "--json")
    assert code == 1
    report = json.loads(text)
    assert report["feasible"] is False
    assert [v["kind"] for v in report["violations"]] == ["missing", "precedence"]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"assignments": [\n  {"job": 0,}\n]}', r"s.json:2: not JSON"),
        ('{"schedule": []}', r"s.json: expected an object with 'assignments'"),
        ('[{"job": 0, "op": 0, "machine": 0, "start": "0", "end": 3}]', r"assignments\[0\].start"),
        ("[1]", r"s.json: assignments\[0\]: expected an object"),
        ('{"assignments": [], "makespan": "3"}', r"'makespan' must be an integer"),
    ],
)
def test_schedule_files_faults_are_located(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "s.json"
    path.write_text(content)
    with pytest.raises(InputError, match=expected):
        read_schedule(path)


def test_the_planner_is_a_library() -> None:
    """plan/ does no I/O and shows no UI; OR-Tools stays inside the solver adapter (and the
    re-planning that drives it); the check imports no solver."""
    import ast

    root = Path(__file__).resolve().parents[1] / "src" / "microfab" / "plan"
    forbidden = (
        "microfab.store",
        "microfab.connect",
        "microfab.sim",
        "microfab.cli",
        "microfab.commands",
        "microfab.api",
        "typer",
        "rich",
        "sqlalchemy",
    )
    for path in sorted(root.rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
        where = path.relative_to(root).as_posix()
        assert not [n for n in names if n.startswith(forbidden)], where
        if any(n.startswith("ortools") for n in names):
            assert where.startswith("solvers/cpsat/"), where
