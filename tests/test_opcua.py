"""The OPC UA connector against a real asyncua server: mapping, link loss, reconnect, late server."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import yaml

from conftest import DATA
from microfab.connect.connector import CONNECTOR_STOPPED, LINK_DOWN, LinkStatus
from microfab.connect.mapping import PointMapper
from microfab.connect.opcua import OpcUaConnector
from microfab.connect.publisher import ListPublisher
from microfab.errors import InputError
from microfab.model.events import (
    EnergyReading,
    Event,
    MachineState,
    PartCount,
    StateChange,
    TelemetrySample,
)
from microfab.model.factory import Factory, PointMap
from microfab.sim.opcua_server import SimulatedOpcUaMachine, opcua_machine_points
from services import free_port

CNC = "kt/plant/line1/machining/cnc-1"
ROBOT = "kt/plant/line1/machining/robot-1"
DEADLINE_S = 15.0


def factory_with_opcua(
    endpoint: str, *, robot_points: list[dict[str, Any]] | None = None
) -> Factory:
    """The small test factory with cnc-1 (and optionally robot-1) read from ``endpoint``."""
    data = yaml.safe_load((DATA / "factory-small.yaml").read_text(encoding="utf-8"))
    machines = data["sites"][0]["areas"][0]["lines"][0]["cells"][0]["machines"]
    machines[0]["connect"] = {
        "opcua": {
            "endpoint": endpoint,
            "publishing_interval_ms": 50,
            "points": opcua_machine_points(),
        }
    }
    if robot_points:
        machines[1]["connect"] = {"opcua": {"endpoint": endpoint, "points": robot_points}}
    return Factory.model_validate(data)


async def until(condition: Callable[[], bool], what: str, timeout_s: float = DEADLINE_S) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``timeout_s``."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"not within {timeout_s:g} s: {what}")
        await asyncio.sleep(0.05)


def of(events: list[Event], kind: type[Any], machine: str = CNC) -> list[Any]:
    return [e for e in events if isinstance(e, kind) and e.machine == machine]


def states(events: list[Event], machine: str = CNC) -> list[MachineState]:
    return [e.state for e in of(events, StateChange, machine)]


def good(events: list[Event]) -> int:
    return sum(e.good for e in of(events, PartCount))


def run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(scenario())


def reasons(events: list[Event], machine: str = CNC) -> list[str | None]:
    return [e.reason for e in of(events, StateChange, machine)]


# ---------------------------------------------------------------------------- mapping


def test_values_arrive_as_events_of_the_mapped_machines() -> None:
    async def scenario() -> None:
        async with SimulatedOpcUaMachine(free_port()) as machine:
            await machine.add_parts(10, 3)  # totals before we connect: the baseline, not parts
            await machine.set_energy(100.0)
            robot_points: list[dict[str, Any]] = [
                {"point": "ns=2;s=Machine.State", "stream": "state", "states": {"1": "running"}},
                {"point": "ns=2;s=Machine.NoSuchNode", "stream": "telemetry", "metric": "x"},
                # a metric name too long for the event contract: its values are skipped, logged
                {"point": "ns=2;s=Machine.Temperature", "stream": "telemetry", "metric": "t" * 80},
            ]
            factory = factory_with_opcua(machine.endpoint, robot_points=robot_points)
            published = ListPublisher()
            connector = OpcUaConnector(factory, published, reconnect_s=0.3)
            await connector.start()
            try:
                events = published.events
                await until(lambda: connector.health().status is LinkStatus.CONNECTED, "connected")
                await until(lambda: bool(of(events, EnergyReading)), "the initial readings")
                health = connector.health()
                assert "1 endpoint(s), 2 machine(s)" in health.detail
                assert "ns=2;s=Machine.NoSuchNode (BadNodeIdUnknown)" in health.detail
                assert states(events) == [MachineState.IDLE]
                assert states(events, ROBOT) == [MachineState.UNPLANNED_STOP]  # 2 is not mapped
                assert of(events, StateChange, ROBOT)[0].reason == "UNMAPPED-2"
                assert not of(events, PartCount)

                await machine.set_state(1)
                await machine.add_parts(5, 2)
                await machine.set_temperature(63.5)
                await machine.set_energy(101.25)
                await until(lambda: good(events) == 5, "5 good parts")
                await until(
                    lambda: any(e.kwh == 101.25 for e in of(events, EnergyReading)), "energy"
                )
                await until(
                    lambda: (
                        {"temperature_c": 63.5} in [e.metrics for e in of(events, TelemetrySample)]
                    ),
                    "temperature",
                )
                await until(lambda: MachineState.RUNNING in states(events, ROBOT), "robot state")
            finally:
                await connector.stop()

        # stopping the connector marks both machines offline: their state is no longer read
        assert states(events) == [MachineState.IDLE, MachineState.RUNNING, MachineState.OFFLINE]
        assert states(events, ROBOT) == [
            MachineState.UNPLANNED_STOP,
            MachineState.RUNNING,
            MachineState.OFFLINE,
        ]
        assert reasons(events)[-1] == reasons(events, ROBOT)[-1] == CONNECTOR_STOPPED
        assert connector.health().events == len(events)
        assert sum(e.scrap for e in of(events, PartCount)) == 2
        assert [e.kwh for e in of(events, EnergyReading)] == [100.0, 101.25]
        assert {e.machine for e in events} == {CNC, ROBOT}
        assert not of(events, TelemetrySample, ROBOT)
        assert connector.health().reconnects == 0
        assert len({e.id for e in events}) == len(events)
        assert all(e.ts.tzinfo is not None and e.id.startswith("opcua-") for e in events)
        assert connector.health().status is LinkStatus.STOPPED

    run(scenario)


# ---------------------------------------------------------------------------- link loss


def test_server_restart_marks_offline_then_reconnects_by_itself() -> None:
    async def scenario() -> None:
        machine = SimulatedOpcUaMachine(free_port())
        await machine.start()
        published = ListPublisher()
        events = published.events
        connector = OpcUaConnector(factory_with_opcua(machine.endpoint), published, reconnect_s=0.3)
        try:
            await connector.start()
            await machine.set_state(1)
            await until(lambda: MachineState.RUNNING in states(events), "running")
            assert connector.health().reconnects == 0

            await machine.stop()
            await until(lambda: connector.health().status is LinkStatus.DOWN, "health down")
            health = connector.health()
            assert machine.endpoint in health.detail
            assert "retrying every 0.3 s" in health.detail
            await until(lambda: MachineState.OFFLINE in states(events), "offline event")
            offline = [e for e in of(events, StateChange) if e.state is MachineState.OFFLINE]
            assert offline[0].reason == LINK_DOWN
            await until(lambda: "refused" in connector.health().detail, "a failed retry")

            await machine.add_parts(7)  # made while we could not see it: not counted
            await machine.start()
            await until(lambda: connector.health().status is LinkStatus.CONNECTED, "reconnected")
            assert connector.health().reconnects == 1
            await until(lambda: states(events)[-1] is MachineState.RUNNING, "state re-reported")
            await machine.add_parts(4)
            await until(lambda: good(events) == 4, "4 good parts after the restart")
        finally:
            await connector.stop()
            await machine.stop()

        assert states(events) == [
            MachineState.IDLE,
            MachineState.RUNNING,
            MachineState.OFFLINE,
            MachineState.RUNNING,
            MachineState.OFFLINE,
        ]  # one offline however many retries failed; the last: the connector stopping
        assert reasons(events)[2:] == [LINK_DOWN, None, CONNECTOR_STOPPED]
        back = of(events, StateChange)[-2]
        assert back.ts >= offline[0].ts
        assert len({e.id for e in events}) == len(events)

    run(scenario)


def test_unreachable_endpoint_at_start_is_down_not_an_error() -> None:
    async def scenario() -> None:
        machine = SimulatedOpcUaMachine(free_port())
        published = ListPublisher()
        events = published.events
        connector = OpcUaConnector(factory_with_opcua(machine.endpoint), published, reconnect_s=0.3)
        try:
            await connector.start()  # nothing listens yet
            health = connector.health()
            assert health.status is LinkStatus.DOWN
            assert health.detail == (
                f"{machine.endpoint}: connection refused (is the OPC UA server running?); "
                "retrying every 0.3 s"
            )
            assert states(events) == [MachineState.OFFLINE]
            assert of(events, StateChange)[0].reason == LINK_DOWN

            await machine.start()
            await until(lambda: connector.health().status is LinkStatus.CONNECTED, "connected")
            await machine.set_state(3)
            await until(
                lambda: MachineState.UNPLANNED_STOP in states(events), "unplanned stop event"
            )
        finally:
            await connector.stop()
            await machine.stop()
        assert states(events) == [
            MachineState.OFFLINE,
            MachineState.IDLE,
            MachineState.UNPLANNED_STOP,
            MachineState.OFFLINE,
        ]
        assert reasons(events) == [LINK_DOWN, None, None, CONNECTOR_STOPPED]

    run(scenario)


def test_a_pulse_count_is_not_counted_again_when_the_server_resends_it() -> None:
    """``cumulative: false``: OPC UA sends every node's value again on subscribing (at start and
    after each reconnect); that value is the one already reported, not new parts."""
    pulse = {"point": "ns=2;s=Machine.GoodCount", "stream": "count", "field": "good",
             "cumulative": False}  # fmt: skip

    def robot_good(events: list[Event]) -> int:
        return sum(e.good for e in of(events, PartCount, ROBOT))

    async def scenario() -> None:
        machine = SimulatedOpcUaMachine(free_port())
        await machine.set_value("GoodCount", 3)  # reported before the connector ran
        await machine.start()
        published = ListPublisher()
        events = published.events
        factory = factory_with_opcua(machine.endpoint, robot_points=[pulse])
        connector = OpcUaConnector(factory, published, reconnect_s=0.3)
        try:
            await connector.start()
            await until(lambda: bool(of(events, EnergyReading)), "the values held at start")
            await machine.set_value("GoodCount", 5)  # a report of 5 parts
            await until(lambda: robot_good(events) >= 5, "the 5 parts")

            await machine.stop()
            await until(lambda: connector.health().status is LinkStatus.DOWN, "link down")
            await until(lambda: MachineState.OFFLINE in states(events), "cnc-1 offline")
            await machine.start()  # serves GoodCount = 5 again
            await until(lambda: connector.health().status is LinkStatus.CONNECTED, "reconnected")
            await until(lambda: states(events)[-1] is MachineState.IDLE, "state re-reported")
            await machine.set_value("GoodCount", 4)  # the next report: 4 parts
            await until(lambda: robot_good(events) >= 9, "the 4 parts after the reconnect")
        finally:
            await connector.stop()
            await machine.stop()
        assert [e.good for e in of(events, PartCount, ROBOT)] == [5, 4]  # 3 and 5 were held
        assert not of(events, StateChange, ROBOT)  # no state point: never marked offline

    run(scenario)


# ---------------------------------------------------------------------------- the point mapper

T0 = dt.datetime(2026, 11, 23, 1, 0, tzinfo=dt.UTC)


def _mapper(*points: dict[str, Any]) -> PointMapper:
    return PointMapper("test", CNC, [PointMap.model_validate(p) for p in points])


def test_held_values_are_not_new_parts() -> None:
    mapper = _mapper(
        {"point": "pulse", "stream": "count", "field": "good", "cumulative": False},
        {"point": "total", "stream": "count", "field": "scrap"},
    )
    second = dt.timedelta(seconds=1)
    assert mapper.map("pulse", 4, T0, held=True) is None  # restated: counted when reported
    event = mapper.map("pulse", 4, T0 + second)
    assert isinstance(event, PartCount) and event.good == 4  # a report, even of the same number
    assert mapper.map("total", 10, T0, held=True) is None  # a running total: the baseline
    event = mapper.map("total", 12, T0 + second, held=True)  # a birth after a seq gap
    assert isinstance(event, PartCount) and event.scrap == 2


def test_only_machines_with_a_state_point_go_offline() -> None:
    meter = _mapper({"point": "kwh", "stream": "energy"})
    assert meter.offline(T0, LINK_DOWN) is None  # nothing would bring it back from offline
    machine = _mapper({"point": "s", "stream": "state", "states": {"1": "running"}})
    assert not machine.live
    assert machine.map("s", 1, T0) is not None
    assert machine.live
    event = machine.offline(T0, CONNECTOR_STOPPED)
    assert isinstance(event, StateChange) and event.reason == CONNECTOR_STOPPED
    assert not machine.live


# ---------------------------------------------------------------------------- configuration


def test_a_factory_without_opcua_machines_is_refused() -> None:
    data = yaml.safe_load((DATA / "factory-small.yaml").read_text(encoding="utf-8"))
    with pytest.raises(InputError, match=r"no machine in the factory model has connect\.opcua"):
        OpcUaConnector(Factory.model_validate(data), ListPublisher())


def test_the_endpoint_filter_names_the_mapped_endpoints() -> None:
    factory = factory_with_opcua("opc.tcp://10.0.0.5:4840")
    connector = OpcUaConnector(factory, ListPublisher(), endpoint="opc.tcp://10.0.0.5:4840/")
    assert connector.endpoints == ["opc.tcp://10.0.0.5:4840"]
    with pytest.raises(InputError, match=r"mapped to opc\.tcp://10\.0\.0\.9:4840.*10\.0\.0\.5"):
        OpcUaConnector(factory, ListPublisher(), endpoint="opc.tcp://10.0.0.9:4840")


def test_a_point_that_is_not_a_node_id_is_refused() -> None:
    factory = factory_with_opcua(
        "opc.tcp://10.0.0.5:4840",
        robot_points=[{"point": "Machine.State", "stream": "telemetry"}],
    )
    with pytest.raises(
        InputError, match=rf"{ROBOT}: OPC UA point 'Machine\.State' is not a node id"
    ):
        OpcUaConnector(factory, ListPublisher())


def test_the_simulator_points_validate_as_a_factory_mapping() -> None:
    factory = factory_with_opcua("opc.tcp://127.0.0.1:4840/microfab/")
    source = factory.machine(CNC).machine.connect
    assert source is not None and source.opcua is not None
    assert [p.point for p in source.opcua.points] == [
        "ns=2;s=Machine.State",
        "ns=2;s=Machine.GoodCount",
        "ns=2;s=Machine.ScrapCount",
        "ns=2;s=Machine.Temperature",
        "ns=2;s=Machine.EnergyKwh",
    ]
    assert source.opcua.points[0].states == {
        "1": "running",
        "2": "idle",
        "3": "unplanned_stop",
        "4": "planned_stop",
    }
