"""The plant's inspection stations, as the HTTP upload and the quality page use them.

A machine of the factory model with ``inspection_model: CARD.yaml`` is a station: its model is
opened (and its card kept in the store) on the first image for it, then reused. Images are kept
under ``images`` (``YYYY-MM-DD/<event id>.<ext>`` with a thumbnail) for the quality page.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from microfab.errors import InputError, NotFoundError
from microfab.model.events import event_to_dict
from microfab.track.plant import Plant
from microfab.vision.runtime import InspectionModel
from microfab.vision.station import InspectionStation, StoreSink, UnitInfo, register

DEFAULT_IMAGES = Path("vision-images")


class UnreadableImage(InputError):
    """An uploaded image cannot be decoded (the API answers 400 with the reason)."""

    key = "unreadable_image"


@dataclass(frozen=True, slots=True)
class LatestImage:
    """One judged image for the quality page."""

    event_id: str
    ts: str
    machine: str
    result: str
    defect: str | None
    score: float | None
    model: str | None
    image: str | None


class VisionStations:
    """Stations by machine path, opened on first use (thread-safe)."""

    def __init__(self, plant: Plant, images: Path | None = None) -> None:
        self.plant = plant
        self.images = images or DEFAULT_IMAGES
        self._stations: dict[tuple[str, str], InspectionStation] = {}
        self._lock = threading.Lock()

    def station(self, machine: str) -> InspectionStation:
        """The station of ``machine`` (id or path); NotFoundError if it has no model."""
        ref = self.plant.machine(machine)
        card = ref.machine.inspection_model
        if card is None:
            raise NotFoundError(
                f"machine {ref.path} has no inspection_model in the factory model; name its "
                "model card there (docs/vision.md)"
            )
        with self._lock:
            key = (ref.path, card)
            found = self._stations.get(key)
            if found is None:
                model = InspectionModel.from_card(Path(card))
                register(self.plant.store, model)
                found = InspectionStation(model, ref.path, StoreSink(self.plant.store), self.images)
                self._stations[key] = found
            return found

    def upload(self, machine: str, data: bytes, *, name: str, info: UnitInfo) -> dict[str, Any]:
        """Judge an uploaded image; the stored event. UnreadableImage when it is not one."""
        judged = self.station(machine).judge(data, name=name, info=info)
        if judged.event is None:
            raise UnreadableImage(f"the image cannot be judged: {judged.reason}")
        return event_to_dict(judged.event)

    def thumbnail(self, image: str) -> Path | None:
        from microfab.vision.station import thumbnail_path

        return thumbnail_path(self.images, image)


def latest_images(plant: Plant, limit: int = 12) -> list[LatestImage]:
    """The newest judged images (inspection events that name an image), newest first."""
    out: list[LatestImage] = []
    for stored in plant.store.events(stream="inspection", newest_first=True, limit=200):
        e: Any = stored.event
        if not e.image:
            continue
        out.append(
            LatestImage(
                e.id,
                e.ts.isoformat(timespec="seconds"),
                e.machine,
                e.result.value,
                e.defect,
                e.score,
                e.model,
                e.image,
            )
        )
        if len(out) >= limit:
            break
    return out
