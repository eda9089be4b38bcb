"""An ONNX model and its card, opened once with ONNX Runtime (CPU) and checked at start-up.

:meth:`InspectionModel.open` refuses a file that is not ONNX and a model whose inputs or outputs do
not match its card, in one sentence naming what the card expects and what the model has (so a
wrong card is found before the first image, not on every one). :meth:`InspectionModel.inspect`
then judges one image: preprocessing as the card says, one inference, the task's reading of the
outputs (:mod:`microfab.vision.verdicts`), and the time it took.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from PIL import Image

from microfab.errors import VisionModelError
from microfab.vision.card import ModelCard, load_card
from microfab.vision.images import open_image, to_tensor
from microfab.vision.verdicts import Verdict, read_outputs

_ORT_TYPES = {"float32": "tensor(float)", "uint8": "tensor(uint8)"}
_ORT_ERRORS: tuple[type[BaseException], ...] = tuple(
    getattr(ort.capi.onnxruntime_pybind11_state, name)
    for name in (
        "Fail",
        "InvalidArgument",
        "InvalidGraph",
        "InvalidProtobuf",
        "NoSuchFile",
        "NotImplemented",
        "RuntimeException",
    )
    if hasattr(ort.capi.onnxruntime_pybind11_state, name)
)


def _shape_text(type_name: str, shape: list[Any]) -> str:
    dtype = type_name.removeprefix("tensor(").removesuffix(")")
    dtype = "float32" if dtype == "float" else dtype
    dims = ", ".join(str(d) if isinstance(d, int) else (d or "?") for d in shape)
    return f"{dtype}[{dims}]"


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What the JSON output and the ``inspection`` event say about the model."""

    id: str
    version: str
    task: str
    path: str


class InspectionModel:
    """A loaded model, ready to judge images (thread-safe: ONNX Runtime sessions are)."""

    def __init__(self, session: ort.InferenceSession, card: ModelCard, info: ModelInfo) -> None:
        self._session = session
        self.card = card
        self.info = info

    @classmethod
    def from_card(cls, card_path: Path, model_path: Path | None = None) -> InspectionModel:
        """Open the card and its model (``model_path``, else the card's ``model`` beside it)."""
        card = load_card(card_path)
        path = model_path if model_path is not None else card_path.parent / card.model
        return cls.open(path, card, card_name=card_path.name)

    @classmethod
    def open(cls, path: Path, card: ModelCard, *, card_name: str = "its card") -> InspectionModel:
        if not path.is_file():
            raise VisionModelError(f"no model file {path}")
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only: ONNX Runtime's warnings are not ours
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        try:
            session = ort.InferenceSession(
                str(path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except _ORT_ERRORS as exc:
            detail = str(exc).split(" : ")[-1].strip()
            raise VisionModelError(
                f"{path} is not an ONNX model ONNX Runtime can load: {detail}"
            ) from None
        problem = check_against_card(session, card)
        if problem is not None:
            raise VisionModelError(f"model {path.name} does not match {card_name}: {problem}")
        info = ModelInfo(card.model_id(), card.version, card.task, str(path))
        return cls(session, card, info)

    def inspect(self, image: Image.Image | Path | bytes) -> Verdict:
        """Judge one image; :class:`~microfab.vision.images.ImageUnreadable` if it cannot be
        decoded. ``latency_ms`` counts preprocessing, inference and reading the outputs."""
        if not isinstance(image, Image.Image):
            image = open_image(image)
        start = time.perf_counter()
        tensor = to_tensor(image, self.card.input)
        names = [o.name for o in self._session.get_outputs()]
        values = self._session.run(names, {self.card.input.name: tensor})
        outputs = {n: np.asarray(v) for n, v in zip(names, values, strict=True)}
        verdict = read_outputs(self.card, outputs, image.size)
        return verdict.timed((time.perf_counter() - start) * 1000.0)


def check_against_card(session: ort.InferenceSession, card: ModelCard) -> str | None:
    """The mismatch between the model's inputs/outputs and the card, in one sentence; or None."""
    inputs = session.get_inputs()
    spec = card.input
    described = ", ".join(f"'{i.name}' {_shape_text(i.type, i.shape)}" for i in inputs)
    by_name = {i.name: i for i in inputs}
    if spec.name not in by_name:
        return f"the card's input '{spec.name}' is not in the model, whose input is {described}"
    if len(inputs) != 1:
        return f"the model takes {len(inputs)} inputs ({described}); microfab feeds one image"
    actual = by_name[spec.name]
    h, w = spec.size
    c = spec.channels
    expected = [1, c, h, w] if spec.layout == "NCHW" else [1, h, w, c]
    want = f"{spec.dtype}[{', '.join(map(str, expected))}] ({spec.layout}, {spec.colour}, {w}×{h})"
    got = _shape_text(actual.type, actual.shape)
    if actual.type != _ORT_TYPES[spec.dtype] or len(actual.shape) != 4:
        return f"the card's input '{spec.name}' is {want} but the model's is {got}"
    for axis, (dim, exp) in enumerate(zip(actual.shape, expected, strict=True)):
        if isinstance(dim, int) and dim != exp and not (axis == 0 and dim == -1):
            return f"the card's input '{spec.name}' is {want} but the model's is {got}"
    outputs = {o.name: o for o in session.get_outputs()}
    listed = ", ".join(f"'{o.name}' {_shape_text(o.type, o.shape)}" for o in outputs.values())
    wanted = [card.output] if card.output else []
    if card.detect is not None:
        wanted = [n for n in (card.detect.boxes, card.detect.scores, card.detect.labels) if n]
    for name in wanted:
        if name not in outputs:
            return f"the card's output '{name}' is not in the model, whose outputs are {listed}"
    if card.task == "classify" and card.output is not None:
        shape = outputs[card.output].shape
        last = shape[-1] if shape else None
        if isinstance(last, int) and last != len(card.classes):
            return (
                f"the card names {len(card.classes)} classes ({', '.join(card.classes)}) but "
                f"output '{card.output}' is {_shape_text(outputs[card.output].type, shape)}, "
                f"{last} score(s) per image"
            )
    return None
