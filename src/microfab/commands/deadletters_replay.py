"""``microfab deadletters replay``: store what dead letters hold once the device is fixed."""

from __future__ import annotations

import datetime as dt
import math
from typing import Annotated

import typer

from microfab.commands.common import DbOption, out
from microfab.errors import InputError

ReasonOption = Annotated[
    str | None,
    typer.Option(
        "--reason",
        help="Only letters with this reason, e.g. bad_time, unknown_machine \\[default: all]",
        show_default=False,
    ),
]
ShiftOption = Annotated[
    float,
    typer.Option(
        "--shift-ts",
        help="Move every event time by this many seconds first (the device clock's known "
        "offset: -3600 for a clock an hour ahead)",
    ),
]


def replay(reason: ReasonOption = None, shift_ts: ShiftOption = 0.0, db: DbOption = None) -> None:
    """Judge the dead letters again and store the events they now make (marked replayed, never
    stored twice); letters still rejected stay, with the reason."""
    from microfab.connect.replay import replay as replay_letters
    from microfab.store import open_store
    from microfab.store.dead_letter_replay import mark_replayed, waiting_dead_letters

    if not math.isfinite(shift_ts) or abs(shift_ts) > 100 * 366 * 86400:
        raise InputError("--shift-ts: give a number of seconds within 100 years")
    with open_store(db) as store:
        found = store.factory()
        letters = waiting_dead_letters(store, reason)
        now = dt.datetime.now(dt.UTC)
        outcome = replay_letters(
            letters,
            store,
            lambda done: mark_replayed(store, done, now),
            received_at=now,
            shift_s=shift_ts,
            known_machines=frozenset(ref.path for ref in found[1].machines()) if found else None,
            known_sites=frozenset(site.id for site in found[1].sites) if found else None,
        )
    which = f" with reason {reason}" if reason else ""
    out.print(
        f"replayed {outcome.replayed:,} of {len(letters):,} dead letters{which}: "
        f"{outcome.stored:,} events stored, {outcome.duplicates:,} already there; "
        f"{len(outcome.still_rejected):,} still rejected",
        highlight=False,
    )
    for letter, why in outcome.still_rejected[:20]:
        out.print(f"  {letter.topic or '(no topic)'}: {why}", highlight=False)
    if len(outcome.still_rejected) > 20:
        out.print(f"  … and {len(outcome.still_rejected) - 20:,} more", highlight=False)
