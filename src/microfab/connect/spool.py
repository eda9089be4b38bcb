"""The outbox of an MQTT publisher: messages waiting for the broker's acknowledgement, in order.

:class:`Spool` keeps them in a local SQLite file (WAL, synchronous commits), so what was not yet
acknowledged survives a crash, a reboot or a broker outage of any length; a new :class:`Spool` on
the same file carries on where the last one stopped. :class:`MemorySpool` is the same outbox in
memory, for runs that may lose their backlog when the process ends.

Messages are numbered by ``seq`` (strictly increasing, never reused), read in that order with
:meth:`Spool.peek` and deleted only once the broker has them (:meth:`Spool.remove`). One process
at a time may use a spool file.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable
from itertools import islice, takewhile
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self

from microfab.errors import MicrofabError

SpooledMessage = tuple[int, str, bytes]
"""``(seq, topic, payload)``."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spool (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    queued_at REAL NOT NULL
)
"""


class SpoolError(MicrofabError):
    """The spool file cannot be opened or written (disk full, no permission, not a database)."""

    key = "spool_error"


class Outbox(Protocol):
    """What the MQTT publisher needs of a spool (both classes here implement it)."""

    def put_many(self, messages: Iterable[tuple[str, bytes]]) -> int: ...

    def peek(self, n: int, after: int = 0) -> list[SpooledMessage]: ...

    def remove(self, seqs: Iterable[int]) -> int: ...

    def remove_through(self, seq: int) -> int: ...

    def __len__(self) -> int: ...

    def close(self) -> None: ...


class Spool:
    """Outgoing MQTT messages in a SQLite file, oldest first; thread-safe."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                self.path, check_same_thread=False, isolation_level=None, timeout=30.0
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")  # a spooled message survives power loss
            self._db.execute(_SCHEMA)
            row = self._db.execute("SELECT COUNT(*) FROM spool").fetchone()
        except (OSError, sqlite3.Error) as exc:
            if self._db is not None:
                self._db.close()
            raise SpoolError(f"cannot open the MQTT spool {self.path}: {exc}") from None
        self._count = int(row[0])

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise ValueError(f"spool {self.path} is closed")
        return self._db

    def put_many(self, messages: Iterable[tuple[str, bytes]]) -> int:
        """Append ``(topic, payload)`` pairs in one transaction; return how many."""
        now = time.time()
        rows = [(topic, payload, now) for topic, payload in messages]
        if not rows:
            return 0
        with self._lock:
            db = self._conn()
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    db.executemany(
                        "INSERT INTO spool (topic, payload, queued_at) VALUES (?, ?, ?)", rows
                    )
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise SpoolError(f"cannot write to the MQTT spool {self.path}: {exc}") from None
            self._count += len(rows)
        return len(rows)

    def peek(self, n: int, after: int = 0) -> list[SpooledMessage]:
        """Up to ``n`` oldest messages with ``seq > after``, in order; nothing is removed."""
        with self._lock:
            cursor = self._conn().execute(
                "SELECT seq, topic, payload FROM spool WHERE seq > ? ORDER BY seq LIMIT ?",
                (after, n),
            )
            return [(int(seq), str(topic), bytes(payload)) for seq, topic, payload in cursor]

    def remove(self, seqs: Iterable[int]) -> int:
        """Delete these messages (the broker has them); return how many were there."""
        keys = [(seq,) for seq in seqs]
        if not keys:
            return 0
        with self._lock:
            db = self._conn()
            before = db.total_changes
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany("DELETE FROM spool WHERE seq = ?", keys)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            removed = db.total_changes - before
            self._count -= removed
        return removed

    def remove_through(self, seq: int) -> int:
        """Delete every message up to and including ``seq``; return how many."""
        with self._lock:
            removed = self._conn().execute("DELETE FROM spool WHERE seq <= ?", (seq,)).rowcount
            self._count -= removed
        return removed

    def __len__(self) -> int:
        return self._count

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class MemorySpool:
    """The same outbox in memory: lost when the process ends; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._messages: dict[int, tuple[str, bytes]] = {}
        self._last = 0

    def put_many(self, messages: Iterable[tuple[str, bytes]]) -> int:
        with self._lock:
            before = self._last
            for topic, payload in messages:
                self._last += 1
                self._messages[self._last] = (topic, payload)
            return self._last - before

    def peek(self, n: int, after: int = 0) -> list[SpooledMessage]:
        with self._lock:
            # Insertion order is seq order; whatever precedes ``after`` is in flight, so bounded.
            found = ((s, t, p) for s, (t, p) in self._messages.items() if s > after)
            return list(islice(found, n))

    def remove(self, seqs: Iterable[int]) -> int:
        with self._lock:
            return sum(self._messages.pop(seq, None) is not None for seq in seqs)

    def remove_through(self, seq: int) -> int:
        with self._lock:
            doomed = list(takewhile(lambda s: s <= seq, self._messages))
            for s in doomed:
                del self._messages[s]
            return len(doomed)

    def __len__(self) -> int:
        return len(self._messages)

    def close(self) -> None:
        return None
