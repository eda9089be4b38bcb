"""A simulated machine served over OPC UA, for connector tests, demos and docs.

:class:`SimulatedOpcUaMachine` runs a real asyncua server on ``opc.tcp://127.0.0.1:PORT/microfab/``
with one folder ``Machine`` and five variables addressed by string node ids in namespace 2::

    ns=2;s=Machine.State        Int32   1 running, 2 idle, 3 unplanned stop, 4 planned stop
    ns=2;s=Machine.GoodCount    UInt32  running total of good parts
    ns=2;s=Machine.ScrapCount   UInt32  running total of scrap parts
    ns=2;s=Machine.Temperature  Double  °C
    ns=2;s=Machine.EnergyKwh    Double  cumulative kWh

It can be stopped and started again on the same port (a "server restart"); the values survive the
restart. :func:`opcua_machine_points` returns the matching ``connect.opcua.points`` of a factory
file, so ``points: <that list>`` is all a machine needs to be read from this server.
"""

from __future__ import annotations

import datetime as dt
import logging
from types import TracebackType
from typing import Any

from asyncua import ua
from asyncua.common.node import Node
from asyncua.server.server import Server

logger = logging.getLogger(__name__)

STATE_CODES: dict[int, str] = {1: "running", 2: "idle", 3: "unplanned_stop", 4: "planned_stop"}
"""Raw values of ``Machine.State`` and the microfab state each one means."""

_VARIABLES: tuple[tuple[str, ua.VariantType], ...] = (
    ("State", ua.VariantType.Int32),
    ("GoodCount", ua.VariantType.UInt32),
    ("ScrapCount", ua.VariantType.UInt32),
    ("Temperature", ua.VariantType.Double),
    ("EnergyKwh", ua.VariantType.Double),
)


def node_id(name: str) -> str:
    """The string node id of one variable of the simulated machine, e.g. ``ns=2;s=Machine.State``."""
    return f"ns=2;s=Machine.{name}"


def opcua_machine_points() -> list[dict[str, Any]]:
    """``connect.opcua.points`` entries (plain dicts, as in a factory file) for this server."""
    return [
        {
            "point": node_id("State"),
            "stream": "state",
            "states": {str(code): state for code, state in STATE_CODES.items()},
        },
        {"point": node_id("GoodCount"), "stream": "count", "field": "good", "cumulative": True},
        {"point": node_id("ScrapCount"), "stream": "count", "field": "scrap", "cumulative": True},
        {"point": node_id("Temperature"), "stream": "telemetry", "metric": "temperature_c"},
        {"point": node_id("EnergyKwh"), "stream": "energy"},
    ]


class SimulatedOpcUaMachine:
    """One machine as an OPC UA server; use ``async with`` or :meth:`start` / :meth:`stop`."""

    def __init__(self, port: int, *, namespace: str = "urn:microfab:sim") -> None:
        self.port = port
        self.namespace = namespace
        self._values: dict[str, int | float] = {
            "State": 2,
            "GoodCount": 0,
            "ScrapCount": 0,
            "Temperature": 21.0,
            "EnergyKwh": 0.0,
        }
        self._server: Server | None = None
        self._nodes: dict[str, Node] = {}

    @property
    def endpoint(self) -> str:
        return f"opc.tcp://127.0.0.1:{self.port}/microfab/"

    @property
    def running(self) -> bool:
        return self._server is not None

    async def __aenter__(self) -> SimulatedOpcUaMachine:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Serve on :attr:`endpoint` with the current values; a no-op when already serving."""
        if self._server is not None:
            return
        server = Server()
        await server.init()
        server.set_endpoint(self.endpoint)
        server.set_server_name("microfab simulated machine")
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity])  # a local test double
        server.set_identity_tokens([ua.AnonymousIdentityToken])
        index = await server.register_namespace(self.namespace)
        if index != 2:  # the string node ids ns=2;s=... depend on it
            raise RuntimeError(f"namespace {self.namespace} got index {index}, expected 2")
        folder = await server.nodes.objects.add_folder(
            ua.NodeId.from_string("ns=2;s=Machine"), "Machine"
        )
        nodes: dict[str, Node] = {}
        for name, variant in _VARIABLES:
            nodes[name] = await folder.add_variable(
                ua.NodeId.from_string(node_id(name)),
                name,
                ua.Variant(self._values[name], variant),
            )
        try:
            await server.start()
        except BaseException:
            await _quiet_stop(server)
            raise
        self._server = server
        self._nodes = nodes
        logger.info("simulated OPC UA machine serving on %s", self.endpoint)

    async def stop(self) -> None:
        """Stop serving (clients see the link drop); the values are kept for a later start."""
        server, self._server = self._server, None
        self._nodes = {}
        if server is not None:
            await _quiet_stop(server)
            logger.info("simulated OPC UA machine on %s stopped", self.endpoint)

    async def set_state(self, code: int) -> None:
        """Set ``Machine.State`` (see :data:`STATE_CODES`)."""
        await self._write("State", code)

    async def add_parts(self, good: int, scrap: int = 0) -> None:
        """Advance the running totals ``Machine.GoodCount`` and ``Machine.ScrapCount``."""
        if good < 0 or scrap < 0:
            raise ValueError("part counts only go up")
        if good:
            await self._write("GoodCount", int(self._values["GoodCount"]) + good)
        if scrap:
            await self._write("ScrapCount", int(self._values["ScrapCount"]) + scrap)

    async def set_temperature(self, celsius: float) -> None:
        await self._write("Temperature", float(celsius))

    async def set_energy(self, kwh: float) -> None:
        """Set the cumulative meter reading ``Machine.EnergyKwh``."""
        await self._write("EnergyKwh", float(kwh))

    async def set_value(self, name: str, value: int | float) -> None:
        """Set any variable to ``value``, e.g. ``set_value("GoodCount", 3)`` for a counter that the
        PLC sets to the parts of each report (``cumulative: false``) instead of a running total."""
        if name not in self._values:
            raise ValueError(f"no variable {name!r}; the machine has {', '.join(self._values)}")
        await self._write(name, value)

    def value(self, name: str) -> int | float:
        """The current value of a variable, e.g. ``value("GoodCount")``."""
        return self._values[name]

    async def _write(self, name: str, value: int | float) -> None:
        self._values[name] = value
        node = self._nodes.get(name)
        if node is None:  # stopped: the value is served after the next start
            return
        variant = dict(_VARIABLES)[name]
        now = ua.DateTime.now(dt.UTC)
        await node.write_value(
            ua.DataValue(ua.Variant(value, variant), SourceTimestamp=now, ServerTimestamp=now)
        )


async def _quiet_stop(server: Server) -> None:
    try:
        await server.stop()
    except Exception:  # a half-started server may fail to stop; nothing is left to release
        logger.debug("stopping the OPC UA server failed", exc_info=True)
