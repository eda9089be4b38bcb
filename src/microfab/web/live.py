"""Live updates for the dashboard: a Server-Sent Events stream of the panels that changed.

**When.** The feed is told of new events rather than finding them by polling: PostgreSQL sends
``NOTIFY`` with every append and this process's own appends call back
(:mod:`microfab.store.change_signal`). On word of a change the feed reads the store's newest
sequence number (``EventStore.last_seq``, one indexed query) and, when it has grown, reads a new
:class:`~microfab.track.dashboard.Snapshot` — at once if the last was built ``min_refresh_s`` ago or
more, else when that has passed, so a burst of commits costs one rebuild per ``min_refresh_s``,
shared by every open page. Writers it cannot hear (another process appending to the same SQLite
file) are still seen by a check every ``poll_s``.

**What.** Each page is sent only the parts that differ from what it already shows: the data of
each changed chart, and each changed panel's HTML — once in full, then as line patches against
the HTML the page was sent (:func:`line_patch`; a state change rewrites a tile's few lines, not
the panel). Parts are keyed by name; the page keeps the rest. A page opened at the feed's sequence
number is taken to show what the feed holds; a page that is behind, or a new stream without
``since``, gets everything once. Figures computed beside the feed (the carbon panel,
:mod:`microfab.green.carbon_panel`) bump a ``version``; the changed panel is re-rendered from the
kept snapshot and sent like any other change.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import json
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from anyio import to_thread

from microfab.errors import MicrofabError
from microfab.store.change_signal import Watch, watch
from microfab.track.dashboard import Snapshot, build
from microfab.track.plant import Plant


@dataclass(frozen=True, slots=True)
class Update:
    """What the feed holds: the figures at ``seq``, as JSON text per part."""

    seq: int
    factory_version: int | None
    parts: dict[tuple[str, str], str] = field(default_factory=dict)
    """("panels" | "charts", name) -> that part's value as JSON text."""
    version: int = 0
    """The ``version`` of the figures computed beside the feed when this was built."""
    problem: str | None = None
    """A ready ``problem`` message when the figures could not be read."""

    def message(
        self, sent: dict[tuple[str, str], str] | None, shown: dict[str, str] | None = None
    ) -> str:
        """The SSE ``update`` message with the parts that differ from ``sent`` (all parts when
        ``sent`` is None). A changed panel whose HTML the page holds as text (``shown``: panel
        name -> the HTML last sent in full or patched) goes as line patches when that is
        shorter (see :func:`line_patch`)."""
        groups: dict[str, list[str]] = {"panels": [], "charts": [], "patches": []}
        for (group, name), text in self.parts.items():
            if sent is not None and sent.get((group, name)) == text:
                continue
            key = json.dumps(name, ensure_ascii=False)
            old = shown.get(name) if shown is not None and group == "panels" else None
            if old is not None:
                patch = json.dumps(
                    line_patch(old, json.loads(text)), ensure_ascii=False, separators=(",", ":")
                )
                if len(patch) < len(text):
                    groups["patches"].append(f"{key}:{patch}")
                    continue
            groups[group].append(f"{key}:{text}")
        head = json.dumps({"seq": self.seq, "factory_version": self.factory_version})[:-1]
        tail = "".join(
            f',"{group}":{{{",".join(items)}}}' for group, items in groups.items() if items
        )
        return f"event: update\nid: {self.seq}\ndata: {head}{tail}}}\n\n"


Patch = list[tuple[int, int, list[str]]]


def line_patch(old: str, new: str) -> Patch:
    """``new`` as edits of ``old``'s lines (split on "\\n"): ``(i1, i2, lines)`` replaces old lines
    ``i1``…``i2 - 1`` with ``lines``; applied from the last to the first (:func:`apply_patch`,
    and ``dashboard.js``, which does the same) they give ``new`` exactly."""
    a, b = old.split("\n"), new.split("\n")
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    return [(i1, i2, b[j1:j2]) for tag, i1, i2, j1, j2 in matcher.get_opcodes() if tag != "equal"]


def apply_patch(old: str, patch: Patch) -> str:
    lines = old.split("\n")
    for i1, i2, replacement in reversed(patch):
        lines[i1:i2] = replacement
    return "\n".join(lines)


def _parts(rendered: dict[str, Any]) -> dict[tuple[str, str], str]:
    parts: dict[tuple[str, str], str] = {}
    for group in ("panels", "charts"):
        for name, value in (rendered.get(group) or {}).items():
            parts[(group, name)] = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return parts


