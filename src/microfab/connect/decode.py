"""Judge one MQTT message: every element becomes exactly one event or one dead letter.

Pure and total: whatever bytes arrive on whatever topic, :func:`decode_message` returns; it never
raises. Reasons are short, stable prefixes (``bad_json``, ``bad_topic``, ``invalid_event``,
``bad_time``, ``unknown_machine``, ``oversize``, ``bad_batch``) followed by what was expected.
An event whose time breaks the clock policy (:mod:`microfab.model.clock_policy`, judged against
``received_at``) is a ``bad_time`` dead letter, its payload kept for a replay. What it returns
fits either back end: no NaN or infinite numbers (``bad_json``), no NUL characters in events
(``invalid_event``), and dead letters' text with NUL and lone surrogates escaped. The one
exception to "event or dead letter": ``microfab/v1/{site}/alerts``, microfab's own alerts, which
ingest receives (it subscribes to ``microfab/v1/#``) and passes by. A state event whose downtime
reason is not one of the factory's codes is stored, flagged: its reason becomes
``unknown:<code>``.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import msgspec

from microfab.connect.topics import is_alerts_topic, parse_topic, remembered
from microfab.model.clock_policy import ClockPolicy
from microfab.model.dead_letter import DeadLetter, payload_text
from microfab.model.events import Event, StateChange, event_from_dict, event_to_dict, safety_stop

DEFAULT_MAX_PAYLOAD = 256 * 1024
UNKNOWN_REASON_PREFIX = "unknown:"
"""How a stored downtime reason that is not one of the factory's codes starts."""
MAX_BATCH = 10_000


class _BadNumber(ValueError):
    """A JSON number or constant that no store can keep (NaN, Infinity, 1e400)."""


