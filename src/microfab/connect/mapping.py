"""Turn raw data-point values (OPC UA nodes, Sparkplug metrics, Modbus registers) into events.

One :class:`PointMapper` per machine and source keeps what it needs between values: the last raw
state (so repeats make no event) and the last counter reading (so running totals become the
increments the event contract wants, with a counter reset taken as a restart from zero).

A connector tells the mapper which values the device only *restates* (``held=True``): the value
OPC UA sends for every node when a subscription is made (at start and after every reconnect) and
the values of a Sparkplug birth. Such a value is the point's current value, not a report of new
parts: a non-cumulative count in it is not counted (it was counted when it was first reported, or
it was reported before the connector could see it), while a running total only takes it as the
baseline, as any first reading.

Only a machine with a ``state`` point gets ``offline`` events: a machine without one (an energy
meter) would have nothing to bring it back from ``offline`` when its link returns.

Event ids are derived from source, machine, point and the value's timestamp, so a value delivered
twice with the same timestamp maps to the same id and is stored once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from dataclasses import dataclass, field

from microfab.model.events import (
    EnergyReading,
    Event,
    MachineState,
    PartCount,
    StateChange,
    TelemetrySample,
    format_ts,
)
from microfab.model.factory import PointMap, PointStream


def point_event_id(source: str, machine: str, point: str, ts: dt.datetime, extra: str = "") -> str:
    """A stable id of at most 64 characters for a value of a point at a time."""
    digest = hashlib.sha256(
        "\x1f".join((source, machine, point, format_ts(ts), extra)).encode()
    ).hexdigest()
    return f"{source[:12]}-{digest[:48]}"


@dataclass
class PointMapper:
    """Maps values of one machine's points to events; see the module docstring."""

    source: str
    machine: str
    points: list[PointMap]
    _by_point: dict[str, PointMap] = field(init=False, default_factory=dict)
    _last_state: str | None = field(init=False, default=None)
    _last_count: dict[str, float] = field(init=False, default_factory=dict)
    _live: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        self._by_point = {p.point: p for p in self.points}

    def knows(self, point: str) -> bool:
        return point in self._by_point

    @property
    def has_state(self) -> bool:
        """Whether a point of this machine feeds the ``state`` stream."""
        return any(p.stream is PointStream.STATE for p in self.points)

    @property
    def live(self) -> bool:
        """A state of the machine was reported and no ``offline`` since."""
        return self._live

    def forget_link(self) -> None:
        """After a link loss: the next state is reported even if unchanged; counters re-baseline."""
        self._last_state = None
        self._last_count.clear()

    def forget_counts(self) -> None:
        """Readings were lost while the link stayed up: counters re-baseline, the state stands."""
        self._last_count.clear()

    def forget_state(self) -> None:
        """After a link loss whose gap the source replays: the next state is reported even if
        unchanged; counter baselines are kept (the replay continues them)."""
        self._last_state = None

    def offline(self, ts: dt.datetime, reason: str) -> StateChange | None:
        """The ``offline`` event for this machine (its link is lost, its connector stops).

        None for a machine without a ``state`` point: no later value would end its ``offline``.
        """
        self._last_state = None
        self._live = False
        if not self.has_state:
            return None
        return StateChange(
            id=point_event_id(self.source, self.machine, "@link", ts, reason),
            ts=ts,
            machine=self.machine,
            state=MachineState.OFFLINE,
            reason=reason,
        )

    def map(
        self, point: str, value: object, ts: dt.datetime, *, held: bool = False
    ) -> Event | None:
        """The event for a new value of ``point`` at ``ts``, or None (unmapped, unchanged, bad).

        ``held``: the device only restates the value it holds (see the module docstring).
        """
        spec = self._by_point.get(point)
        if spec is None or value is None:
            return None
        event_id = point_event_id(self.source, self.machine, point, ts)
        if spec.stream is PointStream.STATE:
            raw = _raw_key(value)
            if raw == self._last_state:
                return None
            self._last_state = raw
            self._live = True
            state = spec.states.get(raw)
            if state is None:
                return StateChange(
                    id=event_id,
                    ts=ts,
                    machine=self.machine,
                    state=MachineState.UNPLANNED_STOP,
                    reason=f"UNMAPPED-{raw}"[:64],
                )
            return StateChange(id=event_id, ts=ts, machine=self.machine, state=MachineState(state))
        number = _number(value)
        if number is None:
            return None
        number *= spec.scale
        if spec.stream is PointStream.TELEMETRY:
            return TelemetrySample(
                id=event_id, ts=ts, machine=self.machine, metrics={spec.metric or point: number}
            )
        if spec.stream is PointStream.ENERGY:
            if number < 0:
                return None
            return EnergyReading(id=event_id, ts=ts, machine=self.machine, kwh=number)
        # count
        increment = number
        if spec.cumulative:
            previous = self._last_count.get(point)
            self._last_count[point] = number
            if previous is None:
                return None  # first reading only sets the baseline
            increment = number - previous if number >= previous else number  # reset: from zero
        elif held:
            return None  # a restated value of a non-cumulative count: not new parts
        units = round(increment)
        if units <= 0:
            return None
        good, scrap = (units, 0) if spec.field == "good" else (0, units)
        return PartCount(id=event_id, ts=ts, machine=self.machine, good=good, scrap=scrap)


def _raw_key(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        number = float(value)
        return number if math.isfinite(number) else None
    try:
        number = float(str(value))
    except ValueError:
        return None
    return number if math.isfinite(number) else None
