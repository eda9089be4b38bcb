"""Fuzzing the ingest path: :func:`decode_message` is total (whatever arrives, every message or batch
element becomes exactly one event or one dead letter, storable on any back end), and so is the
whole worker, end to end through a real broker into a real store."""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import uuid
from typing import Any

import hypothesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from microfab.connect.decode import DEFAULT_MAX_PAYLOAD, MAX_BATCH, decode_message
from microfab.connect.topics import parse_topic
from microfab.model.events import STREAMS, event_to_dict
from microfab.store import EventStore
from microfab.store import schema as store_schema
from services import MosquittoServer
from test_ingest import Publisher, start_worker, wait_until

NOW = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.UTC)
REASONS = ("bad_json", "bad_topic", "invalid_event", "unknown_machine", "oversize", "bad_batch")

# ---------------------------------------------------------------------------- strategies

valid_level = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,39}", fullmatch=True)
any_level = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="+#/\x00"),
    max_size=12,
)
"""Any level text can hold (wildcards, separators and NUL cannot be published)."""
wire_level = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Cn"), blacklist_characters="+#/"),
    max_size=12,
)
"""Levels Mosquitto accepts on the wire (it refuses control characters and non-characters)."""

stream_name = st.sampled_from(STREAMS) | any_level


@st.composite
def topics(draw: st.DrawFn) -> str:
    """Valid microfab topics, topics with one bad part, and arbitrary text."""
    kind = draw(st.sampled_from(["valid", "valid", "valid", "bad_level", "bad_shape", "text"]))
    if kind == "text":
        return draw(st.text(max_size=60))
    levels = [draw(valid_level) for _ in range(5)]
    stream = draw(st.sampled_from(STREAMS))
    if kind == "bad_level":
        levels[draw(st.integers(0, 4))] = draw(any_level)
        stream = draw(stream_name)
    elif kind == "bad_shape":
        levels = draw(st.lists(any_level, max_size=8))
        prefix = draw(st.sampled_from(["microfab/v1", "microfab/v2", "factory", ""]))
        return "/".join([prefix, *levels, stream])
    return "/".join(["microfab/v1", *levels, stream])


huge_int = st.integers(min_value=-(2**80), max_value=2**80)
scalar = (
    st.none()
    | st.booleans()
    | st.integers(-10, 10**6)
    | huge_int
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400", "", "\x00", "running", "WO-1"])
)
json_values = st.recursive(
    scalar,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)

timestamps = st.sampled_from(
    [
        "2026-11-23T08:00:00.000Z",
        "2026-11-23T16:00:00+08:00",
        "2026-11-23T08:00:00",  # no offset
        "0001-01-01T00:00:00+14:00",  # out of range once in UTC
        "9999-12-31T23:59:59-14:00",
        "yesterday",
    ]
) | st.datetimes(timezones=st.just(dt.UTC)).map(lambda t: t.isoformat())

FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "state": st.sampled_from(["running", "idle", "setup", "dancing"]) | scalar,
    "reason": st.none() | st.text(max_size=70),
    "good": st.integers(0, 10**6) | huge_int | scalar,
    "scrap": st.integers(0, 100) | scalar,
    "order": st.text(min_size=1, max_size=10) | scalar,
    "operation": st.integers(1, 100) | huge_int | scalar,
    "metrics": st.dictionaries(
        st.text(max_size=8), st.floats(allow_nan=False, allow_infinity=False) | scalar, max_size=3
    )
    | scalar,
    "kwh": st.floats(min_value=0, max_value=1e308) | scalar,
    "carrier": st.sampled_from(["towngas", "lpg", "diesel", "coal"]),
    "quantity": st.integers(1, 10**4) | huge_int | scalar,
    "unit": st.sampled_from(["MJ", "kg", "l"]) | scalar,
    "event": st.sampled_from(["released", "started", "completed", "exploded"]),
    "product": st.text(min_size=1, max_size=10),
    "material": st.text(min_size=1, max_size=10),
    "qty": st.floats(min_value=0.001, max_value=1e6) | scalar,
    "machine": st.text(max_size=5),
    "stream": st.sampled_from(STREAMS) | scalar,
}