class LiveFeed:
    """One per app: turns store changes into update messages for every open dashboard.

    ``version`` and ``render_extra`` are for figures computed beside the feed (the carbon
    panel): when ``version()`` moves on while the store has not, only ``render_extra``'s panels
    are re-rendered from the kept snapshot (cheap; the store's own updates are never held back by
    it)."""

    def __init__(
        self,
        plant: Plant,
        render: Callable[[Snapshot], dict[str, Any]],
        *,
        poll_s: float = 0.5,
        min_refresh_s: float = 0.2,
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
        self._snapshot: Snapshot | None = None
        self._built_at = -1e9
        self._checked_at = -1e9
        self._store_seq = -1
        self._closing = threading.Event()
        self._changed = True
        """Word of a commit came since the last look at the store's sequence number."""
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._watch: Watch | None = None
        self._streams = 0

    # ------------------------------------------------------------------ being told

    def _signal(self) -> None:
        """A commit happened (called on the writer's or the listener's thread)."""
        self._changed = True
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is waiting
                loop.call_soon_threadsafe(self._wake_streams)

    def _wake_streams(self) -> None:
        woken, self._wake = self._wake, asyncio.Event()
        woken.set()

    def close(self) -> None:
        """End every open stream (the server is stopping): pages reconnect to the next server."""
        self._closing.set()
        self._signal()

    # ------------------------------------------------------------------ building

    def _build(self, seq: int) -> Update:
        version = self.version()  # before rendering: figures landing meanwhile are sent next
        snapshot = build(self.plant, seq=seq)
        rendered = dict(self.render(snapshot))
        used = rendered.pop("version", None)  # the version the render used, when it says
        if isinstance(used, int):
            version = used
        self._snapshot = snapshot
        return Update(seq, snapshot.factory_version, _parts(rendered), version)

    def _build_extra(self, latest: Update, snapshot: Snapshot) -> Update:
        assert self.render_extra is not None
        version = self.version()
        parts = dict(latest.parts)
        parts.update(_parts({"panels": self.render_extra(snapshot)}))
        return Update(latest.seq, latest.factory_version, parts, version)

    def _error(self, seq: int, exc: MicrofabError) -> Update:
        data = json.dumps({"seq": seq, "error": {"key": exc.key, "message": exc.message}})
        return Update(
            seq, None, version=self.version(), problem=f"event: problem\ndata: {data}\n\n"
        )

    def _due_in(self) -> float:
        """Seconds until the feed should look again without being told (a rebuild held back
        by ``min_refresh_s``, or the check for writers it cannot hear)."""
        now = time.monotonic()
        due = self._checked_at + self.poll_s
        latest = self._latest
        if latest is None or latest.seq != self._store_seq:
            due = min(due, self._built_at + self.min_refresh_s)
        return max(0.0, due - now)

    async def current(self) -> Update | None:
        """The newest update: rebuilt when the store has moved on (at most once per
        ``min_refresh_s``) or the figures beside the feed have."""
        async with self._lock:
            now = time.monotonic()
            if self._changed or now - self._checked_at >= self.poll_s or self._latest is None:
                self._changed = False
                self._checked_at = now
                try:
                    self._store_seq = await to_thread.run_sync(self.plant.store.last_seq)
                except MicrofabError:
                    return self._latest  # the store is away; keep showing what we had
            latest = self._latest
            stale = latest is None or latest.seq != self._store_seq
            if stale and (latest is None or now - self._built_at >= self.min_refresh_s):
                seq = self._store_seq
                self._built_at = now
                try:
                    self._latest = await to_thread.run_sync(self._build, seq)
                except MicrofabError as exc:
                    self._latest = self._error(seq, exc)
            elif latest is not None and not stale and latest.version != self.version():
                snapshot = self._snapshot
                if snapshot is not None and latest.problem is None:
                    if self.render_extra is not None and snapshot.seq == latest.seq:
                        try:
                            self._latest = await to_thread.run_sync(
                                self._build_extra, latest, snapshot
                            )
                        except MicrofabError as exc:
                            self._latest = self._error(latest.seq, exc)
                    elif now - self._built_at >= self.min_refresh_s:
                        self._built_at = now
                        self._latest = await to_thread.run_sync(self._build, latest.seq)
            return self._latest

    # ------------------------------------------------------------------ streaming

    def _opened(self) -> None:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # asyncio's primitives belong to the loop that first waits
            self._loop, self._wake, self._lock = loop, asyncio.Event(), asyncio.Lock()
        self._streams += 1
        if self._watch is None:
            self._watch = watch(self.plant.store.engine, self._signal)

    def _gone(self) -> None:
        self._streams -= 1
        if self._streams == 0 and self._watch is not None:
            stopping, self._watch = self._watch, None
            stopping.close()

    async def stream(self, last_seen: int | None = None) -> AsyncIterator[str]:
        """SSE messages for one page until the page goes or :meth:`close` is called."""
        self._opened()
        try:
            async for message in self._messages(last_seen):
                yield message
        finally:
            self._gone()

    async def _messages(self, last_seen: int | None) -> AsyncIterator[str]:
        yield "retry: 2000\n\n"
        sent: dict[tuple[str, str], str] | None = None
        """The parts the page shows (None: unknown, send all)."""
        shown: dict[str, str] = {}
        """Panel name -> its HTML as the page holds it from this stream (can take patches)."""
        sent_seq = last_seen
        sent_version: int | None = None
        quiet_since = time.monotonic()
        while not self._closing.is_set():
            wake = self._wake  # before looking: a signal from now on ends the wait below
            update = await self.current()
            message = None
            if update is not None and update.problem is not None:
                if (update.seq, update.version) != (sent_seq, sent_version):
                    message = update.problem
                    sent, sent_seq, sent_version = None, update.seq, update.version
            elif update is not None:
                if sent is None and update.seq == last_seen and sent_version is None:
                    sent = dict(update.parts)  # the page was rendered at this sequence number
                    sent_seq, sent_version = update.seq, update.version
                changed = sent is None or sent != update.parts
                if update.seq != sent_seq or changed:
                    message = update.message(sent, shown)
                    for (group, name), text in update.parts.items():
                        if group == "panels" and (sent is None or sent.get((group, name)) != text):
                            shown[name] = json.loads(text)
                    sent, sent_seq, sent_version = dict(update.parts), update.seq, update.version
            if message is not None:
                quiet_since = time.monotonic()
                yield message
            elif time.monotonic() - quiet_since >= self.heartbeat_s:
                quiet_since = time.monotonic()
                yield ": still here\n\n"
            if self._closing.is_set():
                break
            heartbeat_in = self.heartbeat_s - (time.monotonic() - quiet_since)
            timeout = max(0.01, min(self._due_in(), heartbeat_in))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout)
