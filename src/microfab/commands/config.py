"""``microfab config show``: the ``MICROFAB_*`` settings as this process sees them, secrets masked."""

from __future__ import annotations

import typer

from microfab.commands.common import JsonOption, print_json
from microfab.console import out

config_app = typer.Typer(
    help="The MICROFAB_* environment settings (docs/configuration.md).", no_args_is_help=True
)


@config_app.command("show")
def config_show(as_json: JsonOption = False) -> None:
    """Print every MICROFAB_* setting and its value; secrets and URL passwords are masked."""
    from rich.table import Table

    from microfab.settings import load_settings, shown_settings

    rows = shown_settings(load_settings())
    if as_json:
        print_json(dict(rows))
        return
    table = Table(title="Settings (environment)", title_justify="left")
    table.add_column("variable", no_wrap=True, overflow="fold")
    table.add_column("value", overflow="fold")
    for name, value in rows:
        table.add_row(name, value)
    out.print(table)
