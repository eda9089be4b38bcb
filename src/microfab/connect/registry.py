"""The connector registry: the one place that maps a connector kind to the class that runs it.

``microfab connect KIND`` and anything else that starts a connector by name call
:func:`build_connector`; nothing else chooses a connector with ``if kind == …``. Each entry
imports its protocol library only when it is built, so the command line starts fast. A new
connector is one entry here (and its ``connect`` command).

Only running connectors (start, stop, health; see :mod:`microfab.connect.connector`) are here: a
CSV of part counts is a one-shot import (:mod:`microfab.connect.csv_counts`), not a connector.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from microfab.errors import InputError

if TYPE_CHECKING:
    from microfab.connect.connector import Connector
    from microfab.connect.mqtt_client import BrokerSettings
    from microfab.connect.publisher import Publisher
    from microfab.model.factory import Factory


@dataclass(frozen=True, slots=True)
class ConnectorOptions:
    """What a connector may need besides the factory model and the publisher."""

    endpoint: str | None = None
    """OPC UA: only the machines mapped to this endpoint (None: all of them)."""
    broker: BrokerSettings | None = None
    """Sparkplug B: the MQTT broker of the edge nodes (required)."""
    host_id: str = "microfab"
    """Sparkplug B: the host id that names this host's STATE topic."""
    agent: str | None = None
    """MTConnect: only the machines mapped to this agent (None: all of them)."""


Build = Callable[["Factory", "Publisher", ConnectorOptions], "Connector"]


@dataclass(frozen=True, slots=True)
class ConnectorKind:
    """One kind of connector: its name on the command line, what it reads, how to build it."""

    name: str
    reads: str
    build: Build


def _opcua(factory: Factory, publisher: Publisher, options: ConnectorOptions) -> Connector:
    from microfab.connect.opcua import OpcUaConnector

    return OpcUaConnector(factory, publisher, endpoint=options.endpoint)


def _sparkplug(factory: Factory, publisher: Publisher, options: ConnectorOptions) -> Connector:
    from microfab.connect.sparkplug import SparkplugHost

    if options.broker is None:
        raise InputError("the Sparkplug B connector needs an MQTT broker")
    return SparkplugHost(factory, publisher, options.broker, host_id=options.host_id)


def _modbus(factory: Factory, publisher: Publisher, options: ConnectorOptions) -> Connector:
    from microfab.connect.modbus import ModbusConnector

    return ModbusConnector(factory, publisher)


def _s7(factory: Factory, publisher: Publisher, options: ConnectorOptions) -> Connector:
    from microfab.connect.s7 import S7Connector

    return S7Connector(factory, publisher)


def _mc(factory: Factory, publisher: Publisher, options: ConnectorOptions) -> Connector:
    from microfab.connect.mc import McConnector

    return McConnector(factory, publisher)


def _enip(factory: Factory, publisher: Publisher, options: ConnectorOptions) -> Connector:
    from microfab.connect.enip import EnipConnector

    return EnipConnector(factory, publisher)


def _mtconnect(factory: Factory, publisher: Publisher, options: ConnectorOptions) -> Connector:
    from microfab.connect.mtconnect import MTConnectConnector

    return MTConnectConnector(factory, publisher, agent=options.agent)


CONNECTORS: dict[str, ConnectorKind] = {
    kind.name: kind
    for kind in (
        ConnectorKind("opcua", "OPC UA nodes (subscriptions)", _opcua),
        ConnectorKind("sparkplug", "Sparkplug B edge nodes over MQTT", _sparkplug),
        ConnectorKind("modbus", "Modbus TCP registers (polling)", _modbus),
        ConnectorKind("s7", "Siemens S7 data blocks and M/I/Q areas (polling)", _s7),
        ConnectorKind("mc", "Mitsubishi MELSEC devices over MC protocol 3E (polling)", _mc),
        ConnectorKind("enip", "Logix tags over EtherNet/IP (polling)", _enip),
        ConnectorKind("mtconnect", "MTConnect agent DataItems (current, then sample)", _mtconnect),
    )
}
"""Every connector kind by name, in the order the documentation lists them."""


def build_connector(
    kind: str,
    factory: Factory,
    publisher: Publisher,
    options: ConnectorOptions | None = None,
) -> Connector:
    """The connector of ``kind`` for the machines mapped in ``factory``, publishing to
    ``publisher``; InputError for a kind that does not exist."""
    found = CONNECTORS.get(kind)
    if found is None:
        raise InputError(
            f"no connector '{kind}'; the connectors are {', '.join(sorted(CONNECTORS))}"
        )
    return found.build(factory, publisher, options or ConnectorOptions())
