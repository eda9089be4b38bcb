"""Events as JSON Lines: export every stored event in (ts, id) order, import a file idempotently."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from microfab.errors import ImportFileError
from microfab.model.events import Event, event_from_dict, event_to_dict, format_ts
from microfab.store.event_store import AppendResult, EventStore, IdConflict

IMPORT_BATCH = 1000


def export_jsonl(store: EventStore, out: IO[str], *, with_ingest_time: bool = False) -> int:
    """Write every stored event as one JSON object per line, ordered by (ts, id)."""
    written = 0
    for stored in store.events(by="ts"):
        data = event_to_dict(stored.event)
        if with_ingest_time:
            data["ingest_ts"] = format_ts(stored.ingest_ts)
        out.write(json.dumps(data, ensure_ascii=False, separators=(",", ":")))
        out.write("\n")
        written += 1
    return written


@dataclass
class ImportReport:
    lines: int = 0
    result: AppendResult = field(default_factory=AppendResult)
    conflict_lines: list[tuple[int, IdConflict]] = field(default_factory=list)


def import_jsonl(
    store: EventStore,
    path: Path,
    *,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Append the events of a JSONL file in batches. A corrupt line stops the import with a
    located :class:`ImportFileError`; every valid line before it is stored."""
    report = ImportReport()
    batch: list[tuple[int, Event]] = []

    def flush() -> None:
        if not batch:
            return
        result = store.append(ev for _, ev in batch)
        line_of = {ev.id: n for n, ev in reversed(batch)}
        report.conflict_lines += [(line_of.get(c.id, 0), c) for c in result.conflicts]
        result.inserted_ids = []
        report.result.merge(result)
        if progress is not None:
            progress(len(batch))
        batch.clear()

    try:
        handle = path.open(encoding="utf-8")
    except OSError as exc:
        raise ImportFileError(f"{path}: cannot read ({exc.strerror})") from None
    with handle:
        for number, line in enumerate(_lines(handle, path), start=1):
            report.lines = number
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                flush()
                raise _corrupt(
                    path, number, f"not JSON ({exc.msg} at column {exc.colno})", report
                ) from None
            if not isinstance(data, dict):
                flush()
                raise _corrupt(path, number, "expected a JSON object", report)
            data.pop("ingest_ts", None)
            try:
                event = event_from_dict(data)
            except ValueError as exc:
                flush()
                raise _corrupt(path, number, str(exc), report) from None
            batch.append((number, event))
            if len(batch) >= IMPORT_BATCH:
                flush()
        flush()
    return report


def _lines(handle: IO[str], path: Path) -> Iterable[str]:
    try:
        yield from handle
    except UnicodeDecodeError:
        raise ImportFileError(f"{path}: not UTF-8 text") from None


def _corrupt(path: Path, number: int, message: str, report: ImportReport) -> ImportFileError:
    kept = report.result.inserted
    return ImportFileError(
        f"{path}:{number}: {message}. Import stopped there; {kept} new events from the lines "
        f"before it are stored ({report.result.duplicates} were already stored). Fix the line and "
        "import the file again: stored events are skipped."
    )
