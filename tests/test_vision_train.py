"""`microfab vision train` on simulated product images: the exported ONNX file runs with nothing
but its card, its verdicts match, the card carries the cross-validated figures; the images are
seedable with ground truth; the anomaly model learns from good images alone."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from typer.testing import CliRunner

from microfab.cli import app
from microfab.errors import InputError
from microfab.sim.product_images import CLASSES, defect_for, draw_product
from microfab.vision.card import load_card
from microfab.vision.features import deviation_features, good_statistics
from microfab.vision.images import to_tensor
from microfab.vision.runtime import InspectionModel
from microfab.vision.train import INPUT_SPEC, FeatureExtractor

runner = CliRunner()
SIZE = "--width=320", "--height=240"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("vision")
    result = runner.invoke(
        app, ["vision", "images", str(root / "set"), "--per-class", "8", "--seed", "0", *SIZE]
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        app,
        [
            "vision",
            "train",
            str(root / "set"),
            "--out",
            str(root / "tray"),
            "--folds",
            "3",
            "--version",
            "2",
            "--trees",
            "40",
            "--json",
        ],
    )
    assert result.exit_code == 0, (result.output, result.exception)
    (root / "report.json").write_text(result.stdout, encoding="utf-8")
    return root


def test_images_are_seedable_with_ground_truth(trained: Path) -> None:
    a, truth = draw_product(7, "spot", (320, 240))
    b, _ = draw_product(7, "spot", (320, 240))
    c, _ = draw_product(8, "spot", (320, 240))
    assert np.array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(a), np.asarray(c))
    assert truth.label == "spot" and truth.box is not None
    x1, y1, x2, y2 = truth.box
    assert 0 <= x1 < x2 <= 320 and 0 <= y1 < y2 <= 240
    with (trained / "set" / "labels.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 8 * len(CLASSES)
    assert {r["class"] for r in rows} == set(CLASSES)
    assert all((r["x1"] == "") == (r["class"] == "good") for r in rows)
    kinds = {defect_for(s, 0.5) for s in range(200)}
    assert kinds == set(CLASSES)
    assert {defect_for(s, 0.0) for s in range(50)} == {"good"}


def test_train_exports_one_onnx_file_and_its_card(trained: Path) -> None:
    report = json.loads((trained / "report.json").read_text(encoding="utf-8"))
    assert report["task"] == "classify" and report["images"] == 40
    assert set(report["classes"]) == set(CLASSES)
    assert report["method"] == "3-fold stratified cross-validation"
    for figures in report["classes"].values():
        assert 0 <= figures["precision"] <= 1 and 0 <= figures["recall"] <= 1
        assert figures["support"] == 8
    card = load_card(trained / "tray.yaml")
    assert (card.model, card.version, card.output) == ("tray.onnx", "2", "probabilities")
    assert card.classes == sorted(CLASSES) and "good" not in card.defect_classes
    assert card.metrics is not None and card.metrics.images == 40
    assert card.metrics.classes["missing_fill"].support == 8
    assert "microfab vision train on 40 images" in card.provenance
    # one image in, class scores out: nothing but the card is needed to run it
    session = ort.InferenceSession(str(trained / "tray.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["image"]
    assert {o.name for o in session.get_outputs()} >= {"probabilities"}


def test_the_graph_computes_the_features_training_used(trained: Path) -> None:
    image, _ = draw_product(123, "scratch", (320, 240))
    extract = FeatureExtractor()
    goods = np.stack([extract(draw_product(s, "good", (320, 240))[0]) for s in range(3)])
    mean, std = good_statistics(goods)
    numpy_side = deviation_features(extract(image)[None], mean, std)
    from microfab.vision.features import deviation_graph

    session = ort.InferenceSession(
        deviation_graph(mean, std).SerializeToString(), providers=["CPUExecutionProvider"]
    )
    graph_side = session.run(["features"], {"base": extract(image)[None]})[0]
    assert graph_side.shape == numpy_side.shape
    assert np.allclose(graph_side, numpy_side, rtol=1e-5, atol=1e-5)
    assert to_tensor(image, INPUT_SPEC).shape == (1, 3, 192, 256)


def test_vision_run_on_the_trained_model(trained: Path) -> None:
    model = InspectionModel.from_card(trained / "tray.yaml")
    # the plainest defects, on seeds never trained on: a small model still gets them
    for label in ("missing_fill", "misaligned_label"):
        image, _ = draw_product(50_000, label, (320, 240))
        verdict = model.inspect(image)
        assert verdict.defect and verdict.classes[0][0] == label
    image, _ = draw_product(50_001, "good", (640, 480))
    path = trained / "good.png"
    image.save(path)
    result = runner.invoke(
        app, ["vision", "run", "--card", str(trained / "tray.yaml"), str(path), "--json"]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["model"] == {"id": "tray", "version": "2"}
    assert {c["name"] for c in doc["classes"]} == set(CLASSES)


def test_an_anomaly_model_learns_from_good_images_only(trained: Path) -> None:
    result = runner.invoke(
        app,
        [
            "vision",
            "train",
            str(trained / "set"),
            "--anomaly",
            "--out",
            str(trained / "odd"),
            "--folds",
            "4",
            "--json",
        ],
    )
    assert result.exit_code == 0, (result.output, result.exception)
    report = json.loads(result.stdout)
    assert report["task"] == "anomaly"
    card = load_card(trained / "odd.yaml")
    assert card.task == "anomaly" and card.threshold is not None and card.output == "score"
    model = InspectionModel.from_card(trained / "odd.yaml")
    image, _ = draw_product(60_000, "missing_fill", (320, 240))
    verdict = model.inspect(image)
    assert verdict.defect and verdict.classes[0][0] == "anomaly"
    assert verdict.classes[0][1] >= card.threshold


def test_train_refuses_folders_it_cannot_learn_from(tmp_path: Path) -> None:
    from microfab.vision.train import train_classifier

    with pytest.raises(InputError, match="no folder"):
        train_classifier(tmp_path / "nothing", tmp_path / "m")
    (tmp_path / "set" / "scratch").mkdir(parents=True)
    draw_product(1, "scratch", (320, 240))[0].save(tmp_path / "set" / "scratch" / "a.png")
    with pytest.raises(InputError, match=r"no images in .*good"):
        train_classifier(tmp_path / "set", tmp_path / "m")
    (tmp_path / "only" / "good").mkdir(parents=True)
    draw_product(1, "good", (320, 240))[0].save(tmp_path / "only" / "good" / "a.png")
    with pytest.raises(InputError, match="--anomaly"):
        train_classifier(tmp_path / "only", tmp_path / "m")


def test_the_simulated_station_stores_its_verdicts(trained: Path) -> None:
    import microfab.sim
    from microfab.store import open_store
    from microfab.store.vision import model_use

    db = f"sqlite:///{trained}/sim.db"
    machine = "tp/kitchen/meal-1/pack/vision-1"
    factory = Path(microfab.sim.__file__).parent / "scenarios" / "food-line" / "factory.yaml"
    result = runner.invoke(app, ["factory", "apply", str(factory), "--db", db])
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        app,
        [
            "vision",
            "sim",
            "--card",
            str(trained / "tray.yaml"),
            "--machine",
            machine,
            "--count",
            "6",
            "--seed",
            "70000",
            "--defect-rate",
            "0.5",
            "--order",
            "WO-9",
            "--db",
            db,
            "--json",
        ],
    )
    assert result.exit_code == 0, (result.output, result.exception)
    doc = json.loads(result.stdout)
    assert doc["units"] == 6
    drawn = sum(c["drawn"] for c in doc["classes"].values())
    assert drawn == 6
    with open_store(db) as store:
        [use] = model_use(store)
        assert (use.machine, use.model, use.version, use.inspections) == (machine, "tray", "2", 6)
    result = runner.invoke(app, ["defects", "--db", db, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["inspected"] == 6
    with open_store(db) as store:
        from microfab.model.events import EVENT_ADAPTER

        store.append(  # the order the units belong to, so the genealogy can be read
            [
                EVENT_ADAPTER.validate_python(
                    {
                        "id": "o-1",
                        "ts": "2026-11-23T00:00:00Z",
                        "machine": machine,
                        "stream": "order",
                        "order": "WO-9",
                        "event": "created",
                        "product": "MEAL-CHK-RICE",
                        "quantity": 6,
                    }
                )
            ]
        )
    result = runner.invoke(app, ["trace", "WO-9", "--db", db, "--json"])
    assert result.exit_code == 0, (result.output, result.exception)
    [judged] = json.loads(result.stdout)["inspections"]
    assert (judged["machine"], judged["inspected"]) == (machine, 6)
    assert judged["failed"] == sum(judged["defects"].values())
