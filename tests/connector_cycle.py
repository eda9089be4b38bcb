"""One scripted run of a polling connector against a real protocol server, shared by the S7, MC,
EtherNet/IP and MTConnect tests: state changes, counts across a counter reset and a link loss,
telemetry, and a link-down/link-up cycle, with exactly the events each step should give."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import yaml

from microfab.connect.connector import CONNECTOR_STOPPED, LINK_DOWN, Connector, LinkStatus
from microfab.model.events import Event, PartCount, StateChange, TelemetrySample
from microfab.model.factory import Factory

DATA = Path(__file__).parent / "data"
CNC1 = "kt/plant/line1/machining/cnc-1"
DEADLINE_S = 15.0


class Machine(Protocol):
    """A simulated machine behind a protocol server (state codes 1 running, 2 idle, 3 stop)."""

    def set_state(self, code: int) -> None: ...
    def set_counts(self, good: int, scrap: int) -> None: ...
    def set_temperature(self, celsius: float) -> None: ...
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


def factory_with(block: dict[str, Any], machine: int = 0) -> Factory:
    """The small test factory with ``connect: block`` on cnc-1 (or machine 1 of cell 0)."""
    data = yaml.safe_load((DATA / "factory-small.yaml").read_text(encoding="utf-8"))
    data["sites"][0]["areas"][0]["lines"][0]["cells"][0]["machines"][machine]["connect"] = block
    return Factory.model_validate(data)


async def until(condition: Callable[[], bool], what: str, timeout_s: float = DEADLINE_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(0.02)


def states(events: list[Event], machine: str = CNC1) -> list[tuple[str, str | None]]:
    return [
        (e.state.value, e.reason)
        for e in events
        if isinstance(e, StateChange) and e.machine == machine
    ]


def counted(events: list[Event], machine: str = CNC1) -> tuple[int, int]:
    counts = [e for e in events if isinstance(e, PartCount) and e.machine == machine]
    return sum(c.good for c in counts), sum(c.scrap for c in counts)


def temperatures(events: list[Event], machine: str = CNC1) -> list[float]:
    return [
        e.metrics["temperature_c"]
        for e in events
        if isinstance(e, TelemetrySample) and e.machine == machine and "temperature_c" in e.metrics
    ]


async def standard_cycle(
    machine: Machine,
    connector: Connector,
    events: list[Event],
    *,
    gap_is_replayed: bool = False,
    restart: Callable[[], Any] | None = None,
) -> None:
    """Run the cycle; the caller asserts on ``events`` afterwards with :func:`check_cycle`.

    ``gap_is_replayed``: the source replays what happened while the link was down (MTConnect's
    sequence numbers), so the parts made in the gap are counted once, on return.
    """
    machine.set_state(1)
    machine.set_counts(0, 0)
    machine.set_temperature(21.0)
    await machine.start()
    await connector.start()
    try:
        await until(lambda: states(events) == [("running", None)], "running")
        await until(lambda: temperatures(events) == [21.0], "the first temperature")
        machine.set_counts(5, 1)
        await until(lambda: counted(events) == (5, 1), "5 good and 1 scrap")
        machine.set_state(3)
        await until(lambda: len(states(events)) == 2, "unplanned stop")
        machine.set_counts(0, 0)  # counter reset at the PLC
        await asyncio.sleep(0.3)
        machine.set_counts(2, 0)
        await until(lambda: counted(events) == (7, 1), "2 more after the reset")
        machine.set_temperature(25.5)
        await until(lambda: temperatures(events) == [21.0, 25.5], "a new temperature")

        await machine.stop()
        await until(lambda: connector.health().status is LinkStatus.DOWN, "link down")
        await until(lambda: ("offline", LINK_DOWN) in states(events), "offline")
        machine.set_counts(40, 0)  # made while the link was down
        machine.set_state(1)
        await (machine.start() if restart is None else restart())
        await until(lambda: connector.health().status is LinkStatus.CONNECTED, "reconnected")
        await until(lambda: states(events)[-1] == ("running", None), "running again")
        machine.set_counts(43, 2)
        expected = (48, 3) if gap_is_replayed else (10, 3)
        await until(lambda: counted(events) == expected, f"counts {expected} after the return")
        await asyncio.sleep(0.3)  # nothing more arrives
    finally:
        await connector.stop()
        await machine.stop()


def check_cycle(events: list[Event], source: str, *, gap_is_replayed: bool = False) -> None:
    """Exactly the expected events of :func:`standard_cycle`."""
    assert states(events) == [
        ("running", None),
        ("unplanned_stop", None),
        ("offline", LINK_DOWN),
        ("running", None),
        ("offline", CONNECTOR_STOPPED),
    ]
    assert counted(events) == ((48, 3) if gap_is_replayed else (10, 3))
    # stored when it changes, and again once after the link returns (a replayed gap holds no
    # new temperature: the last one stored still stands)
    assert temperatures(events) == ([21.0, 25.5] if gap_is_replayed else [21.0, 25.5, 25.5])
    assert all(e.id.startswith(f"{source}-") for e in events)
    assert len({e.id for e in events}) == len(events)
