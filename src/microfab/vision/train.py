"""``microfab vision train DIR``: a classical inspection model from a plant's own images.

``DIR/good`` holds good products and ``DIR/<defect>`` one folder per defect class. Each image's
features are computed by the ONNX feature graph (:mod:`microfab.vision.features`); a scikit-learn
classifier (extremely randomised trees) learns the classes; its cross-validated precision and
recall per class are measured (stratified k-fold, every image predicted by a model that never saw
it); the classifier, fitted on every image, is exported with skl2onnx and joined behind the feature
graph into one ONNX file, with its card (the measured figures in ``metrics``).

With ``--anomaly`` the model learns ``good/`` only: the score is how far an image's features lie
from the good ones (the mean of the largest standardised distances), and the threshold is set
above the good images' own cross-validated scores.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from numpy.typing import NDArray
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from microfab.errors import InputError
from microfab.vision.card import ClassFigures, InputSpec, Metrics, ModelCard, card_yaml
from microfab.vision.features import (
    BASE,
    INPUT,
    IR_VERSION,
    OPSET,
    OUTPUT,
    SIZE,
    base_graph,
    deviation_features,
    deviation_graph,
    good_statistics,
)
from microfab.vision.images import ImageUnreadable, open_image, to_tensor

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
GOOD = "good"
TREES = 200
MAX_FEATURES = 0.2
"""Share of the features each split of a tree draws from."""
ANOMALY_TOP = 12
"""The anomaly score is the mean of an image's this many largest |z| feature distances."""

INPUT_SPEC = InputSpec(
    name=INPUT,
    size=SIZE,
    layout="NCHW",
    colour="RGB",
    scale=1.0 / 255.0,
    mean=[0.0, 0.0, 0.0],
    std=[1.0, 1.0, 1.0],
)


@dataclass(slots=True)
class TrainingReport:
    """What training measured and wrote."""

    card: ModelCard
    model_path: Path
    card_path: Path
    images: int
    method: str
    per_class: dict[str, ClassFigures]
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.card.model_id(),
            "version": self.card.version,
            "task": self.card.task,
            "images": self.images,
            "method": self.method,
            "classes": {k: v.model_dump() for k, v in self.per_class.items()},
            "model_path": str(self.model_path),
            "card_path": str(self.card_path),
            "notes": self.notes,
        }


class FeatureExtractor:
    """The feature graph in an ONNX Runtime session."""

    def __init__(self) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.log_severity_level = 3
        self._session = ort.InferenceSession(
            base_graph().SerializeToString(), options, providers=["CPUExecutionProvider"]
        )

    def __call__(self, source: Path | bytes | Image.Image) -> NDArray[np.float32]:
        image = source if isinstance(source, Image.Image) else open_image(source)
        tensor = to_tensor(image, INPUT_SPEC)
        out: NDArray[np.float32] = self._session.run([BASE], {INPUT: tensor})[0][0]
        return out


