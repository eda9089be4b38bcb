"""Operator input as new events, never edits: a reason for a stop, counts typed in, corrections.

- **A reason for a stop** is a *restatement* (see docs/events.md): a state event with the stop's
  ``ts`` and ``state``, the reason code, ``corrects`` = the stop's event id and ``by`` = the
  operator; its id is the newest earlier id (the stop's, or its last restatement's) + ``~`` + a
  token, so it sorts after them and every reader taking state changes in (ts, id) order applies
  the newest reason.
- **Counts for a machine with no connection** are ordinary count events with ``by`` set.
- **A correction** of a wrong count is a count event with ``corrects`` = the wrong event's id and
  signed ``good``/``scrap`` differences, stamped with the wrong event's ``ts``, order and step;
  the operator gives the right numbers and this module works out the differences from the
  original and any earlier corrections, never letting the net fall below zero.

Every event id comes from a token the form (or the API client) sends, so a double tap on a
tablet stores the event once: the second append is a duplicate.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass, field

from microfab.errors import InputError, NotFoundError
from microfab.model.clock_policy import check_event_time
from microfab.model.events import (
    MAX_COUNT,
    Event,
    MachineState,
    PartCount,
    StateChange,
    format_ts,
)
from microfab.model.factory import Factory, MachineRef
from microfab.store.event_store import StoredEvent
from microfab.track import event_query
from microfab.track.plant import Plant

TOKEN = re.compile(r"^[A-Za-z0-9_-]{6,40}$")
RUNNING = MachineState.RUNNING.value


def new_token() -> str:
    return uuid.uuid4().hex


def check_token(token: str | None) -> str:
    if token is None or token == "":
        return new_token()
    if not TOKEN.match(token):
        raise InputError(
            "token: use 6–40 letters, digits, '-' or '_' (or leave it out and one is made up)"
        )
    return token


def check_by(by: str | None) -> str:
    name = (by or "").strip()
    if not name:
        raise InputError("say who is entering this: the operator name ('by') is required")
    if len(name) > 64:
        raise InputError("the operator name ('by') is longer than 64 characters")
    return name


def restatement_id(original: str, token: str) -> str:
    """An id that sorts after ``original`` (byte-wise), at most 64 characters: ``original~token``,
    or, when that is too long, a prefix of ``original`` with its next character (not ``~``, the
    largest printable one) replaced by ``~``, then as much of the token as fits."""
    suffix = "~" + token[:8]
    if len(original) + len(suffix) <= 64:
        return original + suffix
    room = 64 - len(suffix)
    cuts = [
        *range(min(room, len(original) - 1), -1, -1),
        *range(min(len(original), 64) - 1, room, -1),
    ]
    for cut in cuts:
        if original[cut] != "~":
            return original[:cut] + suffix[: 64 - cut]
    raise InputError(f"cannot make an id that sorts after '{original}'")


# ---------------------------------------------------------------------------- reading


@dataclass(slots=True)
class Stop:
    """A state the machine entered other than running, with its reason as restated."""

    stored: StoredEvent
    until: dt.datetime | None
    restatements: list[StoredEvent] = field(default_factory=list)

    @property
    def event(self) -> StateChange:
        assert isinstance(self.stored.event, StateChange)
        return self.stored.event

    @property
    def reason(self) -> str | None:
        for r in reversed(self.restatements):
            assert isinstance(r.event, StateChange)
            return r.event.reason
        return self.event.reason

    @property
    def given_by(self) -> str | None:
        for r in reversed(self.restatements):
            assert isinstance(r.event, StateChange)
            return r.event.by
        return None

    @property
    def seconds(self) -> float | None:
        return None if self.until is None else (self.until - self.event.ts).total_seconds()

    def to_json(self) -> dict[str, object]:
        return {
            "event": self.event.id,
            "ts": format_ts(self.event.ts),
            "until": format_ts(self.until) if self.until else None,
            "seconds": self.seconds,
            "state": self.event.state.value,
            "reason": self.reason,
            "explained": self.reason is not None,
            "reason_by": self.given_by,
        }


def recent_stops(plant: Plant, ref: MachineRef, limit: int = 30) -> list[Stop]:
    """The machine's newest stops (newest first), with the reasons operators gave them."""
    rows, _ = event_query.page(
        plant.store, machines=[ref.path], stream="state", limit=limit * 3, newest_first=True
    )
    originals = [r for r in rows if getattr(r.event, "corrects", None) is None]
    restated = event_query.corrections(plant.store, originals)
    stops: list[Stop] = []
    following: dt.datetime | None = None
    for stored in originals:  # newest first: the one after a stop ends it
        ev = stored.event
        assert isinstance(ev, StateChange)
        if ev.state.value != RUNNING:
            stops.append(Stop(stored, following, restated.get(ev.id, [])))
        following = ev.ts
    return stops[:limit]


