"""Benchmark: how fast each polling connector reads its simulated device on this machine.

Run with ``microfab bench connect``. For each protocol the connector of the factory model polls
the simulated machine of :mod:`microfab.sim` (the same servers the tests use) as fast as it can
(``poll_s`` of a microsecond) for a few seconds over loopback, with events going to memory. A
*read* is one full poll: every mapped point of the device read once (one request per planned
block; S7, MC and Modbus merge neighbouring addresses, EtherNet/IP puts up to 16 tags in one
Multiple Service Packet, MTConnect is one ``sample`` request). *Points/s* counts the values read;
an MTConnect agent reports changes only, so there the machine's temperature changes about every
millisecond and points/s counts the observations read. Medians over ``repeat`` runs.

The figures are those of the simulators as much as of the clients: cpppo's EtherNet/IP server and
snap7's S7 server are pure Python; no PLC hardware was measured.
"""

from __future__ import annotations

import asyncio
import socket
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from microfab.connect.polling import PollingConnector
from microfab.connect.publisher import ListPublisher
from microfab.model.factory import Factory

NAME = "connect"
TITLE = "Connectors: reads and points per second against the simulated devices"
SMALL = Path(__file__).resolve().parents[1] / "tests" / "data" / "factory-small.yaml"


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _factory(block: dict[str, Any]) -> Factory:
    data = yaml.safe_load(SMALL.read_text(encoding="utf-8"))
    data["sites"][0]["areas"][0]["lines"][0]["cells"][0]["machines"][0]["connect"] = block
    return Factory.model_validate(data)


def _protocols() -> list[
    tuple[str, Callable[[], tuple[Any, Callable[[], PollingConnector[Any, Any]]]]]
]:
    def modbus() -> tuple[Any, Callable[[], PollingConnector[Any, Any]]]:
        from microfab.connect.modbus import ModbusConnector
        from microfab.sim.modbus_server import SimulatedModbusMachine, modbus_machine_points

        port = _port()
        block = {"modbus": {"host": "127.0.0.1", "port": port, "points": modbus_machine_points()}}
        return SimulatedModbusMachine(port), lambda: ModbusConnector(
            _factory(block), ListPublisher(), poll_s=1e-6
        )

    def s7() -> tuple[Any, Callable[[], PollingConnector[Any, Any]]]:
        from microfab.connect.s7 import S7Connector
        from microfab.sim.s7_server import SimulatedS7Plc, s7_machine_points

        port = _port()
        block = {"s7": {"host": "127.0.0.1", "port": port, "points": s7_machine_points()}}
        return SimulatedS7Plc(port), lambda: S7Connector(
            _factory(block), ListPublisher(), poll_s=1e-6
        )

    def mc() -> tuple[Any, Callable[[], PollingConnector[Any, Any]]]:
        from microfab.connect.mc import McConnector
        from microfab.sim.mc_server import SimulatedMcPlc, mc_machine_points

        port = _port()
        block = {"mc": {"host": "127.0.0.1", "port": port, "points": mc_machine_points()}}
        return SimulatedMcPlc(port), lambda: McConnector(
            _factory(block), ListPublisher(), poll_s=1e-6
        )

    def enip() -> tuple[Any, Callable[[], PollingConnector[Any, Any]]]:
        from microfab.connect.enip import EnipConnector
        from microfab.sim.enip_server import SimulatedEnipPlc, enip_machine_points

        plc = SimulatedEnipPlc(_port())

        def build() -> PollingConnector[Any, Any]:
            block = {"enip": {"host": "127.0.0.1", "port": plc.plc_port,  # no relay in between
                              "points": enip_machine_points()}}  # fmt: skip
            return EnipConnector(_factory(block), ListPublisher(), poll_s=1e-6)

        return plc, build

    def mtconnect() -> tuple[Any, Callable[[], PollingConnector[Any, Any]]]:
        from microfab.connect.mtconnect import MTConnectConnector
        from microfab.sim.mtconnect_agent import SimulatedMTConnectAgent, mtconnect_machine_points

        port = _port()
        block = {"mtconnect": {"agent": f"http://127.0.0.1:{port}",
                               "points": mtconnect_machine_points()}}  # fmt: skip
        return SimulatedMTConnectAgent(port), lambda: MTConnectConnector(
            _factory(block), ListPublisher(), poll_s=1e-6
        )

    return [("Modbus TCP", modbus), ("Siemens S7", s7), ("MC protocol 3E", mc),
            ("EtherNet/IP", enip), ("MTConnect", mtconnect)]  # fmt: skip


