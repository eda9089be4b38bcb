"""``microfab serve``: the REST API and the live dashboard over one store, until Ctrl-C."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated

import typer

from microfab.commands.common import DbOption, err, out
from microfab.errors import InputError


def serve(
    host: Annotated[
        str,
        typer.Option(
            "--host",
            help="Address to listen on; 0.0.0.0 lets tablets on the plant network connect",
        ),
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="TCP port; 0 picks a free one")
    ] = 8000,
    db: DbOption = None,
    carbon_settings: Annotated[
        Path | None,
        typer.Option(
            "--carbon-settings",
            metavar="FILE",
            help="Carbon settings (material factors, tariffs; docs/green.md) for the dashboard's "
            "energy and carbon panel; without it upstream emissions are not included",
        ),
    ] = None,
    funding_ledger: Annotated[
        Path | None,
        typer.Option(
            "--funding-ledger",
            metavar="FILE",
            help="The funding project's ledger (docs/funding.md) for the /funding pages",
        ),
    ] = None,
    pact_period: Annotated[
        str | None,
        typer.Option(
            "--pact-period",
            metavar="PERIOD",
            help="Period of the PACT footprints at /3/footprints: a month (2026-11) or FROM..TO "
            "in site time \\[default: the last complete calendar month]",
            show_default=False,
        ),
    ] = None,
    vision_images: Annotated[
        Path | None,
        typer.Option(
            "--vision-images",
            metavar="DIR",
            help="Where images uploaded to inspection stations are kept with their thumbnails "
            r"(docs/vision.md) \[default: ./vision-images]",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Serve the dashboard 儀表板 and the REST API (docs at /docs) until Ctrl-C."""
    from microfab.app import create_app
    from microfab.http.server import bind, serve_forever, url_of
    from microfab.store import open_store
    from microfab.store.identity import list_users

    if funding_ledger is not None:  # a bad ledger is its located problems, before anything starts
        from microfab.web.funding_pages import load_ledger

        load_ledger(funding_ledger)
    store = open_store(db)  # an unreachable database is one sentence, before anything listens
    try:
        app = create_app(
            store,
            carbon_settings=carbon_settings,
            funding_ledger=funding_ledger,
            pact_period=pact_period,
            vision_images=vision_images,
        )
        if not list_users(store):  # nobody could sign in; there is no default password
            app.state.carbon.close()
            raise InputError(
                f"{store.display_url} has no users, so nobody could sign in; run 'microfab users "
                "add NAME --role admin' first (it prints a one-time password)"
            )
        sock = bind(host, port)
        url = url_of(sock, host)
        out.print(
            f"microfab: dashboard {url} · API docs {url}docs · store {store.display_url}",
            highlight=False,
        )
        if host in ("0.0.0.0", "::"):
            out.print(
                f"listening on every network interface, port {sock.getsockname()[1]}",
                highlight=False,
            )
        err.print("Ctrl-C stops", style="dim")
        with contextlib.suppress(KeyboardInterrupt):  # uvicorn stops, then re-raises Ctrl-C
            serve_forever(app, sock)
        out.print("microfab: stopped", highlight=False)
    finally:
        store.close()
