"""The demo's vision station: a model trained by ``vision train`` on simulated products judges a
new product image every few seconds at the scenario's vision inspection machine.

The model is trained once (:func:`demo_model`: a small training set drawn by
:mod:`microfab.sim.product_images`, the same code path as ``microfab vision train``) into a cache
folder and reused by the next demo. Each judged image becomes one ``inspection`` event, timed by
the simulation's clock, with the image and its thumbnail kept for the quality page.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from pathlib import Path

from microfab.vision.runtime import InspectionModel
from microfab.vision.simulated import run_simulated_station
from microfab.vision.station import EventSink, InspectionStation

log = logging.getLogger(__name__)

DEMO_PER_CLASS = 24
"""Training images per class for the demo's model (a small set: trained in seconds)."""
DEMO_SIZE = (640, 480)
"""The camera's image size (training and judging alike)."""
DEMO_DEFECT_RATE = 0.15


def demo_model(cache: Path) -> Path:
    """The card of the demo's model, trained into ``cache`` unless it is there already."""
    from microfab.sim.product_images import write_training_set
    from microfab.vision.train import train_classifier

    card = cache / "demo-tray.yaml"
    if card.is_file() and (cache / "demo-tray.onnx").is_file():
        return card
    cache.mkdir(parents=True, exist_ok=True)
    write_training_set(cache / "training", per_class=DEMO_PER_CLASS, seed=0, size=DEMO_SIZE)
    train_classifier(cache / "training", cache / "demo-tray", model_id="demo-tray", folds=3)
    return card


class DemoVisionStation:
    """A thread judging one drawn product every ``every_s`` wall-clock seconds."""

    def __init__(
        self,
        machine: str,
        sink: EventSink,
        clock: Callable[[], dt.datetime],
        *,
        cache: Path,
        images: Path,
        every_s: float = 2.0,
        register: Callable[[InspectionModel], object] | None = None,
    ) -> None:
        self.machine = machine
        self.sink = sink
        self.clock = clock
        self.cache = cache
        self.images = images
        self.every_s = every_s
        self.register = register
        self.judged = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="microfab-demo-vision", daemon=True)

    def start(self) -> DemoVisionStation:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        try:
            model = InspectionModel.from_card(demo_model(self.cache))
        except Exception:  # the demo goes on without its vision station
            log.exception("the demo's vision model could not be trained")
            return
        if self.register is not None:
            self.register(model)
        station = InspectionStation(model, self.machine, self.sink, self.images)
        unit = 1_000_000
        while not self._stop.wait(self.every_s):
            run_simulated_station(
                station,
                count=1,
                seed=unit,
                defect_rate=DEMO_DEFECT_RATE,
                size=DEMO_SIZE,
                start=self.clock(),
            )
            unit += 1
            self.judged += 1