async def _measure(server: Any, build: Callable[[], PollingConnector[Any, Any]],
                   seconds: float) -> tuple[float, float, int]:  # fmt: skip
    connector = build()
    await connector.start()
    feeder = asyncio.create_task(_feed(server)) if hasattr(server, "restart_agent") else None
    try:
        device = connector.devices[0]
        deadline = time.monotonic() + 10
        while device.polls == 0:  # connected and read once
            if time.monotonic() > deadline:
                raise RuntimeError(f"{connector.name}: no poll within 10 s: {connector.health()}")
            await asyncio.sleep(0.01)
        polls, values, start = device.polls, device.values, time.perf_counter()
        await asyncio.sleep(seconds)
        wall = time.perf_counter() - start
        polls, values = device.polls - polls, device.values - values
        points = len(device.mappers[0].points)
    finally:
        if feeder is not None:
            feeder.cancel()
        await connector.stop()
    return polls / wall, values / wall, points


async def _feed(agent: Any) -> None:
    """MTConnect reports changes only: the temperature changes every millisecond or so."""
    n = 0
    while True:
        n += 1
        agent.set_temperature(20 + n % 100 / 10)
        await asyncio.sleep(0.001)


def run(repeat: int = 3, seconds: float = 3.0) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    for label, make in _protocols():
        server, build = make()

        async def session(
            server: Any = server, build: Callable[[], PollingConnector[Any, Any]] = build
        ) -> list[tuple[float, float, int]]:
            await server.start()
            try:
                return [await _measure(server, build, seconds) for _ in range(repeat)]
            finally:
                await server.stop()

        try:
            runs = asyncio.run(session())
        finally:
            if hasattr(server, "close"):
                server.close()
        rows.append(
            {
                "protocol": label,
                "points": runs[0][2],
                "reads_per_s": round(statistics.median(r[0] for r in runs)),
                "points_per_s": round(statistics.median(r[1] for r in runs)),
                "min_reads_per_s": round(min(r[0] for r in runs)),
            }
        )
    return {"repeat": repeat, "seconds": seconds, "rows": rows}


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"Each connector polls its simulated device (the test servers of `microfab.sim`) over "
        f"loopback as fast as it can for {result['seconds']:g} s, events to memory; median of "
        f"{result['repeat']} runs. A read is one full poll of the machine's points (MTConnect: one "
        "`sample` request, with the temperature changing about every millisecond; points/s counts "
        "the observations read).",
        "",
        "| protocol | server | points | reads/s | points/s | slowest run reads/s |",
        "|---|---|---:|---:|---:|---:|",
    ]
    servers = {
        "Modbus TCP": "pymodbus simulator",
        "Siemens S7": "python-snap7 server (pure Python)",
        "MC protocol 3E": "microfab's, from the frame format",
        "EtherNet/IP": "cpppo `enip` (child process)",
        "MTConnect": "microfab's agent (http.server)",
    }
    for r in result["rows"]:
        lines.append(
            f"| {r['protocol']} | {servers[r['protocol']]} | {r['points']} | "
            f"{r['reads_per_s']:,} | {r['points_per_s']:,} | {r['min_reads_per_s']:,} |"
        )
    lines += [
        "",
        "The figures are those of the simulators as much as of the clients, on a machine shared "
        "with other work (they vary by a factor of two between sessions): snap7's S7 server and "
        "cpppo's EtherNet/IP server are pure Python. Every protocol reads the machine's points in "
        "one request per poll here (S7, MC and Modbus: one block of neighbouring addresses; "
        "EtherNet/IP: one Multiple Service Packet of 5 Read Tag requests; MTConnect: one "
        "`sample`). A real PLC answers in its own communication time slice, which depends on its "
        "load; no PLC hardware was measured. At the default `poll_s` of 1 s each simulator "
        "leaves a wide margin.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    print(markdown(run(repeat=1, seconds=1.0)))
