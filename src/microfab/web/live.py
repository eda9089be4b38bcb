"""Live updates for the dashboard: a Server-Sent Events stream of re-rendered panels.

The feed polls the store's newest sequence number (``EventStore.last_seq``, one indexed query)
every ``poll_s``; when it has grown, it reads a new :class:`~microfab.track.dashboard.Snapshot` (at
most once per ``min_refresh_s``, shared by every open page) and each stream sends the panels'
HTML and the charts' data as one ``update`` message. Any writer — the ingest worker, the
simulator, another process, SQLite or PostgreSQL — is seen the same way, within about
``poll_s + min_refresh_s`` of its commit. Figures computed beside the feed (the carbon panel,
:mod:`microfab.green.carbon_panel`) bump a ``version``; a new version is sent like a new event.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from anyio import to_thread

from microfab.errors import MicrofabError
from microfab.track.dashboard import Snapshot, build
from microfab.track.plant import Plant


@dataclass(frozen=True, slots=True)
class Update:
    seq: int
    message: str
    """The SSE message, ready to send."""
    version: int = 0
    """The ``version`` of the figures computed beside the feed when this was built."""


class LiveFeed:
    """One per app: turns store changes into update messages for every open dashboard.

    ``version`` and ``render_extra`` are for figures computed beside the feed (the carbon
    panel): when ``version()`` moves on while the store has not, only ``render_extra``'s panels
    are re-rendered from the kept snapshot and sent (cheap; the store's own updates are never held
    back by it)."""

    def __init__(
        self,
        plant: Plant,
        render: Callable[[Snapshot], dict[str, Any]],
        *,
        poll_s: float = 0.5,
        min_refresh_s: float = 1.0,
        heartbeat_s: float = 15.0,
        version: Callable[[], int] | None = None,
        render_extra: Callable[[Snapshot], dict[str, str]] | None = None,
    ) -> None:
        self.plant = plant
        self.render = render
        self.poll_s = poll_s
        self.min_refresh_s = min_refresh_s
        self.heartbeat_s = heartbeat_s
        self.version = version or (lambda: 0)
        self.render_extra = render_extra
        self._lock = asyncio.Lock()
        self._latest: Update | None = None
        self._extra: Update | None = None
        """Newer figures for ``_latest``'s sequence number: only the panels that changed."""
        self._snapshot: Snapshot | None = None
        self._built_at = 0.0
        self._checked_at = 0.0
        self._store_seq = -1
        self._closing = threading.Event()

    def close(self) -> None:
        """End every open stream (the server is stopping): pages reconnect to the next server."""
        self._closing.set()

    def _build(self, seq: int) -> Update:
        version = self.version()  # before rendering: figures landing meanwhile are sent next
        snapshot = build(self.plant, seq=seq)
        rendered = dict(self.render(snapshot))
        used = rendered.pop("version", None)  # the version the render used, when it says
        if isinstance(used, int):
            version = used
        payload = {"seq": seq, "factory_version": snapshot.factory_version, **rendered}
        data = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
        self._snapshot = snapshot
        return Update(seq, f"event: update\nid: {seq}\ndata: {data}\n\n", version)

    def _build_extra(self, snapshot: Snapshot) -> Update:
        assert self.render_extra is not None
        version = self.version()
        payload = {
            "seq": snapshot.seq,
            "factory_version": snapshot.factory_version,
            "panels": self.render_extra(snapshot),
        }
        data = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
        return Update(snapshot.seq, f"event: update\nid: {snapshot.seq}\ndata: {data}\n\n", version)

    def _error(self, seq: int, exc: MicrofabError) -> Update:
        data = json.dumps({"seq": seq, "error": {"key": exc.key, "message": exc.message}})
        return Update(seq, f"event: problem\ndata: {data}\n\n", self.version())

    async def current(self) -> Update | None:
        """The newest full update (rebuilt when the store has moved on and the last is old
        enough); newer figures for it, if any, are :meth:`current_extra`."""
        async with self._lock:
            now = time.monotonic()
            if now - self._checked_at >= self.poll_s or self._latest is None:
                self._checked_at = now
                try:
                    self._store_seq = await to_thread.run_sync(self.plant.store.last_seq)
                except MicrofabError:
                    return self._latest  # the store is away; keep showing what we had
            latest = self._latest
            stale = latest is None or latest.seq != self._store_seq
            if stale and (latest is None or now - self._built_at >= self.min_refresh_s):
                seq = self._store_seq
                try:
                    self._latest = await to_thread.run_sync(self._build, seq)
                except MicrofabError as exc:
                    self._latest = self._error(seq, exc)
                self._extra = None
                self._built_at = time.monotonic()
            elif latest is not None and not stale:
                shown = self._extra or latest
                snapshot = self._snapshot
                if shown.version != self.version() and snapshot is not None:
                    if self.render_extra is not None and snapshot.seq == latest.seq:
                        try:
                            self._extra = await to_thread.run_sync(self._build_extra, snapshot)
                        except MicrofabError as exc:
                            self._extra = self._error(latest.seq, exc)
                    elif now - self._built_at >= self.min_refresh_s:
                        self._latest = await to_thread.run_sync(self._build, latest.seq)
                        self._built_at = time.monotonic()
            return self._latest

    def current_extra(self) -> Update | None:
        """Newer figures for :meth:`current`'s update (only the panels that changed), or None."""
        return self._extra

    async def stream(self, last_seen: int | None = None) -> AsyncIterator[str]:
        """SSE messages for one page until the page goes or :meth:`close` is called."""
        yield "retry: 2000\n\n"
        sent = last_seen
        sent_version: int | None = None
        quiet_since = time.monotonic()
        while not self._closing.is_set():
            update = await self.current()
            extra = self.current_extra()
            if extra is not None and update is not None and extra.seq != update.seq:
                extra = None
            if update is not None and sent_version is None and update.seq == sent:
                # the page was rendered at this sequence number, with figures as new as these
                sent_version = (extra or update).version
            message = None
            if update is not None and update.seq != sent:
                message = update.message
                sent, sent_version = update.seq, update.version
            elif extra is not None and extra.version != sent_version:
                message = extra.message
                sent_version = extra.version
            if message is not None:
                quiet_since = time.monotonic()
                yield message
            elif time.monotonic() - quiet_since >= self.heartbeat_s:
                quiet_since = time.monotonic()
                yield ": still here\n\n"
            await asyncio.sleep(self.poll_s / 2)
