"""Stored alerts and their deliveries: insert, fold a repeat in, acknowledge, close, list.

One row per alert (``alerts``), its state ``open`` → ``acknowledged`` → ``closed`` with who and
when; one row per alert, event (``raised``, ``acknowledged``, ``closed``) and delivery channel
(``alert_deliveries``) with the attempts made and when it got through, so a delivery is made once
and a failed one is retried by the next run. Both tables arrive with revision 0004.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, insert, select, update
from sqlalchemy.engine import Connection

from microfab.model.alerts import AlertFinding, AlertState, LatestAlert
from microfab.store import schema
from microfab.store.event_store import EventStore

ALERT_EVENTS = ("raised", "acknowledged", "closed")
"""What happens to an alert, each delivered once per channel."""

MAX_DELIVERY_ATTEMPTS = 10
"""Runs that try a failing delivery before giving up on it."""


def _ts(value: dt.datetime | None) -> str | None:
    from microfab.model.events import format_ts

    return None if value is None else format_ts(value)


@dataclass(frozen=True, slots=True)
class StoredAlert:
    """One alert as stored."""

    id: int
    rule: str
    kind: str
    severity: str
    machine: str
    cause: str
    message: str
    details: dict[str, Any]
    first_ts: dt.datetime
    last_ts: dt.datetime
    occurrences: int
    state: AlertState
    raised_at: dt.datetime
    acked_at: dt.datetime | None
    acked_by: str | None
    closed_at: dt.datetime | None
    closed_by: str | None

    @property
    def site(self) -> str:
        return self.machine.split("/", 1)[0]

    def to_json(self) -> dict[str, Any]:
        """The alert as JSON: the MQTT and webhook payload and ``alerts list --json``."""
        return {
            "id": self.id,
            "state": self.state.value,
            "rule": self.rule,
            "kind": self.kind,
            "severity": self.severity,
            "machine": self.machine,
            "cause": self.cause,
            "message": self.message,
            "first_ts": _ts(self.first_ts),
            "last_ts": _ts(self.last_ts),
            "occurrences": self.occurrences,
            "raised_at": _ts(self.raised_at),
            "acked_at": _ts(self.acked_at),
            "acked_by": self.acked_by,
            "closed_at": _ts(self.closed_at),
            "closed_by": self.closed_by,
            "details": self.details,
        }


def _alert(row: Any) -> StoredAlert:
    return StoredAlert(
        id=int(row["id"]),
        rule=row["rule"],
        kind=row["kind"],
        severity=row["severity"],
        machine=row["machine"],
        cause=row["cause"],
        message=row["message"],
        details=dict(row["details"] or {}),
        first_ts=row["first_ts"] or dt.datetime.min.replace(tzinfo=dt.UTC),
        last_ts=row["last_ts"] or dt.datetime.min.replace(tzinfo=dt.UTC),
        occurrences=int(row["occurrences"]),
        state=AlertState(row["state"]),
        raised_at=row["raised_at"] or dt.datetime.min.replace(tzinfo=dt.UTC),
        acked_at=row["acked_at"],
        acked_by=row["acked_by"],
        closed_at=row["closed_at"],
        closed_by=row["closed_by"],
    )


def latest_alert(conn: Connection, key: tuple[str, str, str]) -> LatestAlert | None:
    """The newest alert of ``(rule, machine, cause)``, as :func:`~microfab.model.alerts.decide`
    needs it."""
    table = schema.alerts
    rule, machine, cause = key
    row = (
        conn.execute(
            select(table.c.id, table.c.state, table.c.last_ts, table.c.closed_at)
            .where(table.c.rule == rule, table.c.machine == machine, table.c.cause == cause)
            .order_by(table.c.id.desc())
            .limit(1)
        )
        .mappings()
        .first()
    )
    if row is None:
        return None
    last = row["last_ts"]
    assert last is not None
    return LatestAlert(int(row["id"]), AlertState(row["state"]), last, row["closed_at"])


def alert_state(conn: Connection, alert_id: int) -> AlertState | None:
    """The state of alert ``alert_id`` (None when there is no such alert), read inside the
    caller's transaction so that a change decided on it is made on the same row."""
    table = schema.alerts
    state = conn.scalar(select(table.c.state).where(table.c.id == alert_id))
    return None if state is None else AlertState(state)


def insert_alert(conn: Connection, finding: AlertFinding, now: dt.datetime) -> int | None:
    """Store a new open alert; None when the same occurrence is stored already (the unique
    ``(rule, machine, cause, first_ts)`` also stops another process storing it twice)."""
    values = {
        "rule": finding.rule,
        "kind": finding.kind,
        "severity": finding.severity,
        "machine": finding.machine,
        "cause": finding.cause,
        "message": finding.message,
        "details": finding.details,
        "first_ts": finding.ts,
        "last_ts": finding.last_ts,
        "occurrences": 1,
        "state": AlertState.OPEN.value,
        "raised_at": now,
    }
    table = schema.alerts
    same = conn.execute(
        select(table.c.id).where(
            table.c.rule == finding.rule,
            table.c.machine == finding.machine,
            table.c.cause == finding.cause,
            table.c.first_ts == finding.ts,
        )
    ).first()
    if same is not None:
        return None
    key = conn.execute(insert(table).values(**values)).inserted_primary_key
    return None if key is None else int(key[0])


