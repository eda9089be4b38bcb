"""Modbus TCP connector against a real (simulated) Modbus TCP server on a free loopback port."""

from __future__ import annotations

import asyncio
import io
import itertools
import logging
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from microfab.connect.connector import (
    CONNECTOR_STOPPED,
    LINK_DOWN,
    Health,
    LinkStatus,
    run_until_interrupted,
)
from microfab.connect.modbus import ModbusConnector, decode_registers, parse_address
from microfab.connect.publisher import ListPublisher
from microfab.errors import InputError
from microfab.logs import configure_connector_logging
from microfab.model.events import (
    EnergyReading,
    Event,
    MachineState,
    PartCount,
    StateChange,
    TelemetrySample,
)
from microfab.model.factory import Factory
from microfab.sim.modbus_server import (
    SimulatedModbusMachine,
    encode_registers,
    modbus_machine_points,
)
from services import free_port

DATA = Path(__file__).parent / "data"
CNC1 = "kt/plant/line1/machining/cnc-1"
CNC2 = "kt/plant/line1/utility/cnc-2"
DEADLINE_S = 15.0


def factory_with_modbus(
    port: int, extra_cnc2: list[dict[str, Any]] | None = None, heartbeat_s: float = 60.0
) -> Factory:
    """The small test factory with cnc-1 (and optionally cnc-2) read from 127.0.0.1:port."""
    data = yaml.safe_load((DATA / "factory-small.yaml").read_text(encoding="utf-8"))
    cells = data["sites"][0]["areas"][0]["lines"][0]["cells"]
    source = {"host": "127.0.0.1", "port": port, "unit": 1, "poll_s": 0.1,
              "heartbeat_s": heartbeat_s}  # fmt: skip
    cells[0]["machines"][0]["connect"] = {"modbus": {**source, "points": modbus_machine_points()}}
    if extra_cnc2:
        cells[1]["machines"][0]["connect"] = {"modbus": {**source, "points": extra_cnc2}}
    return Factory.model_validate(data)


