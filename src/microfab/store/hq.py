"""HQ's reads over several sites' events: how fresh each site's data is (``hq/rollup.py``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite

from microfab.model.dead_letter import DeadLetter
from microfab.model.events import Event
from microfab.store import schema
from microfab.store.event_store import EventStore
from microfab.store.writer import AppendResult


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


@dataclass(frozen=True, slots=True)
class UplinkReport:
    """A site's uplink status as it last reported it to HQ."""

    site: str
    checkpoint: int
    lag_events: int
    lag_s: float
    reported_at: dt.datetime
    received_at: dt.datetime


def record_uplink_status(store: EventStore, statuses: dict[str, dict[str, Any]]) -> None:
    """Keep each site's newest uplink status (site → checkpoint, lag_events, lag_s,
    reported_at, received_at); an older report never replaces a newer one."""
    table = schema.uplink_status
    insert = postgresql.insert if store.dialect == "postgresql" else sqlite.insert
    with store.transaction() as conn:
        for site, status in statuses.items():
            row = {"site": site, **status}
            stmt = insert(table).values(**row)
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["site"],
                    set_={k: stmt.excluded[k] for k in row if k != "site"},
                    where=table.c.reported_at <= stmt.excluded.reported_at,
                )
            )


def uplink_reports(store: EventStore) -> dict[str, UplinkReport]:
    table = schema.uplink_status
    with store.engine.connect() as conn:
        rows = conn.execute(select(table)).mappings().all()
    return {
        str(r["site"]): UplinkReport(
            str(r["site"]),
            int(r["checkpoint"]),
            int(r["lag_events"]),
            float(r["lag_s"]),
            r["reported_at"],
            r["received_at"],
        )
        for r in rows
    }


class HqIngestTarget:
    """The store as HQ's ingest writes to it: events and dead letters as usual, and the sites'
    uplink statuses (``microfab ingest --hq``)."""

    def __init__(self, store: EventStore) -> None:
        self.store = store

    def append(self, events: Iterable[Event]) -> AppendResult:
        return self.store.append(events)

    def append_dead_letters(self, letters: Iterable[DeadLetter]) -> int:
        return self.store.append_dead_letters(letters)

    def flag_unknown_machines(self, seen: dict[str, tuple[dt.datetime, dt.datetime, int]]) -> None:
        self.store.flag_unknown_machines(seen)

    def record_uplink_status(self, statuses: dict[str, dict[str, Any]]) -> None:
        record_uplink_status(self.store, statuses)
