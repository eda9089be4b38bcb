"""The shared machinery of the polling connectors: back-off and link bookkeeping."""

from __future__ import annotations

import datetime as dt

from microfab.connect.connector import LINK_DOWN, LinkStatus
from microfab.connect.mapping import PointMapper
from microfab.connect.polling import Device, backoff_s
from microfab.model.events import PartCount, StateChange
from microfab.model.factory import PointMap, PointStream

T0 = dt.datetime(2026, 12, 7, 3, 0, tzinfo=dt.UTC)


def test_retries_back_off_by_doubling_up_to_the_ceiling() -> None:
    assert [backoff_s(n, 1.0, 10.0) for n in range(1, 7)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert [backoff_s(n, 2.0, 2.0) for n in range(1, 5)] == [2.0] * 4  # Modbus: fixed interval
    assert backoff_s(10_000, 1.0, 10.0) == 10.0


def test_a_device_marks_offline_once_per_loss_and_rebaselines_on_return() -> None:
    points = [
        PointMap(point="s", stream=PointStream.STATE, states={"1": "running"}),
        PointMap(point="c", stream=PointStream.COUNT, field="good"),
    ]
    device = Device(label="plc", poll_s=1.0)
    device.add_machine(PointMapper("t", "kt/plant/line1/machining/cnc-1", points))
    mapper = device.mappers[0]
    device.link_up()
    assert isinstance(mapper.map("s", 1, T0), StateChange)
    assert mapper.map("c", 10, T0) is None  # baseline
    assert isinstance(mapper.map("c", 12, T0 + dt.timedelta(seconds=1)), PartCount)
    first = device.link_down("refused", T0)
    assert [(e.state.value, e.reason) for e in first if isinstance(e, StateChange)] == [
        ("offline", LINK_DOWN)
    ]
    assert device.link_down("refused", T0) == []  # still down: no second offline
    assert device.status is LinkStatus.DOWN and device.failures == 2
    device.link_up()
    assert device.reconnects == 1 and device.failures == 0
    assert isinstance(mapper.map("s", 1, T0 + dt.timedelta(seconds=5)), StateChange)  # restated
    assert mapper.map("c", 40, T0 + dt.timedelta(seconds=5)) is None  # re-baselined, not +28
    device.link_down("closed", T0 + dt.timedelta(seconds=6))
    device.link_up(resumed=True)  # a source that replays the gap keeps its baseline
    count = mapper.map("c", 43, T0 + dt.timedelta(seconds=7))
    assert isinstance(count, PartCount) and count.good == 3
