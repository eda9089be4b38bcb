"""Event store and read models on SQLite (embedded default) or PostgreSQL.

Public surface: :func:`open_store`, :class:`EventStore`, :class:`AppendResult`,
:class:`IdConflict`, :data:`DEFAULT_DB_URL`.
"""

from microfab.store.event_store import AppendResult, EventStore, IdConflict, open_store
from microfab.store.url import DEFAULT_DB_URL, mask_url

__all__ = ["DEFAULT_DB_URL", "AppendResult", "EventStore", "IdConflict", "mask_url", "open_store"]
