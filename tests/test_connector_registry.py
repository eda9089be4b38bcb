"""The connector registry: one name per connector kind, each built by its own class."""

from __future__ import annotations

from pathlib import Path

import pytest

from microfab.connect.mqtt_client import parse_broker_url
from microfab.connect.publisher import ListPublisher
from microfab.connect.registry import CONNECTORS, ConnectorOptions, build_connector
from microfab.errors import InputError
from microfab.model.factory_file import parse_factory

DATA = Path(__file__).resolve().parent / "data"
SMALL = parse_factory((DATA / "factory-small.yaml").read_text(encoding="utf-8"), "factory-small")


def test_the_connect_commands_and_the_registry_name_the_same_kinds() -> None:
    from microfab.commands.connect import connect_app

    commands = {info.name for info in connect_app.registered_commands}
    assert commands == set(CONNECTORS) == {
        "opcua", "sparkplug", "modbus", "s7", "mc", "enip", "mtconnect"
    }  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "mapping"),
    [
        ("opcua", "connect.opcua"),
        ("modbus", "connect.modbus"),
        ("sparkplug", "connect.sparkplug"),
        ("s7", "connect.s7"),
        ("mc", "connect.mc"),
        ("enip", "connect.enip"),
        ("mtconnect", "connect.mtconnect"),
    ],
)
def test_each_kind_is_built_by_its_own_connector(kind: str, mapping: str) -> None:
    """The small factory maps no machine to any protocol: each connector says so in its words,
    which shows the registry reached the right class."""
    options = ConnectorOptions(broker=parse_broker_url("mqtt://127.0.0.1:1883"))
    with pytest.raises(InputError, match=rf"no machine .* has {mapping};"):
        build_connector(kind, SMALL, ListPublisher(), options)


def test_an_unknown_kind_lists_the_known_ones() -> None:
    with pytest.raises(
        InputError, match=r"^no connector 'csv'; .* modbus, mtconnect, opcua, s7, sparkplug$"
    ):
        build_connector("csv", SMALL, ListPublisher())


def test_sparkplug_needs_a_broker() -> None:
    with pytest.raises(InputError, match="needs an MQTT broker"):
        build_connector("sparkplug", SMALL, ListPublisher())
