"""The MQTT Unified Namespace contract: ``microfab/v1/{site}/{area}/{line}/{cell}/{machine}/{stream}``.

The machine path comes from the topic and the stream from its last level; the payload carries the
stream's fields plus ``id`` and ``ts`` (see docs/topics.md).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from typing import Any, TypeVar

from microfab.model.events import STREAMS, Event, event_to_dict

TOPIC_ROOT = "microfab/v1"
SUBSCRIPTION = f"{TOPIC_ROOT}/#"
"""What ingest subscribes to: everything under the root, so that a topic with the wrong number of
levels arrives and is dead-lettered as ``bad_topic`` rather than never being seen."""
ALERTS_LEVEL = "alerts"
"""``microfab/v1/{site}/alerts`` carries microfab's own alerts: under the root, but no event."""
SHARED_GROUP = "microfab"
_LEVEL = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


def shared(subscription: str, group: str = SHARED_GROUP) -> str:
    """An MQTT 5 shared subscription: brokers hand each message to one member of the group."""
    return f"$share/{group}/{subscription}"


def is_alerts_topic(topic: str) -> bool:
    """True for ``microfab/v1/{site}/alerts``, where microfab publishes its alerts (ingest
    passes them by: they are neither events nor mistakes)."""
    levels = topic.split("/")
    return (
        len(levels) == 4
        and levels[:2] == TOPIC_ROOT.split("/")
        and levels[3] == ALERTS_LEVEL
        and bool(_LEVEL.match(levels[2]))
    )


def parse_topic(topic: str) -> tuple[str, str]:
    """``microfab/v1/s/a/l/c/m/count`` -> (``s/a/l/c/m``, ``count``); ValueError says what is wrong."""
    levels = topic.split("/")
    if levels[:2] != TOPIC_ROOT.split("/"):
        raise ValueError(f"topic does not start with {TOPIC_ROOT}/")
    if len(levels) != 8:
        raise ValueError(
            f"expected {TOPIC_ROOT}/site/area/line/cell/machine/stream, got {len(levels)} levels"
        )
    *path, stream = levels[2:]
    if stream not in STREAMS:
        raise ValueError(f"unknown stream '{stream}'; expected one of {', '.join(STREAMS)}")
    for level in path:
        if not _LEVEL.match(level):
            raise ValueError(
                f"topic level '{level}' is not an id (lower-case letters, digits, '-', '_')"
            )
    return "/".join(path), stream


def event_topic(event: Event) -> str:
    return f"{TOPIC_ROOT}/{event.machine}/{event.stream}"


def event_payload(event: Event) -> dict[str, Any]:
    """The payload of an event on the wire: its export shape less machine and stream."""
    data = event_to_dict(event)
    del data["machine"], data["stream"]
    return data


def encode(events: list[Event]) -> bytes:
    """One payload: a single object, or an array when batching several events of one topic."""
    body: Any = event_payload(events[0]) if len(events) == 1 else [event_payload(e) for e in events]
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


_T = TypeVar("_T")

REMEMBERED_TOPIC_LENGTH = 256
"""Topics up to this many characters are remembered by :func:`remembered` (a real one is far
shorter; a longer one is worked out each time, so no sender can fill the memory)."""


def remembered(function: Callable[[str], _T]) -> Callable[[str], _T]:
    """``function`` of a topic, remembered for the last 4,096 topics of at most
    :data:`REMEMBERED_TOPIC_LENGTH` characters: a plant publishes on a bounded set of topics,
    and ingest asks the same questions of each message's topic."""
    cached = functools.lru_cache(maxsize=4096)(function)

    def look_up(topic: str) -> _T:
        return cached(topic) if len(topic) <= REMEMBERED_TOPIC_LENGTH else function(topic)

    return look_up