@dataclass(slots=True)
class CountLine:
    """A count event, the corrections made to it, and what it now adds up to."""

    stored: StoredEvent
    corrections: list[StoredEvent] = field(default_factory=list)

    @property
    def event(self) -> PartCount:
        assert isinstance(self.stored.event, PartCount)
        return self.stored.event

    @property
    def good(self) -> int:
        return self.event.good + sum(_count(c).good for c in self.corrections)

    @property
    def scrap(self) -> int:
        return self.event.scrap + sum(_count(c).scrap for c in self.corrections)

    def to_json(self) -> dict[str, object]:
        return {
            "event": self.event.id,
            "ts": format_ts(self.event.ts),
            "order": self.event.order,
            "operation": self.event.operation,
            "reported": {"good": self.event.good, "scrap": self.event.scrap},
            "good": self.good,
            "scrap": self.scrap,
            "by": self.event.by,
            "corrections": [
                {
                    "event": c.event.id,
                    "good": _count(c).good,
                    "scrap": _count(c).scrap,
                    "by": _count(c).by,
                    "recorded": format_ts(c.ingest_ts),
                }
                for c in self.corrections
            ],
        }


def _count(stored: StoredEvent) -> PartCount:
    assert isinstance(stored.event, PartCount)
    return stored.event


def recent_counts(plant: Plant, ref: MachineRef, limit: int = 20) -> list[CountLine]:
    """The machine's newest count events (not corrections), newest first, with their nets."""
    rows, _ = event_query.page(
        plant.store, machines=[ref.path], stream="count", limit=limit * 3, newest_first=True
    )
    originals = [r for r in rows if getattr(r.event, "corrects", None) is None][:limit]
    found = event_query.corrections(plant.store, originals)
    return [CountLine(r, found.get(r.event.id, [])) for r in originals]


# ---------------------------------------------------------------------------- writing


@dataclass(frozen=True, slots=True)
class Entry:
    """What an operator input stored: the event, and whether it was new (not a repeat)."""

    event: Event
    stored: bool


def _append(plant: Plant, event: Event) -> Entry:
    result = plant.store.append([event])
    if result.conflicts:
        raise InputError(
            f"event id '{event.id}' is already stored with different content; "
            "send a new token (or id)"
        )
    return Entry(event, result.inserted == 1)


def _repeat(plant: Plant, event_id: str, ref: MachineRef, corrects: str | None) -> Entry | None:
    """The entry already stored under ``event_id`` by the same request (a second tap), if any."""
    found = event_query.by_id(plant.store, event_id)
    if found is None:
        return None
    ev = found.event
    if ev.machine == ref.path and getattr(ev, "corrects", None) == corrects:
        return Entry(ev, stored=False)
    raise InputError(f"event id '{event_id}' is already taken; send a new token")


def _stored_event(plant: Plant, ref: MachineRef, event_id: str, stream: str) -> StoredEvent:
    stored = event_query.by_id(plant.store, event_id)
    if stored is None or stored.event.machine != ref.path or stored.event.stream != stream:
        what = "state change" if stream == "state" else "count"
        raise NotFoundError(f"no {what} event '{event_id}' on machine {ref.path}")
    return stored


def give_reason(
    plant: Plant,
    ref: MachineRef,
    *,
    event_id: str,
    reason: str,
    by: str | None,
    token: str | None = None,
) -> Entry:
    """Give (or change) the reason code of a stop; see the module docstring."""
    factory = plant.factory()
    name = check_by(by)
    key = check_token(token)
    codes = factory.downtime_reasons.codes()
    if reason not in codes:
        shown = ", ".join(codes[:20]) + (", …" if len(codes) > 20 else "")
        raise InputError(
            f"reason code '{reason}' is not in the factory's downtime reasons ({shown or 'none defined'})"
        )
    stored = _stored_event(plant, ref, event_id, "state")
    stop = stored.event
    assert isinstance(stop, StateChange)
    if stop.corrects is not None:
        raise InputError(
            f"event '{event_id}' is itself a restatement; give the reason to the stop "
            f"'{stop.corrects}'"
        )
    if stop.state.value == RUNNING:
        raise InputError(f"event '{event_id}' is the machine starting to run, not a stop")
    current = Stop(stored, None, event_query.corrections(plant.store, [stored]).get(stop.id, []))
    for earlier in current.restatements:
        if earlier.event.id.endswith("~" + key[:8]):  # the same tap again
            return Entry(earlier.event, stored=False)
    if current.reason == reason:
        raise InputError(f"the stop at {format_ts(stop.ts)} already has reason {reason}")
    newest = current.restatements[-1].event.id if current.restatements else stop.id
    event = StateChange(
        id=restatement_id(newest, key),  # sorts after the stop and every earlier restatement
        ts=stop.ts,
        machine=ref.path,
        state=stop.state,
        reason=reason,
        corrects=stop.id,
        by=name,
    )
    return _append(plant, event)