def _no_constant(name: str) -> float:
    raise _BadNumber(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _BadNumber(f"number {text[:40]} is out of range")
    return value


_json = json.JSONDecoder(parse_constant=_no_constant, parse_float=_finite)
"""JSON text to Python, refusing what no store can keep (NaN, Infinity, numbers out of range)."""


class _BadJson(ValueError):
    """A payload that is not JSON text any store can keep; the message says where and why."""


_fast_json = msgspec.json.Decoder()


def _parse(payload: bytes) -> Any:
    """The payload's JSON value. msgspec parses it (several times faster than :mod:`json`,
    which matters at tens of thousands of messages a second); whatever msgspec refuses is parsed
    again by :mod:`json` with the hooks above, which accepts or refuses it by the same rules
    (strict JSON, finite numbers) and, when it refuses, says where (line and column) in the
    words the dead letter keeps. The two differ only on what msgspec refuses and :mod:`json`
    takes (an escaped lone surrogate): the second parse decides."""
    try:
        return _fast_json.decode(payload)
    except (msgspec.DecodeError, RecursionError):
        pass
    try:
        text = payload.decode("utf-8")
        # json.loads with these hooks, less building a decoder per call (which costs more than
        # decoding a small payload); json.loads itself only for the error it gives a BOM
        return _json.decode(text) if not text.startswith("\ufeff") else json.loads(text)
    except UnicodeDecodeError:
        raise _BadJson("payload is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise _BadJson(f"{exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise _BadJson("nested too deeply") from None
    except ValueError as exc:  # _BadNumber, or an integer of more than 4300 digits
        raise _BadJson(str(exc)) from None


def _safe(text: str) -> str:
    """Text any database stores: NUL characters and lone surrogates written as escapes."""
    text = text.replace("\x00", "\\u0000")
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _has_nul(value: object) -> bool:
    """Whether a (shallow) event dict holds a NUL character, which PostgreSQL text cannot."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


_parse_topic = remembered(parse_topic)
_is_alerts_topic = remembered(is_alerts_topic)


@dataclass
class Decoded:
    events: list[Event] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    unknown_machine: bool = False
    unknown_reasons: list[str] = field(default_factory=list)
    """Reason codes of state events that the factory does not know (stored as ``unknown:…``)."""


def decode_message(
    topic: str,
    payload: bytes,
    *,
    received_at: dt.datetime,
    known_machines: Collection[str] | None = None,
    strict: bool = False,
    max_payload: int = DEFAULT_MAX_PAYLOAD,
    source: str = "mqtt",
    clock_policy: ClockPolicy | None = None,
    reason_codes: Collection[str] | None = None,
) -> Decoded:
    """Events and dead letters of one message (see the module docstring); with a
    ``clock_policy``, event times are judged against ``received_at``. With ``reason_codes``
    (the factory's downtime reasons; None or empty: not checked), a state event whose reason
    is not one of them is kept with the reason ``unknown:<code>`` (see :func:`flag_reason`)."""
    out = Decoded()

    def reject(reason: str, raw: bytes | str = payload) -> None:
        out.dead.append(
            DeadLetter(source, _safe(topic), _safe(payload_text(raw)), _safe(reason), received_at)
        )

    if _is_alerts_topic(topic):
        return out  # microfab's own alerts (microfab/v1/{site}/alerts): not an event, no mistake
    if len(payload) > max_payload:
        reject(f"oversize: {len(payload)} bytes, at most {max_payload} accepted")
        return out
    try:
        machine, stream = _parse_topic(topic)
    except ValueError as exc:
        reject(f"bad_topic: {exc}")
        return out
    unknown = known_machines is not None and machine not in known_machines
    if unknown and strict:
        reject(f"unknown_machine: '{machine}' is not in the factory model (--strict)")
        return out
    out.unknown_machine = unknown
    try:
        body = _parse(payload)
    except _BadJson as exc:
        reject(f"bad_json: {exc}")
        return out
    is_batch = isinstance(body, list)
    items = body if is_batch else [body]
    may_hold_nul = b"\\u0000" in payload  # JSON text carries NUL only as this escape
    if is_batch and not body:
        reject("bad_batch: empty array")
        return out
    if len(items) > MAX_BATCH:
        reject(f"bad_batch: {len(items)} elements, at most {MAX_BATCH}")
        return out
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            reject(
                f"invalid_event: {_where(is_batch, index)}expected a JSON object, "
                f"got {type(item).__name__}",
                _element(payload, is_batch, index, item),
            )
            continue
        clash = (
            "machine"
            if "machine" in item and item["machine"] != machine
            else "stream"
            if "stream" in item and item["stream"] != stream
            else None
        )
        if clash is not None:
            reject(
                f"invalid_event: {_where(is_batch, index)}'{clash}' in the payload differs from "
                "the topic",
                _element(payload, is_batch, index, item),
            )
            continue
        try:
            event = event_from_dict({**item, "machine": machine, "stream": stream})
        except Exception as exc:  # ValueError; OverflowError for times beyond year 1..9999
            reject(
                f"invalid_event: {_where(is_batch, index)}{exc or type(exc).__name__}",
                _element(payload, is_batch, index, item),
            )
            continue
        if may_hold_nul and _has_nul(event_to_dict(event)):
            reject(
                f"invalid_event: {_where(is_batch, index)}text holds a NUL character (U+0000)",
                _element(payload, is_batch, index, item),
            )
            continue
        if clock_policy is not None:
            verdict = clock_policy.judge(event.ts, received_at)
            if not verdict.accepted:
                reject(
                    verdict.reason.replace(": ", f": {_where(is_batch, index)}", 1),
                    _element(payload, is_batch, index, item),
                )
                continue
        if reason_codes and isinstance(event, StateChange) and event.reason is not None:
            flagged = flag_reason(event.reason, reason_codes)
            if flagged != event.reason:
                out.unknown_reasons.append(event.reason)
                event = event.model_copy(update={"reason": flagged})
        out.events.append(event)
        stop = safety_stop(event)
        if stop is not None:
            out.events.append(stop)
    return out


def flag_reason(code: str, reason_codes: Collection[str]) -> str:
    """``code`` when the factory knows it (or it is already flagged), else ``unknown:<code>``
    (the code cut to fit the 64-character reason field). The stop is kept — its time counts as
    downtime — and the downtime Pareto shows it under that flagged code, never as a known
    reason; nothing a device sends becomes a reason the factory did not define."""
    if code in reason_codes or code.startswith(UNKNOWN_REASON_PREFIX):
        return code
    return (UNKNOWN_REASON_PREFIX + code)[:64]


def _where(is_batch: bool, index: int) -> str:
    return f"[{index}] " if is_batch else ""


def _element(payload: bytes, is_batch: bool, index: int, item: object) -> bytes | str:
    """What a dead letter keeps of a rejected element: the payload, or the element's JSON."""
    if not is_batch:
        return payload
    try:
        return json.dumps(item, ensure_ascii=False)
    except RecursionError:
        return f"(element {index}: nested too deeply to show)"
