"""Replay dead letters: judge each kept MQTT message again, as ingest would, once a device is fixed.

A message dead-lettered ``bad_time`` (a PLC whose clock had reset), ``unknown_machine`` (before
the factory model knew the machine), ``unknown_site`` (at HQ, before the site was registered) or
``invalid_event`` (before a mapping was fixed) keeps its
topic and payload. :func:`replay` decodes each again with :func:`~microfab.connect.decode.decode_message`
and the clock policy, optionally moving every event time by ``shift_s`` seconds first (a device
clock known to be off by that much), appends the events it yields and has the letter marked as
replayed. A letter that is still rejected stays as it is, waiting, with the new reason reported.

A ``site_mismatch`` letter (HQ refused another site's uplink writing as this one) is never
replayed.

Idempotent: event ids make a second append of the same events a duplicate, and a marked letter is
not offered again. Replays take old data on purpose: by default the policy has no age limit (the
future bound and the year-2000 floor still apply).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from microfab.connect.decode import decode_message
from microfab.connect.site_check import site_refusal
from microfab.model.clock_policy import UNLIMITED_AGE, ClockPolicy
from microfab.model.dead_letter import DeadLetter
from microfab.model.events import Event, format_ts, parse_ts


class AppendOutcome(Protocol):
    inserted: int
    duplicates: int

    @property
    def conflicts(self) -> Sequence[Any]: ...


class ReplayTarget(Protocol):
    """Where replayed events go (the event store provides it)."""

    def append(self, events: Iterable[Event]) -> AppendOutcome: ...


@dataclass
class ReplayOutcome:
    """What one replay did."""

    replayed: int = 0
    """Letters whose events were all stored (or already there): marked replayed."""
    stored: int = 0
    duplicates: int = 0
    still_rejected: list[tuple[DeadLetter, str]] = field(default_factory=list)
    """Letters left waiting, with the reason they were rejected again."""


_CUT = re.compile(r"…\[\d+ more chars\]$")
"""The tail :func:`~microfab.model.dead_letter.payload_text` puts on a payload it cut short."""

CHUNK = 500
"""Letters per store transaction."""


def shifted_payload(payload: str, shift_s: float) -> str:
    """The payload with each event's ``ts`` moved by ``shift_s`` seconds (an object or an array of
    objects); unchanged when it is not such JSON or a ``ts`` is not a time (decoding says why)."""
    if shift_s == 0:
        return payload
    try:
        body = json.loads(payload)
    except ValueError:
        return payload
    items = body if isinstance(body, list) else [body]
    delta = dt.timedelta(seconds=shift_s)
    for item in items:
        if isinstance(item, dict) and "ts" in item:
            try:
                item["ts"] = format_ts(parse_ts(item["ts"]) + delta)
            except (ValueError, OverflowError):
                return payload
    return json.dumps(body, ensure_ascii=False)


def replay(
    letters: Iterable[DeadLetter],
    target: ReplayTarget,
    mark: Callable[[list[DeadLetter]], object],
    *,
    received_at: dt.datetime,
    shift_s: float = 0.0,
    clock_policy: ClockPolicy = UNLIMITED_AGE,
    known_machines: frozenset[str] | None = None,
    strict: bool = False,
    known_sites: frozenset[str] | None = None,
) -> ReplayOutcome:
    """Decode each letter again (times moved by ``shift_s``), append the events, and ``mark``
    the letters that went in; see the module docstring."""
    outcome = ReplayOutcome()
    chunk: list[tuple[DeadLetter, list[Event]]] = []
    for letter in letters:
        if not letter.topic:
            outcome.still_rejected.append((letter, "no topic was kept: nothing to replay"))
            continue
        if letter.reason.startswith("site_mismatch"):  # HQ refused it on purpose (docs/hq.md)
            outcome.still_rejected.append(
                (letter, "site_mismatch: sent by another site's uplink; never replayed")
            )
            continue
        if letter.reason.startswith("unknown_site") and known_sites is not None:
            refusal = site_refusal(letter.topic, None, known_sites)
            if refusal is not None:  # still not registered
                outcome.still_rejected.append((letter, refusal))
                continue
        if _CUT.search(letter.payload):
            outcome.still_rejected.append(
                (letter, "the payload was cut short when it was kept: it cannot be replayed")
            )
            continue
        payload = shifted_payload(letter.payload, shift_s)
        decoded = decode_message(
            letter.topic,
            payload.encode("utf-8", "surrogatepass"),
            received_at=received_at,
            known_machines=known_machines,
            strict=strict,
            source=letter.source,
            clock_policy=clock_policy,
        )
        if decoded.dead:
            outcome.still_rejected.append((letter, decoded.dead[0].reason))
            continue
        chunk.append((letter, decoded.events))
        if len(chunk) >= CHUNK:
            _commit(chunk, target, mark, outcome)
            chunk = []
    if chunk:
        _commit(chunk, target, mark, outcome)
    return outcome


def _commit(
    chunk: list[tuple[DeadLetter, list[Event]]],
    target: ReplayTarget,
    mark: Callable[[list[DeadLetter]], object],
    outcome: ReplayOutcome,
) -> None:
    result = target.append([ev for _, events in chunk for ev in events])
    outcome.stored += result.inserted
    outcome.duplicates += result.duplicates
    conflicting = {str(getattr(c, "id", c)) for c in result.conflicts}
    went_in: list[DeadLetter] = []
    for letter, events in chunk:
        clash = next((ev.id for ev in events if ev.id in conflicting), None)
        if clash is None:
            went_in.append(letter)
        else:
            outcome.still_rejected.append(
                (letter, f"id_conflict: event '{clash}' is stored with different content")
            )
    mark(went_in)
    outcome.replayed += len(went_in)
