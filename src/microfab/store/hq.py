"""HQ's reads over several sites' events: how fresh each site's data is (``hq/rollup.py``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select

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
