"""The event schema: validation messages, time normalisation, digests and the export shape."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from microfab.model.events import (
    EnergyReading,
    PartCount,
    StateChange,
    event_digest,
    event_from_dict,
    event_to_dict,
    events_json_schema,
    format_ts,
)

MACHINE = "kt/plant/line1/machining/cnc-1"


def ev(**fields: Any) -> dict[str, Any]:
    """A valid state event's fields, overridden by ``fields`` (``None`` removes a field)."""
    data: dict[str, Any] = {
        "id": "ev-1",
        "ts": "2026-11-23T08:00:00.000Z",
        "machine": MACHINE,
        "stream": "state",
        "state": "running",
    }
    data.update(fields)
    return {k: v for k, v in data.items() if v is not None}


# ------------------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    ("data", "field", "words"),
    [
        pytest.param(ev(ts="2026-11-23T08:00:00"), "ts", ["UTC offset"], id="ts-without-offset"),
        pytest.param(ev(ts="next tuesday"), "ts", ["ISO-8601"], id="ts-not-a-time"),
        pytest.param(
            ev(stream="count", state=None, good=-1),
            "good",
            ["greater than or equal to 0"],
            id="negative-good",
        ),
        pytest.param(
            ev(stream="count", state=None, good=1, scrap=-3),
            "scrap",
            ["greater than or equal to 0"],
            id="negative-scrap",
        ),
        pytest.param(
            ev(stream="vibration"),
            "stream",
            ["state, count, telemetry, energy, order, material, inspection, safety"],
            id="unknown-stream",
        ),
        pytest.param(ev(stream=None), "stream", ["missing"], id="missing-stream"),
        pytest.param(ev(id="x" * 65), "id", ["at most 64 characters"], id="id-too-long"),
        pytest.param(ev(id="has space"), "id", [], id="id-not-printable-ascii"),
        pytest.param(ev(machine="kt/plant/line1/cnc-1"), "machine", [], id="machine-path-short"),
        pytest.param(ev(stream="energy", state=None), "kwh", ["electricity"], id="energy-no-kwh"),
        pytest.param(
            ev(stream="energy", state=None, carrier="towngas"),
            "quantity",
            ["unit", "towngas"],
            id="fuel-no-quantity",
        ),
        pytest.param(
            ev(stream="energy", state=None, carrier="lpg", quantity=3.5),
            "unit",
            ["quantity"],
            id="fuel-no-unit",
        ),
        pytest.param(
            ev(stream="energy", state=None, kwh=1.0, unit="kg"),
            "carrier",
            ["quantity", "unit"],
            id="unit-without-carrier",
        ),
        pytest.param(ev(colour="red"), "colour", [], id="extra-field"),
    ],
)
def test_invalid_event_names_the_field(data: dict[str, Any], field: str, words: list[str]) -> None:
    with pytest.raises(ValueError) as caught:
        event_from_dict(data)
    message = str(caught.value)
    assert field in message, message
    for word in words:
        assert word in message, message


@pytest.mark.parametrize(
    ("data", "field"),
    [
        pytest.param(ev(state="sleeping"), "state", id="state-of-state-event"),
        pytest.param(
            ev(stream="order", state=None, event="released"), "order", id="order-of-order"
        ),
        pytest.param(
            ev(stream="count", state=None, good=1, order="W" * 65), "order", id="order-of-count"
        ),
    ],
)
def test_field_named_like_a_stream_is_named(data: dict[str, Any], field: str) -> None:
    """Fields called ``state`` or ``order`` must be named in the message like any other field.

    Regression: ``describe_validation_error`` once dropped every location part equal to a stream
    name, not just the union tag, so ``('state', 'state')`` became ``(event)``.
    """
    with pytest.raises(ValueError) as caught:
        event_from_dict(data)
    message = str(caught.value)
    assert message.startswith(f"{field}: "), (
        f"BUG: the message does not name the field {field!r}: {message!r}"
    )


