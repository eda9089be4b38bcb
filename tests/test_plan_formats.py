"""Instance files: the shipped benchmarks read as documented, and every fault located FILE:LINE."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import BENCHMARKS
from microfab.errors import InputError
from microfab.plan.formats import guess_format, parse_instance, read_instance
from microfab.plan.problem import Fixed, Job, Machine, Mode, Objective, Operation, Problem


def test_jssp_ft06_is_read_as_documented() -> None:
    problem = read_instance(BENCHMARKS / "jssp" / "ft06.txt")
    assert problem.name == "ft06"
    assert len(problem.jobs) == 6 and len(problem.machines) == 6
    # README: first job "2 1 0 3 1 6 3 7 5 3 4 6" = op1 on M2 for 1, op2 on M0 for 3, ...
    first = problem.jobs[0].operations
    assert [(op.modes[0].machine, op.modes[0].duration) for op in first] == [
        (2, 1),
        (0, 3),
        (1, 6),
        (3, 7),
        (5, 3),
        (4, 6),
    ]


def test_fjs_mk01_machines_are_renumbered_from_zero() -> None:
    problem = read_instance(BENCHMARKS / "fjsp" / "brandimarte" / "Mk01.fjs")
    assert len(problem.jobs) == 10 and len(problem.machines) == 6
    assert problem.operation_count == 55
    # Mk01 job 1, operation 1: "2 1 5 3 4" = machine 1 for 5 or machine 3 for 4 (1-based)
    assert problem.jobs[0].operations[0].modes == (Mode(0, 5), Mode(2, 4))
    assert all(0 <= m.machine < 6 for _, op in problem.operations() for m in op.modes)


def test_fjs_sdst_has_one_setup_class_per_operation() -> None:
    path = BENCHMARKS / "fjsp" / "fattahi_sdst" / "Fattahi_setup_01.fjs"
    problem = read_instance(path, "fjs-sdst")
    assert problem.operation_count == 4 and len(problem.setups) == 2
    assert [op.setup_class for _, op in problem.operations()] == [0, 1, 2, 3]
    # machine 1's matrix is the first 4 rows after the blank line: row 0 is "6 3 4 4"
    assert problem.setups[0] is not None and problem.setups[0][0] == (6, 3, 4, 4)
    assert problem.setup_time(1, 0, 1) == 3  # machine 2, row 1 "6 3 4 3"
    with pytest.raises(InputError, match=r"Fattahi_setup_01.fjs:5: expected the end of the file"):
        read_instance(path, "fjs")


@pytest.mark.parametrize(
    ("fmt", "text", "expected"),
    [
        ("jssp", "", r"x.txt:1: expected the number of jobs, found the end of the file"),
        ("jssp", "2 2\n0 3 1 2\n1 4 x 1\n", r"x.txt:3: expected job 2 operation 2: a machine "),
        (
            "jssp",
            "2 2\n0 3 1 2\n1 4 2 1\n",
            r"x.txt:3: .*machine number \(0 to 1\) between 0 and 1",
        ),
        ("jssp", "1 2\n0 3 1 -2\n", r"x.txt:2: expected job 1 operation 2: a processing time ≥ 0"),
        ("jssp", "1 2\n0 3\n", r"x.txt:2: expected job 1 operation 2: a machine number .* end of"),
        ("jssp", "1 1\n0 3\n0 3\n", r"x.txt:3: expected the end of the file after 1 jobs"),
        ("fjs", "2\n", r"x.txt:1: expected the number of machines, found the end of the file"),
        ("fjs", "1 2 1 9\n1 1 1 5\n", r"x.txt:1: expected 'jobs machines \[average"),
        ("fjs", "1 2 abc\n1 1 1 5\n", r"x.txt:1: expected the average number of machines"),
        (
            "fjs",
            "1 2\n1 1 3 5\n",
            r"x.txt:2: expected job 1 operation 1: a machine number \(1 to 2\)",
        ),
        ("fjs", "1 2\n1 2 1 5 1 6\n", r"x.txt:2: job 1 operation 1: machine 1 is listed twice"),
        ("fjs", "1 2\n1 3 1 5\n", r"x.txt:2: expected job 1 operation 1: the number of eligible"),
        ("fjs", "1 2\n0\n", r"x.txt:2: expected job 1: the number of operations ≥ 1, found 0"),
        ("fjs", "1 2\n2 1 1 5\n", r"x.txt:2: expected job 1 operation 2: the number of eligible"),
        (
            "fjs-sdst",
            "1 1\n1 1 1 5\n\n0 7\n",
            r"x.txt:4: expected the end of the file after 1 setup",
        ),
        ("fjs-sdst", "1 1\n2 1 1 5 1 1 2\n\n0 1\n", r"x.txt:4: expected machine 1 setup matrix"),
    ],
)
def test_faults_are_located(fmt: str, text: str, expected: str) -> None:
    with pytest.raises(InputError, match=expected):
        parse_instance(text, fmt, source="x.txt")


def test_comment_lines_are_skipped_in_jssp() -> None:
    problem = parse_instance("# from JSPLIB\n1 2\n# job 1\n0 3 1 4\n", "jssp")
    assert [op.modes for op in problem.jobs[0].operations] == [(Mode(0, 3),), (Mode(1, 4),)]


def test_an_operation_no_machine_can_run_is_read_and_reported_infeasible() -> None:
    problem = parse_instance("2 2 1\n1 0\n1 1 1 5\n", "fjs", source="x.fjs")
    assert problem.jobs[0].operations[0].modes == ()
    assert problem.infeasibility() == ["job 0 operation 0: no machine can run it"]


def test_formats_and_files() -> None:
    assert guess_format(Path("a.fjs")) == "fjs"
    assert guess_format(Path("a.txt")) == "jssp"
    with pytest.raises(InputError, match="give --format"):
        guess_format(Path("a.json"))
    with pytest.raises(InputError, match="unknown instance format 'xml'"):
        parse_instance("1 1\n0 1\n", "xml")
    with pytest.raises(InputError, match=r"nope\.txt: no such file"):
        read_instance(Path("nope.txt"))


def test_problem_data_is_validated() -> None:
    machine = (Machine(),)
    with pytest.raises(InputError, match="machine 3 does not exist"):
        Problem(machine, (Job((Operation((Mode(3, 1),)),)),))
    with pytest.raises(InputError, match="processing time on machine 0 must be between 0"):
        Problem(machine, (Job((Operation((Mode(0, -1),)),)),))
    with pytest.raises(InputError, match="has no operations"):
        Problem(machine, (Job(()),))
    with pytest.raises(InputError, match="setup class 2 is outside the 2×2 setup matrix"):
        Problem(
            machine,
            (Job((Operation((Mode(0, 1),), setup_class=2),)),),
            setups=(((0, 1), (1, 0)),),
        )
    with pytest.raises(InputError, match="not square"):
        Problem(machine, (Job((Operation((Mode(0, 1),)),)),), setups=(((0, 1),),))
    with pytest.raises(InputError, match=r"unavailable window \[5, 5\) is empty"):
        Problem((Machine(unavailable=((5, 5),)),), (Job((Operation((Mode(0, 1),)),)),))
    with pytest.raises(InputError, match="fixed end 1 is before its start"):
        Problem(machine, (Job((Operation((Mode(0, 1),), fixed=Fixed(0, 3, 1)),)),))


def test_unschedulable_problems_name_their_reasons() -> None:
    blocked = Machine(unavailable=((0, 10), (12, 20), (20, 2**40)))
    problem = Problem(
        (Machine(), blocked),
        (
            Job((Operation((Mode(1, 5),), name="mould"),), name="WO-1"),
            Job((Operation((Mode(0, 1),)),), release=10, due=5),
            Job((Operation((Mode(0, 4),), fixed=Fixed(0, 0, 4)),)),
            Job((Operation((Mode(0, 4),), fixed=Fixed(0, 2, 6)),)),
        ),
    )
    assert problem.infeasibility() == [
        "job 0 (WO-1) operation 0 (mould): longer than every working window of its machines "
        "(machine 1)",
        "job 1: due date 5 is before its release 10",
        "fixed (started) operations job 2 op 0 and job 3 op 0 overlap on machine 0",
    ]


def test_objectives_parse() -> None:
    assert Objective.parse("makespan") == Objective()
    lexi = Objective.parse("weighted_tardiness,makespan")
    assert lexi.lexicographic and lexi.describe() == "weighted_tardiness then makespan"
    weighted = Objective.parse("10*weighted_tardiness + setup_time")
    assert not weighted.lexicographic
    assert weighted.describe() == "10×weighted_tardiness + setup_time"
    with pytest.raises(InputError, match="objective 'speed'"):
        Objective.parse("speed")
