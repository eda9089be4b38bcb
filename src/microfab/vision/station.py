"""An inspection station: each image in → one ``inspection`` event, the image kept with a thumbnail.

The images come from a camera folder (:class:`FolderStation`: judged files move to
``processed/``, unreadable ones to ``rejected/`` with a ``.reason.txt`` beside them), an HTTP upload
or an MQTT message naming a file (both call :meth:`InspectionStation.judge`). The event says the
verdict (``pass``/``fail`` and the defect), every class's score, boxes for a detection model, the
model's id and version, the latency and the order/lot/unit the image belongs to.

Kept images live under the station's image folder as ``YYYY-MM-DD/<event id>.<ext>`` with a
``<event id>.thumb.jpg`` (:data:`THUMB_WIDTH` px wide) for the quality page; :func:`prune_images`
drops days older than the retention (``microfab vision prune --days N``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from microfab.model.events import (
    DefectBox,
    DefectScore,
    Event,
    InspectionResult,
    InspectionVerdict,
)
from microfab.store.event_store import EventStore
from microfab.vision.images import ImageUnreadable, open_image
from microfab.vision.runtime import InspectionModel
from microfab.vision.train import IMAGE_SUFFIXES

THUMB_WIDTH = 160
EventSink = Callable[[Event], None]
"""Where a station's events go (the store, a publisher, a list in a test)."""


class StoreSink:
    """Append each event to an open store."""

    def __init__(self, store: EventStore) -> None:
        self._store = store

    def __call__(self, event: Event) -> None:
        self._store.append([event])


def register(store: EventStore, model: InspectionModel) -> bool:
    """Keep the model's card in the store (the funding evidence shows it with the inspections
    the model judged); True when this model version was new there."""
    from microfab.store.vision import register_model

    card = model.card.model_dump(mode="json", exclude_none=True)
    return register_model(
        store,
        model.info.id[:64],
        model.info.version,
        model.info.task,
        card,
        dt.datetime.now(dt.UTC),
    )


@dataclass(frozen=True, slots=True)
class Judged:
    """One image's outcome: its event, or the reason it could not be judged."""

    source: str
    event: InspectionResult | None
    reason: str | None = None

    def line(self) -> str:
        if self.event is None:
            return f"{self.source}: rejected ({self.reason})"
        e = self.event
        what = (
            f"fail {e.defect} {e.score:.2f}" if e.defect and e.score is not None else e.result.value
        )
        return f"{self.source}: {what} ({e.latency_ms:.1f} ms) → {e.id}"


@dataclass(frozen=True, slots=True)
class UnitInfo:
    """What the image belongs to (all optional)."""

    order: str | None = None
    lot: str | None = None
    unit: str | None = None
    product: str | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> UnitInfo:
        def text(key: str) -> str | None:
            value = data.get(key)
            return str(value)[:64] if value not in (None, "") else None

        return cls(text("order"), text("lot"), text("unit"), text("product"))


