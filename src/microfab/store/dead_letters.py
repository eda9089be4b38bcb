"""Dead letters: messages the ingest rejected, stored idempotently by content key and listed."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Engine, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from microfab.model.dead_letter import DeadLetter
from microfab.store import schema
from microfab.store.read_models import EPOCH


def append_dead_letters(conn: Connection, letters: Iterable[DeadLetter]) -> int:
    """Store rejected messages idempotently (by content key); returns how many were new."""
    rows = [
        {
            "key": letter.key,
            "received_at": letter.received_at,
            "source": letter.source,
            "topic": letter.topic,
            "payload": letter.payload,
            "reason": letter.reason,
        }
        for letter in letters
    ]
    if not rows:
        return 0
    table = schema.dead_letters
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = insert(table).on_conflict_do_nothing(index_elements=["key"])
    return len(conn.scalars(stmt.returning(table.c.seq), rows).all())


def dead_letters(
    engine: Engine, *, limit: int | None = None, newest_first: bool = False
) -> list[DeadLetter]:
    """Stored dead letters in the order they were stored (or newest first)."""
    table = schema.dead_letters
    stmt = select(table).order_by(table.c.seq.desc() if newest_first else table.c.seq)
    if limit is not None:
        stmt = stmt.limit(limit)
    with engine.connect() as conn:
        rows = conn.execute(stmt).mappings().all()
    return [
        DeadLetter(r["source"], r["topic"], r["payload"], r["reason"], r["received_at"] or EPOCH)
        for r in rows
    ]


def dead_letter_count(engine: Engine) -> int:
    """How many dead letters are stored."""
    with engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(schema.dead_letters)) or 0)
