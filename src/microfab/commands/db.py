"""``microfab db upgrade``: create or migrate the database schema."""

from __future__ import annotations

import typer

from microfab.commands.common import DbOption
from microfab.console import out

db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade(db: DbOption = None) -> None:
    """Create the schema or migrate it to this version (Alembic)."""
    from microfab.store.event_store import upgrade_store
    from microfab.store.url import mask_url, resolve_url

    before, after = upgrade_store(db)
    where = mask_url(resolve_url(db))
    if before == after:
        out.print(f"{where}: schema already at revision {after}", highlight=False)
    else:
        out.print(
            f"{where}: schema upgraded from {before or 'empty'} to revision {after}",
            highlight=False,
        )
