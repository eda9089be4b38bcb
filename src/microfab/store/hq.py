"""HQ's reads over several sites' events: how fresh each site's data is (``hq/rollup.py``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select

from microfab.store import schema
from microfab.store.event_store import EventStore


@dataclass(frozen=True, slots=True)
class Freshness:
    """The newest event of a set of machines: its event time and when HQ stored it."""

    event_ts: dt.datetime
    ingest_ts: dt.datetime

    @property
    def lag_s(self) -> float:
        """How long the newest event took from the machine to HQ's store (clock skew included)."""
        return max((self.ingest_ts - self.event_ts).total_seconds(), 0.0)


def freshness(store: EventStore, machines: Sequence[str]) -> Freshness | None:
    """The newest event (by event time) of ``machines``, or None when they have none: one look-up
    per machine on the (machine, stream, ts) index, the newest kept."""
    table = schema.events
    newest: tuple[dt.datetime, dt.datetime] | None = None
    with store.engine.connect() as conn:
        for machine in machines:
            row = conn.execute(
                select(table.c.ts, table.c.ingest_ts)
                .where(table.c.machine == machine)
                .order_by(table.c.ts.desc())
                .limit(1)
            ).first()
            if row is not None and (newest is None or row[0] > newest[0]):
                newest = (row[0], row[1])
    return None if newest is None else Freshness(*newest)


def granted_sites(store: EventStore, actor: str) -> frozenset[str]:
    """The sites ``actor`` (``user:NAME`` or ``token:NAME``) may see at HQ as a site manager."""
    table = schema.site_access
    with store.engine.connect() as conn:
        rows = conn.execute(select(table.c.site).where(table.c.actor == actor)).all()
    return frozenset(str(r[0]) for r in rows)


def grant_sites(store: EventStore, actor: str, sites: Sequence[str], by: str) -> list[str]:
    """Let ``actor`` see ``sites`` (idempotent); returns the sites newly granted."""
    table = schema.site_access
    new = sorted(set(sites) - granted_sites(store, actor))
    if new:
        now = dt.datetime.now(dt.UTC)
        with store.transaction() as conn:
            conn.execute(
                table.insert(),
                [{"actor": actor, "site": s, "granted_at": now, "granted_by": by} for s in new],
            )
    return new


def revoke_sites(store: EventStore, actor: str, sites: Sequence[str]) -> None:
    table = schema.site_access
    with store.transaction() as conn:
        conn.execute(delete(table).where(table.c.actor == actor, table.c.site.in_(list(sites))))
