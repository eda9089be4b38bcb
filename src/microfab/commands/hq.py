"""``microfab hq …``: HQ over several sites — register a site's factory model, the roll-up."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from microfab.commands.common import DbOption, out

hq_app = typer.Typer(
    help="HQ over several sites: register their factory models, roll their figures up",
    no_args_is_help=True,
)


@hq_app.command("register")
def register(
    factory_file: Annotated[Path, typer.Argument(help="The site's factory file (YAML)")],
    db: DbOption = None,
) -> None:
    """Merge a site's factory model into HQ's group model and store it as a new version."""
    from microfab.commands.users import cli_actor
    from microfab.hq.registry import merge_site
    from microfab.model.factory_file import load_factory
    from microfab.store import open_store
    from microfab.store.audit import record_change

    site_model = load_factory(factory_file)
    with open_store(db) as store:
        found = store.factory()
        merged = merge_site(found[1] if found else None, site_model)
        version, created = store.apply_factory(merged, f"hq register {factory_file}")
        if created:
            record_change(
                store,
                actor=cli_actor(),
                action="hq.register",
                target=f"factory:{version}",
                before=None if found is None else {"version": found[0]},
                after={
                    "version": version,
                    "sites": [s.id for s in site_model.sites],
                    "source": str(factory_file),
                },
            )
    sites = ", ".join(s.id for s in merged.sites)
    state = "stored as" if created else "unchanged, already"
    out.print(f"HQ model {state} version {version}: sites {sites}", highlight=False)
