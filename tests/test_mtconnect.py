"""MTConnect connector against a local agent serving the standard's documents over HTTP."""

from __future__ import annotations

import asyncio

import pytest

from connector_cycle import (
    check_cycle,
    counted,
    factory_with,
    standard_cycle,
    states,
    temperatures,
    until,
)
from microfab.connect.connector import LINK_DOWN, LinkStatus
from microfab.connect.mtconnect import MTConnectConnector, parse_streams, probe_lines
from microfab.connect.publisher import ListPublisher
from microfab.model.events import Event
from microfab.sim.mtconnect_agent import SimulatedMTConnectAgent, mtconnect_machine_points
from services import free_port


def block(port: int) -> dict[str, object]:
    return {"mtconnect": {"agent": f"http://127.0.0.1:{port}", "device": "cnc-1", "poll_s": 0.05,
                          "points": mtconnect_machine_points()}}  # fmt: skip


def connector_for(port: int, publisher: ListPublisher) -> MTConnectConnector:
    return MTConnectConnector(factory_with(block(port)), publisher, reconnect_s=0.1,
                              max_reconnect_s=0.4, timeout_s=1.0)  # fmt: skip


def test_streams_documents_are_read_in_sequence_order() -> None:
    agent = SimulatedMTConnectAgent(free_port())
    agent.set_state(1)
    agent.set_counts(3, 0)
    streams = parse_streams(agent.current())
    assert streams.instance_id == str(agent.instance_id)
    sequences = [o.sequence for o in streams.observations]
    assert sequences == sorted(sequences)
    assert streams.next_sequence == sequences[-1] + 1
    values = {o.item: o.value for o in streams.observations}
    assert (
        values["exec"] == "ACTIVE" and values["pc_good"] == "3" and values["temp"] == "UNAVAILABLE"
    )
    status, text = agent.sample(1, 2)
    assert status == 200
    page = parse_streams(text)
    assert [o.sequence for o in page.observations] == [1, 2] and page.next_sequence == 3
    status, text = agent.sample(10_000, 10)
    assert status == 400 and parse_streams(text).error == "OUT_OF_RANGE"


def test_mtconnect_cycle_replays_the_gap_exactly_once() -> None:
    """The agent keeps recording while the network is away: on return the connector reads
    sample?from= where it stopped, so the parts of the gap are counted once, none twice."""
    port = free_port()

    async def scenario() -> list[Event]:
        publisher = ListPublisher()
        agent = SimulatedMTConnectAgent(port)
        await standard_cycle(agent, connector_for(port, publisher), publisher.events,
                             gap_is_replayed=True)  # fmt: skip
        return publisher.events

    check_cycle(asyncio.run(scenario()), "mtconnect", gap_is_replayed=True)


def test_a_restarted_agent_or_a_lost_buffer_starts_again_from_current() -> None:
    port = free_port()

    async def scenario() -> list[Event]:
        publisher = ListPublisher()
        events = publisher.events
        agent = SimulatedMTConnectAgent(port, buffer_size=16)
        agent.set_state(1)
        connector = connector_for(port, publisher)
        async with agent:
            await connector.start()
            try:
                await until(lambda: states(events) == [("running", None)], "running")
                agent.set_counts(4, 0)
                await until(lambda: counted(events) == (4, 0), "4 parts")
                await agent.stop()  # the agent restarts: a new instance, sequences from 1
                await until(lambda: connector.health().status is LinkStatus.DOWN, "down")
                agent.set_counts(9, 0)
                agent.restart_agent()
                await agent.start()
                await until(lambda: connector.health().status is LinkStatus.CONNECTED, "back")
                await until(lambda: states(events)[-1] == ("running", None), "running again")
                agent.set_counts(10, 0)
                await until(lambda: counted(events) == (5, 0), "1 more, the gap re-baselined")
                # the buffer (16) overflows faster than the connector reads: OUT_OF_RANGE
                await agent.stop()
                await until(lambda: connector.health().status is LinkStatus.DOWN, "down again")
                for n in range(11, 40):
                    agent.set_temperature(20 + n)
                agent.set_counts(12, 0)
                await agent.start()
                await until(lambda: connector.health().status is LinkStatus.CONNECTED, "back")
                agent.set_counts(15, 1)
                await until(lambda: counted(events) == (8, 1), "3 more after re-baselining")
            finally:
                await connector.stop()
        return events

    events = asyncio.run(scenario())
    assert [s for s in states(events) if s[1] == LINK_DOWN] == [("offline", LINK_DOWN)] * 2
    assert counted(events) == (8, 1)


def test_probe_lists_the_data_items() -> None:
    port = free_port()

    async def scenario() -> list[str]:
        async with SimulatedMTConnectAgent(port):
            return await probe_lines(f"http://127.0.0.1:{port}")

    lines = asyncio.run(scenario())
    assert lines[0] == "device cnc-1 (uuid sim-cnc-1)"
    rows = {line.split()[0]: line.split() for line in lines[2:]}
    assert rows["exec"] == ["exec", "EVENT", "EXECUTION", "controller"]
    assert rows["pc_good"] == ["pc_good", "EVENT", "PART_COUNT", "GOOD", "controller"]
    assert rows["avail"] == ["avail", "EVENT", "AVAILABILITY", "cnc-1"]


def test_a_buffer_overrun_between_polls_reads_current_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """More observations than the agent's buffer holds between two polls: sample?from= is
    OUT_OF_RANGE; the connector says so, reads current again and re-baselines its counters."""
    port = free_port()
    slow = block(port)
    slow["mtconnect"]["poll_s"] = 0.5  # type: ignore[index]

    async def scenario() -> list[Event]:
        publisher = ListPublisher()
        events = publisher.events
        agent = SimulatedMTConnectAgent(port, buffer_size=8)
        agent.set_state(1)
        agent.set_temperature(21.0)
        connector = MTConnectConnector(factory_with(slow), publisher, reconnect_s=0.1,
                                       timeout_s=1.0)  # fmt: skip
        async with agent:
            await connector.start()
            try:
                await until(lambda: states(events) == [("running", None)], "running")
                await until(lambda: bool(temperatures(events)), "a temperature")
                await asyncio.sleep(0.1)  # just after a poll
                for n in range(20):  # overruns the 8 kept observations before the next poll
                    agent.set_temperature(30 + n)
                agent.set_counts(6, 0)
                await until(lambda: 49.0 in temperatures(events), "the current values again")
                agent.set_counts(9, 1)
                await until(lambda: counted(events) == (3, 1), "3 and 1 after re-baselining")
                assert connector.health().status is LinkStatus.CONNECTED
            finally:
                await connector.stop()
        return events

    events = asyncio.run(scenario())
    assert counted(events) == (3, 1)  # the 6 lost in the overrun were not guessed at
    assert states(events) == [("running", None), ("offline", "CONNECTOR-STOPPED")]
    assert any("refused with 'OUT_OF_RANGE'" in r.getMessage() for r in caplog.records)
