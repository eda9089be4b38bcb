"""Bad PLC addresses in a factory file fail validation with file:line and the syntax to use."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from microfab.errors import FactoryFileError
from microfab.model.factory_file import parse_factory

SMALL = Path(__file__).parent / "data" / "factory-small.yaml"


def _text(block: dict[str, object]) -> str:
    data = yaml.safe_load(SMALL.read_text(encoding="utf-8"))
    data["sites"][0]["areas"][0]["lines"][0]["cells"][0]["machines"][0]["connect"] = block
    return yaml.safe_dump(data, sort_keys=False)


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.mark.parametrize(
    ("block", "bad", "syntax"),
    [
        ({"s7": {"host": "plc", "points": [{"point": "DB1.DBQ3", "stream": "telemetry"}]}},
         "DB1.DBQ3", "write DBn.DBX byte.bit, DBn.DBB byte, DBn.DBW byte or DBn.DBD byte"),
        ({"mc": {"host": "plc", "points": [{"point": "D-1", "stream": "telemetry"}]}},
         "D-1", "write a device code and number such as D100, M10, X0"),
        ({"enip": {"host": "plc", "points": [{"point": "Line1..State", "stream": "telemetry"}]}},
         "Line1..State", "write a Logix tag name such as Line1.State, Counts[2]"),
    ],
)  # fmt: skip
def test_a_bad_address_names_file_line_and_syntax(
    block: dict[str, object], bad: str, syntax: str
) -> None:
    text = _text(block)
    with pytest.raises(FactoryFileError) as caught:
        parse_factory(text, "plant.yaml")
    message = str(caught.value)
    assert f"plant.yaml:{_line_of(text, bad)} " in message
    assert f"point '{bad}' is not" in message
    assert syntax in message


def test_a_data_type_that_does_not_fit_the_address_is_refused() -> None:
    block = {"s7": {"host": "plc", "points": [
        {"point": "DB1.DBW0", "stream": "telemetry", "data_type": "real"}]}}  # fmt: skip
    with pytest.raises(FactoryFileError, match="data_type real does not fit a word address"):
        parse_factory(_text(block), "plant.yaml")
    pair = {"mc": {"host": "plc", "points": [
        {"point": "D200", "stream": "count", "field": "good", "data_type": "uint32"}]}}  # fmt: skip
    with pytest.raises(FactoryFileError, match=r"a 32-bit value is a pair: D200:2"):
        parse_factory(_text(pair), "plant.yaml")
    once = {"s7": {"host": "plc", "points": [
        {"point": "DB1.DBD2", "stream": "count", "field": "good", "cumulative": False}]}}  # fmt: skip
    with pytest.raises(FactoryFileError, match="cumulative: false cannot be used with S7"):
        parse_factory(_text(once), "plant.yaml")
