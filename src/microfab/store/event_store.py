"""The event store: batched idempotent append, ordered reads, read models, factory versions.

One class, :class:`EventStore`, serves SQLite and PostgreSQL through SQLAlchemy Core and is the
store's one interface; the work is done in small modules behind it:

- :mod:`~microfab.store.writer`: the batch append (idempotent insert, duplicates and conflicts);
- :mod:`~microfab.store.read_models`: machine_status, order_status and unknown machines;
- :mod:`~microfab.store.reads`: counts, newest sequence and event time, the plant clock, events;
- :mod:`~microfab.store.dead_letters`, :mod:`~microfab.store.factory_versions`;
- :mod:`~microfab.store.database`: opening, the schema check and the migrations.

Every write goes through the store's one writer: :meth:`EventStore.append` or a
:meth:`EventStore.transaction` (a lock that serialises this process's writes, which SQLite
needs; WAL lets readers run alongside). Read modules elsewhere in ``store/`` take the store and
read through its engine.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from sqlalchemy import Engine
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, OperationalError

from microfab.model.dead_letter import DeadLetter
from microfab.model.events import Event
from microfab.model.factory import Factory
from microfab.store import dead_letters as _dead_letters
from microfab.store import factory_versions as _factory_versions
from microfab.store import read_models as _read_models
from microfab.store import reads as _reads
from microfab.store.change_signal import committed
from microfab.store.database import MIGRATIONS, connect, unavailable, upgrade_store
from microfab.store.read_models import MachineStatus, OrderStatus
from microfab.store.reads import StoredEvent, stored_event
from microfab.store.url import mask_url, resolve_url
from microfab.store.writer import AppendResult, EventWriter, IdConflict, prepare

__all__ = [
    "MIGRATIONS",
    "AppendResult",
    "EventStore",
    "IdConflict",
    "MachineStatus",
    "OrderStatus",
    "StoredEvent",
    "open_store",
    "stored_event",
    "upgrade_store",
]


class EventStore:
    """Append-only event log with read models, on SQLite or PostgreSQL."""

    def __init__(self, engine: Engine, url: str) -> None:
        self.engine = engine
        self.url = url
        self.dialect = engine.dialect.name
        self._write_lock = threading.Lock()
        self._writer = EventWriter()

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def display_url(self) -> str:
        """The store's URL with any password masked."""
        return mask_url(self.url)

    # ------------------------------------------------------------------ writes

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A write transaction through the store's one writer: the lock that serialises this
        process's writes (SQLite allows one writer at a time) held for the whole transaction,
        committed when the block ends, rolled back when it raises. Losing the database (at
        connect or mid-transaction) becomes :class:`StoreUnavailableError`, which callers such
        as the ingest worker retry. Every write in ``store/`` goes through here or
        :meth:`append`."""
        with self._write_lock, self._begin() as conn:
            yield conn

    def append(self, events: Iterable[Event]) -> AppendResult:
        """Store a batch idempotently, in one transaction (see :mod:`microfab.store.writer`)."""
        batch = list(events)
        if not batch:
            return AppendResult()
        now = dt.datetime.now(dt.UTC)
        items, result = prepare(batch)  # serialised outside the writer's lock
        try:
            with self.transaction() as conn:
                written = self._writer.write(conn, items, result, now)
        except BaseException:
            self._writer.rolled_back()
            raise
        if written.inserted:
            # live views in this process hear of it; the checkpointed production views are
            # caught up by their readers and a ViewFollower, not here (store/view_follower.py)
            committed(self.engine)
        return written

    def append_dead_letters(self, letters: Iterable[DeadLetter]) -> int:
        """Store rejected messages idempotently (by content key); returns how many were new."""
        letters = list(letters)
        if not letters:
            return 0
        with self.transaction() as conn:
            return _dead_letters.append_dead_letters(conn, letters)

    def flag_unknown_machines(self, seen: dict[str, tuple[dt.datetime, dt.datetime, int]]) -> None:
        """Record machines that sent events but are not in the factory model (path -> first, last, n)."""
        if not seen:
            return
        with self.transaction() as conn:
            _read_models.flag_unknown_machines(conn, seen)

    def apply_factory(self, factory: Factory, source_name: str) -> tuple[int, bool]:
        """Store a validated factory model as a new version; returns (version, created)."""
        with self.transaction() as conn:
            return _factory_versions.apply_factory(conn, factory, source_name)

    # ------------------------------------------------------------------ reads

    def count(self) -> int:
        return _reads.count(self.engine)

    def last_seq(self) -> int:
        return _reads.last_seq(self.engine)

    def newest_ts(self) -> dt.datetime | None:
        """The event time of the newest stored event, or None while the store is empty."""
        return _reads.newest_ts(self.engine)

    def plant_clock(self) -> dt.datetime:
        """The plant clock: the newest stored event time, the wall clock while the store is
        empty (see :func:`microfab.store.reads.plant_clock`)."""
        return _reads.plant_clock(self.engine)

    def events(
        self,
        *,
        by: str = "ts",
        after_seq: int = 0,
        limit: int | None = None,
        machine_prefix: str | None = None,
        stream: str | None = None,
        newest_first: bool = False,
    ) -> Iterator[StoredEvent]:
        """Stored events ordered by (ts, id) (``by="ts"``) or by ingest sequence (``by="seq"``)."""
        return _reads.events(
            self.engine,
            by=by,
            after_seq=after_seq,
            limit=limit,
            machine_prefix=machine_prefix,
            stream=stream,
            newest_first=newest_first,
        )

    def machine_status(self) -> list[MachineStatus]:
        return _read_models.machine_status(self.engine)

    def order_status(self) -> list[OrderStatus]:
        return _read_models.order_status(self.engine)

    def unknown_machines(self) -> list[tuple[str, dt.datetime, dt.datetime, int]]:
        return _read_models.unknown_machines(self.engine)

    def dead_letters(
        self, *, limit: int | None = None, newest_first: bool = False
    ) -> list[DeadLetter]:
        return _dead_letters.dead_letters(self.engine, limit=limit, newest_first=newest_first)

    def dead_letter_count(self) -> int:
        return _dead_letters.dead_letter_count(self.engine)

    def factory_version(self) -> int | None:
        """The newest applied factory model's version, or None when none was applied."""
        return _factory_versions.factory_version(self.engine)

    def factory(self, version: int | None = None) -> tuple[int, Factory] | None:
        """The newest applied factory model (or a given version), or None when none was applied."""
        return _factory_versions.factory(self.engine, version)

    # ------------------------------------------------------------------ plumbing

    @contextmanager
    def _begin(self) -> Iterator[Connection]:
        """A transaction; losing the database (at connect or mid-transaction) becomes
        :class:`StoreUnavailableError`."""
        try:
            with self.engine.begin() as conn:
                yield conn
        except OperationalError as exc:
            raise unavailable(self.url, exc) from exc
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise unavailable(self.url, exc) from exc
            raise


def open_store(url: str | None = None, *, upgrade: bool = True) -> EventStore:
    """Open (and by default create or upgrade) the store at ``url``; see :func:`resolve_url`."""
    url = resolve_url(url)
    return EventStore(connect(url, upgrade=upgrade), url)
