"""A message that could not become an event, kept with the reason so nothing is silently lost."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

MAX_PAYLOAD_CHARS = 4096
"""Dead letters keep at most this much of the payload (the reason says if it was cut)."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One rejected message (or one rejected element of a batch)."""

    source: str
    topic: str
    payload: str
    reason: str
    received_at: dt.datetime

    @property
    def key(self) -> str:
        """Idempotency key: the same message rejected again for the same reason is stored once."""
        text = "\x1f".join((self.source, self.topic, self.payload, self.reason))
        return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def payload_text(raw: bytes | str, limit: int = MAX_PAYLOAD_CHARS) -> str:
    """Readable, bounded text of a payload (bytes decoded leniently)."""
    text = raw if isinstance(raw, str) else raw.decode("utf-8", "backslashreplace")
    return text if len(text) <= limit else text[:limit] + f"…[{len(text) - limit} more chars]"
