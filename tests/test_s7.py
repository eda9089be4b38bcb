"""Siemens S7 connector against python-snap7's S7 server on a free loopback port."""

from __future__ import annotations

import asyncio

import pytest

from connector_cycle import CNC1, check_cycle, factory_with, standard_cycle, states, until
from microfab.connect.connector import LinkStatus
from microfab.connect.publisher import ListPublisher
from microfab.connect.s7 import S7Connector, browse, plan_blocks
from microfab.model.events import Event, TelemetrySample
from microfab.model.plc_address import S7Address, check_s7_type, parse_s7
from microfab.sim.s7_server import SimulatedS7Plc, s7_machine_points
from services import free_port


def s7_block(port: int, points: list[dict[str, object]] | None = None) -> dict[str, object]:
    return {"s7": {"host": "127.0.0.1", "port": port, "rack": 0, "slot": 1, "poll_s": 0.05,
                   "points": points or s7_machine_points()}}  # fmt: skip


def test_s7_addresses_parse_in_the_usual_syntax() -> None:
    assert parse_s7("DB1.DBX14.0") == S7Address("DB", 1, "X", 14, 0)
    assert parse_s7("db1.dbw0") == S7Address("DB", 1, "W", 0)
    assert parse_s7("DB10.DBD6") == S7Address("DB", 10, "D", 6)
    assert parse_s7("DB2.DBB3") == S7Address("DB", 2, "B", 3)
    assert parse_s7("MW10") == S7Address("M", 0, "W", 10)
    assert parse_s7("I0.0") == S7Address("I", 0, "X", 0, 0)
    assert parse_s7("E0.1") == S7Address("I", 0, "X", 0, 1)
    assert parse_s7("Q0.1") == S7Address("Q", 0, "X", 0, 1)
    assert parse_s7("MD4").size == 4
    for bad in ("DB1.DBQ3", "DB1.DBX3", "DB1.DBX3.8", "DB0.DBW0", "MW", "X1", "DB1.DBW0.1"):
        with pytest.raises(ValueError, match=bad.replace(".", r"\.")):
            parse_s7(bad)
    with pytest.raises(ValueError, match=r"DBn\.DBX byte\.bit"):
        parse_s7("DB1.DBQ3")
    with pytest.raises(ValueError, match="does not fit a word address"):
        check_s7_type(parse_s7("DB1.DBW0"), "real")


def test_contiguous_points_of_one_db_are_one_read() -> None:
    from microfab.connect.s7 import _Point

    points = [_Point(0, p["point"], parse_s7(str(p["point"])), "int16")
              for p in s7_machine_points()]  # fmt: skip
    points.append(_Point(0, "MW10", parse_s7("MW10"), "int16"))
    points.append(_Point(0, "DB1.DBW500", parse_s7("DB1.DBW500"), "int16"))
    blocks = plan_blocks(points)
    assert [(b.area, b.db, b.start, b.size, len(b.points)) for b in blocks] == [
        ("DB", 1, 0, 15, 5),  # DBW0 .. DBX14.0: one request
        ("DB", 1, 500, 2, 1),  # far away: its own
        ("M", 0, 10, 2, 1),
    ]


def test_s7_cycle_gives_exactly_the_expected_events() -> None:
    port = free_port()
    factory = factory_with(s7_block(port))

    async def scenario() -> list[Event]:
        machine = SimulatedS7Plc(port)
        publisher = ListPublisher()
        connector = S7Connector(factory, publisher, reconnect_s=0.1, max_reconnect_s=0.4,
                                timeout_s=1.0)  # fmt: skip
        await standard_cycle(machine, connector, publisher.events)
        return publisher.events

    events = asyncio.run(scenario())
    check_cycle(events, "s7")
    doors = [e.metrics["door_open"] for e in events if isinstance(e, TelemetrySample)
             and "door_open" in e.metrics]  # fmt: skip
    assert doors == [0.0, 0.0]  # at the start and after the return


def test_a_refused_point_is_skipped_and_the_others_still_read() -> None:
    port = free_port()
    points = [*s7_machine_points(), {"point": "DB1.DBW100", "stream": "telemetry",
                                     "metric": "beyond_db1"},  # DB1 has 64 bytes
              {"point": "DB7.DBW0", "stream": "telemetry", "metric": "no_db7"},
              {"point": "MW4", "stream": "telemetry", "metric": "flag_word"}]  # fmt: skip
    factory = factory_with(s7_block(port, points))

    async def scenario() -> tuple[str, list[Event]]:
        machine = SimulatedS7Plc(port)
        machine.set_state(1)
        machine.m[4:6] = (1234).to_bytes(2, "big")
        machine.set_door(True)
        publisher = ListPublisher()
        connector = S7Connector(factory, publisher, reconnect_s=0.1, timeout_s=1.0)
        async with machine:
            await connector.start()
            try:
                await until(lambda: bool(states(publisher.events)), "a state")
                await until(lambda: "DB7.DBW0" in connector.health().detail, "refused points")
                await until(lambda: len(publisher.events) >= 4, "the values")
                detail = connector.health().detail
                assert connector.health().status is LinkStatus.CONNECTED
            finally:
                await connector.stop()
        return detail, publisher.events

    detail, events = asyncio.run(scenario())
    assert "DB1 bytes 100-101 (point 'DB1.DBW100') refused: Invalid address" in detail
    assert "DB7 bytes 0-1 (point 'DB7.DBW0') refused: Object does not exist" in detail
    metrics = {k: v for e in events if isinstance(e, TelemetrySample) for k, v in e.metrics.items()}
    assert metrics == {"temperature_c": 21.0, "door_open": 1.0, "flag_word": 1234.0}
    assert states(events)[0] == ("running", None)
    assert {e.machine for e in events} == {CNC1}


def test_browse_prints_the_raw_values_with_offsets() -> None:
    port = free_port()

    async def scenario() -> list[str]:
        machine = SimulatedS7Plc(port)
        machine.set_counts(70000, 3)
        async with machine:
            return await browse("127.0.0.1", port, 0, 1, "DB1", 16)

    lines = asyncio.run(scenario())
    assert lines[0].split() == ["address", "hex", "bits", "7..0", "INT", "(W)", "DINT", "(D)",
                                "REAL", "(D)"]  # fmt: skip
    assert len(lines) == 17
    assert lines[1].split()[:4] == ["DB1.DBB0", "00", "00000000", "2"]  # state idle
    assert lines[3].split()[:5] == ["DB1.DBB2", "00", "00000000", "1", "70000"]
    assert lines[11].split()[:4] == ["DB1.DBB10", "41", "01000001", "16808"]  # 21.0 as REAL
    assert lines[11].split()[-1] == "21"
