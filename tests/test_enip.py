"""EtherNet/IP connector (pycomm3) against cpppo's EtherNet/IP simulator, an independent CIP
implementation run as a child process behind a TCP relay that can be cut and restored."""

from __future__ import annotations

import asyncio

import pytest

from connector_cycle import check_cycle, factory_with, standard_cycle, states, until
from microfab.connect.enip import EnipConnector, list_tags
from microfab.connect.publisher import ListPublisher
from microfab.errors import InputError
from microfab.model.events import Event, TelemetrySample
from microfab.model.plc_address import check_logix_tag
from microfab.sim.enip_server import SimulatedEnipPlc, enip_machine_points
from services import free_port


def enip_block(port: int, points: list[dict[str, object]] | None = None) -> dict[str, object]:
    return {"enip": {"host": "127.0.0.1", "port": port, "poll_s": 0.05,
                     "points": points or enip_machine_points()}}  # fmt: skip


def test_tag_names_follow_logix_syntax() -> None:
    for good in ("Line1.State", "Counts[2]", "Program:Main.Count", "Matrix[1,2]", "Word.5"):
        assert check_logix_tag(good) == good
    for bad in ("Line1..State", "2Counts", "Counts[x]", "Line 1", ""):
        with pytest.raises(ValueError, match="is not a tag name"):
            check_logix_tag(bad)


def test_enip_cycle_gives_exactly_the_expected_events() -> None:
    port = free_port()
    factory = factory_with(enip_block(port))

    async def scenario() -> list[Event]:
        plc = SimulatedEnipPlc(port)
        publisher = ListPublisher()
        connector = EnipConnector(factory, publisher, reconnect_s=0.1, max_reconnect_s=0.4,
                                  timeout_s=1.0)  # fmt: skip
        try:
            await standard_cycle(plc, connector, publisher.events)
        finally:
            plc.close()
        return publisher.events

    events = asyncio.run(scenario())
    check_cycle(events, "enip")


@pytest.mark.parametrize("multiple", [True, False], ids=["multiple-service", "tag-by-tag"])
def test_a_refused_tag_is_skipped_and_list_tags_explains_a_simulator(multiple: bool) -> None:
    port = free_port()
    points = [*enip_machine_points(), {"point": "Line1.Speed", "stream": "telemetry"}]
    factory = factory_with(enip_block(port, points))

    async def scenario() -> tuple[str, list[Event], str]:
        plc = SimulatedEnipPlc(port)
        plc.set_state(1)
        plc.set_door(True)
        publisher = ListPublisher()
        connector = EnipConnector(factory, publisher, reconnect_s=0.1, timeout_s=1.0)
        connector.devices[0].multiple = multiple  # False: as for a PLC without them
        async with plc:
            await connector.start()
            try:
                await until(lambda: "Line1.Speed" in connector.health().detail, "refused tag")
                await until(lambda: len(publisher.events) >= 3, "the values")
                detail = connector.health().detail
            finally:
                await connector.stop()
            with pytest.raises(InputError) as refused:
                await list_tags("127.0.0.1", port, 0, timeout_s=1.0)
        return detail, publisher.events, str(refused.value)

    detail, events, refused = asyncio.run(scenario())
    assert "tag 'Line1.Speed' refused: Destination unknown" in detail
    metrics = {k: v for e in events if isinstance(e, TelemetrySample) for k, v in e.metrics.items()}
    assert metrics == {"temperature_c": 21.0, "door_open": 1.0}
    assert states(events)[0] == ("running", None)
    assert "did not give its tag list" in refused
