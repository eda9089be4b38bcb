"""Scoring alerts against labelled faults: precision, recall, F1, false alarms, lead time.

Scoring is per fault event. A fault (machine, onset, failure) counts as *detected* when an alert
on its machine falls in ``[onset, failure]``; an alert outside every fault window of its machine
is a *false alarm*. Hence::

    precision = detected / (detected + false alarms)
    recall    = detected / faults
    F1        = 2 · precision · recall / (precision + recall)
    lead time fraction = (failure − first alert in the window) / (failure − onset)

and ``lead_time_fraction`` reports the median over the detected faults (0 when none is).
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FaultWindow:
    """A labelled fault: the machine degraded from ``onset`` and broke down at ``failure``."""

    machine: str
    onset: dt.datetime
    failure: dt.datetime


@dataclass(frozen=True, slots=True)
class Score:
    faults: int
    detected: int
    false_alarms: int
    monitored_days: float
    lead_fractions: tuple[float, ...]

    @property
    def precision(self) -> float:
        flagged = self.detected + self.false_alarms
        return self.detected / flagged if flagged else 0.0

    @property
    def recall(self) -> float:
        return self.detected / self.faults if self.faults else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def false_alarms_per_day(self) -> float:
        return self.false_alarms / self.monitored_days if self.monitored_days else 0.0

    @property
    def lead_time_fraction(self) -> float:
        return statistics.median(self.lead_fractions) if self.lead_fractions else 0.0

    def __add__(self, other: Score) -> Score:
        return Score(
            self.faults + other.faults,
            self.detected + other.detected,
            self.false_alarms + other.false_alarms,
            self.monitored_days + other.monitored_days,
            self.lead_fractions + other.lead_fractions,
        )


EMPTY = Score(0, 0, 0, 0.0, ())


def score_alerts(
    alerts: Iterable[tuple[str, dt.datetime]],
    faults: Sequence[FaultWindow],
    monitored_days: float,
) -> Score:
    """Score alert onsets ``(machine, ts)`` against the fault windows of one monitored period."""
    first_alert: dict[int, dt.datetime] = {}
    false_alarms = 0
    for machine, ts in alerts:
        inside = [
            i for i, f in enumerate(faults) if f.machine == machine and f.onset <= ts <= f.failure
        ]
        if not inside:
            false_alarms += 1
        for i in inside:
            if i not in first_alert or ts < first_alert[i]:
                first_alert[i] = ts
    leads = tuple(
        (faults[i].failure - ts).total_seconds()
        / (faults[i].failure - faults[i].onset).total_seconds()
        for i, ts in sorted(first_alert.items())
    )
    return Score(len(faults), len(first_alert), false_alarms, monitored_days, leads)
