"""Benchmark instance files → :class:`~microfab.plan.problem.Problem`; faults located as FILE:LINE.

Three text formats (described in ``shared/benchmarks/README.md``), read as whitespace-separated
integer tokens:

- ``jssp``: the OR-Library job-shop pair format. ``n m``, then per job ``m`` pairs
  ``machine time`` (machines numbered from 0). Lines starting with ``#`` are comments.
- ``fjs``: the Brandimarte/Hurink flexible job-shop format. ``n m [average]``, then per job
  ``n_ops`` and per operation ``k`` followed by ``k`` pairs ``machine time`` (machines numbered
  from **1**; we number them from 0).
- ``fjs-sdst``: ``fjs`` followed by one ``N×N`` setup matrix per machine, ``N`` = operations of
  all jobs numbered job by job from 0; entry ``(i, j)`` is the setup on that machine when ``j``
  runs right after ``i``. Each operation is its own setup class.

Every fault raises :class:`~microfab.errors.InputError` as ``FILE:LINE: what was expected``.
An operation with no eligible machine (``k = 0``) is not a file fault: the problem is read and
reported infeasible.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from microfab.errors import InputError
from microfab.model.located_yaml import read_file
from microfab.plan.problem import Job, Machine, Mode, Operation, Problem

FORMATS = ("jssp", "fjs", "fjs-sdst")


@dataclass(frozen=True, slots=True)
class _Token:
    text: str
    line: int


class _Reader:
    """Integer tokens of a text, each with its line number, read one at a time."""

    def __init__(self, text: str, source: str, *, comments: bool) -> None:
        self.source = source
        self.tokens: list[_Token] = []
        self.lines = 0
        for number, line in enumerate(text.splitlines(), start=1):
            self.lines = number
            if comments and line.lstrip().startswith("#"):
                continue
            self.tokens.extend(_Token(part, number) for part in line.split())
        self.position = 0

    def error(self, line: int, message: str) -> InputError:
        return InputError(f"{self.source}:{line}: {message}")

    @property
    def done(self) -> bool:
        return self.position >= len(self.tokens)

    @property
    def line(self) -> int:
        """Line of the next token (or the last line, at the end)."""
        if self.done:
            return max(self.lines, 1)
        return self.tokens[self.position].line

    def peek_line(self) -> int:
        return self.line

    def integer(self, what: str, *, low: int = 0, high: int | None = None) -> int:
        if self.done:
            raise self.error(self.line, f"expected {what}, found the end of the file")
        token = self.tokens[self.position]
        try:
            value = int(token.text)
        except ValueError:
            raise self.error(
                token.line, f"expected {what} (an integer), found '{token.text}'"
            ) from None
        if value < low or (high is not None and value > high):
            bounds = f"between {low} and {high}" if high is not None else f"≥ {low}"
            raise self.error(token.line, f"expected {what} {bounds}, found {value}")
        self.position += 1
        return value

    def number(self, what: str) -> None:
        """Skip one decimal number (the informative average of the fjs header)."""
        if self.done:
            raise self.error(self.line, f"expected {what}, found the end of the file")
        token = self.tokens[self.position]
        try:
            float(token.text)
        except ValueError:
            raise self.error(
                token.line, f"expected {what} (a number), found '{token.text}'"
            ) from None
        self.position += 1

    def rest_on_line(self, line: int) -> Iterator[_Token]:
        while not self.done and self.tokens[self.position].line == line:
            yield self.tokens[self.position]
            self.position += 1

    def expect_end(self, after: str, hint: str = "") -> None:
        if not self.done:
            token = self.tokens[self.position]
            raise self.error(
                token.line,
                f"expected the end of the file after {after}, found '{token.text}'{hint}",
            )


def parse_instance(text: str, fmt: str, *, source: str = "<text>", name: str = "") -> Problem:
    """Read an instance in format ``jssp``, ``fjs`` or ``fjs-sdst``."""
    if fmt == "jssp":
        return _parse_jssp(text, source, name)
    if fmt in ("fjs", "fjs-sdst"):
        return _parse_fjs(text, source, name, setups=fmt == "fjs-sdst")
    raise InputError(f"unknown instance format '{fmt}'; choose one of: {', '.join(FORMATS)}")


def guess_format(path: Path) -> str:
    """``jssp`` for ``.txt``, ``fjs`` for ``.fjs`` (``fjs-sdst`` must be asked for)."""
    if path.suffix == ".fjs":
        return "fjs"
    if path.suffix == ".txt":
        return "jssp"
    raise InputError(
        f"{path}: cannot tell the format from the file name; give --format ({', '.join(FORMATS)})"
    )


def read_instance(path: Path, fmt: str | None = None) -> Problem:
    """Read an instance file; ``fmt`` None: guessed from the suffix."""
    chosen = fmt or guess_format(path)
    text = read_file(path, "instance file")
    return parse_instance(text, chosen, source=str(path), name=path.stem)


def _parse_jssp(text: str, source: str, name: str) -> Problem:
    reader = _Reader(text, source, comments=True)
    n_jobs = reader.integer("the number of jobs", low=1)
    n_machines = reader.integer("the number of machines", low=1)
    jobs = []
    for j in range(n_jobs):
        operations = []
        for k in range(n_machines):
            machine = reader.integer(
                f"job {j + 1} operation {k + 1}: a machine number (0 to {n_machines - 1})",
                high=n_machines - 1,
            )
            duration = reader.integer(f"job {j + 1} operation {k + 1}: a processing time")
            operations.append(Operation(modes=(Mode(machine, duration),)))
        jobs.append(Job(operations=tuple(operations)))
    reader.expect_end(f"{n_jobs} jobs of {n_machines} operations")
    return Problem(
        machines=tuple(Machine() for _ in range(n_machines)), jobs=tuple(jobs), name=name
    )


def _parse_fjs(text: str, source: str, name: str, *, setups: bool) -> Problem:
    reader = _Reader(text, source, comments=False)
    header = reader.line
    n_jobs = reader.integer("the number of jobs", low=1)
    n_machines = reader.integer("the number of machines", low=1)
    extra = list(reader.rest_on_line(header))
    if len(extra) > 1:
        raise reader.error(
            header,
            f"expected 'jobs machines [average machines per operation]', found "
            f"{len(extra) + 2} fields",
        )
    if extra:
        try:
            float(extra[0].text)
        except ValueError:
            raise reader.error(
                header,
                f"expected the average number of machines per operation (a number), "
                f"found '{extra[0].text}'",
            ) from None
    jobs = []
    total_ops = 0
    for j in range(n_jobs):
        what = f"job {j + 1}"
        n_ops = reader.integer(f"{what}: the number of operations", low=1)
        operations = []
        for k in range(n_ops):
            where = f"{what} operation {k + 1}"
            count = reader.integer(
                f"{where}: the number of eligible machines (0 to {n_machines})", high=n_machines
            )
            modes = []
            seen: set[int] = set()
            for _ in range(count):
                line = reader.peek_line()
                machine = reader.integer(
                    f"{where}: a machine number (1 to {n_machines})", low=1, high=n_machines
                )
                if machine in seen:
                    raise reader.error(line, f"{where}: machine {machine} is listed twice")
                seen.add(machine)
                duration = reader.integer(f"{where}: a processing time on machine {machine}")
                modes.append(Mode(machine - 1, duration))
            operations.append(
                Operation(modes=tuple(modes), setup_class=total_ops if setups else None)
            )
            total_ops += 1
        jobs.append(Job(operations=tuple(operations)))
    matrices: list[tuple[tuple[int, ...], ...]] = []
    if setups:
        for m in range(n_machines):
            rows = []
            for i in range(total_ops):
                rows.append(
                    tuple(
                        reader.integer(
                            f"machine {m + 1} setup matrix ({total_ops}×{total_ops}) row {i + 1} "
                            f"column {c + 1}: a setup time"
                        )
                        for c in range(total_ops)
                    )
                )
            matrices.append(tuple(rows))
        reader.expect_end(f"{n_machines} setup matrices of {total_ops}×{total_ops}")
    else:
        reader.expect_end(
            f"{n_jobs} jobs",
            " (if the file has setup matrices, read it with --format fjs-sdst)",
        )
    return Problem(
        machines=tuple(Machine() for _ in range(n_machines)),
        jobs=tuple(jobs),
        setups=tuple(matrices),
        name=name,
    )
