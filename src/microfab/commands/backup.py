"""``microfab backup``, ``microfab restore`` and ``microfab retention apply``.

The work is in :mod:`microfab.store.backup` (a portable zip of JSON lines that restores on either
back end) and :mod:`microfab.store.retention` (raw telemetry → hourly aggregates).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from microfab.commands.common import DbOption, out
from microfab.store.url import mask_url, resolve_url

retention_app = typer.Typer(
    help="Keep raw telemetry for a while, hourly aggregates for good.", no_args_is_help=True
)


def backup(
    output: Annotated[
        Path,
        typer.Option("--output", "-o", help="Backup file to write (a .zip)", show_default=False),
    ],
    db: DbOption = None,
) -> None:
    """Back up every table to one file, from a consistent snapshot (SQLite or PostgreSQL)."""
    from microfab.store.backup import write_backup

    manifest = write_backup(db, output)
    out.print(
        f"backed up {mask_url(resolve_url(db))} (schema {manifest.schema_revision}): "
        f"{manifest.rows} rows in {len(manifest.tables)} tables → {output}",
        highlight=False,
    )
    for table in manifest.tables:
        out.print(f"  {table.name}: {table.rows}", highlight=False)


def restore(
    backup_file: Annotated[
        Path, typer.Argument(help="A file made by 'microfab backup'", metavar="FILE")
    ],
    db: DbOption = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="Replace everything in a database that is not empty"),
    ] = False,
) -> None:
    """Restore a backup into an empty database (SQLite or PostgreSQL, either way round)."""
    from microfab.store.backup import restore_backup

    manifest = restore_backup(backup_file, db, force=force)
    out.print(
        f"restored {manifest.rows} rows in {len(manifest.tables)} tables from {backup_file} "
        f"(taken {manifest.created_at} from {manifest.source}) into {mask_url(resolve_url(db))}",
        highlight=False,
    )


@retention_app.command("apply")
def retention_apply(
    telemetry_days: Annotated[
        int,
        typer.Option(
            "--telemetry-days",
            help="Keep raw telemetry events this many days; older ones become hourly aggregates",
            show_default=False,
        ),
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only count what would be deleted")
    ] = False,
    db: DbOption = None,
) -> None:
    """Delete telemetry events older than N days, keeping hourly aggregates of them."""
    from microfab.store import open_store
    from microfab.store.retention import apply_telemetry_retention

    with open_store(db) as store:
        result = apply_telemetry_retention(store, keep_days=telemetry_days, dry_run=dry_run)
    cutoff = result.cutoff.strftime("%Y-%m-%d %H:%M UTC")
    if result.dry_run:
        out.print(
            f"dry run: {result.events} telemetry events before {cutoff} would become "
            f"{result.hours} hourly aggregates",
            highlight=False,
        )
    else:
        out.print(
            f"deleted {result.events} telemetry events before {cutoff}; "
            f"{result.hours} hourly aggregates written",
            highlight=False,
        )
