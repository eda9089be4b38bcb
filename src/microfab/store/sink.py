"""An in-process event sink: buffers published events and appends them to the store in batches."""

from __future__ import annotations

from microfab.model.events import Event
from microfab.store.event_store import AppendResult, EventStore


class StoreSink:
    """Implements the simulator's publisher interface on top of :class:`EventStore`."""

    def __init__(self, store: EventStore, batch_size: int = 2000) -> None:
        self.store = store
        self.batch_size = batch_size
        self.totals = AppendResult()
        self.published = 0
        self._buffer: list[Event] = []

    def publish(self, event: Event) -> None:
        self._buffer.append(event)
        self.published += 1
        if len(self._buffer) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        if not self._buffer:
            return
        batch, self._buffer = self._buffer, []
        result = self.store.append(batch)
        result.inserted_ids = []  # not needed here; keep memory flat on long runs
        self.totals.merge(result)
