"""What every command group shares: the consoles, the ``--db`` option, the stored factory.

The consoles are :data:`microfab.console.out` and :data:`microfab.console.err`, handed on here.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from microfab.console import err as err
from microfab.console import out as out
from microfab.errors import NoFactoryError
from microfab.model.factory import Factory
from microfab.store import EventStore

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Database URL: sqlite:///FILE.db or postgresql://USER@HOST:PORT/DB "
        "\\[default: $MICROFAB_DB or sqlite:///microfab.db]",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")]
FromOption = Annotated[
    str | None,
    typer.Option(
        "--from",
        help="Start: 2026-11-23, 2026-11-23T08:00 (site time) or with an offset "
        "\\[default: first stored event]",
        show_default=False,
    ),
]
ToOption = Annotated[
    str | None,
    typer.Option(
        "--to",
        help="End (exclusive), same forms as --from \\[default: last stored event]",
        show_default=False,
    ),
]


def stored_factory(store: EventStore) -> Factory:
    """The factory model applied to this store; NoFactoryError if there is none yet."""
    found = store.factory()
    if found is None:
        raise NoFactoryError(
            "no factory model in this store yet; run 'microfab factory apply FACTORY.yaml' first"
        )
    return found[1]


def print_json(document: Any) -> None:
    """JSON on stdout, unwrapped and unstyled (for pipes and scripts)."""
    print(json.dumps(document, ensure_ascii=False, indent=2))
