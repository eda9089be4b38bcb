"""Dead letters waiting for a replay, and the mark a replayed one gets (no schema change).

A replayed letter stays in ``dead_letters`` (nothing is deleted), its reason prefixed with
``replayed <time>: ``, so it is neither replayed twice nor taken for a new rejection; its ``key``
column keeps the original content key, so the same message rejected again is still stored once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import and_, literal, not_, or_, select, update

from microfab.model.dead_letter import DeadLetter
from microfab.model.events import format_ts
from microfab.store import schema
from microfab.store.event_store import EventStore

REPLAYED = "replayed "
"""Prefix of the reason of a dead letter that has been replayed."""


def waiting_dead_letters(store: EventStore, reason: str | None = None) -> list[DeadLetter]:
    """Dead letters not replayed yet, oldest first; with ``reason`` (e.g. ``bad_time``) only
    those whose reason starts with it."""
    table = schema.dead_letters
    stmt = select(table).where(not_(table.c.reason.startswith(REPLAYED, autoescape=True)))
    if reason is not None:
        stmt = stmt.where(
            or_(table.c.reason == reason, table.c.reason.startswith(reason + ":", autoescape=True))
        )
    with store.engine.connect() as conn:
        rows = conn.execute(stmt.order_by(table.c.seq)).mappings().all()
    return [
        DeadLetter(
            r["source"],
            r["topic"],
            r["payload"],
            r["reason"],
            r["received_at"],
        )
        for r in rows
    ]


def mark_replayed(store: EventStore, letters: Sequence[DeadLetter], at: dt.datetime) -> int:
    """Prefix the reason of these (not yet replayed) dead letters with ``replayed <at>: ``;
    returns how many were marked."""
    if not letters:
        return 0
    table = schema.dead_letters
    prefix = f"{REPLAYED}{format_ts(at)}: "
    marked = 0
    with store.transaction() as conn:
        for start in range(0, len(letters), 500):
            keys = [letter.key for letter in letters[start : start + 500]]
            result = conn.execute(
                update(table)
                .where(
                    and_(
                        table.c.key.in_(keys),
                        not_(table.c.reason.startswith(REPLAYED, autoescape=True)),
                    )
                )
                .values(reason=literal(prefix) + table.c.reason)
            )
            marked += result.rowcount
    return marked