@st.composite
def event_like(draw: st.DrawFn) -> dict[str, Any]:
    """Objects that look like events: often valid, often off in one or more fields."""
    body: dict[str, Any] = {}
    if draw(st.integers(0, 9)):
        body["id"] = draw(st.from_regex(r"[\x21-\x7e]{1,64}", fullmatch=True) | scalar)
    if draw(st.integers(0, 9)):
        body["ts"] = draw(timestamps | scalar)
    for name in draw(st.lists(st.sampled_from(sorted(FIELDS)), max_size=5, unique=True)):
        body[name] = draw(FIELDS[name])
    return body


bodies = event_like() | json_values

label = st.text(min_size=1, max_size=12)
finite = st.floats(allow_nan=False, allow_infinity=False)
VALID: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "state": st.fixed_dictionaries(
        {"state": st.sampled_from(["running", "idle", "setup", "micro_stop"])},
        optional={"reason": st.none() | label},
    ),
    "count": st.fixed_dictionaries(
        {"good": st.integers(0, 1000)},
        optional={"scrap": st.integers(0, 9), "order": label, "operation": st.integers(1, 99)},
    ),
    "telemetry": st.fixed_dictionaries(
        {
            "metrics": st.dictionaries(
                st.text(min_size=1, max_size=8), finite, min_size=1, max_size=4
            )
        }
    ),
    "energy": st.fixed_dictionaries({"kwh": st.floats(0, 1e12)}),
    "order": st.fixed_dictionaries(
        {"order": label, "event": st.sampled_from(["released", "started", "completed"])},
        optional={"quantity": st.integers(1, 10**6), "product": label},
    ),
    "material": st.fixed_dictionaries(
        {"material": label, "qty": st.floats(0.001, 1e6), "unit": st.sampled_from(["kg", "l"])},
        optional={"lot": label},
    ),
    "inspection": st.one_of(
        st.fixed_dictionaries({"result": st.just("pass")}, optional={"product": label}),
        st.fixed_dictionaries(
            {"result": st.just("fail")},
            optional={"defect": label, "order": label, "score": st.floats(0, 1)},
        ),
    ),
}


@st.composite
def valid_bodies(draw: st.DrawFn, stream: str) -> dict[str, Any]:
    """A valid payload for ``stream`` (id, ts and the stream's fields)."""
    head = {
        "id": draw(st.from_regex(r"[\x21-\x7e]{1,64}", fullmatch=True)),
        "ts": draw(st.datetimes(timezones=st.just(dt.UTC)).map(lambda t: t.isoformat())),
    }
    return {**head, **draw(VALID[stream])}


raw_json_texts = st.sampled_from(
    [
        b'{"id":"n-1","ts":"2026-11-23T08:00:00Z","kwh":NaN}',
        b'{"id":"n-2","ts":"2026-11-23T08:00:00Z","kwh":Infinity}',
        b'{"id":"n-3","ts":"2026-11-23T08:00:00Z","kwh":-Infinity}',
        b'{"id":"n-4","ts":"2026-11-23T08:00:00Z","kwh":1e400}',
        b'{"id":"n-5","ts":"2026-11-23T08:00:00Z","good":' + b"9" * 5000 + b"}",
        b"[" * 50_000 + b"]" * 50_000,
        b'{"a":' * 20_000 + b"1" + b"}" * 20_000,
        b'{"id":"n-6","ts":"2026-11-23T08:00:00Z","state":"idle","reason":"\\ud800"}',
        b'{"id":"n-7","ts":"2026-11-23T08:00:00Z","state":"idle","reason":"a\\u0000b"}',
        b"[]",
        b"[" + b",".join([b"{}"] * (MAX_BATCH + 1)) + b"]",
        b"\xef\xbb\xbf{}",  # a byte-order mark
        b"\x00",
        b"",
    ]
)


