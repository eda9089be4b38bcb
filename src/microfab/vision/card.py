"""The model card: what an inspection model expects and what its outputs mean (YAML, validated).

A plant's vision model comes from a vendor or a consultant as an ONNX file; the card beside it says
how to feed it (input name, size, colour order, layout, scaling and normalisation), how to read
its answer (``classify``: class scores; ``anomaly``: one score and a threshold; ``detect``:
boxes, scores and classes) and where it comes from (version, provenance, measured figures)::

    model: defect-v3.onnx          # path relative to the card
    task: classify                 # classify | anomaly | detect
    input: {name: image, size: [224, 224], layout: NCHW, colour: RGB, scale: 0.00392156862745098,
            mean: [0.0, 0.0, 0.0], std: [1.0, 1.0, 1.0]}
    output: scores
    classes: [good, scratch, spot]
    defect_classes: [scratch, spot]
    version: "3"
    provenance: "who trained it, on what, when"

Errors are located (``card.yaml:4 input.layout: 'NCWH' is not one of NCHW, NHWC``) through
:mod:`microfab.model.located_yaml`, the one reader of user-edited files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from microfab.errors import VisionCardError
from microfab.model.located_yaml import Loc, load_located, read_file

Name = Annotated[str, Field(min_length=1, max_length=128)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InputSpec(_Strict):
    """How an image becomes the model's input tensor."""

    name: Name
    size: tuple[Annotated[int, Field(ge=1, le=8192)], Annotated[int, Field(ge=1, le=8192)]] = Field(
        description="[height, width] in pixels the image is resized to"
    )
    layout: Literal["NCHW", "NHWC"] = "NCHW"
    colour: Literal["RGB", "BGR", "GRAY"] = "RGB"
    scale: float = Field(default=1.0 / 255.0, gt=0, description="pixel (0–255) × scale first")
    mean: list[float] = Field(default_factory=lambda: [0.0, 0.0, 0.0])
    std: list[Annotated[float, Field(gt=0)]] = Field(default_factory=lambda: [1.0, 1.0, 1.0])
    dtype: Literal["float32", "uint8"] = "float32"

    @property
    def channels(self) -> int:
        return 1 if self.colour == "GRAY" else 3


class DetectSpec(_Strict):
    """The outputs of a ``detect`` model: either ``boxes`` (already filtered: boxes [N, 4] as
    x1, y1, x2, y2 in input pixels, scores [N], class indices [N]) or ``yolo`` (one raw output
    [1, 4 + classes, N] of centre-x, centre-y, width, height and class scores; microfab keeps the
    boxes over ``score_threshold`` and removes overlaps above ``iou``)."""

    format: Literal["boxes", "yolo"] = "boxes"
    boxes: Name
    scores: Name | None = None
    labels: Name | None = None
    score_threshold: float = Field(default=0.25, ge=0, le=1)
    iou: float = Field(default=0.45, gt=0, le=1)


class ClassFigures(_Strict):
    precision: float = Field(ge=0, le=1)
    recall: float = Field(ge=0, le=1)
    support: int = Field(default=0, ge=0)


class Metrics(_Strict):
    """Measured quality of the model (for the funding evidence and the engineer)."""

    method: str = Field(min_length=1, max_length=200)
    images: int = Field(ge=0)
    classes: dict[str, ClassFigures]


class ModelCard(_Strict):
    """A validated model card (see the module docstring)."""

    model: Name = Field(description="ONNX file, relative to the card")
    id: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")] | None = None
    task: Literal["classify", "anomaly", "detect"]
    input: InputSpec
    output: Name | None = None
    detect: DetectSpec | None = None
    classes: list[Name] = Field(default_factory=list)
    defect_classes: list[Name] = Field(default_factory=list)
    threshold: float | None = None
    version: Annotated[str, Field(min_length=1, max_length=64)]
    provenance: Annotated[str, Field(min_length=1, max_length=2000)]
    metrics: Metrics | None = None

    def model_id(self, card_path: Path | None = None) -> str:
        """The model's id: ``id``, else the ONNX file's stem."""
        return self.id or Path(self.model).stem


def _check(card: ModelCard) -> list[tuple[Loc, str]]:
    faults: list[tuple[Loc, str]] = []
    n = card.input.channels
    if len(card.input.mean) != n:
        faults.append((("input", "mean"), f"has {len(card.input.mean)} values; expected {n}"))
    if len(card.input.std) != n:
        faults.append((("input", "std"), f"has {len(card.input.std)} values; expected {n}"))
    if card.task in ("classify", "anomaly") and card.output is None:
        faults.append((("output",), f"field required for task {card.task}"))
    if card.task == "classify" and len(card.classes) < 2:
        faults.append((("classes",), "a classify model needs at least 2 classes"))
    if card.task == "detect":
        if card.detect is None:
            faults.append((("detect",), "field required for task detect (boxes, scores, labels)"))
        if not card.classes:
            faults.append((("classes",), "a detect model needs its class names"))
    if card.task == "anomaly" and card.threshold is None:
        faults.append((("threshold",), "field required for task anomaly"))
    if len(set(card.classes)) != len(card.classes):
        faults.append((("classes",), "class names repeat"))
    for i, name in enumerate(card.defect_classes):
        if card.task != "anomaly" and name not in card.classes:
            faults.append((("defect_classes", i), f"{name!r} is not one of the classes"))
    if card.task == "classify" and not card.defect_classes:
        faults.append((("defect_classes",), "name the classes that are defects"))
    return faults


def parse_card(text: str, filename: str) -> ModelCard:
    """Validate card YAML; :class:`VisionCardError` with one ``file:line`` per fault."""
    return load_located(
        text,
        filename,
        ModelCard,
        expected="model, task, input, version and provenance",
        error=VisionCardError,
        check=_check,
    )


def load_card(path: Path) -> ModelCard:
    """Read and validate the card at ``path``."""
    return parse_card(read_file(path, "model card"), str(path))


def card_yaml(card: ModelCard) -> str:
    """The card as YAML text, in the order a person reads it."""
    import yaml

    data = card.model_dump(mode="json", exclude_none=True)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