def fold_into(conn: Connection, alert_id: int, finding: AlertFinding) -> bool:
    """Count a repeat of an open alert's condition; False when it was already counted."""
    table = schema.alerts
    row = conn.execute(
        select(table.c.last_ts, table.c.occurrences).where(table.c.id == alert_id)
    ).first()
    if row is None:
        return False
    last = row[0]
    assert last is not None
    if finding.ts <= last:
        if finding.last_ts > last:
            conn.execute(
                update(table).where(table.c.id == alert_id).values(last_ts=finding.last_ts)
            )
        return False
    conn.execute(
        update(table)
        .where(table.c.id == alert_id)
        .values(last_ts=max(last, finding.last_ts), occurrences=int(row[1]) + 1)
    )
    return True


def get_alert(store: EventStore, alert_id: int) -> StoredAlert | None:
    with store.engine.connect() as conn:
        row = (
            conn.execute(select(schema.alerts).where(schema.alerts.c.id == alert_id))
            .mappings()
            .first()
        )
    return None if row is None else _alert(row)


def list_alerts(
    store: EventStore, *, open_only: bool = False, limit: int | None = None
) -> list[StoredAlert]:
    """Alerts newest first; ``open_only`` leaves out closed ones (acknowledged ones stay)."""
    table = schema.alerts
    stmt = select(table).order_by(table.c.raised_at.desc(), table.c.id.desc())
    if open_only:
        stmt = stmt.where(table.c.state != AlertState.CLOSED.value)
    if limit is not None:
        stmt = stmt.limit(limit)
    with store.engine.connect() as conn:
        return [_alert(row) for row in conn.execute(stmt).mappings()]


def set_alert_state(
    conn: Connection, alert_id: int, state: AlertState, actor: str, at: dt.datetime
) -> None:
    """Acknowledge or close an alert (who and when)."""
    table = schema.alerts
    if state == AlertState.ACKNOWLEDGED:
        values: dict[str, Any] = {"state": state.value, "acked_at": at, "acked_by": actor}
    else:
        values = {"state": state.value, "closed_at": at, "closed_by": actor}
    conn.execute(update(table).where(table.c.id == alert_id).values(**values))


# ---------------------------------------------------------------------------- deliveries


def pending_deliveries(
    store: EventStore, channels: list[str]
) -> list[tuple[StoredAlert, str, str]]:
    """(alert, event, channel) not yet delivered, oldest alert first, for every channel given.

    An alert's ``raised`` event is due on every channel; ``acknowledged`` and ``closed`` once the
    alert got there. A delivery that failed :data:`MAX_DELIVERY_ATTEMPTS` times is given up."""
    if not channels:
        return []
    deliveries = schema.alert_deliveries
    with store.engine.connect() as conn:
        alerts = [
            _alert(row)
            for row in conn.execute(select(schema.alerts).order_by(schema.alerts.c.id)).mappings()
        ]
        done: dict[tuple[int, str, str], tuple[int, bool]] = {
            (int(r[0]), r[1], r[2]): (int(r[3]), r[4] is not None)
            for r in conn.execute(
                select(
                    deliveries.c.alert_id,
                    deliveries.c.event,
                    deliveries.c.channel,
                    deliveries.c.attempts,
                    deliveries.c.delivered_at,
                )
            )
        }
    due: list[tuple[StoredAlert, str, str]] = []
    for alert in alerts:
        events = ["raised"]
        if alert.acked_at is not None:
            events.append("acknowledged")
        if alert.closed_at is not None:
            events.append("closed")
        for event in events:
            for channel in channels:
                attempts, delivered = done.get((alert.id, event, channel), (0, False))
                if not delivered and attempts < MAX_DELIVERY_ATTEMPTS:
                    due.append((alert, event, channel))
    return due


def record_delivery(
    store: EventStore, alert_id: int, event: str, channel: str, error: str | None
) -> None:
    """Count one delivery attempt; ``error`` None when it got through."""
    table = schema.alert_deliveries
    now = dt.datetime.now(dt.UTC)
    where = and_(table.c.alert_id == alert_id, table.c.event == event, table.c.channel == channel)
    with store.transaction() as conn:
        row = conn.execute(select(table.c.attempts).where(where)).first()
        delivered = now if error is None else None
        if row is None:
            conn.execute(
                insert(table).values(
                    alert_id=alert_id,
                    event=event,
                    channel=channel,
                    attempts=1,
                    delivered_at=delivered,
                    error=error,
                )
            )
        else:
            conn.execute(
                update(table)
                .where(where)
                .values(attempts=int(row[0]) + 1, delivered_at=delivered, error=error)
            )


def delivery_log(store: EventStore, alert_id: int) -> list[dict[str, Any]]:
    """The delivery rows of one alert (for ``alerts list --json`` and tests)."""
    table = schema.alert_deliveries
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(table)
            .where(table.c.alert_id == alert_id)
            .order_by(table.c.event, table.c.channel)
        ).mappings()
        return [
            {
                "event": r["event"],
                "channel": r["channel"],
                "attempts": int(r["attempts"]),
                "delivered_at": _ts(r["delivered_at"]),
                "error": r["error"],
            }
            for r in rows
        ]