def encode(body: Any, ensure_ascii: bool) -> bytes:
    text = json.dumps(body, ensure_ascii=ensure_ascii)
    return text.encode("utf-8", "surrogatepass")  # lone surrogates: not UTF-8, a bad_json case


@st.composite
def payloads(draw: st.DrawFn, stream: str | None = None) -> bytes:
    """Payloads of every kind; valid events and batches of them when ``stream`` is known."""
    kinds = ["object", "object", "batch", "batch", "raw", "bytes", "text"]
    if stream in VALID:
        kinds += ["valid", "valid", "valid", "valid_batch", "valid_batch"]
    kind = draw(st.sampled_from(kinds))
    if kind == "valid":
        return encode(draw(valid_bodies(stream)), draw(st.booleans()))
    if kind == "valid_batch":
        good = valid_bodies(stream)
        return encode(draw(st.lists(good | good | good | bodies, max_size=12)), draw(st.booleans()))
    if kind == "object":
        return encode(draw(bodies), draw(st.booleans()))
    if kind == "batch":
        return encode(draw(st.lists(bodies, max_size=12)), draw(st.booleans()))
    if kind == "raw":
        return draw(raw_json_texts)
    if kind == "text":
        return draw(st.text(max_size=100)).encode("utf-8", "surrogatepass")
    return draw(st.binary(max_size=300))


# ---------------------------------------------------------------------------- checks


