"""The audit log: append-only, hash-chained records of who changed what, when, from what to what.

Each record holds ``seq`` (1, 2, 3 … with no gaps), ``at`` (UTC), ``actor`` (``user:NAME``,
``token:NAME`` or ``cli:OSUSER``), ``action`` (``orders.release``, ``users.add`` …), ``target``,
``before`` and ``after`` (canonical JSON text, or none), ``prev_hash`` (the previous record's
hash; 64 zeros for the first) and ``hash``: SHA-256 of the canonical JSON of all the other fields.

:func:`verify_audit` recomputes every hash and link. An edited record no longer matches its hash;
a record edited *and* re-hashed breaks the next record's link; a deleted record leaves a gap in
``seq``. Deleting the newest records leaves a shorter chain that is consistent in itself, which
only an *anchor* — the head ``SEQ:HASH`` printed by ``microfab audit anchor`` and kept somewhere
else — can show. Triggers (revision 0003) refuse UPDATE and DELETE on the table on both back
ends; whoever can drop them can edit rows, and the chain still catches it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from microfab.errors import InputError
from microfab.store import schema
from microfab.store.event_store import EventStore
from microfab.store.schema import as_utc

GENESIS_HASH = "0" * 64
"""The ``prev_hash`` of the first record."""

_RETRIES = 5
"""Attempts at an append when another process took the same ``seq`` first."""


def canonical_json(value: Any) -> str | None:
    """The one text of a JSON value that is hashed and stored (None stays None)."""
    if value is None:
        return None
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def time_text(value: dt.datetime) -> str:
    """A time as the hash sees it: UTC, microseconds, ``Z``. Not :func:`format_ts` (milliseconds):
    a record's time is stored and hashed to the microsecond, and the chain must keep verifying."""
    return as_utc(value).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def record_hash(
    *,
    seq: int,
    at: dt.datetime,
    actor: str,
    action: str,
    target: str,
    before: str | None,
    after: str | None,
    prev_hash: str,
) -> str:
    """SHA-256 (hex) of the canonical JSON of a record's fields other than its hash."""
    document = {
        "seq": seq,
        "at": time_text(at),
        "actor": actor,
        "action": action,
        "target": target,
        "before": before,
        "after": after,
        "prev_hash": prev_hash,
    }
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One stored audit record; ``before``/``after`` are the stored canonical JSON texts."""

    seq: int
    at: dt.datetime
    actor: str
    action: str
    target: str
    before: str | None
    after: str | None
    prev_hash: str
    hash: str

    def before_value(self) -> Any:
        return None if self.before is None else json.loads(self.before)

    def after_value(self) -> Any:
        return None if self.after is None else json.loads(self.after)

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": time_text(self.at),
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "before": self.before_value(),
            "after": self.after_value(),
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


@dataclass(frozen=True, slots=True)
class AuditAnchor:
    """The head of the chain, ``SEQ:HASH``: keep it elsewhere to detect a deleted tail later."""

    seq: int
    hash: str

    def __str__(self) -> str:
        return f"{self.seq}:{self.hash}"


def parse_anchor(text: str) -> AuditAnchor:
    """An anchor from ``SEQ:HASH``; InputError when it is not one."""
    seq_text, _, digest = text.strip().partition(":")
    digest = digest.lower()
    if not (
        seq_text.isdigit() and len(digest) == 64 and all(c in "0123456789abcdef" for c in digest)
    ):
        raise InputError(
            f"anchor {text!r} is not valid; expected SEQ:HASH as printed by 'microfab audit "
            "anchor', e.g. 12:3f2a…(64 hex digits)"
        )
    return AuditAnchor(int(seq_text), digest)


def append_audit(
    conn: Connection,
    *,
    actor: str,
    action: str,
    target: str,
    before: Any = None,
    after: Any = None,
    at: dt.datetime | None = None,
) -> AuditRecord:
    """Append one record on ``conn``, inside the caller's transaction (so a change and its
    record commit together). On PostgreSQL the table is locked against other appenders until
    commit; on SQLite a second process that took the same ``seq`` fails the primary key, and
    :func:`record_change` retries."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("LOCK TABLE audit_log IN SHARE ROW EXCLUSIVE MODE")
    table = schema.audit_log
    last = conn.execute(
        select(table.c.seq, table.c.hash).order_by(table.c.seq.desc()).limit(1)
    ).first()
    seq = 1 if last is None else int(last[0]) + 1
    prev_hash = GENESIS_HASH if last is None else str(last[1])
    when = (at or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    before_text = canonical_json(before)
    after_text = canonical_json(after)
    digest = record_hash(
        seq=seq,
        at=when,
        actor=actor,
        action=action,
        target=target,
        before=before_text,
        after=after_text,
        prev_hash=prev_hash,
    )
    conn.execute(
        insert(table).values(
            seq=seq,
            at=when,
            actor=actor,
            action=action,
            target=target,
            before=before_text,
            after=after_text,
            prev_hash=prev_hash,
            hash=digest,
        )
    )
    return AuditRecord(seq, when, actor, action, target, before_text, after_text, prev_hash, digest)


def record_change(
    store: EventStore,
    *,
    actor: str,
    action: str,
    target: str,
    before: Any = None,
    after: Any = None,
) -> AuditRecord:
    """Append one record in a transaction of its own (for changes stored elsewhere, such as
    order events or a plan file). Use :func:`append_audit` to commit with the change itself."""
    for attempt in range(_RETRIES):
        try:
            with store.transaction() as conn:
                return append_audit(
                    conn, actor=actor, action=action, target=target, before=before, after=after
                )
        except IntegrityError:
            if attempt == _RETRIES - 1:
                raise
    raise AssertionError("unreachable")


def _record(row: Any) -> AuditRecord:
    return AuditRecord(
        seq=int(row["seq"]),
        at=row["at"],
        actor=row["actor"],
        action=row["action"],
        target=row["target"],
        before=row["before"],
        after=row["after"],
        prev_hash=row["prev_hash"],
        hash=row["hash"],
    )


def audit_records(
    store: EventStore,
    *,
    limit: int | None = None,
    newest_first: bool = False,
    target: str | None = None,
    action_prefix: str | None = None,
) -> list[AuditRecord]:
    """Stored records by ``seq``, optionally only those about ``target`` or whose action starts
    with ``action_prefix`` (``orders.``)."""
    table = schema.audit_log
    stmt = select(table).order_by(table.c.seq.desc() if newest_first else table.c.seq)
    if target is not None:
        stmt = stmt.where(table.c.target == target)
    if action_prefix:
        stmt = stmt.where(table.c.action.startswith(action_prefix, autoescape=True))
    if limit is not None:
        stmt = stmt.limit(limit)
    with store.engine.connect() as conn:
        return [_record(row) for row in conn.execute(stmt).mappings()]


def audit_anchor(store: EventStore) -> AuditAnchor | None:
    """The chain head now, or None when nothing was recorded yet."""
    table = schema.audit_log
    with store.engine.connect() as conn:
        row = conn.execute(
            select(table.c.seq, table.c.hash).order_by(table.c.seq.desc()).limit(1)
        ).first()
    return None if row is None else AuditAnchor(int(row[0]), str(row[1]))


def audit_count(store: EventStore) -> int:
    with store.engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(schema.audit_log)) or 0)


