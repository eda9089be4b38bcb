"""``microfab bench NAME``: run a benchmark from bench/ and record its figures."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from microfab.console import err
from microfab.errors import InputError


def bench(
    name: Annotated[
        str, typer.Argument(help="Benchmark to run: a file bench/NAME.py of the source tree")
    ],
    repeat: Annotated[int, typer.Option(help="Runs per configuration (medians are reported)")] = 3,
    write: Annotated[
        bool, typer.Option("--write/--no-write", help="Record the result in docs/benchmarks.md")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON")] = False,
    events: Annotated[
        int | None,
        typer.Option(help="Events per run (benchmarks that take it)", show_default=False),
    ] = None,
    broker: Annotated[
        str | None,
        typer.Option(
            help="MQTT broker URL (ingest) \\[default: a private Mosquitto]", show_default=False
        ),
    ] = None,
    db: Annotated[
        str | None,
        typer.Option(
            "--db", help="Database URL \\[default: a temporary SQLite file]", show_default=False
        ),
    ] = None,
    sites: Annotated[
        int | None,
        typer.Option(min=1, help="Sites (benchmarks that take it: hq)", show_default=False),
    ] = None,
    machines: Annotated[
        int | None,
        typer.Option(min=1, help="Machines per site (hq)", show_default=False),
    ] = None,
) -> None:
    """Run a benchmark from bench/, print its figures and record them in docs/benchmarks.md."""
    import inspect

    from microfab.benchmarks import find_benchmark, machine_note, record

    module, root = find_benchmark(name)
    accepted = inspect.signature(module.run).parameters
    given = {"events": events, "broker": broker, "db": db, "sites": sites, "machines": machines}
    for option, value in given.items():
        if value is not None and option not in accepted:
            raise InputError(f"benchmark '{name}' does not take --{option}")
    result = module.run(repeat=repeat, **{k: v for k, v in given.items() if v is not None})
    text = module.markdown(result)
    if as_json:
        print(json.dumps({**result, "machine": machine_note()}, indent=2))
    else:
        print(text)
    if write:
        # a benchmark may record each configuration in its own section (ingest: per back end),
        # or several sections (plan: the solvers, and re-planning when it ran)
        if hasattr(module, "sections"):
            parts = module.sections(result)
        elif hasattr(module, "section"):
            parts = [(*module.section(result), text)]
        else:
            parts = [(name, module.TITLE, text)]
        for section, title, body in parts:
            target = record(root / "docs" / "benchmarks.md", section, title, body)
            err.print(f"recorded in {target} ({section})")