def storable(text: str) -> bool:
    """Text both back ends store: valid UTF-8, no NUL (PostgreSQL refuses both)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text


def units(payload: bytes) -> int | None:
    """How many elements the payload holds if it is a JSON array (None otherwise)."""
    try:
        body = json.loads(payload.decode("utf-8"))
    except (ValueError, RecursionError):
        return None
    return len(body) if isinstance(body, list) else None


def check_decoded(
    topic: str,
    payload: bytes,
    *,
    max_payload: int = DEFAULT_MAX_PAYLOAD,
    known: frozenset[str] | None = None,
    strict: bool = False,
) -> int:
    """Decode one message and check the accounting; returns how many units (events + dead)."""
    out = decode_message(
        topic,
        payload,
        received_at=NOW,
        known_machines=known,
        strict=strict,
        max_payload=max_payload,
    )
    total = len(out.events) + len(out.dead)
    reasons = [d.reason for d in out.dead]
    for letter in out.dead:
        assert letter.reason.split(":")[0] in REASONS, letter.reason
        assert letter.received_at == NOW and letter.source == "mqtt"
        assert storable(letter.topic) and storable(letter.payload) and storable(letter.reason)
    for event in out.events:
        data = event_to_dict(event)
        json.dumps(data, allow_nan=False)  # finite numbers only: PostgreSQL JSON has no NaN
        assert storable(json.dumps(data, ensure_ascii=False))
        assert (data["machine"], data["stream"]) == parse_topic(topic)

    if len(payload) > max_payload:
        assert total == 1 and reasons[0].startswith("oversize: "), reasons
        return total
    try:
        machine, _ = parse_topic(topic)
    except ValueError:
        assert total == 1 and reasons[0].startswith("bad_topic: "), reasons
        return total
    if strict and known is not None and machine not in known:
        assert total == 1 and reasons[0].startswith("unknown_machine: "), reasons
        return total
    assert out.unknown_machine == (known is not None and machine not in known)
    n = units(payload)
    if n is None:  # not JSON, or a single JSON value: one event or one dead letter
        assert total == 1, (payload[:80], reasons)
        assert len(out.events) == 1 or reasons[0].startswith(("bad_json: ", "invalid_event: "))
    elif n == 0 or n > MAX_BATCH:
        assert total == 1 and reasons[0].startswith("bad_batch: "), reasons
    elif len(out.dead) == 1 and reasons[0].startswith("bad_json: "):
        pass  # a whole-message reject json.loads lets through (NaN, 1e400, 4,300+ digit integers)
    else:
        assert total == n, (n, reasons)
        indices = [int(r.split("[", 1)[1].split("]", 1)[0]) for r in reasons]
        assert all(r.startswith("invalid_event: [") for r in reasons), reasons
        assert len(set(indices)) == len(indices) and all(0 <= i < n for i in indices)
    return total


# ---------------------------------------------------------------------------- decode_message


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    message=topics().flatmap(lambda t: st.tuples(st.just(t), payloads(t.rsplit("/", 1)[-1]))),
    max_payload=st.sampled_from([DEFAULT_MAX_PAYLOAD, DEFAULT_MAX_PAYLOAD, 200, 5000]),
    known=st.none() | st.frozensets(valid_level.map(lambda x: f"{x}/a/b/c/d"), max_size=2),
    strict=st.booleans(),
)
def test_decode_message_accounts_for_every_element(
    message: tuple[str, bytes], max_payload: int, known: frozenset[str] | None, strict: bool
) -> None:
    topic, payload = message
    check_decoded(topic, payload, max_payload=max_payload, known=known, strict=strict)


@settings(max_examples=200, deadline=None)
@given(topic=st.text(max_size=80), payload=st.binary(max_size=500))
def test_decode_message_never_raises_on_anything(topic: str, payload: bytes) -> None:
    out = decode_message(topic, payload, received_at=NOW)
    assert len(out.events) + len(out.dead) >= 1


@settings(max_examples=100, deadline=None)
@given(bodies=st.lists(bodies, min_size=1, max_size=30))
def test_every_batch_element_is_one_event_or_one_dead_letter(bodies: list[Any]) -> None:
    payload = json.dumps(bodies).encode()
    for stream in STREAMS:
        total = check_decoded(f"microfab/v1/s/a/l/c/m/{stream}", payload)
        assert total == len(bodies) or total == 1


# ---------------------------------------------------------------------------- end to end


E2E_MESSAGES = 200
E2E_MAX_PAYLOAD = 2048


@st.composite
def wire_messages(draw: st.DrawFn) -> tuple[list[str], str, bytes]:
    """Levels, stream and payload of a message the broker delivers to the worker (eight levels
    under microfab/v1); about one in six has a bad level or an unknown stream."""
    levels = [draw(valid_level) for _ in range(5)]
    stream = draw(st.sampled_from(STREAMS))
    if draw(st.integers(0, 5)) == 0:
        spot = draw(st.integers(1, 5))
        if spot == 5:
            stream = draw(wire_level)
        else:
            levels[spot] = draw(wire_level)
    payload = draw(payloads(stream))
    if draw(st.integers(0, 19)) == 0:  # trailing white space: still the same JSON, but too big
        payload += b" " * E2E_MAX_PAYLOAD
    return levels, stream, payload


def sample(strategy: st.SearchStrategy[Any], n: int, seed: int) -> list[Any]:
    """``n`` examples of ``strategy`` (Hypothesis' own generation, reproducible from ``seed``)."""
    found: list[Any] = []

    @hypothesis.seed(seed)
    @settings(
        max_examples=n,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(example: Any) -> None:
        found.append(example)

    collect()
    return found


def unique(
    index: int, tag: str, levels: list[str], stream: str, payload: bytes
) -> tuple[str, bytes]:
    """The message made unique: the tag and index as its first level, and every string id in it
    rewritten, so every unit (event or dead letter) can be told apart in the store."""
    try:
        body = json.loads(payload.decode("utf-8"))
    except (ValueError, RecursionError):
        body = None
    items = body if isinstance(body, list) else [body]
    if body is not None and 0 < len(items) <= 12:
        for j, item in enumerate(items):
            if isinstance(item, dict) and isinstance(item.get("id"), str):
                item["id"] = f"{tag}.{index}.{j}"
        padding = payload[len(payload.rstrip(b" ")) :]  # kept: it may make the message oversize
        payload = encode(body, ensure_ascii=index % 2 == 0) + padding
    return "/".join(["microfab/v1", f"{tag}-{index}", *levels[1:], stream]), payload


def tagged_rows(store: EventStore, tag: str) -> tuple[list[str], list[tuple[str, str, str]]]:
    events = store_schema.events
    letters = store_schema.dead_letters
    with store.engine.connect() as conn:
        ids = [
            str(r[0])
            for r in conn.execute(select(events.c.id).where(events.c.machine.startswith(tag)))
        ]
        dead = [
            (str(r[0]), str(r[1]), str(r[2]))
            for r in conn.execute(
                select(letters.c.topic, letters.c.payload, letters.c.reason).where(
                    letters.c.topic.contains(f"/{tag}-")
                )
            )
        ]
    return ids, dead


M = ["s", "a", "l", "c", "m"]
EVERY_KIND: list[tuple[list[str], str, bytes]] = [
    # one message of each outcome, whatever the random sample holds
    (M, "count", b'{"id":"x","ts":"2026-11-23T08:00:00Z","good":3}'),
    (M, "count", b'[{"id":"x","ts":"2026-11-23T08:00:00Z","good":1180591620717411303424},7]'),
    (M, "count", b'{"id":"x","ts":"2026-11-23T08:00:00Z","good":3}' + b" " * E2E_MAX_PAYLOAD),
    (M, "count", b'{"id":"x","ts":'),
    (M, "count", b"[]"),
    (M, "vibration", b"{}"),
    (M, "state", b'{"id":"x","ts":"2026-11-23T08:00:00Z","state":"idle","reason":"\\u0000"}'),
]


def test_end_to_end_every_message_is_stored_once_or_dead_lettered_once(
    store: EventStore, mosquitto: MosquittoServer
) -> None:
    seed = int(os.environ.get("MICROFAB_FUZZ_SEED") or random.randrange(2**32))
    note = f"(reproduce with MICROFAB_FUZZ_SEED={seed})"
    tag = f"f{uuid.uuid4().hex[:10]}"
    drawn = sample(wire_messages(), E2E_MESSAGES - len(EVERY_KIND), seed) + EVERY_KIND
    assert len(drawn) == E2E_MESSAGES, note
    messages = [unique(i, tag, *m) for i, m in enumerate(drawn)]
    expected_ids: set[str] = set()
    expected_dead: set[tuple[str, str, str]] = set()
    units_total = 0
    for topic, payload in messages:
        out = decode_message(topic, payload, received_at=NOW, max_payload=E2E_MAX_PAYLOAD)
        units_total += len(out.events) + len(out.dead)
        expected_ids.update(ev.id for ev in out.events)
        expected_dead.update((d.topic, d.payload, d.reason) for d in out.dead)
    assert units_total == len(expected_ids) + len(expected_dead), note  # all told apart

    worker = start_worker(store, mosquitto.url, max_payload=E2E_MAX_PAYLOAD)
    publisher = Publisher(mosquitto.port)
    try:
        for topic, payload in messages:
            publisher.publish(topic, payload)
        publisher.wait_acked()
        assert publisher.refused == [], note
        wait_until(lambda: worker.stats.received == E2E_MESSAGES, f"every message {note}", 30)
        assert worker._thread is not None and worker._thread.is_alive(), note
    finally:
        worker.stop()
        publisher.close()

    ids, dead = tagged_rows(store, tag)
    # the store may refuse an event decode_message accepted (an integer beyond its columns): it
    # is dead-lettered as store_rejected instead, still exactly once
    refused = [d for d in dead if d[2].startswith("store_rejected: ")]
    refused_ids = {json.loads(d[1])["id"] for d in refused}
    assert len(ids) == len(set(ids)), note
    assert set(ids) | refused_ids == expected_ids and not set(ids) & refused_ids, note
    assert {d for d in dead if d not in refused} == expected_dead, note
    assert len(ids) + len(dead) == units_total, note
    assert worker.stats.stored == len(ids), note
    assert worker.stats.dead_letters == len(dead), note
    # the sample covered the interesting cases
    kinds = {d[2].split(":")[0] for d in dead}
    assert kinds >= {"bad_json", "bad_topic", "invalid_event", "oversize", "bad_batch"}, kinds
    assert ids, note