def image_folders(folder: Path) -> dict[str, list[Path]]:
    """Class name → its image files (sorted), from ``folder``'s sub-folders."""
    if not folder.is_dir():
        raise InputError(f"no folder {folder}; expected {folder}/good and {folder}/<defect>")
    found: dict[str, list[Path]] = {}
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        files = sorted(p for p in sub.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if files:
            found[sub.name] = files
    if GOOD not in found:
        raise InputError(f"no images in {folder / GOOD}: put the good products' images there")
    return found


def _features(
    files: dict[str, list[Path]], notes: list[str]
) -> tuple[NDArray[np.float32], list[str]]:
    extract = FeatureExtractor()
    rows: list[NDArray[np.float32]] = []
    labels: list[str] = []
    for name, paths in files.items():
        for path in paths:
            try:
                rows.append(extract(path))
            except ImageUnreadable as exc:
                notes.append(f"skipped {path}: {exc.reason}")
                continue
            labels.append(name)
    return np.stack(rows), labels


def _paths(output: Path) -> tuple[Path, Path]:
    stem = output.with_suffix("") if output.suffix in (".onnx", ".yaml") else output
    stem.parent.mkdir(parents=True, exist_ok=True)
    return stem.with_suffix(".onnx"), stem.with_suffix(".yaml")


def _save(model: onnx.ModelProto, card: ModelCard, model_path: Path, card_path: Path) -> None:
    onnx.checker.check_model(model)
    onnx.save(model, str(model_path))
    card_path.write_text(card_yaml(card), encoding="utf-8")


def train_classifier(
    folder: Path,
    output: Path,
    *,
    model_id: str | None = None,
    version: str = "1",
    folds: int = 5,
    seed: int = 0,
    trees: int = TREES,
) -> TrainingReport:
    """Train, cross-validate and export a classify model (see the module docstring)."""
    from sklearn.ensemble import ExtraTreesClassifier  # type: ignore[import-untyped]
    from sklearn.metrics import precision_recall_fscore_support  # type: ignore[import-untyped]
    from sklearn.model_selection import StratifiedKFold  # type: ignore[import-untyped]

    files = image_folders(folder)
    if len(files) < 2:
        raise InputError(
            f"only {folder / GOOD} has images: add a folder per defect class "
            "(or train an anomaly model on good images with --anomaly)"
        )
    notes: list[str] = []
    x, labels = _features(files, notes)
    y = np.array(labels)
    classes = sorted(set(labels), key=lambda c: (c != GOOD, c))
    smallest = min(int((y == c).sum()) for c in classes)
    if smallest < 2:
        raise InputError("every class needs at least 2 readable images to cross-validate")
    k = min(folds, smallest)
    if k < folds:
        notes.append(f"{k}-fold instead of {folds}: the smallest class has {smallest} images")

    def make() -> ExtraTreesClassifier:
        return ExtraTreesClassifier(
            n_estimators=trees, max_features=MAX_FEATURES, random_state=seed, n_jobs=1
        )

    def features(rows: NDArray[np.float32], fit_on: NDArray[np.float32]) -> NDArray[np.float32]:
        return deviation_features(rows, *good_statistics(fit_on))

    cv = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    predicted = np.empty(len(y), dtype=y.dtype)
    for train_idx, test_idx in cv.split(x, y):
        good_rows = x[train_idx][y[train_idx] == GOOD]
        fold = make().fit(features(x[train_idx], good_rows), y[train_idx])
        predicted[test_idx] = fold.predict(features(x[test_idx], good_rows))
    precision, recall, _, support = precision_recall_fscore_support(
        y, predicted, labels=classes, zero_division=0
    )
    per_class = {
        c: ClassFigures(precision=round(float(p), 4), recall=round(float(r), 4), support=int(s))
        for c, p, r, s in zip(classes, precision, recall, support, strict=True)
    }
    mean, std = good_statistics(x[y == GOOD])
    full = deviation_features(x, mean, std)
    clf = make().fit(full, y)
    model_path, card_path = _paths(output)
    method = f"{k}-fold stratified cross-validation"
    card = ModelCard(
        model=model_path.name,
        id=model_id or model_path.stem,
        task="classify",
        input=INPUT_SPEC,
        output="probabilities",
        classes=[str(c) for c in clf.classes_],
        defect_classes=[str(c) for c in clf.classes_ if c != GOOD],
        version=version,
        provenance=(
            f"microfab vision train on {len(y)} images in {folder} "
            f"({', '.join(f'{c}: {int((y == c).sum())}' for c in classes)}), "
            f"{dt.date.today().isoformat()}; features: microfab.vision.features; "
            f"classifier: scikit-learn ExtraTreesClassifier({trees} trees, max_features {MAX_FEATURES}, seed {seed})"
        ),
        metrics=Metrics(method=method, images=len(y), classes=per_class),
    )
    graphs = [deviation_graph(mean, std), _classifier_graph(clf, full.shape[1])]
    _save(_join(graphs), card, model_path, card_path)
    return TrainingReport(card, model_path, card_path, len(y), method, per_class, notes)


def _classifier_graph(clf: Any, n_features: int) -> onnx.ModelProto:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    model: onnx.ModelProto = convert_sklearn(
        clf,
        initial_types=[(OUTPUT, FloatTensorType([None, n_features]))],
        options={id(clf): {"zipmap": False}},
        target_opset={"": OPSET, "ai.onnx.ml": 3},
    )
    return model


def _join(tails: list[onnx.ModelProto]) -> onnx.ModelProto:
    """The base feature graph, then each of ``tails`` in turn (each takes the one before's only
    output by name): one model, image in."""
    joined = base_graph()
    imports: dict[str, int] = {"": OPSET}
    for tail in tails:
        imports.update({op.domain: op.version for op in tail.opset_import if op.domain})
    for tail in tails:
        for m in (joined, tail):
            m.ir_version = IR_VERSION
            del m.opset_import[:]
            m.opset_import.extend(helper.make_opsetid(d, v) for d, v in imports.items())
        link = joined.graph.output[0].name
        outputs = [o.name for o in tail.graph.output]
        joined = onnx.compose.merge_models(joined, tail, io_map=[(link, link)], outputs=outputs)
    joined.producer_name = "microfab vision train"
    return joined


def _anomaly_scores(
    x: NDArray[np.float32], mean: NDArray[np.float32], std: NDArray[np.float32]
) -> NDArray[np.float64]:
    z = np.abs((x - mean) / std)
    top = np.sort(z, axis=1)[:, -ANOMALY_TOP:]
    return np.asarray(top.mean(axis=1), dtype=np.float64)


def _anomaly_graph(mean: NDArray[np.float32], std: NDArray[np.float32]) -> onnx.ModelProto:
    n = mean.shape[0]
    nodes = [
        helper.make_node("Sub", [BASE, "a_mean"], ["a_d"]),
        helper.make_node("Div", ["a_d", "a_std"], ["a_z"]),
        helper.make_node("Abs", ["a_z"], ["a_abs"]),
        helper.make_node("TopK", ["a_abs", "a_k"], ["a_top", "a_idx"], axis=1),
        helper.make_node("ReduceMean", ["a_top"], ["score"], axes=[1], keepdims=1),
    ]
    graph = helper.make_graph(
        nodes,
        "microfab_anomaly",
        [helper.make_tensor_value_info(BASE, TensorProto.FLOAT, [1, n])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, [1, 1])],
        initializer=[
            numpy_helper.from_array(mean.astype(np.float32), "a_mean"),
            numpy_helper.from_array(std.astype(np.float32), "a_std"),
            numpy_helper.from_array(np.array([ANOMALY_TOP], np.int64), "a_k"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    return model


def train_anomaly(
    folder: Path,
    output: Path,
    *,
    model_id: str | None = None,
    version: str = "1",
    folds: int = 5,
    seed: int = 0,
) -> TrainingReport:
    """Train an anomaly model on ``folder/good`` (see the module docstring); defect folders, if
    any, are only used to measure it."""
    from sklearn.model_selection import KFold

    files = image_folders(folder)
    notes: list[str] = []
    good_x, _ = _features({GOOD: files[GOOD]}, notes)
    if len(good_x) < max(folds, 5):
        raise InputError(f"an anomaly model needs at least {max(folds, 5)} good images")

    fit = good_statistics
    held_out = np.zeros(len(good_x))
    for train_idx, test_idx in KFold(folds, shuffle=True, random_state=seed).split(good_x):
        m, s = fit(good_x[train_idx])
        held_out[test_idx] = _anomaly_scores(good_x[test_idx], m, s)
    threshold = float(np.max(held_out) * 1.05)
    mean, std = fit(good_x)
    per_class = {}
    good_ok = float(np.mean(held_out < threshold))
    defect_files = {k: v for k, v in files.items() if k != GOOD}
    images = len(good_x)
    caught_all: list[bool] = []
    for name, paths in defect_files.items():
        dx, _ = _features({name: paths}, notes)
        caught = _anomaly_scores(dx, mean, std) >= threshold
        caught_all += caught.tolist()
        per_class[name] = ClassFigures(
            precision=1.0 if caught.any() else 0.0,
            recall=round(float(caught.mean()), 4),
            support=len(dx),
        )
        images += len(dx)
    flagged_good = float(np.sum(held_out >= threshold))
    total_caught = float(np.sum(caught_all))
    defect_precision = total_caught / (total_caught + flagged_good) if total_caught else 0.0
    per_class = {
        GOOD: ClassFigures(precision=1.0, recall=round(good_ok, 4), support=len(good_x)),
        **{
            k: ClassFigures(
                precision=round(defect_precision, 4), recall=v.recall, support=v.support
            )
            for k, v in per_class.items()
        },
    }
    if not defect_files:
        notes.append("no defect folders: only the good images' held-out scores were measured")
    model_path, card_path = _paths(output)
    method = (
        f"{folds}-fold cross-validation on good images; defect folders scored by the final model"
    )
    card = ModelCard(
        model=model_path.name,
        id=model_id or model_path.stem,
        task="anomaly",
        input=INPUT_SPEC,
        output="score",
        threshold=round(threshold, 4),
        defect_classes=["anomaly"],
        version=version,
        provenance=(
            f"microfab vision train --anomaly on {len(good_x)} good images in {folder / GOOD}, "
            f"{dt.date.today().isoformat()}; score: mean of the {ANOMALY_TOP} largest "
            "standardised feature distances from the good images"
        ),
        metrics=Metrics(method=method, images=images, classes=per_class),
    )
    _save(_join([_anomaly_graph(mean, std)]), card, model_path, card_path)
    return TrainingReport(card, model_path, card_path, images, method, per_class, notes)
