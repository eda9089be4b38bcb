"""Keep the production read models caught up in the background, off the append path.

:meth:`EventStore.append` commits events and the ``machine_status``/``order_status`` read models
in one transaction, and stops there: taking new events into the checkpointed production views
(:mod:`microfab.store.production_views`: hourly counts, state spans, energy, material) costs a few
statements per machine, which per append would make ingest as slow as the number of machines
touched. Every read of those views catches up first, so a reader never sees them behind the log;
a :class:`ViewFollower` beside a writer (``microfab ingest``, the demo) catches up soon after
commits anyway — told of them by :mod:`microfab.store.change_signal`, at most once per
``every_s`` — so readers seldom have work to do and ``/healthz`` shows the views close behind.
"""

from __future__ import annotations

import logging
import threading

from microfab.errors import MicrofabError
from microfab.store.change_signal import watch
from microfab.store.event_store import EventStore
from microfab.store.production_views import catch_up

_log = logging.getLogger(__name__)


class ViewFollower:
    """A thread that catches the production views up after commits (``with`` starts/stops it)."""

    def __init__(self, store: EventStore, *, every_s: float = 0.5) -> None:
        self.store = store
        self.every_s = every_s
        self.runs = 0
        """Catch-ups done (for tests and the curious)."""
        self._poked = threading.Event()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._follow, name="microfab-views", daemon=True)
        self._watch = watch(store.engine, self._poked.set)

    def __enter__(self) -> ViewFollower:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _follow(self) -> None:
        while not self._closed.is_set():
            self._poked.wait()
            if self._closed.is_set():
                return
            self._poked.clear()
            try:
                catch_up(self.store)
                self.runs += 1
            except MicrofabError as exc:  # the database is away: readers catch up themselves
                _log.warning("read models not caught up: %s", exc)
            self._closed.wait(self.every_s)  # commits meanwhile are taken in by the next run

    def close(self) -> None:
        """Stop following (a catch-up under way finishes first)."""
        self._watch.close()
        self._closed.set()
        self._poked.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
