"""Mitsubishi MC protocol (3E binary) connector against a server built from the published frame
format, itself checked with an independent client (pymcprotocol)."""

from __future__ import annotations

import asyncio

import pytest

from connector_cycle import CNC1, check_cycle, factory_with, standard_cycle, states, until
from microfab.connect import mc_frame
from microfab.connect.mc import McConnector, _Point, decode, plan_blocks
from microfab.connect.publisher import ListPublisher
from microfab.model.events import Event, TelemetrySample
from microfab.model.plc_address import McAddress, parse_mc
from microfab.sim.mc_server import SimulatedMcPlc, mc_machine_points
from services import free_port


def mc_block(port: int, points: list[dict[str, object]] | None = None) -> dict[str, object]:
    return {"mc": {"host": "127.0.0.1", "port": port, "poll_s": 0.05,
                   "points": points or mc_machine_points()}}  # fmt: skip


def test_mc_addresses_parse_as_device_and_number() -> None:
    assert parse_mc("D100") == McAddress("D", 100, 1)
    assert parse_mc("D200:2") == McAddress("D", 200, 2)
    assert parse_mc("M10") == McAddress("M", 10, 0)
    assert parse_mc("X1F") == McAddress("X", 0x1F, 0)  # X, Y, B, W in hex
    assert parse_mc("ZR1000").code == 0xB0
    assert parse_mc("sm400").is_bit
    for bad in ("D-1", "D", "Q10", "D10:3", "D1F"):
        with pytest.raises(ValueError, match="not an MC device address"):
            parse_mc(bad)
    with pytest.raises(ValueError, match="for word devices only"):
        parse_mc("M10:2")


def test_frames_follow_the_published_format() -> None:
    # batch read of D100, 3 words: the example layout of the reference manual
    assert mc_frame.read_request(0xA8, 100, 3, bits=False).hex(" ") == (
        "50 00 00 ff ff 03 00 0c 00 10 00 01 04 00 00 64 00 00 a8 03 00"
    )
    assert mc_frame.parse_response(b"\x00\x00\x34\x12\xff\xff", 2, bits=False) == [0x1234, 0xFFFF]
    assert mc_frame.parse_response(b"\x00\x00\x10\x01", 3, bits=True) == [1, 0, 0]
    with pytest.raises(mc_frame.McError, match="0xC056"):
        mc_frame.parse_response(b"\x56\xc0" + b"\x00" * 9, 1, bits=False)
    assert decode([0xFFFF], "int16") == -1
    assert decode([0x1170, 0x0001], "uint32") == 70000  # low word first
    assert decode([0x0000, 0x41A8], "real") == 21.0


def test_points_of_one_device_range_are_one_batch_read() -> None:
    points = [_Point(0, str(p["point"]), parse_mc(str(p["point"])), "int16")
              for p in mc_machine_points()]  # fmt: skip
    blocks = plan_blocks(points)
    assert [(b.label, len(b.points)) for b in blocks] == [
        ("D100-D100", 1),  # D200 is 100 away: not worth reading the words between
        ("D200-D221", 3),
        ("M10-M10", 1),
    ]


def test_the_test_server_answers_an_independent_client() -> None:
    """pymcprotocol, another implementation of the same manual, reads the simulated PLC."""
    import pymcprotocol

    port = free_port()

    def read() -> tuple[list[int], list[int]]:
        plc = pymcprotocol.Type3E(plctype="Q")
        plc.connect("127.0.0.1", port)
        try:
            words = plc.batchread_wordunits(headdevice="D200", readsize=4)
            bits = plc.batchread_bitunits(headdevice="M9", readsize=3)
        finally:
            plc.close()
        return words, bits

    async def scenario() -> tuple[list[int], list[int]]:
        machine = SimulatedMcPlc(port)
        machine.set_counts(70000, 3)
        machine.set_door(True)
        async with machine:
            return await asyncio.to_thread(read)

    words, bits = asyncio.run(scenario())
    assert words == [0x1170, 1, 3, 0]
    assert bits == [0, 1, 0]


def test_mc_cycle_gives_exactly_the_expected_events() -> None:
    port = free_port()
    factory = factory_with(mc_block(port))

    async def scenario() -> list[Event]:
        machine = SimulatedMcPlc(port)
        publisher = ListPublisher()
        connector = McConnector(factory, publisher, reconnect_s=0.1, max_reconnect_s=0.4,
                                timeout_s=1.0)  # fmt: skip
        await standard_cycle(machine, connector, publisher.events)
        return publisher.events

    events = asyncio.run(scenario())
    check_cycle(events, "mc")


def test_a_refused_device_is_skipped_and_the_others_still_read() -> None:
    port = free_port()
    points = [*mc_machine_points(),
              {"point": "D1023:2", "stream": "telemetry", "metric": "beyond"},  # D1024: none
              {"point": "ZR0", "stream": "telemetry", "metric": "no_zr"},
              {"point": "D210", "stream": "telemetry", "metric": "d210"}]  # fmt: skip
    points[-3]["data_type"] = "int32"
    factory = factory_with(mc_block(port, points))

    async def scenario() -> tuple[str, list[Event]]:
        machine = SimulatedMcPlc(port)
        machine.set_state(1)
        machine.words["D"][210] = 0xFFFE
        publisher = ListPublisher()
        connector = McConnector(factory, publisher, reconnect_s=0.1, timeout_s=1.0)
        async with machine:
            await connector.start()
            try:
                await until(lambda: "ZR0" in connector.health().detail, "refused devices")
                await until(lambda: len(publisher.events) >= 4, "the values")
                detail = connector.health().detail
            finally:
                await connector.stop()
        return detail, publisher.events

    detail, events = asyncio.run(scenario())
    assert "ZR0-ZR0 (point 'ZR0') refused: end code 0xC056 (device out of range)" in detail
    assert "D1023-D1024 (point 'D1023:2') refused: end code 0xC056" in detail
    metrics = {k: v for e in events if isinstance(e, TelemetrySample) for k, v in e.metrics.items()}
    assert metrics == {"temperature_c": 21.0, "door_open": 0.0, "d210": -2.0}
    assert states(events)[0] == ("running", None)
    assert {e.machine for e in events} == {CNC1}
