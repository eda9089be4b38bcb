"""`microfab vision run` on a tiny ONNX model built here with the onnx helper API (not trained by
microfab), its card, and generated images: verdicts, start-up checks, bad files."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from PIL import Image
from typer.testing import CliRunner

from microfab.cli import app
from microfab.errors import VisionCardError, VisionModelError
from microfab.vision.card import parse_card
from microfab.vision.runtime import InspectionModel

runner = CliRunner()

CARD = """\
model: colour.onnx
task: classify
input: {name: image, size: [32, 32], layout: NCHW, colour: RGB, scale: 0.00392156862745098,
        mean: [0.0, 0.0, 0.0], std: [1.0, 1.0, 1.0]}
output: scores
classes: [good, dark, red]
defect_classes: [dark, red]
version: "1"
provenance: "built by hand in tests/test_vision_run.py with onnx.helper"
"""


def colour_model(path: Path, *, size: int = 32, output: str = "scores") -> None:
    """Mean of each channel → a linear layer: light grey is good, dark is dark, red is red."""
    weights = np.array(  # rows r, g, b; columns good, dark, red
        [[0.0, -3.0, 5.0], [5.0, -3.0, -5.0], [0.0, -3.0, 0.0]], dtype=np.float32
    )
    bias = np.array([0.0, 3.0, 0.0], dtype=np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["image", "axes"], ["m"], keepdims=0),
            helper.make_node("MatMul", ["m", "w"], ["z"]),
            helper.make_node("Add", ["z", "b"], ["logits"]),
            helper.make_node("Softmax", ["logits"], [output], axis=1),
        ],
        "colour",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, [1, 3])],
        initializer=[
            numpy_helper.from_array(np.array([2, 3], dtype=np.int64), "axes"),
            numpy_helper.from_array(weights, "w"),
            numpy_helper.from_array(bias, "b"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


@pytest.fixture
def kit(tmp_path: Path) -> Path:
    colour_model(tmp_path / "colour.onnx")
    (tmp_path / "colour.yaml").write_text(CARD, encoding="utf-8")
    for name, rgb in {"light": (205, 205, 205), "dark": (25, 25, 25), "red": (230, 25, 25)}.items():
        Image.new("RGB", (640, 480), rgb).save(tmp_path / f"{name}.png")
    whole = (tmp_path / "light.png").read_bytes()
    Image.new("RGB", (640, 480), (200, 30, 30)).save(tmp_path / "big.jpg", quality=95)
    jpeg = (tmp_path / "big.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(jpeg[: len(jpeg) // 3])
    (tmp_path / "notes.png").write_text("not an image", encoding="utf-8")
    assert whole
    return tmp_path


def lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_run_gives_the_expected_verdicts(kit: Path) -> None:
    images = [str(kit / f"{n}.png") for n in ("light", "dark", "red")]
    result = runner.invoke(
        app,
        [
            "vision",
            "run",
            "--model",
            str(kit / "colour.onnx"),
            "--card",
            str(kit / "colour.yaml"),
            *images,
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    docs = lines(result.stdout)
    assert [d["image"] for d in docs] == images
    assert [d["result"] for d in docs] == ["good", "defect", "defect"]
    tops = [d["classes"][0]["name"] for d in docs]  # type: ignore[index]
    assert tops == ["good", "dark", "red"]
    for d in docs:
        assert d["model"] == {"id": "colour", "version": "1"}
        assert isinstance(d["latency_ms"], float) and d["latency_ms"] > 0
        scores = [c["score"] for c in d["classes"]]  # type: ignore[union-attr]
        assert scores == sorted(scores, reverse=True)
        assert abs(sum(scores) - 1) < 1e-3


def test_an_unreadable_image_is_reported_and_the_rest_judged(kit: Path) -> None:
    names = ["cut.jpg", "light.png", "notes.png", "missing.png", "red.png"]
    result = runner.invoke(
        app,
        [
            "vision",
            "run",
            "--card",
            str(kit / "colour.yaml"),
            *[str(kit / n) for n in names],
            "--json",
        ],
    )
    assert result.exit_code == 1
    docs = lines(result.stdout)
    assert len(docs) == 5
    assert docs[0]["error"] == "the image is truncated (the file ends early)"
    assert docs[1]["result"] == "good"
    assert "not an image" in str(docs[2]["error"])
    assert docs[3]["error"] == "no such file"
    assert docs[4]["result"] == "defect"
    assert "3 image(s) could not be read" in result.stderr


def test_a_card_that_does_not_match_the_model_is_one_sentence_at_start(kit: Path) -> None:
    card = parse_card(CARD.replace("size: [32, 32]", "size: [224, 224]"), "colour.yaml")
    with pytest.raises(VisionModelError) as caught:
        InspectionModel.open(kit / "colour.onnx", card, card_name="colour.yaml")
    assert str(caught.value) == (
        "model colour.onnx does not match colour.yaml: the card's input 'image' is "
        "float32[1, 3, 224, 224] (NCHW, RGB, 224×224) but the model's is float32[1, 3, 32, 32]"
    )
    card = parse_card(CARD.replace("name: image", "name: input"), "colour.yaml")
    with pytest.raises(
        VisionModelError,
        match="the card's input 'input' is not in the model, "
        r"whose input is 'image' float32\[1, 3, 32, 32\]",
    ):
        InspectionModel.open(kit / "colour.onnx", card)
    card = parse_card(CARD.replace("output: scores", "output: probs"), "colour.yaml")
    with pytest.raises(
        VisionModelError,
        match="the card's output 'probs' is not in the model, "
        r"whose outputs are 'scores' float32\[1, 3\]",
    ):
        InspectionModel.open(kit / "colour.onnx", card)
    card = parse_card(CARD.replace("[good, dark, red]", "[good, dark, red, spot]"), "colour.yaml")
    with pytest.raises(VisionModelError, match=r"the card names 4 classes .* 3 score"):
        InspectionModel.open(kit / "colour.onnx", card)
    card = parse_card(CARD.replace("layout: NCHW", "layout: NHWC"), "colour.yaml")
    with pytest.raises(VisionModelError, match=r"float32\[1, 32, 32, 3\] \(NHWC"):
        InspectionModel.open(kit / "colour.onnx", card)


def test_a_file_that_is_not_onnx_is_a_clear_error(kit: Path) -> None:
    (kit / "fake.onnx").write_bytes(b"\x89PNG this is a picture, not a model")
    card = parse_card(CARD, "colour.yaml")
    with pytest.raises(
        VisionModelError, match=r"fake.onnx is not an ONNX model ONNX Runtime can load"
    ):
        InspectionModel.open(kit / "fake.onnx", card)
    with pytest.raises(VisionModelError, match="no model file"):
        InspectionModel.open(kit / "nothing.onnx", card)


def test_the_cli_prints_one_sentence_for_a_bad_model(kit: Path) -> None:
    import subprocess

    (kit / "fake.onnx").write_bytes(b"junk")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "microfab.cli",
            "vision",
            "run",
            "--model",
            str(kit / "fake.onnx"),
            "--card",
            str(kit / "colour.yaml"),
            str(kit / "light.png"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "is not an ONNX model" in " ".join(proc.stderr.split())


def test_card_faults_are_located() -> None:
    bad = CARD.replace("layout: NCHW", "layout: NCWH").replace(
        "defect_classes: [dark, red]", "defect_classes: [dark, scratch]"
    )
    with pytest.raises(VisionCardError) as caught:
        parse_card(bad, "colour.yaml")
    assert caught.value.problems == [
        "colour.yaml:3 input.layout: 'NCWH' is not one of NCHW, NHWC",
    ]
    with pytest.raises(VisionCardError) as caught:
        parse_card(
            CARD.replace("defect_classes: [dark, red]", "defect_classes: [dark, scratch]"), "c.yaml"
        )
    assert caught.value.problems == [
        "c.yaml:7 defect_classes[1]: 'scratch' is not one of the classes"
    ]
    with pytest.raises(VisionCardError) as caught:
        parse_card(CARD.replace("task: classify", "task: anomaly"), "c.yaml")
    assert caught.value.problems == ["c.yaml:1 threshold: field required for task anomaly"]


def constant_model(path: Path, outputs: dict[str, np.ndarray]) -> None:
    """A model that takes a 32 × 32 image and answers fixed outputs (plus its mean, unused)."""
    nodes = [helper.make_node("ReduceMean", ["image"], ["unused"], keepdims=0)]
    values = []
    for name, value in outputs.items():
        nodes.append(
            helper.make_node("Constant", [], [name], value=numpy_helper.from_array(value, name))
        )
        kind = TensorProto.INT64 if value.dtype == np.int64 else TensorProto.FLOAT
        values.append(helper.make_tensor_value_info(name, kind, list(value.shape)))
    graph = helper.make_graph(
        nodes,
        "constant",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 32, 32])],
        [*values, helper.make_tensor_value_info("unused", TensorProto.FLOAT, [])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.save(model, str(path))


DETECT_CARD = """\
model: boxes.onnx
task: detect
input: {name: image, size: [32, 32]}
detect: {format: boxes, boxes: boxes, scores: scores, labels: labels, score_threshold: 0.3}
classes: [scratch, spot]
defect_classes: [scratch, spot]
version: "1"
provenance: test
"""


def test_detect_anomaly_and_yolo_outputs_are_read(tmp_path: Path) -> None:
    image = Image.new("RGB", (64, 64), (100, 100, 100))  # twice the input size: boxes scale by 2
    constant_model(
        tmp_path / "boxes.onnx",
        {
            "boxes": np.array([[1, 2, 11, 12], [2, 2, 12, 12], [20, 20, 30, 30]], np.float32),
            "scores": np.array([0.9, 0.8, 0.2], np.float32),
            "labels": np.array([1, 1, 0], np.int64),
        },
    )
    card = parse_card(DETECT_CARD, "boxes.yaml")
    verdict = InspectionModel.open(tmp_path / "boxes.onnx", card).inspect(image)
    assert verdict.defect and verdict.classes == [("spot", pytest.approx(0.9))]
    [box] = verdict.boxes  # the overlapping spot and the weak scratch are dropped
    assert (box.name, box.x1, box.y1, box.x2, box.y2) == ("spot", 2.0, 4.0, 22.0, 24.0)

    raw = np.zeros((1, 6, 3), np.float32)  # cx, cy, w, h, scratch, spot × 3 candidates
    raw[0, :, 0] = [10, 10, 4, 4, 0.1, 0.7]
    raw[0, :, 1] = [11, 10, 4, 4, 0.05, 0.6]  # overlaps the first: removed
    raw[0, :, 2] = [25, 25, 4, 4, 0.5, 0.1]
    constant_model(tmp_path / "yolo.onnx", {"output0": raw})
    card = parse_card(
        DETECT_CARD.replace("model: boxes.onnx", "model: yolo.onnx").replace(
            "{format: boxes, boxes: boxes, scores: scores, labels: labels, score_threshold: 0.3}",
            "{format: yolo, boxes: output0}",
        ),
        "yolo.yaml",
    )
    verdict = InspectionModel.open(tmp_path / "yolo.onnx", card).inspect(image)
    assert [(b.name, round(b.score, 2)) for b in verdict.boxes] == [("spot", 0.7), ("scratch", 0.5)]
    assert verdict.boxes[0].x1 == 16.0  # (10 − 2) × 2

    constant_model(tmp_path / "odd.onnx", {"score": np.array([[0.7]], np.float32)})
    anomaly = (
        CARD.replace("model: colour.onnx", "model: odd.onnx")
        .replace("task: classify", "task: anomaly")
        .replace("output: scores", "output: score")
        .replace("defect_classes: [dark, red]", "defect_classes: [odd]\nthreshold: 0.5")
    )
    card = parse_card(anomaly.replace("classes: [good, dark, red]\n", ""), "odd.yaml")
    verdict = InspectionModel.open(tmp_path / "odd.onnx", card).inspect(image)
    assert verdict.defect and verdict.classes == [("odd", pytest.approx(0.7))]
    card = parse_card(
        anomaly.replace("classes: [good, dark, red]\n", "").replace(
            "threshold: 0.5", "threshold: 0.8"
        ),
        "odd.yaml",
    )
    assert not InspectionModel.open(tmp_path / "odd.onnx", card).inspect(image).defect


def test_the_demo_station_judges_products_with_the_cached_model(tmp_path: Path) -> None:
    import datetime as dt
    import time

    from microfab.vision.demo_station import DemoVisionStation

    cache = tmp_path / "cache"
    cache.mkdir()
    colour_model(cache / "demo-tray.onnx")
    (cache / "demo-tray.yaml").write_text(
        CARD.replace("model: colour.onnx", "model: demo-tray.onnx"), encoding="utf-8"
    )
    events: list[object] = []
    registered: list[object] = []
    clock = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.UTC)
    station = DemoVisionStation(
        "tp/kitchen/meal-1/pack/vision-1",
        events.append,
        lambda: clock,
        cache=cache,
        images=tmp_path / "kept",
        every_s=0.01,
        register=registered.append,
    ).start()
    deadline = time.monotonic() + 30
    while len(events) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    station.stop()
    assert len(events) >= 3 and len(registered) == 1
    first = events[0]
    assert first.machine == "tp/kitchen/meal-1/pack/vision-1"  # type: ignore[attr-defined]
    assert first.ts == clock and first.model == "demo-tray"  # type: ignore[attr-defined]
    assert first.image is not None and (tmp_path / "kept" / first.image).is_file()  # type: ignore[attr-defined]


def test_the_card_of_the_issue_parses() -> None:
    card = parse_card(
        """\
model: defect-v3.onnx          # path relative to the card
task: classify                 # classify | anomaly | detect
input: {name: image, size: [224, 224], layout: NCHW, colour: RGB, scale: 0.00392156862745098,
        mean: [0.0, 0.0, 0.0], std: [1.0, 1.0, 1.0]}
output: scores                 # output name: class scores (classify), a score (anomaly)
classes: [good, scratch, spot] # classify/detect: index order of the scores
defect_classes: [scratch, spot]
threshold: 0.5                 # anomaly: score ≥ threshold is a defect
version: "3"
provenance: "who trained it, on what, when"
""",
        "defect-v3.yaml",
    )
    assert (card.model_id(), card.task, card.input.size, card.output) == (
        "defect-v3",
        "classify",
        (224, 224),
        "scores",
    )
