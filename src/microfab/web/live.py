"""Live updates for the dashboard: a Server-Sent Events stream of re-rendered panels.

The feed polls the store's newest sequence number (``EventStore.last_seq``, one indexed query)
every ``poll_s``; when it has grown, it reads a new :class:`~microfab.web.panels.Snapshot` (at
most once per ``min_refresh_s``, shared by every open page) and each stream sends the panels'
HTML and the charts' data as one ``update`` message. Any writer — the ingest worker, the
simulator, another process, SQLite or PostgreSQL — is seen the same way, within about
``poll_s + min_refresh_s`` of its commit.
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

from microfab.api.plant import Plant
from microfab.errors import MicrofabError
from microfab.web.panels import Snapshot, build


@dataclass(frozen=True, slots=True)
class Update:
    seq: int
    message: str
    """The SSE message, ready to send."""


class LiveFeed:
    """One per app: turns store changes into update messages for every open dashboard."""

    def __init__(
        self,
        plant: Plant,
        render: Callable[[Snapshot], dict[str, Any]],
        *,
        poll_s: float = 0.5,
        min_refresh_s: float = 1.0,
        heartbeat_s: float = 15.0,
    ) -> None:
        self.plant = plant
        self.render = render
        self.poll_s = poll_s
        self.min_refresh_s = min_refresh_s
        self.heartbeat_s = heartbeat_s
        self._lock = asyncio.Lock()
        self._latest: Update | None = None
        self._built_at = 0.0
        self._checked_at = 0.0
        self._store_seq = -1
        self._closing = threading.Event()

    def close(self) -> None:
        """End every open stream (the server is stopping): pages reconnect to the next server."""
        self._closing.set()

    def _build(self, seq: int) -> Update:
        snapshot = build(self.plant, seq=seq)
        payload = {"seq": seq, "factory_version": snapshot.factory_version, **self.render(snapshot)}
        data = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
        return Update(seq, f"event: update\nid: {seq}\ndata: {data}\n\n")

    def _error(self, seq: int, exc: MicrofabError) -> Update:
        data = json.dumps({"seq": seq, "error": {"key": exc.key, "message": exc.message}})
        return Update(seq, f"event: problem\ndata: {data}\n\n")

    async def current(self) -> Update | None:
        """The newest update (rebuilt when the store has moved on and the last is old enough)."""
        async with self._lock:
            now = time.monotonic()
            if now - self._checked_at >= self.poll_s or self._latest is None:
                self._checked_at = now
                try:
                    self._store_seq = await to_thread.run_sync(self.plant.store.last_seq)
                except MicrofabError:
                    return self._latest  # the store is away; keep showing what we had
            stale = self._latest is None or self._latest.seq != self._store_seq
            if stale and (self._latest is None or now - self._built_at >= self.min_refresh_s):
                seq = self._store_seq
                try:
                    self._latest = await to_thread.run_sync(self._build, seq)
                except MicrofabError as exc:
                    self._latest = self._error(seq, exc)
                self._built_at = time.monotonic()
            return self._latest

    async def stream(self, last_seen: int | None = None) -> AsyncIterator[str]:
        """SSE messages for one page until the page goes or :meth:`close` is called."""
        yield "retry: 2000\n\n"
        sent = last_seen
        quiet_since = time.monotonic()
        while not self._closing.is_set():
            update = await self.current()
            if update is not None and update.seq != sent:
                sent = update.seq
                quiet_since = time.monotonic()
                yield update.message
            elif time.monotonic() - quiet_since >= self.heartbeat_s:
                quiet_since = time.monotonic()
                yield ": still here\n\n"
            await asyncio.sleep(self.poll_s / 2)
