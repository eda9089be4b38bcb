"""A model's outputs read as a verdict, per task: ``classify`` (the top class is a defect class),
``anomaly`` (score ≥ threshold) and ``detect`` (a box of a defect class over its score threshold).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from microfab.vision.card import DetectSpec, ModelCard


@dataclass(frozen=True, slots=True)
class Box:
    """A detected region, in pixels of the original image."""

    name: str
    score: float
    x1: float
    y1: float
    x2: float
    y2: float

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "score": round(self.score, 4),
            "box": [round(v, 1) for v in (self.x1, self.y1, self.x2, self.y2)],
        }


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the model said about one image."""

    defect: bool
    classes: list[tuple[str, float]]
    """(class, score), highest first; for ``anomaly``: the one anomaly score."""
    boxes: list[Box] = field(default_factory=list)
    latency_ms: float = 0.0

    @property
    def result(self) -> str:
        return "defect" if self.defect else "good"

    @property
    def top(self) -> tuple[str, float] | None:
        return self.classes[0] if self.classes else None

    def defect_class(self, card: ModelCard) -> tuple[str, float] | None:
        """The defect named on a fail, with its score (None on a pass)."""
        if not self.defect:
            return None
        if card.task == "detect":
            box = max(self.boxes, key=lambda b: b.score)
            return box.name, box.score
        return self.classes[0]

    def timed(self, latency_ms: float) -> Verdict:
        return dataclasses.replace(self, latency_ms=latency_ms)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "result": self.result,
            "classes": [{"name": n, "score": round(s, 4)} for n, s in self.classes],
        }
        if self.boxes:
            data["boxes"] = [b.to_json() for b in self.boxes]
        return data


def _softmax(x: NDArray[np.float64]) -> NDArray[np.float64]:
    e = np.exp(x - np.max(x))
    out: NDArray[np.float64] = e / e.sum()
    return out


def read_outputs(
    card: ModelCard, outputs: dict[str, NDArray[Any]], image_size: tuple[int, int]
) -> Verdict:
    """The verdict of one image from the model's outputs (``image_size`` is its width, height)."""
    if card.task == "classify":
        assert card.output is not None
        scores = np.asarray(outputs[card.output], dtype=np.float64).reshape(-1)
        if scores.size != len(card.classes):
            raise ValueError(f"output '{card.output}' gave {scores.size} scores")
        is_probability = bool(np.all(scores >= 0) and abs(float(scores.sum()) - 1.0) < 1e-3)
        probs = scores if is_probability else _softmax(scores)
        ranked = sorted(
            zip(card.classes, (float(p) for p in probs), strict=True), key=lambda t: -t[1]
        )
        return Verdict(ranked[0][0] in card.defect_classes, ranked)
    if card.task == "anomaly":
        assert card.output is not None and card.threshold is not None
        value = float(np.max(np.asarray(outputs[card.output], dtype=np.float64)))
        name = card.defect_classes[0] if card.defect_classes else "anomaly"
        return Verdict(value >= card.threshold, [(name, value)])
    assert card.detect is not None
    boxes = _detections(card, card.detect, outputs, image_size)
    defects = set(card.defect_classes) or set(card.classes)
    best: dict[str, float] = {}
    for b in boxes:
        best[b.name] = max(best.get(b.name, 0.0), b.score)
    ranked = sorted(best.items(), key=lambda t: -t[1])
    return Verdict(any(b.name in defects for b in boxes), ranked, boxes)


def _detections(
    card: ModelCard,
    spec: DetectSpec,
    outputs: dict[str, NDArray[Any]],
    image_size: tuple[int, int],
) -> list[Box]:
    height, width = card.input.size
    sx, sy = image_size[0] / width, image_size[1] / height
    if spec.format == "yolo":
        raw = np.asarray(outputs[spec.boxes], dtype=np.float64)
        raw = raw.reshape(raw.shape[-2], raw.shape[-1])
        if raw.shape[0] != 4 + len(card.classes) and raw.shape[1] == 4 + len(card.classes):
            raw = raw.T
        cls_scores = raw[4:]
        labels = np.argmax(cls_scores, axis=0)
        scores = cls_scores[labels, np.arange(raw.shape[1])]
        cx, cy, w, h = raw[0], raw[1], raw[2], raw[3]
        xyxy = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    else:
        xyxy = np.asarray(outputs[spec.boxes], dtype=np.float64).reshape(-1, 4)
        n = xyxy.shape[0]
        scores = (
            np.asarray(outputs[spec.scores], dtype=np.float64).reshape(-1)
            if spec.scores
            else np.ones(n)
        )
        labels = (
            np.asarray(outputs[spec.labels]).reshape(-1).astype(np.int64)
            if spec.labels
            else np.zeros(n, dtype=np.int64)
        )
    keep = np.flatnonzero(scores >= spec.score_threshold)
    keep = keep[np.argsort(-scores[keep], kind="stable")]
    chosen: list[int] = []
    for i in keep:
        if all(labels[i] != labels[j] or _iou(xyxy[i], xyxy[j]) <= spec.iou for j in chosen):
            chosen.append(int(i))
    out = []
    for c in chosen:
        label = int(labels[c])
        name = card.classes[label] if 0 <= label < len(card.classes) else f"class_{label}"
        x1, y1, x2, y2 = (float(v) for v in xyxy[c])
        out.append(Box(name, float(scores[c]), x1 * sx, y1 * sy, x2 * sx, y2 * sy))
    return out


def _iou(a: NDArray[np.float64], b: NDArray[np.float64]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0