def test_every_fault_is_reported() -> None:
    with pytest.raises(ValueError) as caught:
        event_from_dict(ev(stream="count", state=None, id="y" * 70, good=-1))
    message = str(caught.value)
    assert message.startswith("id:") or "id:" in message
    assert "good:" in message
    assert ";" in message


def every_stream() -> list[dict[str, Any]]:
    """A valid event of every stream (several of some: nulls kept, corrections, enums, times)."""
    return [
        ev(reason="UB-MECH", state="unplanned_stop"),
        ev(state="idle"),  # reason kept as null
        ev(corrects="ev-0", reason="CO", state="setup", by="op-7"),
        ev(stream="count", state=None, good=10, scrap=1, order="WO-1", operation=10),
        ev(stream="count", state=None, good=-2, corrects="ev-0"),
        ev(stream="telemetry", state=None, metrics={"spindle_rpm": 12000.0, "n": 3}),
        ev(stream="energy", state=None, kwh=1234.5),
        ev(stream="energy", state=None, carrier="towngas", quantity=12.0, unit="MJ"),
        ev(
            stream="order",
            state=None,
            order="WO-1",
            event="released",
            product="BRKT-1",
            quantity=5,
            options={"size": "L"},
            due="2026-11-30T18:00:00+08:00",
            priority=2,
        ),
        ev(stream="material", state=None, material="AL-6061", qty=2.5, unit="kg", lot="L1"),
        ev(stream="inspection", state=None, result="fail", defect="scratch", score=0.93),
        ev(stream="safety", state=None, kind="estop_pressed", severity="critical", zone="Z1"),
        ev(
            stream="stock",
            state=None,
            kind="receipt",
            item="RM-1",
            lot="L9",
            qty=40.0,
            unit="kg",
            to_location="WH",
            expiry="2027-01-01T00:00:00Z",
            cost_hkd=12.5,
        ),
        ev(
            stream="task",
            state=None,
            task="T-1",
            status="assigned",
            item="RM-1",
            qty=5.0,
            unit="kg",
            from_location="WH",
            to_location="LINE",
        ),
    ]


def test_valid_events_of_every_stream() -> None:
    samples = every_stream()
    for data in samples:
        event = event_from_dict(data)
        assert event.stream == data["stream"]
        assert event_from_dict(event_to_dict(event)) == event


def test_telemetry_must_be_finite() -> None:
    with pytest.raises(ValueError, match="metrics"):
        event_from_dict(ev(stream="telemetry", state=None, metrics={"temp": float("nan")}))


# ------------------------------------------------------------------------------ time


def test_ts_is_normalised_to_utc_milliseconds() -> None:
    event = event_from_dict(ev(ts="2026-11-23T16:00:00.123456+08:00"))
    assert event.ts == dt.datetime(2026, 11, 23, 8, 0, 0, 123000, tzinfo=dt.UTC)
    assert event.ts.utcoffset() == dt.timedelta(0)
    assert event_to_dict(event)["ts"] == "2026-11-23T08:00:00.123Z"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-23T08:00:00Z", "2026-11-23T08:00:00.000Z"),
        ("2026-11-23T08:00:00.5z", "2026-11-23T08:00:00.500Z"),
        ("2026-11-23T08:00:00.999999+00:00", "2026-11-23T08:00:00.999Z"),
        ("2026-11-24T00:30:00.010+08:00", "2026-11-23T16:30:00.010Z"),
        ("2026-11-22T23:00:00-05:00", "2026-11-23T04:00:00.000Z"),
    ],
)
def test_ts_serialisation(text: str, expected: str) -> None:
    event = event_from_dict(ev(ts=text))
    assert event_to_dict(event)["ts"] == expected
    assert json.loads(event.model_dump_json())["ts"] == expected
    assert format_ts(event.ts) == expected


def test_aware_datetime_is_accepted() -> None:
    hkt = dt.timezone(dt.timedelta(hours=8))
    event = event_from_dict(ev(ts=dt.datetime(2026, 11, 23, 16, 0, 0, 7, tzinfo=hkt)))
    assert event_to_dict(event)["ts"] == "2026-11-23T08:00:00.000Z"


