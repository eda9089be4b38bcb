"""Stored events by machine, stream and time range, a page at a time; look-ups by id.

The reads are :mod:`microfab.store.event_pages`; this module adds the API's page cursor: the
(ts, id) of the last event of a page, encoded, so a page never shifts when events arrive.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from collections.abc import Sequence

from microfab.errors import InputError
from microfab.model.events import format_ts, parse_ts
from microfab.store import EventStore
from microfab.store.event_pages import correcting_events, entered_events, event_by_id, events_page
from microfab.store.event_store import StoredEvent


def encode_cursor(ts: dt.datetime, event_id: str) -> str:
    raw = json.dumps([format_ts(ts), event_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[dt.datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        ts_text, event_id = json.loads(raw)
        return parse_ts(ts_text), str(event_id)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise InputError(
            f"cursor '{cursor[:40]}' is not one this API gave out; start again without it"
        ) from None


def page(
    store: EventStore,
    *,
    machines: Sequence[str] | None = None,
    stream: str | None = None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    cursor: str | None = None,
    limit: int = 100,
    newest_first: bool = False,
) -> tuple[list[StoredEvent], str | None]:
    """Up to ``limit`` events in (ts, id) order (or reversed), and the cursor of the next page."""
    rows = events_page(
        store,
        machines=machines,
        stream=stream,
        start=start,
        end=end,
        after=decode_cursor(cursor) if cursor else None,
        limit=limit + 1,
        newest_first=newest_first,
    )
    more = len(rows) > limit
    rows = rows[:limit]
    following = encode_cursor(rows[-1].event.ts, rows[-1].event.id) if more and rows else None
    return rows, following


def by_id(store: EventStore, event_id: str) -> StoredEvent | None:
    return event_by_id(store, event_id)


def corrections(store: EventStore, targets: Sequence[StoredEvent]) -> dict[str, list[StoredEvent]]:
    """Events that correct (or restate) one of ``targets``, by the id they correct, oldest first."""
    found: dict[str, list[StoredEvent]] = {}
    for stored in correcting_events(store, targets):
        target = getattr(stored.event, "corrects", None)
        if target is not None:
            found.setdefault(target, []).append(stored)
    return found


def operator_entries(
    store: EventStore,
    *,
    machines: Sequence[str] | None = None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    limit: int = 50,
) -> list[StoredEvent]:
    """Events entered by a person (``by`` set), newest first."""
    return entered_events(store, machines=machines, start=start, end=end, limit=limit)
