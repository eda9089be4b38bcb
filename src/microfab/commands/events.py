"""``microfab events …``: read, follow, export and import stored events; the event schema."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from microfab.commands.common import DbOption, stored_factory
from microfab.console import err, out
from microfab.errors import InputError, MicrofabError
from microfab.model.events import events_json_schema

events_app = typer.Typer(
    help="Read, follow, export and import stored events.", no_args_is_help=True
)


@events_app.command("export")
def events_export(
    format: Annotated[str, typer.Option("--format", help="Output format (jsonl)")] = "jsonl",
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="File to write \\[default: stdout]", show_default=False
        ),
    ] = None,
    with_ingest_time: Annotated[
        bool, typer.Option("--with-ingest-time", help="Add ingest_ts to each line")
    ] = False,
    db: DbOption = None,
) -> None:
    """Write every stored event, one JSON object per line, ordered by (ts, id)."""
    from microfab.store import open_store
    from microfab.store.jsonl import export_jsonl

    if format != "jsonl":
        raise InputError(f"--format: '{format}' is not supported; use jsonl")
    with open_store(db) as store:
        if output is None:
            export_jsonl(store, sys.stdout, with_ingest_time=with_ingest_time)
            sys.stdout.flush()
        else:
            try:
                handle = output.open("w", encoding="utf-8")
            except OSError as exc:
                raise InputError(f"{output}: cannot write ({exc.strerror})") from None
            with handle:
                n = export_jsonl(store, handle, with_ingest_time=with_ingest_time)
            err.print(f"wrote {n:,} events to {output}")


@events_app.command("import")
def events_import(
    file: Annotated[Path, typer.Argument(help="JSONL file of events (the export format)")],
    db: DbOption = None,
) -> None:
    """Load events from a JSONL file; already-stored events are skipped, conflicts reported."""
    from microfab.store import open_store
    from microfab.store.jsonl import import_jsonl

    with open_store(db) as store:
        report = import_jsonl(store, file)
    r = report.result
    out.print(
        f"{file}: {report.lines:,} lines; stored {r.inserted:,} new events, "
        f"skipped {r.duplicates:,} already stored, rejected {len(r.conflicts):,} id conflicts",
        highlight=False,
    )
    for line, conflict in report.conflict_lines[:20]:
        err.print(
            f"{file}:{line}: id_conflict: event '{conflict.id}' is stored with different content; "
            "not imported",
            highlight=False,
        )
    if r.conflicts:
        raise MicrofabError(
            f"{len(r.conflicts)} events were rejected as id conflicts (listed above)"
        )


@events_app.command("import-counts")
def events_import_counts(
    file: Annotated[Path, typer.Argument(help="CSV file: ts,machine,good[,scrap,order,operation]")],
    db: DbOption = None,
) -> None:
    """Load part counts from a CSV file (machines with no connection); re-imports store nothing new."""
    from microfab.connect.csv_counts import import_counts_csv
    from microfab.store import open_store
    from microfab.store.sink import StoreSink

    with open_store(db) as store:
        factory = stored_factory(store)
        sink = StoreSink(store)
        report = import_counts_csv(file, factory, sink)
    r = sink.totals
    out.print(
        f"{file}: {report.rows:,} rows from {report.machines:,} "
        f"machine{'' if report.machines == 1 else 's'}; "
        f"stored {r.inserted:,} new count events, skipped {r.duplicates:,} already stored",
        highlight=False,
    )


@events_app.command("tail")
def events_tail(
    lines: Annotated[
        int, typer.Option("-n", "--lines", help="How many recent events to show first")
    ] = 10,
    follow: Annotated[
        bool, typer.Option("-f", "--follow", help="Keep printing new events as they arrive")
    ] = False,
    machine: Annotated[
        str | None, typer.Option(help="Only events whose machine path starts with this")
    ] = None,
    stream: Annotated[str | None, typer.Option(help="Only this stream (state, count, …)")] = None,
    db: DbOption = None,
) -> None:
    """Print the most recently stored events as JSON lines; with -f, follow new ones."""
    from microfab.model.events import event_to_dict
    from microfab.store import open_store
    from microfab.store.event_store import StoredEvent

    def show(stored: StoredEvent) -> None:
        print(
            json.dumps(event_to_dict(stored.event), ensure_ascii=False, separators=(",", ":")),
            flush=True,
        )

    with open_store(db) as store:
        last = store.last_seq()
        if lines > 0:
            recent = store.events(
                by="seq", limit=lines, machine_prefix=machine, stream=stream, newest_first=True
            )
            for stored in reversed(list(recent)):
                show(stored)
        if not follow:
            return
        try:
            while True:
                for stored in store.events(
                    by="seq", after_seq=last, machine_prefix=machine, stream=stream
                ):
                    show(stored)
                    last = stored.seq
                time.sleep(0.5)
        except KeyboardInterrupt:
            return


@events_app.command("schema")
def events_schema() -> None:
    """Print the JSON Schema of one event."""
    print(json.dumps(events_json_schema(), indent=2, ensure_ascii=False))