def test_naive_datetime_is_rejected() -> None:
    with pytest.raises(ValueError, match="ts"):
        event_from_dict(ev(ts=dt.datetime(2026, 11, 23, 8, 0)))


# ------------------------------------------------------------------------------ digest and shape


def test_digest_is_independent_of_key_order() -> None:
    data = ev(stream="count", state=None, good=3, scrap=1, order="WO-7", operation=20)
    reordered = dict(reversed(list(data.items())))
    assert list(reordered) != list(data)
    assert event_digest(event_from_dict(data)) == event_digest(event_from_dict(reordered))


def test_digest_ignores_time_spelling_but_not_content() -> None:
    utc = event_from_dict(ev(ts="2026-11-23T08:00:00Z"))
    hkt = event_from_dict(ev(ts="2026-11-23T16:00:00.000+08:00"))
    assert event_digest(utc) == event_digest(hkt)
    other = event_from_dict(ev(state="idle"))
    assert event_digest(other) != event_digest(utc)


def test_state_event_keeps_null_reason() -> None:
    data = event_to_dict(event_from_dict(ev()))
    assert "reason" in data
    assert data["reason"] is None
    assert list(data)[:4] == ["id", "ts", "machine", "stream"]


def test_export_shape_leaves_unset_fields_out() -> None:
    count = event_to_dict(event_from_dict(ev(stream="count", state=None, good=1)))
    assert count == {
        "id": "ev-1",
        "ts": "2026-11-23T08:00:00.000Z",
        "machine": MACHINE,
        "stream": "count",
        "good": 1,
        "scrap": 0,
        "order": None,
        "operation": None,
    }
    energy = event_to_dict(event_from_dict(ev(stream="energy", state=None, kwh=5.0)))
    assert "carrier" not in energy and "quantity" not in energy and "unit" not in energy


def test_event_types() -> None:
    assert isinstance(event_from_dict(ev()), StateChange)
    assert isinstance(event_from_dict(ev(stream="count", state=None, good=0)), PartCount)
    assert isinstance(event_from_dict(ev(stream="energy", state=None, kwh=0.0)), EnergyReading)


def test_json_schema() -> None:
    schema = events_json_schema()
    assert isinstance(schema, dict)
    assert "$defs" in schema
    assert schema["$schema"].startswith("https://json-schema.org/")
    json.dumps(schema)  # serialisable


def test_out_of_range_numbers_and_times_are_validation_errors() -> None:
    import pydantic

    from microfab.model.events import EVENT_ADAPTER

    base = {"id": "x", "machine": "a/b/c/d/e", "stream": "count"}
    with pytest.raises(pydantic.ValidationError, match="less than or equal"):
        EVENT_ADAPTER.validate_python({**base, "ts": "2026-11-22T08:00:00Z", "good": 2**40})
    with pytest.raises(pydantic.ValidationError, match="out of range"):
        EVENT_ADAPTER.validate_python({**base, "ts": "0001-01-01T00:00:00+08:00", "good": 1})


def test_the_fast_export_dict_is_the_serializers_to_the_key() -> None:
    """event_to_dict builds plain events' dicts itself (ingest's hot path); what it builds must
    be what pydantic's serializer gives, key order included, on every stream."""
    from microfab.model.events import _flat_dict, _serialized_dict

    samples = every_stream()
    fast = 0
    for data in samples:
        event = event_from_dict(data)
        built = _flat_dict(event)
        if built is not None:
            fast += 1
            assert list(built.items()) == list(_serialized_dict(event).items()), data
        assert list(event_to_dict(event).items()) == list(_serialized_dict(event).items())
    assert fast == len(samples)  # none of these needs the serializer

    boxed = event_from_dict(
        ev(
            stream="inspection",
            state=None,
            result="fail",
            defects=[{"name": "scratch", "score": 0.9}],
        )
    )
    assert _flat_dict(boxed) is None  # nested models: the serializer's way
    assert event_to_dict(boxed)["defects"] == [{"name": "scratch", "score": 0.9}]
