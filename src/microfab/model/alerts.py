"""Alert rules' pure logic: findings, deduplication and hold-off, runs beyond a limit, long stops.

A rule evaluated over stored data yields *findings*: a condition on one machine with a *cause*
(a metric, a CCP limit of a batch, a stop reason) that started at ``ts``. Findings become alerts
by :func:`decide`, against the latest stored alert of the same ``(rule, machine, cause)``:

- an alert of that key is open or acknowledged → the finding is folded into it (``update``): one
  open alert per rule, machine and cause, however often the condition repeats;
- the latest alert of that key was closed, and the finding started before that alert's last
  observation → it is the same occurrence, already handled (``known``);
- it was closed less than ``hold_off`` ago → ``held_off`` (no re-raise right after a close);
- otherwise → ``raise`` a new alert.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

SEVERITIES = ("info", "warning", "critical")


class AlertState(enum.StrEnum):
    """Where an alert is in its life: raised (open), seen by someone (acknowledged), closed."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    CLOSED = "closed"


class Decision(enum.StrEnum):
    """What :func:`decide` does with a finding."""

    RAISE = "raise"
    UPDATE = "update"
    KNOWN = "known"
    HELD_OFF = "held_off"


@dataclass(frozen=True, slots=True)
class AlertFinding:
    """A condition one rule found on one machine, from ``ts`` (event time) to ``last_ts``."""

    rule: str
    kind: str
    severity: str
    machine: str
    cause: str
    ts: dt.datetime
    last_ts: dt.datetime
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.rule, self.machine, self.cause)


@dataclass(frozen=True, slots=True)
class LatestAlert:
    """What :func:`decide` needs of the newest stored alert of a key."""

    id: int
    state: AlertState
    last_ts: dt.datetime
    closed_at: dt.datetime | None


def decide(
    finding: AlertFinding, latest: LatestAlert | None, now: dt.datetime, hold_off: dt.timedelta
) -> Decision:
    """Raise, fold into the open alert, skip a known occurrence, or hold off (module docstring)."""
    if latest is None:
        return Decision.RAISE
    if latest.state != AlertState.CLOSED:
        return Decision.UPDATE
    if finding.ts <= latest.last_ts:
        return Decision.KNOWN
    if latest.closed_at is not None and now - latest.closed_at < hold_off:
        return Decision.HELD_OFF
    return Decision.RAISE


@dataclass(frozen=True, slots=True)
class Excursion:
    """Consecutive readings beyond a limit: first and last time, how many, the extreme value."""

    start: dt.datetime
    end: dt.datetime
    readings: int
    extreme: float


def excursions(
    samples: Iterable[tuple[dt.datetime, float]],
    *,
    above: float | None = None,
    below: float | None = None,
    confirm: int = 1,
) -> list[Excursion]:
    """Runs of at least ``confirm`` consecutive readings above ``above`` or below ``below``."""
    if above is None and below is None:
        raise ValueError("an excursion needs a limit: above, below or both")
    found: list[Excursion] = []
    run: list[tuple[dt.datetime, float]] = []

    def close() -> None:
        if len(run) >= confirm:
            high = above is not None and any(v > above for _, v in run)
            extreme = max(v for _, v in run) if high else min(v for _, v in run)
            found.append(Excursion(run[0][0], run[-1][0], len(run), extreme))
        run.clear()

    for ts, value in samples:
        beyond = (above is not None and value > above) or (below is not None and value < below)
        if beyond:
            run.append((ts, value))
        elif run:
            close()
    if run:
        close()
    return found


@dataclass(frozen=True, slots=True)
class Stop:
    """A period a machine was down: its state, reason and start; ``end`` None while it lasts."""

    state: str
    reason: str | None
    start: dt.datetime
    end: dt.datetime | None

    def minutes(self, until: dt.datetime) -> float:
        return ((self.end or until) - self.start).total_seconds() / 60


def stops(
    changes: Sequence[tuple[dt.datetime, str, str | None]], down_states: Iterable[str]
) -> list[Stop]:
    """The periods spent in ``down_states``, from a machine's state changes in time order.

    A change to another down state (a breakdown restated with its reason) continues the stop."""
    down = set(down_states)
    found: list[Stop] = []
    current: Stop | None = None
    for ts, state, reason in changes:
        if state in down:
            if current is None:
                current = Stop(state, reason, ts, None)
            elif reason and not current.reason:
                current = Stop(current.state, reason, current.start, None)
        elif current is not None:
            found.append(Stop(current.state, current.reason, current.start, ts))
            current = None
    if current is not None:
        found.append(current)
    return found