async def until(condition: Callable[[], bool], what: str, timeout_s: float = DEADLINE_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(0.05)


def of_machine(events: list[Event], machine: str, kind: type[Any]) -> list[Any]:
    return [e for e in events if e.machine == machine and isinstance(e, kind)]


def states(events: list[Event], machine: str = CNC1) -> list[tuple[str, str | None]]:
    return [(e.state.value, e.reason) for e in of_machine(events, machine, StateChange)]


def counted(events: list[Event], machine: str = CNC1) -> tuple[int, int]:
    counts = of_machine(events, machine, PartCount)
    return sum(c.good for c in counts), sum(c.scrap for c in counts)


# --------------------------------------------------------------------------- decoding


def test_decoding_follows_data_type_and_word_order() -> None:
    assert decode_registers([0xFFFF], "int16") == -1
    assert decode_registers([0xFFFF], "uint16") == 65535
    assert decode_registers([1, 4464], "uint32") == 70000
    assert decode_registers([4464, 1], "uint32", "little") == 70000
    assert decode_registers(encode_registers(-123456, "int32", "little"), "int32", "little") == (
        -123456
    )
    assert decode_registers(encode_registers(21.3, "float32"), "float32") == 21.3
    assert decode_registers([0], "bool") is False
    assert decode_registers([7], "bool") is True
    with pytest.raises(ValueError, match="needs 2 registers"):
        decode_registers([1], "float32")


def test_addresses_are_plain_register_numbers() -> None:
    assert parse_address("0") == 0
    assert parse_address(" 17 ") == 17
    assert parse_address("0x11") == 17
    with pytest.raises(ValueError, match="0-based address"):
        parse_address("HR1")
    with pytest.raises(ValueError, match="0-65535"):
        parse_address("70000")


def test_link_failures_are_described_in_plain_words() -> None:
    from pymodbus.exceptions import ConnectionException

    from microfab.connect.modbus import _describe

    assert _describe(ConnectionException("Connection unexpectedly closed")) == (
        "Connection unexpectedly closed"  # not "Modbus Error: [Connection] Connection …"
    )
    assert _describe(ConnectionRefusedError(111, "Connection refused")) == "connection refused"
    assert _describe(TimeoutError()) == "no answer (timed out)"


def test_bad_mappings_are_input_errors() -> None:
    data = yaml.safe_load((DATA / "factory-small.yaml").read_text(encoding="utf-8"))
    with pytest.raises(InputError, match=r"no machine of the factory model has connect\.modbus"):
        ModbusConnector(Factory.model_validate(data), ListPublisher())
    machine = data["sites"][0]["areas"][0]["lines"][0]["cells"][0]["machines"][0]
    machine["connect"] = {
        "modbus": {"host": "h", "points": [{"point": "40x", "stream": "telemetry"}]}
    }
    with pytest.raises(InputError, match=r"cnc-1: connect.modbus.points\[0\]: point '40x'"):
        ModbusConnector(Factory.model_validate(data), ListPublisher())


# --------------------------------------------------------------------------- against a server


def test_registers_become_events_of_the_mapped_machine() -> None:
    port = free_port()
    extra: list[dict[str, Any]] = [
        # a float pair in little word order, next to an address the device refuses
        {"point": "62", "stream": "telemetry", "metric": "pressure_bar", "data_type": "float32",
         "word_order": "little"},
        {"point": "64", "stream": "telemetry", "metric": "missing"},
        {"point": "5", "table": "coil", "data_type": "bool", "stream": "state",
         "states": {"true": "running", "false": "idle"}},
    ]  # fmt: skip
    factory = factory_with_modbus(port, extra)

    async def scenario() -> list[Event]:
        machine = SimulatedModbusMachine(port)
        machine.set_state(1)
        machine.set_temperature(21.3)
        machine.set_energy(100.0)
        machine.set_register(62, 6.5, "float32", word_order="little")
        publisher = ListPublisher()
        connector = ModbusConnector(factory, publisher, reconnect_s=0.3, timeout_s=1.0)
        async with machine:
            await connector.start()
            try:
                events = publisher.events
                await until(
                    lambda: (
                        bool(of_machine(events, CNC1, EnergyReading))
                        and bool(of_machine(events, CNC2, TelemetrySample))
                    ),
                    "first values",
                )
                assert connector.health().status is LinkStatus.CONNECTED
                machine.add_parts(5, 1)
                await until(lambda: counted(events) == (5, 1), "5 good and 1 scrap")
                machine.set_state(3)
                machine.set_register(5, True, table="coil")
                machine.set_energy(100.25)
                await until(
                    lambda: (
                        ("unplanned_stop", None) in states(events)
                        and ("running", None) in states(events, CNC2)
                        and any(e.kwh == 100.25 for e in of_machine(events, CNC1, EnergyReading))
                    ),
                    "state changes and a new meter reading",
                )
                health = connector.health()
            finally:
                await connector.stop()
        assert health.status is LinkStatus.CONNECTED
        assert "holding 64 (point '64') refused: illegal data address" in health.detail
        assert health.last_event is not None
        assert connector.health().status is LinkStatus.STOPPED
        return publisher.events

    events = asyncio.run(scenario())
    stopped = ("offline", CONNECTOR_STOPPED)
    assert states(events) == [("running", None), ("unplanned_stop", None), stopped]
    assert states(events, CNC2) == [("idle", None), ("running", None), stopped]
    temperatures = {e.metrics["temperature_c"] for e in of_machine(events, CNC1, TelemetrySample)}
    assert temperatures == {21.3}
    pressures = [e.metrics for e in of_machine(events, CNC2, TelemetrySample)]
    assert pressures and all(m == {"pressure_bar": 6.5} for m in pressures)
    assert {e.kwh for e in of_machine(events, CNC1, EnergyReading)} == {100.0, 100.25}
    assert {e.machine for e in events} == {CNC1, CNC2}
    assert all(e.id.startswith("modbus-") for e in events)
    assert len({e.id for e in events}) == len(events)
    assert all(e.ts.microsecond % 1000 == 0 for e in events)


def test_link_loss_marks_machines_offline_and_recovers_by_itself() -> None:
    port = free_port()
    # cnc-2 has no state point: nothing would end an offline, so it gets none
    factory = factory_with_modbus(
        port, [{"point": "6", "stream": "telemetry", "data_type": "float32"}]
    )

    async def scenario() -> list[Event]:
        machine = SimulatedModbusMachine(port)
        machine.set_state(1)
        publisher = ListPublisher()
        connector = ModbusConnector(factory, publisher, reconnect_s=0.3, timeout_s=1.0)
        events = publisher.events
        await machine.start()
        await connector.start()
        try:
            await until(lambda: states(events) == [("running", None)], "running")
            machine.add_parts(2)
            await until(lambda: counted(events) == (2, 0), "the first 2 parts")

            await machine.stop()
            await until(lambda: connector.health().status is LinkStatus.DOWN, "link down")
            await until(lambda: ("offline", LINK_DOWN) in states(events), "offline event")
            await asyncio.sleep(1.0)  # several failed reconnects: still one offline event
            assert states(events).count(("offline", LINK_DOWN)) == 1
            assert connector.health().detail
            machine.add_parts(40)  # made while unreachable: not counted across the gap

            await machine.start()
            await until(lambda: connector.health().status is LinkStatus.CONNECTED, "reconnect")
            await until(lambda: states(events)[-1] == ("running", None), "state after reconnect")
            machine.add_parts(3, 2)
            await until(lambda: counted(events) == (5, 2), "the 3 parts after reconnecting")
            health = connector.health()
        finally:
            await connector.stop()
            await machine.stop()
        assert health.reconnects == 1
        assert health.detail == ""
        return publisher.events

    events = asyncio.run(scenario())
    assert states(events) == [
        ("running", None),
        ("offline", LINK_DOWN),
        ("running", None),
        ("offline", CONNECTOR_STOPPED),
    ]
    offline = [e for e in of_machine(events, CNC1, StateChange) if e.state is MachineState.OFFLINE]
    assert offline[0].id.startswith("modbus-")
    assert states(events, CNC2) == []
    assert of_machine(events, CNC2, TelemetrySample)  # read, stored, but never offline


def test_a_device_that_never_answers_is_down_not_fatal() -> None:
    port = free_port()  # nothing listens here
    factory = factory_with_modbus(port)

    async def scenario() -> tuple[LinkStatus, list[Event]]:
        publisher = ListPublisher()
        connector = ModbusConnector(factory, publisher, reconnect_s=0.2, timeout_s=0.5)
        await connector.start()
        try:
            await until(lambda: connector.health().status is LinkStatus.DOWN, "link down")
            await asyncio.sleep(0.6)
            status = connector.health().status
        finally:
            await connector.stop()
        return status, publisher.events

    status, events = asyncio.run(scenario())
    assert status is LinkStatus.DOWN
    assert states(events) == [("offline", LINK_DOWN)]  # and none on stopping: already offline


def test_a_failing_device_is_reported_once_in_plain_words(caplog: pytest.LogCaptureFixture) -> None:
    """No "Failed to connect [Errno 111] … Repeating...." from pymodbus, no WARNING per retry:
    the link change is logged once, at INFO (the status line shows it)."""
    caplog.set_level(logging.DEBUG, logger="microfab")
    port = free_port()  # nothing listens here

    async def scenario() -> str:
        connector = ModbusConnector(factory_with_modbus(port), ListPublisher(), reconnect_s=0.1)
        await connector.start()
        try:
            await until(lambda: connector.health().status is LinkStatus.DOWN, "link down")
            await asyncio.sleep(0.5)  # a few more failed connects
            return connector.health().detail
        finally:
            await connector.stop()

    detail = asyncio.run(scenario())
    device = f"127.0.0.1:{port} unit 1"
    assert detail == f"{device}: cannot connect to 127.0.0.1:{port}"
    assert not [r for r in caplog.records if r.name.startswith("pymodbus")]
    downs = [r for r in caplog.records if ": down: " in r.getMessage()]
    assert [(r.levelno, r.getMessage()) for r in downs] == [
        (logging.INFO, f"Modbus device {device}: down: cannot connect to 127.0.0.1:{port}")
    ]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_telemetry_and_energy_are_stored_on_change_and_at_the_heartbeat() -> None:
    port = free_port()
    pressure = {"point": "62", "stream": "telemetry", "metric": "pressure_bar",
                "data_type": "float32", "deadband": 0.5}  # fmt: skip
    factory = factory_with_modbus(port, [pressure], heartbeat_s=3600)

    def pressures(events: list[Event]) -> list[float]:
        return [e.metrics["pressure_bar"] for e in of_machine(events, CNC2, TelemetrySample)]

    async def scenario() -> list[Event]:
        machine = SimulatedModbusMachine(port)
        machine.set_register(62, 6.5, "float32")
        publisher = ListPublisher()
        events = publisher.events
        connector = ModbusConnector(factory, publisher, reconnect_s=0.3, timeout_s=1.0)
        async with machine:
            await connector.start()
            try:
                await until(lambda: pressures(events) == [6.5], "the first pressure")
                # every change below is read in the same poll as the state set after it, so
                # once that state is stored, the register was polled (and not stored)
                for code, value in ((1, 6.5), (3, 6.9), (1, 6.2)):
                    machine.set_register(62, value, "float32")
                    machine.set_state(code)
                    await until(lambda c=code: states(events)[-1][0] == STATE[c], f"state {code}")
                assert pressures(events) == [6.5]  # unchanged, or within the 0.5 bar deadband
                machine.set_register(62, 7.25, "float32")
                await until(lambda: pressures(events) == [6.5, 7.25], "a change past the deadband")
                machine.set_energy(12.5)
                await until(
                    lambda: [e.kwh for e in of_machine(events, CNC1, EnergyReading)] == [0.0, 12.5],
                    "a new meter reading",
                )
            finally:
                await connector.stop()
        return events

    events = asyncio.run(scenario())
    assert {e.metrics["temperature_c"] for e in of_machine(events, CNC1, TelemetrySample)} == {21.0}
    assert len(of_machine(events, CNC1, TelemetrySample)) == 1  # unchanged: stored once


STATE = {1: "running", 2: "idle", 3: "unplanned_stop"}


def test_an_unchanged_reading_is_stored_again_at_the_heartbeat() -> None:
    port = free_port()
    factory = factory_with_modbus(port, heartbeat_s=0.3)

    async def scenario() -> list[TelemetrySample]:
        publisher = ListPublisher()
        connector = ModbusConnector(factory, publisher, reconnect_s=0.3, timeout_s=1.0)
        async with SimulatedModbusMachine(port):
            await connector.start()
            try:
                await until(
                    lambda: len(of_machine(publisher.events, CNC1, TelemetrySample)) >= 3,
                    "three heartbeats of the same temperature",
                )
            finally:
                await connector.stop()
        return of_machine(publisher.events, CNC1, TelemetrySample)

    readings = asyncio.run(scenario())
    assert {r.metrics["temperature_c"] for r in readings} == {21.0}
    gaps = [(b.ts - a.ts).total_seconds() for a, b in itertools.pairwise(readings)]
    assert all(gap >= 0.3 for gap in gaps), gaps  # not at every 0.1 s poll


def test_run_until_interrupted_prints_each_change_and_a_summary() -> None:
    port = free_port()
    factory = factory_with_modbus(port)
    lines: list[str] = []

    async def scenario() -> tuple[str, list[Event]]:
        machine = SimulatedModbusMachine(port)
        publisher = ListPublisher()
        connector = ModbusConnector(factory, publisher, reconnect_s=0.2, timeout_s=1.0)
        stop = asyncio.Event()
        await machine.start()
        runner = asyncio.create_task(run_until_interrupted(connector, lines.append, stop))
        try:
            await until(lambda: any(": connected" in line for line in lines), "connected")
            await until(lambda: states(publisher.events) == [("idle", None)], "the state")
            await machine.stop()
            await until(lambda: any(": down - " in line for line in lines), "a down line")
        finally:
            stop.set()
            summary = await runner
            await machine.stop()
        return summary, publisher.events

    summary, events = asyncio.run(scenario())
    stamp = r"\d\d:\d\d:\d\d "
    assert all(re.match(stamp, line) for line in lines), lines
    assert [line[9:] for line in lines[:2]] == ["modbus: connecting", "modbus: connected"]
    down = [line for line in lines if ": down - " in line]
    # the poll in flight sees the close, or (on a loaded machine) the next connect is refused
    assert re.search(
        rf"127\.0\.0\.1:{port} unit 1: (the device closed the connection|cannot connect to "
        rf"127\.0\.0\.1:{port})$",
        down[0],
    ), down
    assert len(lines) == len(set(line[9:] for line in lines))  # no line printed twice in a row
    assert summary == lines[-1]
    assert re.fullmatch(rf"{stamp}modbus: stopped after \d+ s; {len(events)} events sent to the "
                        "store", summary)  # fmt: skip
    # the link was down when it stopped: the machine is already offline, nothing more to store
    assert states(events)[-1] == ("offline", LINK_DOWN)


def test_connector_logging_shows_warnings_with_the_time_and_quiets_libraries() -> None:
    names = ("microfab.connect", "asyncua", "pymodbus")
    saved = [
        (logging.getLogger(n), logging.getLogger(n).level, logging.getLogger(n).propagate,
         list(logging.getLogger(n).handlers))
        for n in names
    ]  # fmt: skip
    out = io.StringIO()
    try:
        configure_connector_logging(verbose=False, stream=out)
        logging.getLogger("microfab.connect.modbus").info("Modbus device x: down: refused")
        logging.getLogger("microfab.connect.opcua").warning("OPC UA x: value skipped")
        logging.getLogger("pymodbus.logging").warning("Failed to connect [Errno 111]")
        logging.getLogger("pymodbus.logging").error("Repeating....")
        quiet = out.getvalue().splitlines()
        configure_connector_logging(verbose=True, stream=out)  # replaces, does not add
        logging.getLogger("microfab.connect.modbus").info("Modbus device x: connected")
        logging.getLogger("pymodbus.logging").warning("Failed to connect [Errno 111]")
        verbose = out.getvalue().splitlines()[len(quiet) :]
    finally:
        for logger, level, propagate, handlers in saved:
            logger.setLevel(level)
            logger.propagate = propagate
            logger.handlers[:] = handlers
    assert [line[9:] for line in quiet] == ["OPC UA x: value skipped"]
    assert re.match(r"\d\d:\d\d:\d\d OPC UA", quiet[0])
    assert [line[9:] for line in verbose] == [
        "Modbus device x: connected",
        "pymodbus.logging: Failed to connect [Errno 111]",
    ]


def test_a_summary_counts_the_events_a_connector_sent() -> None:
    class Idle:
        name = "idle"

        async def start(self) -> None:
            return None

        async def stop(self) -> None:
            return None

        def health(self) -> Health:
            return Health("idle", LinkStatus.CONNECTED, events=1)

    stop = asyncio.Event()
    stop.set()
    summary = asyncio.run(run_until_interrupted(Idle(), stop=stop))
    assert summary.endswith("idle: stopped after 0 s; 1 event sent to the store")
