"""``microfab ask "QUESTION"``: the plant assistant on the command line 問廠房."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from microfab.commands.common import DbOption, JsonOption, out, print_json


def ask(
    question: Annotated[str, typer.Argument(help="The question, in English or Chinese")],
    db: DbOption = None,
    as_json: JsonOption = False,
    carbon_settings: Annotated[
        Path | None,
        typer.Option("--carbon-settings", help="Carbon settings file (docs/green.md)"),
    ] = None,
    application: Annotated[
        Path | None,
        typer.Option(
            "--application",
            help="Funding application file to assess (docs/funding.md) "
            "\\[default: $MICROFAB_FUNDING_APPLICATION]",
            show_default=False,
        ),
    ] = None,
    plan: Annotated[
        Path | None,
        typer.Option(
            "--plan", help="Plan file (microfab plan schedule --out) \\[default: plan.json]"
        ),
    ] = None,
    offline: Annotated[
        bool,
        typer.Option("--offline", help="Never ask the LLM endpoint, even when one is set"),
    ] = False,
) -> None:
    """Ask the plant a question; numbers come from microfab's own reads, with their source.

    The command line has the local store's full access (as ``microfab oee`` and the other
    read commands); the API and the dashboard apply the caller's role."""
    from microfab.assist.assistant import ask as ask_plant
    from microfab.model.identity import ROLE_PERMISSIONS, Principal, Role
    from microfab.settings import load_settings
    from microfab.store import open_store
    from microfab.track.plant import Plant

    local = Principal("user", "cli", Role.ADMIN, ROLE_PERMISSIONS[Role.ADMIN])
    configured = load_settings().funding_application
    funding = application or (Path(configured) if configured else None)
    with open_store(db) as store:
        answer = ask_plant(
            Plant(store),
            question,
            principal=local,
            carbon_settings=carbon_settings,
            funding_application=funding,
            plan_file=plan,
            use_llm=not offline,
        )
    if as_json:
        print_json(answer.to_json())
        return
    out.print(answer.answer, highlight=False, markup=False, soft_wrap=True)
    if answer.tool is not None:
        period = answer.period.to_json()
        args = ", ".join(f"{k}={v}" for k, v in answer.arguments.items()) or "none"
        out.print(
            f"source: {answer.tool} ({args}); period {period['from'] or '…'} to "
            f"{period['to'] or '…'} (site time); view {answer.link or '—'}",
            style="dim",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