class InspectionStation:
    """A model judging a machine's images; events go to ``sink``, images to ``images``."""

    def __init__(
        self,
        model: InspectionModel,
        machine: str,
        sink: EventSink,
        images: Path | None = None,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self.model = model
        self.machine = machine
        self.sink = sink
        self.images = images
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))

    def judge(
        self, data: bytes, *, name: str, info: UnitInfo | None = None, ts: dt.datetime | None = None
    ) -> Judged:
        """Judge one image (its bytes; ``name`` is where it came from, for messages)."""
        info = info or UnitInfo()
        try:
            image = open_image(data)
        except ImageUnreadable as exc:
            return Judged(name, None, exc.reason)
        verdict = self.model.inspect(image)
        card = self.model.card
        digest = hashlib.sha256(self.machine.encode() + b"\0" + data).hexdigest()
        event_id = f"insp-{digest[:32]}"
        when = ts or self._clock()
        kept = self._keep(data, image, event_id, name, when)
        found = verdict.defect_class(card)
        score = found[1] if found is not None and card.task != "anomaly" else None
        event = InspectionResult(
            id=event_id,
            ts=when,
            machine=self.machine,
            result=InspectionVerdict.FAIL if verdict.defect else InspectionVerdict.PASS,
            defect=found[0] if found is not None else None,
            order=info.order,
            product=info.product,
            unit=info.unit,
            lot=info.lot,
            image=kept,
            score=None if score is None else round(min(1.0, max(0.0, score)), 6),
            defects=[DefectScore(name=n, score=round(s, 6)) for n, s in verdict.classes[:50]],
            boxes=[
                DefectBox(
                    name=b.name, score=min(1.0, max(0.0, b.score)), box=[b.x1, b.y1, b.x2, b.y2]
                )
                for b in verdict.boxes[:100]
            ]
            or None,
            model=self.model.info.id[:64],
            model_version=self.model.info.version,
            latency_ms=round(verdict.latency_ms, 3),
        )
        self.sink(event)
        return Judged(name, event)

    def _keep(
        self, data: bytes, image: Image.Image, event_id: str, name: str, when: dt.datetime
    ) -> str | None:
        if self.images is None:
            return None
        suffix = Path(name).suffix.lower()
        suffix = suffix if suffix in IMAGE_SUFFIXES else ".png"
        day = when.astimezone(dt.UTC).date().isoformat()
        folder = self.images / day
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{event_id}{suffix}").write_bytes(data)
        thumb = image.copy()
        thumb.thumbnail((THUMB_WIDTH, THUMB_WIDTH * 3 // 4))
        thumb.save(folder / f"{event_id}.thumb.jpg", format="JPEG", quality=80)
        return f"{day}/{event_id}{suffix}"


def thumbnail_path(images: Path, image: str) -> Path | None:
    """The thumbnail of a kept image (``image`` as an event names it), if it is there."""
    rel = Path(image)
    if rel.is_absolute() or ".." in rel.parts or len(rel.parts) != 2:
        return None
    path = images / rel.parent / f"{rel.stem}.thumb.jpg"
    return path if path.is_file() else None


def prune_images(images: Path, days: int, now: dt.datetime | None = None) -> int:
    """Delete the kept images (and thumbnails) of days older than ``days``; how many files went."""
    today = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).date()
    cutoff = today - dt.timedelta(days=days)
    removed = 0
    if not images.is_dir():
        return 0
    for folder in images.iterdir():
        try:
            day = dt.date.fromisoformat(folder.name)
        except ValueError:
            continue
        if folder.is_dir() and day < cutoff:
            removed += sum(1 for p in folder.iterdir() if p.is_file())
            shutil.rmtree(folder)
    return removed


class FolderStation:
    """A camera folder, judged file by file: ``processed/`` and ``rejected/`` beside the images;
    a copy of each judged image and its thumbnail kept under ``keep`` (default ``images/``).

    A sidecar ``<image>.json`` (``{"order": …, "lot": …, "unit": …, "product": …}``) says what the
    image belongs to; without one, the unit is the file's name. A file younger than ``settle_s``
    may still be being written and waits for the next look.
    """

    def __init__(
        self,
        folder: Path,
        model: InspectionModel,
        machine: str,
        sink: EventSink,
        *,
        keep: Path | None = None,
        settle_s: float = 0.5,
    ) -> None:
        self.folder = folder
        self.processed = folder / "processed"
        self.rejected = folder / "rejected"
        self.station = InspectionStation(model, machine, sink, keep or folder / "images")
        self.settle_s = settle_s

    def poll(self, now: float | None = None) -> list[str]:
        """Judge every image now in the folder; one line per image, in name order."""
        import time

        if not self.folder.is_dir():
            from microfab.errors import InputError

            raise InputError(f"no folder {self.folder} to watch")
        moment = time.time() if now is None else now
        lines: list[str] = []
        for path in sorted(self.folder.iterdir()):
            if not path.is_file() or path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            try:
                if moment - path.stat().st_mtime < self.settle_s:
                    continue
                data = path.read_bytes()
            except OSError:
                continue  # gone or not readable yet: the next look sees it
            side = path.with_name(path.name + ".json")
            info = self._sidecar(side, path)
            judged = self.station.judge(data, name=path.name, info=info)
            if judged.event is None:
                self.rejected.mkdir(exist_ok=True)
                shutil.move(str(path), self.rejected / path.name)
                (self.rejected / f"{path.name}.reason.txt").write_text(
                    f"{judged.reason}\n", encoding="utf-8"
                )
            else:
                self.processed.mkdir(exist_ok=True)
                shutil.move(str(path), self.processed / path.name)
            if side.is_file():
                target = self.rejected if judged.event is None else self.processed
                target.mkdir(exist_ok=True)
                shutil.move(str(side), target / side.name)
            lines.append(judged.line())
        return lines

    @staticmethod
    def _sidecar(side: Path, image: Path) -> UnitInfo:
        if side.is_file():
            try:
                data = json.loads(side.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                data = None
            if isinstance(data, dict):
                info = UnitInfo.from_json(data)
                return (
                    info
                    if info.unit
                    else UnitInfo(info.order, info.lot, image.stem[:64], info.product)
                )
        return UnitInfo(unit=image.stem[:64])


def judge_reference(station: InspectionStation, payload: bytes, root: Path) -> Judged:
    """An MQTT message naming an image (``{"image": "2026-12-07/sn-1.png", "order": …, "lot": …,
    "unit": …, "product": …}``, the path relative to the camera's shared folder ``root``) judged
    by ``station``; a message that is not such JSON, or names no readable image inside ``root``,
    is a :class:`Judged` with the reason (the caller keeps it as a dead letter)."""
    try:
        data = json.loads(payload)
    except ValueError:
        return Judged("message", None, 'not JSON: expected {"image": PATH, …}')
    if not isinstance(data, dict) or not isinstance(data.get("image"), str) or not data["image"]:
        return Judged("message", None, "no 'image' (a path relative to the camera folder)")
    name = data["image"]
    relative = Path(name)
    if relative.is_absolute() or ".." in relative.parts:
        return Judged(name, None, "the image path must stay inside the camera folder")
    try:
        raw = (root / relative).read_bytes()
    except FileNotFoundError:
        return Judged(name, None, "no such file")
    except OSError as exc:
        return Judged(name, None, exc.strerror or str(exc))
    return station.judge(raw, name=name, info=UnitInfo.from_json(data))
