"""``microfab hq …``: HQ over several sites — register a site's factory model, the roll-up."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer

from microfab.commands.common import DbOption, JsonOption, out, print_json

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


@hq_app.command("status")
def status(
    site: Annotated[
        list[str] | None, typer.Option("--site", help="Only this site (repeat for several)")
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Each site's day at HQ (data freshness, OEE, output, late orders, alerts, kgCO2e) and the group's."""
    from rich.table import Table

    from microfab.commands.common import stored_factory
    from microfab.hq.rollup import group_figures
    from microfab.store import open_store

    with open_store(db) as store:
        figures = group_figures(store, stored_factory(store), site or None)
    if as_json:
        print_json(figures.to_json())
        return
    table = Table(title="HQ: sites today 各廠今日")
    for name in (
        "site",
        "newest event",
        "lag",
        "waiting",
        "OEE",
        "good",
        "scrap",
        "late",
        "alerts",
        "kWh",
        "kgCO2e/unit",
    ):
        table.add_column(name, justify="left" if name in ("site", "newest event") else "right")

    def pct(value: float | None) -> str:
        return "—" if value is None else f"{value:.1%}"

    for t in figures.sites:
        table.add_row(
            t.site,
            "—"
            if t.newest_event is None
            else f"{t.newest_event.astimezone(ZoneInfo(t.timezone)):%Y-%m-%d %H:%M:%S}",
            "—" if t.lag_s is None else f"{t.lag_s:,.1f} s",
            "—"
            if t.uplink_lag_events is None
            else f"{t.uplink_lag_events:,} / {t.uplink_lag_s or 0:,.0f} s",
            pct(t.oee),
            f"{t.good:,}",
            f"{t.scrap:,}",
            str(t.late_orders),
            str(t.open_alerts),
            f"{t.kwh:,.1f}",
            "—" if t.kgco2e_per_unit is None else f"{t.kgco2e_per_unit:.4f}",
        )
    g = figures
    table.add_row(
        "group",
        "",
        "",
        "",
        pct(g.oee),
        f"{g.good:,}",
        f"{g.scrap:,}",
        str(g.late_orders),
        str(g.open_alerts),
        f"{g.kwh:,.1f}",
        "—" if g.kgco2e_per_unit is None else f"{g.kgco2e_per_unit:.4f}",
    )
    out.print(table)


@hq_app.command("grant")
def grant(
    actor: Annotated[
        str,
        typer.Argument(help="user:NAME or token:NAME (a site manager, or a token made for one)"),
    ],
    site: Annotated[list[str], typer.Option("--site", help="Site id (repeat for several)")],
    db: DbOption = None,
) -> None:
    """Let a site manager see these sites at HQ (/hq, /api/v1/hq/sites)."""
    from microfab.commands.users import cli_actor
    from microfab.errors import InputError
    from microfab.hq.registry import only_sites
    from microfab.store import open_store
    from microfab.store.audit import record_change
    from microfab.store.hq import grant_sites

    if not actor.startswith(("user:", "token:")):
        raise InputError(f"'{actor}': expected user:NAME or token:NAME")
    with open_store(db) as store:
        from microfab.commands.common import stored_factory

        only_sites(stored_factory(store), site)  # every site must be registered
        new = grant_sites(store, actor, site, cli_actor())
        if new:
            record_change(
                store,
                actor=cli_actor(),
                action="hq.grant",
                target=actor,
                before=None,
                after={"sites": new},
            )
    out.print(f"{actor} sees {', '.join(sorted(site))} at HQ", highlight=False)


@hq_app.command("export")
def export(db: DbOption = None) -> None:
    """Print HQ's group model as a factory file (YAML), e.g. for 'microfab broker acl --hq'."""
    import yaml

    from microfab.commands.common import stored_factory
    from microfab.store import open_store

    with open_store(db) as store:
        factory = stored_factory(store)
    document = factory.model_dump(mode="json", exclude_defaults=True)
    print("# HQ's group model (microfab hq export): every registered site")
    print(yaml.safe_dump(document, allow_unicode=True, sort_keys=False), end="")
