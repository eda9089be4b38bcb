"""``microfab deadletters list|export``: messages that could not become events, with the reason."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from microfab.commands.common import DbOption
from microfab.console import out
from microfab.errors import InputError

deadletters_app = typer.Typer(
    help="Messages that could not become events, with the reason.", no_args_is_help=True
)


@deadletters_app.command("list")
def deadletters_list(
    limit: Annotated[int, typer.Option("-n", "--limit", help="Newest N dead letters")] = 20,
    db: DbOption = None,
) -> None:
    """Show the newest dead letters: when, topic, reason and the start of the payload."""
    from rich.table import Table

    from microfab.store import open_store

    with open_store(db) as store:
        letters = store.dead_letters(limit=limit, newest_first=True)
        total = store.dead_letter_count()
    table = Table(title=f"Dead letters: newest {len(letters)} of {total:,}", title_justify="left")
    for column in ("received (UTC)", "source", "topic", "reason", "payload"):
        table.add_column(column, overflow="fold")
    for letter in letters:
        table.add_row(
            letter.received_at.strftime("%Y-%m-%d %H:%M:%S"),
            letter.source,
            letter.topic,
            letter.reason,
            letter.payload[:80],
        )
    out.print(table)


@deadletters_app.command("export")
def deadletters_export(
    format: Annotated[str, typer.Option("--format", help="Output format (jsonl)")] = "jsonl",
    db: DbOption = None,
) -> None:
    """Write every dead letter as JSON lines: topic, payload, reason, received_at (oldest first)."""
    from microfab.model.events import format_ts
    from microfab.store import open_store

    if format != "jsonl":
        raise InputError(f"--format: '{format}' is not supported; use jsonl")
    with open_store(db) as store:
        for letter in store.dead_letters():
            record = {
                "topic": letter.topic,
                "payload": letter.payload,
                "reason": letter.reason,
                "received_at": format_ts(letter.received_at),
                "source": letter.source,
            }
            sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
