"""Word that the event log has grown, pushed to whoever shows it live (the dashboard's feed).

Two sources, so a reader need not poll to learn of a commit:

- **PostgreSQL**: every append that inserted events sends ``NOTIFY microfab_events`` inside its
  transaction (delivered at commit, folded into one per transaction by the server);
  :func:`watch` holds one ``LISTEN`` connection on a thread and calls back on each notification.
  Any writer process (ingest workers, the simulator, another host) is heard the same way.
- **This process**: :meth:`EventStore.append` calls :func:`committed` after its commit and the
  read models' catch-up; every watch of the same database in this process is called back. This is
  how a SQLite store is heard (SQLite has no notifications between processes; a reader in another
  process still learns of commits by polling ``last_seq``, a cheap indexed read).

A callback must be quick and must not raise: it is called on the writer's or the listener's thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg
from sqlalchemy.engine import Connection, Engine

CHANNEL = "microfab_events"
_log = logging.getLogger(__name__)
_local: dict[str, set[Callable[[], None]]] = {}
_local_lock = threading.Lock()


def _key(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def notify_in_transaction(conn: Connection) -> None:
    """Send the change notification when ``conn``'s transaction commits (PostgreSQL only)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"NOTIFY {CHANNEL}")


def committed(engine: Engine) -> None:
    """Tell this process's watches of ``engine``'s database that new events are committed."""
    with _local_lock:
        callbacks = list(_local.get(_key(engine), ()))
    for callback in callbacks:
        callback()


class Watch:
    """A running watch (see :func:`watch`); :meth:`close` ends it and its listener thread."""

    def __init__(self, engine: Engine, callback: Callable[[], None]) -> None:
        self._key = _key(engine)
        self._callback = callback
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None
        with _local_lock:
            _local.setdefault(self._key, set()).add(callback)
        if engine.dialect.name == "postgresql":
            libpq = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
            self._thread = threading.Thread(
                target=self._listen, args=(libpq,), name="microfab-change-listener", daemon=True
            )
            self._thread.start()

    @property
    def listening(self) -> bool:
        """True while a PostgreSQL listener thread runs for this watch."""
        return self._thread is not None and self._thread.is_alive()

    def _listen(self, url: str) -> None:
        """LISTEN on a connection of its own; reconnect with back-off when the server goes."""
        delay = 0.5
        while not self._closed.is_set():
            try:
                with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    delay = 0.5
                    self._callback()  # anything committed while not listening
                    while not self._closed.is_set():
                        for _ in conn.notifies(timeout=0.5, stop_after=1):
                            self._callback()
            except psycopg.Error as exc:
                _log.warning("change listener: %s; retrying in %.1f s", exc, delay)
                self._closed.wait(delay)
                delay = min(delay * 2, 10.0)

    def close(self) -> None:
        self._closed.set()
        with _local_lock:
            callbacks = _local.get(self._key)
            if callbacks is not None:
                callbacks.discard(self._callback)
                if not callbacks:
                    del _local[self._key]
        if self._thread is not None:
            self._thread.join(timeout=5)


def watch(engine: Engine, callback: Callable[[], None]) -> Watch:
    """Call ``callback`` whenever events are committed to ``engine``'s database (see the module
    docstring for which commits are heard)."""
    return Watch(engine, callback)
