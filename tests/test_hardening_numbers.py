"""Issue 15, finding 2: every number in an event has a range; NaN and infinity are refused.

``kwh: 1e308`` was accepted and then broke the dashboard and the carbon intensity after a restart.
Reproductions on both paths (MQTT through decode, REST operator input), the schema's documented
ranges, and the carbon maths over an absurd reading stored before the ranges existed.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from microfab.connect.decode import decode_message
from microfab.model.carbon import to_milli
from microfab.model.events import (
    MAX_COUNT,
    MAX_MEASURE,
    MAX_READING,
    EnergyReading,
    event_from_dict,
    event_to_dict,
    events_json_schema,
)
from microfab.model.identity import Role
from microfab.store import EventStore, open_store
from webapp import CNC1, METER, fill, serving

NOW = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.UTC)
BASE = {"id": "n-1", "ts": "2026-11-23T07:00:00Z", "machine": CNC1}

OUT_OF_RANGE: list[tuple[str, dict[str, Any], str]] = [
    ("count", {"good": MAX_COUNT + 1}, "good"),
    ("count", {"good": 1, "scrap": MAX_COUNT + 1}, "scrap"),
    ("count", {"good": -(MAX_COUNT + 1), "corrects": "c-1"}, "good"),
    ("energy", {"kwh": 1e308}, "kwh"),
    ("energy", {"kwh": MAX_READING * 1.01}, "kwh"),
    ("energy", {"kwh": -1}, "kwh"),
    ("energy", {"carrier": "lpg", "quantity": 1e300, "unit": "kg"}, "quantity"),
    ("telemetry", {"metrics": {"temp_c": 1e300}}, "metrics"),
    ("telemetry", {"metrics": {"temp_c": -MAX_MEASURE * 10}}, "metrics"),
    ("material", {"material": "flour", "qty": 1e300, "unit": "kg"}, "qty"),
    ("inspection", {"result": "fail", "score": 1.5}, "score"),
]

NOT_FINITE: list[tuple[str, dict[str, Any], str]] = [
    ("energy", {"kwh": math.nan}, "kwh"),
    ("energy", {"kwh": math.inf}, "kwh"),
    ("energy", {"carrier": "diesel", "quantity": math.inf, "unit": "l"}, "quantity"),
    ("telemetry", {"metrics": {"temp_c": math.nan}}, "metrics"),
    ("telemetry", {"metrics": {"temp_c": -math.inf}}, "metrics"),
    ("material", {"material": "flour", "qty": math.nan, "unit": "kg"}, "qty"),
    ("inspection", {"result": "fail", "score": math.nan}, "score"),
]


@pytest.mark.parametrize(("stream", "fields", "name"), OUT_OF_RANGE + NOT_FINITE)
def test_numbers_out_of_range_or_not_finite_are_invalid_naming_the_field(
    stream: str, fields: dict[str, Any], name: str
) -> None:
    with pytest.raises(ValueError, match=rf"(^|; ){name}\b"):
        event_from_dict({**BASE, "stream": stream, **fields})


def test_the_bounds_themselves_are_accepted() -> None:
    count = event_from_dict({**BASE, "stream": "count", "good": MAX_COUNT, "scrap": MAX_COUNT})
    assert event_to_dict(count)["good"] == event_to_dict(count)["scrap"] == MAX_COUNT
    energy = event_from_dict({**BASE, "stream": "energy", "kwh": MAX_READING})
    assert event_to_dict(energy)["kwh"] == MAX_READING
    sample = event_from_dict(
        {**BASE, "stream": "telemetry", "metrics": {"a": MAX_MEASURE, "b": -1.5}}
    )
    assert event_to_dict(sample)["metrics"] == {"a": MAX_MEASURE, "b": -1.5}


@pytest.mark.parametrize(("stream", "fields", "name"), OUT_OF_RANGE)
def test_mqtt_out_of_range_is_an_invalid_event_dead_letter(
    stream: str, fields: dict[str, Any], name: str
) -> None:
    payload = json.dumps({"id": "n-1", "ts": "2026-11-23T07:00:00Z", **fields}).encode()
    out = decode_message(f"microfab/v1/{CNC1}/{stream}", payload, received_at=NOW)
    assert out.events == []
    [letter] = out.dead
    assert letter.reason.startswith(f"invalid_event: {name}")
    assert letter.payload == payload.decode()  # kept whole


def test_schema_documents_every_numeric_range() -> None:
    defs = events_json_schema()["$defs"]
    count, energy = defs["PartCount"]["properties"], defs["EnergyReading"]["properties"]
    assert count["good"]["maximum"] == MAX_COUNT and count["good"]["minimum"] == -MAX_COUNT
    kwh = next(s for s in energy["kwh"]["anyOf"] if s.get("type") == "number")
    assert kwh["maximum"] == MAX_READING and kwh["minimum"] == 0
    metrics = defs["TelemetrySample"]["properties"]["metrics"]["additionalProperties"]
    assert metrics["maximum"] == MAX_MEASURE and metrics["minimum"] == -MAX_MEASURE
    for name, model in defs.items():
        for field, spec in model.get("properties", {}).items():
            options = spec.get("anyOf", [spec])
            for option in options:
                if option.get("type") in ("integer", "number"):
                    assert "maximum" in option or "exclusiveMaximum" in option, (name, field)


def test_docs_schema_file_is_current() -> None:
    written = Path(__file__).parents[1] / "docs" / "events.schema.json"
    assert json.loads(written.read_text(encoding="utf-8")) == events_json_schema()


@pytest.fixture
def plant(tmp_path: Path) -> Iterator[EventStore]:
    with open_store(f"sqlite:///{tmp_path}/plant.db") as store:
        yield fill(store)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"good": MAX_COUNT + 1, "by": "x"}, "good"),
        ({"good": 1, "scrap": 10**12, "by": "x"}, "scrap"),
        ({"good": 1e308, "by": "x"}, "good"),
    ],
)
def test_rest_counts_out_of_range_are_422_naming_the_field(
    plant: EventStore, body: dict[str, Any], field: str
) -> None:
    with serving(plant, role=Role.OPERATOR) as (_, api):
        answer = api.post(f"/api/v1/machines/{CNC1}/counts", json=body)
    assert answer.status_code == 422, answer.text
    assert any(field in json.dumps(d) for d in answer.json()["error"]["details"]), answer.text


def test_an_absurd_reading_stored_before_the_ranges_does_not_break_carbon(
    plant: EventStore,
) -> None:
    """The audit's reproduction: kwh 1e308 straight into the store, then the carbon views."""
    absurd = EnergyReading.model_construct(  # as stored before the ranges existed
        id="e-absurd",
        ts=dt.datetime(2026, 11, 23, 7, 30, tzinfo=dt.UTC),
        machine=METER,
        stream="energy",
        kwh=1e308,
        carrier=None,
        quantity=None,
        unit=None,
    )
    assert plant.append([absurd]).inserted == 1
    with serving(plant) as (_, api):
        for page in ("/", "/api/v1/carbon/intensity", "/api/v1/dashboard"):
            answer = api.get(page)
            assert answer.status_code == 200, (page, answer.text[:300])
        intensity = api.get("/api/v1/carbon/intensity").json()
    assert json.dumps(intensity, allow_nan=False)  # every number in it is finite


def test_to_milli_is_bounded() -> None:
    assert to_milli(1e308) == to_milli(MAX_READING) == int(MAX_READING * 1000)
    assert to_milli(-math.inf) == -int(MAX_READING * 1000)
    assert to_milli(math.nan) == 0
    assert to_milli(1.2345) == 1235