def _operation_for(
    factory: Factory, ref: MachineRef, product: str | None, operation: int | None
) -> int | None:
    """The routing step of ``product`` this machine runs: checked if given, inferred if unique."""
    if product is None:
        return operation
    try:
        routing = factory.product(product).routing
    except KeyError:
        return operation
    steps = [op.seq for op in routing if ref.machine.id in op.machines]
    if operation is not None:
        if steps and operation not in steps:
            raise InputError(
                f"operation {operation} of {product} does not run on {ref.machine.id} "
                f"(its steps there: {', '.join(map(str, steps))})"
            )
        return operation
    return steps[0] if len(steps) == 1 else None


def enter_count(
    plant: Plant,
    ref: MachineRef,
    *,
    good: int,
    scrap: int,
    by: str | None,
    ts: dt.datetime | None = None,
    order: str | None = None,
    operation: int | None = None,
    token: str | None = None,
) -> Entry:
    """Record units counted by hand on a machine that has no connection (or missed some)."""
    factory = plant.factory()
    name = check_by(by)
    key = check_token(token)
    if not ref.machine.produces:
        raise InputError(f"machine {ref.path} does not make countable units")
    if good < 0 or scrap < 0:
        raise InputError("good and scrap are numbers of units, 0 or more")
    if good > MAX_COUNT or scrap > MAX_COUNT:
        raise InputError(f"good and scrap: at most {MAX_COUNT:,} units per entry")
    if good + scrap == 0:
        raise InputError("nothing to record: good and scrap are both 0")
    check_event_time(ts, plant.stamp())  # not ahead of the plant's clock, not before 2000
    repeat = _repeat(plant, f"op-{key}", ref, None)
    if repeat is not None:
        return repeat
    product = None
    if order:
        known = {o.order: o for o in plant.store.order_status()}
        if order not in known:
            raise NotFoundError(f"no work order '{order}' in the store")
        product = known[order].product
    event = PartCount(
        id=f"op-{key}",
        ts=ts or plant.now(),
        machine=ref.path,
        good=good,
        scrap=scrap,
        order=order or None,
        operation=_operation_for(factory, ref, product, operation),
        by=name,
    )
    return _append(plant, event)


def correct_count(
    plant: Plant,
    ref: MachineRef,
    *,
    event_id: str,
    good: int,
    scrap: int,
    by: str | None,
    token: str | None = None,
) -> Entry:
    """Say what a stored count should have been; store the compensating difference."""
    name = check_by(by)
    key = check_token(token)
    if good < 0 or scrap < 0:
        raise InputError("the corrected good and scrap are numbers of units, 0 or more")
    if good > MAX_COUNT or scrap > MAX_COUNT:
        raise InputError(f"good and scrap: at most {MAX_COUNT:,} units per entry")
    stored = _stored_event(plant, ref, event_id, "count")
    original = stored.event
    assert isinstance(original, PartCount)
    if original.corrects is not None:
        raise InputError(
            f"event '{event_id}' is itself a correction; correct the count '{original.corrects}'"
        )
    repeat = _repeat(plant, f"op-{key}", ref, original.id)
    if repeat is not None:
        return repeat
    line = CountLine(stored, event_query.corrections(plant.store, [stored]).get(original.id, []))
    delta_good, delta_scrap = good - line.good, scrap - line.scrap
    if delta_good == 0 and delta_scrap == 0:
        raise InputError(
            f"count '{event_id}' already adds up to good {good}, scrap {scrap}; nothing to correct"
        )
    event = PartCount(
        id=f"op-{key}",
        ts=original.ts,
        machine=ref.path,
        corrects=original.id,
        good=delta_good,
        scrap=delta_scrap,
        order=original.order,
        operation=original.operation,
        by=name,
    )
    return _append(plant, event)