@dataclass(frozen=True, slots=True)
class AuditProblem:
    """One fault found by :func:`verify_audit`, at record ``seq``."""

    seq: int
    kind: str
    """``edited`` (hash does not match content), ``relinked`` (an edited and re-hashed record:
    the next record's link does not match it), ``deleted`` (records missing), ``anchor``."""
    message: str


@dataclass(slots=True)
class AuditVerification:
    """What :func:`verify_audit` found."""

    records: int = 0
    head: AuditAnchor | None = None
    problems: list[AuditProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_audit(store: EventStore, anchor: AuditAnchor | None = None) -> AuditVerification:
    """Recompute every record's hash and link; with ``anchor``, check that the record it names
    is still there with that hash (a deleted or replaced tail otherwise goes unseen)."""
    report = AuditVerification()
    table = schema.audit_log
    expected_seq = 1
    previous: AuditRecord | None = None
    anchored: AuditRecord | None = None
    with store.engine.connect() as conn:
        rows = conn.execution_options(yield_per=2000).execute(select(table).order_by(table.c.seq))
        for row in rows.mappings():
            record = _record(row)
            report.records += 1
            if record.seq != expected_seq:
                missing = (
                    f"record {expected_seq} is missing"
                    if record.seq == expected_seq + 1
                    else f"records {expected_seq}–{record.seq - 1} are missing"
                )
                report.problems.append(
                    AuditProblem(expected_seq, "deleted", f"{missing} (deleted)")
                )
            digest = record_hash(
                seq=record.seq,
                at=record.at,
                actor=record.actor,
                action=record.action,
                target=record.target,
                before=record.before,
                after=record.after,
                prev_hash=record.prev_hash,
            )
            if digest != record.hash:
                report.problems.append(
                    AuditProblem(
                        record.seq,
                        "edited",
                        f"record {record.seq} was edited: its content does not match its hash",
                    )
                )
            elif (
                previous is not None
                and record.seq == expected_seq
                and record.prev_hash != previous.hash
                and not any(p.seq == previous.seq for p in report.problems)
            ):
                report.problems.append(
                    AuditProblem(
                        previous.seq,
                        "relinked",
                        f"record {previous.seq} was replaced: record {record.seq} links to a "
                        "different hash",
                    )
                )
            elif previous is None and record.seq == 1 and record.prev_hash != GENESIS_HASH:
                report.problems.append(
                    AuditProblem(1, "relinked", "record 1 does not start the chain")
                )
            if anchor is not None and record.seq == anchor.seq:
                anchored = record
            previous = record
            expected_seq = record.seq + 1
    if previous is not None:
        report.head = AuditAnchor(previous.seq, previous.hash)
    if anchor is not None:
        if anchored is None:
            last = previous.seq if previous is not None else 0
            gone = (
                f"record {anchor.seq} (and any after it) was deleted"
                if last + 1 == anchor.seq
                else f"records {last + 1}–{anchor.seq} (and any after them) were deleted"
            )
            report.problems.append(
                AuditProblem(
                    anchor.seq,
                    "anchor",
                    f"record {anchor.seq} named by the anchor is missing: the log ends at record "
                    f"{last}, so {gone}",
                )
            )
        elif anchored.hash != anchor.hash:
            report.problems.append(
                AuditProblem(
                    anchor.seq,
                    "anchor",
                    f"record {anchor.seq} does not have the anchor's hash: the log was rewritten "
                    f"from record {anchor.seq} or earlier",
                )
            )
    report.problems.sort(key=lambda p: p.seq)
    return report
