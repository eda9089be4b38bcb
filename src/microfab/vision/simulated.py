"""The simulated vision station: products drawn by :mod:`microfab.sim.product_images`, each judged
by a station's model into one ``inspection`` event, and the verdicts scored against the drawn
ground truth (``microfab vision sim``)."""

from __future__ import annotations

import datetime as dt
import io
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from microfab.sim.product_images import defect_for, draw_product
from microfab.vision.station import InspectionStation, UnitInfo


@dataclass(slots=True)
class SimulatedRun:
    """What the station judged against what was drawn."""

    units: int = 0
    pairs: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(drawn class, judged class) → units; judged is ``good`` on a pass."""
    unreadable: int = 0

    def to_json(self) -> dict[str, Any]:
        classes = sorted({c for pair in self.pairs for c in pair})
        per_class = {}
        for c in classes:
            tp = self.pairs[(c, c)]
            judged = sum(n for (_, j), n in self.pairs.items() if j == c)
            drawn = sum(n for (d, _), n in self.pairs.items() if d == c)
            per_class[c] = {
                "drawn": drawn,
                "judged": judged,
                "precision": round(tp / judged, 3) if judged else None,
                "recall": round(tp / drawn, 3) if drawn else None,
            }
        missed = sum(n for (d, j), n in self.pairs.items() if d != "good" and j == "good")
        false_alarms = sum(n for (d, j), n in self.pairs.items() if d == "good" and j != "good")
        return {
            "units": self.units,
            "classes": per_class,
            "defects_missed": missed,
            "false_alarms": false_alarms,
        }


def run_simulated_station(
    station: InspectionStation,
    *,
    count: int,
    seed: int,
    defect_rate: float,
    size: tuple[int, int] = (640, 480),
    start: dt.datetime | None = None,
    cycle_s: float = 1.0,
    order: str | None = None,
) -> SimulatedRun:
    """Draw ``count`` products (unit ``seed + i``, a defect at ``defect_rate``), judge each at
    ``start + i × cycle_s`` and score the verdicts against the drawing."""
    run = SimulatedRun()
    when = start or dt.datetime.now(dt.UTC).replace(microsecond=0)
    for i in range(count):
        unit = seed + i
        label = defect_for(unit, defect_rate)
        image, _ = draw_product(unit, label, size)
        buf = io.BytesIO()
        image.save(buf, format="PNG", compress_level=1)
        judged = station.judge(
            buf.getvalue(),
            name=f"unit-{unit}.png",
            info=UnitInfo(order=order, unit=f"U{unit:07d}"),
            ts=when + dt.timedelta(seconds=i * cycle_s),
        )
        run.units += 1
        if judged.event is None:
            run.unreadable += 1
            continue
        verdict = judged.event.defect if judged.event.result.value == "fail" else "good"
        run.pairs[(label, verdict or "unclassified")] += 1
    return run
