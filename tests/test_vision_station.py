"""The inspection station on a store (SQLite and PostgreSQL): a camera folder → inspection events,
processed/ and rejected/, kept images with thumbnails and their retention; the model card kept in
the store; the funding evidence's AI/ML criterion from what ran."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from PIL import Image

from conftest import DATA
from microfab.funding.evidence import gather_store_facts, smart_line_evidence
from microfab.model.events import event_to_dict
from microfab.model.factory_file import parse_factory
from microfab.store import EventStore
from microfab.store.vision import registered_models
from microfab.vision.runtime import InspectionModel
from microfab.vision.station import FolderStation, StoreSink, prune_images, register, thumbnail_path
from services import MosquittoServer
from test_vision_run import CARD, colour_model

LINE = "kt/plant/line1"
CNC1 = f"{LINE}/machining/cnc-1"
METRICS = """\
metrics:
  method: 5-fold stratified cross-validation
  images: 150
  classes:
    good: {precision: 0.98, recall: 0.96, support: 50}
    dark: {precision: 0.94, recall: 0.97, support: 50}
    red: {precision: 1.0, recall: 1.0, support: 50}
"""


def ai_ml(store: EventStore) -> dict[str, object]:
    factory = parse_factory((DATA / "factory-small.yaml").read_text(encoding="utf-8"))
    doc = smart_line_evidence(factory, gather_store_facts(store, factory)).to_json()
    [line] = doc["lines"]
    [criterion] = [c for c in line["criteria"] if c["criterion"] == "ai_ml"]
    machines = {m["machine"]: m for m in line["machines"]}
    return {**criterion, "cnc1": machines[CNC1]["criteria"]["ai_ml"]}


def test_a_camera_folder_becomes_inspection_events(store: EventStore, tmp_path: Path) -> None:
    factory = parse_factory((DATA / "factory-small.yaml").read_text(encoding="utf-8"))
    store.apply_factory(factory, "small.yaml")
    colour_model(tmp_path / "colour.onnx")
    (tmp_path / "colour.yaml").write_text(CARD + METRICS, encoding="utf-8")
    model = InspectionModel.from_card(tmp_path / "colour.yaml")

    none = ai_ml(store)
    assert none["status"] == "no_evidence" and none["cnc1"] is None
    assert "no AI/ML model in use is recorded" in str(none["evidence"])

    camera = tmp_path / "camera"
    camera.mkdir()
    Image.new("RGB", (640, 480), (205, 205, 205)).save(camera / "u-001.png")
    Image.new("RGB", (640, 480), (230, 25, 25)).save(camera / "u-002.png")
    (camera / "u-002.png.json").write_text(
        json.dumps({"order": "WO-7", "lot": "L-3", "unit": "SN-2"}), encoding="utf-8"
    )
    jpeg = tmp_path / "whole.jpg"
    Image.new("RGB", (640, 480), (20, 200, 20)).save(jpeg, quality=95)
    (camera / "u-003.jpg").write_bytes(jpeg.read_bytes()[:500])
    (camera / "notes.txt").write_text("not an image, not touched", encoding="utf-8")

    assert register(store, model) is True
    assert register(store, model) is False
    station = FolderStation(camera, model, CNC1, StoreSink(store))
    lines = station.poll(now=dt.datetime.now().timestamp() + 60)
    assert len(lines) == 3
    assert lines[2] == "u-003.jpg: rejected (the image is truncated (the file ends early))"
    assert sorted(p.name for p in (camera / "processed").iterdir()) == [
        "u-001.png",
        "u-002.png",
        "u-002.png.json",
    ]
    assert sorted(p.name for p in (camera / "rejected").iterdir()) == [
        "u-003.jpg",
        "u-003.jpg.reason.txt",
    ]
    assert (camera / "rejected" / "u-003.jpg.reason.txt").read_text(encoding="utf-8") == (
        "the image is truncated (the file ends early)\n"
    )
    assert (camera / "notes.txt").is_file()
    assert station.poll() == []  # nothing left to judge

    events = [event_to_dict(s.event) for s in store.events(stream="inspection")]
    assert len(events) == 2
    bad, good = sorted(events, key=lambda e: e["unit"])  # SN-2 < u-001
    assert (good["result"], good["defect"], good["unit"]) == ("pass", None, "u-001")
    assert (bad["result"], bad["defect"], bad["order"], bad["lot"], bad["unit"]) == (
        "fail",
        "red",
        "WO-7",
        "L-3",
        "SN-2",
    )
    assert bad["model"] == "colour" and bad["model_version"] == "1"
    assert bad["defects"][0]["name"] == "red" and bad["score"] == bad["defects"][0]["score"]
    assert len(bad["defects"]) == 3 and bad["latency_ms"] > 0
    kept = camera / "images" / bad["image"]
    assert kept.is_file()
    thumb = thumbnail_path(camera / "images", bad["image"])
    assert thumb is not None
    with Image.open(thumb) as t:
        assert t.width == 160
    assert thumbnail_path(camera / "images", "../../etc/passwd") is None

    [card] = registered_models(store)
    assert (card.model, card.version, card.task) == ("colour", "1", "classify")
    evidence = ai_ml(store)
    assert evidence["status"] == "evidenced" and evidence["cnc1"] is True
    text = "\n".join(evidence["evidence"])  # type: ignore[arg-type]
    assert "vision model colour v1 (classify) in use on cnc-1" in text
    assert "2 inspections (1 failed)" in text
    assert "built by hand in tests/test_vision_run.py" in text
    assert "measured (5-fold stratified cross-validation, 150 images): good precision 0.98" in text

    day = dt.datetime.fromisoformat(Path(bad["image"]).parent.name + "T12:00:00+00:00")
    assert prune_images(camera / "images", 30, now=day + dt.timedelta(days=10)) == 0
    assert prune_images(camera / "images", 30, now=day + dt.timedelta(days=31)) == 4
    assert not kept.exists()


def test_a_p_chart_of_the_defect_rate(tmp_path: Path) -> None:
    from microfab.model.events import EVENT_ADAPTER
    from microfab.quality.alerts import AlertRules, evaluate_rules
    from microfab.quality.spc import spc_report
    from microfab.store import open_store

    factory = parse_factory((DATA / "factory-small.yaml").read_text(encoding="utf-8"))
    start = dt.datetime(2026, 11, 23, 1, 0, tzinfo=dt.UTC)
    # failed of 10 an hour: 20 baseline hours near 10 %, then one hour at 70 %
    failed = [1, 0, 2, 1, 1, 0, 1, 2, 1, 1, 0, 1, 1, 2, 1, 0, 1, 1, 2, 1, 1, 1, 7, 1]
    events = [
        EVENT_ADAPTER.validate_python(
            {
                "id": f"insp-{h}-{i}",
                "ts": (start + dt.timedelta(hours=h, minutes=i)).isoformat(),
                "machine": CNC1,
                "stream": "inspection",
                "result": "fail" if i < n else "pass",
                "defect": "spot" if i < n else None,
                "model": "tray",
            }
        )
        for h, n in enumerate(failed)
        for i in range(10)
    ]
    with open_store(f"sqlite:///{tmp_path}/p.db") as store:
        store.apply_factory(factory, "small.yaml")
        store.append(events)
        doc = spc_report(store, factory, "cnc-1:defects", period_s=3600, baseline=20)
        rules = AlertRules.model_validate(
            {
                "rules": [
                    {
                        "id": "defect-rate",
                        "kind": "spc",
                        "characteristic": "cnc-1:defects",
                        "baseline": 20,
                    }
                ]
            }
        )
        [outcome] = evaluate_rules(store, factory, rules)
    assert doc["chart"] == "p"
    values = [p["value"] for p in doc["points"]]
    assert values == pytest.approx([n / 10 for n in failed])
    assert doc["out_of_control"] == [22]
    # an alert rule on the characteristic: the defect rate out of control raises an alert
    assert outcome.note is None and len(outcome.findings) == 1
    assert outcome.findings[0].machine == CNC1


def test_mqtt_messages_name_the_images_to_judge(tmp_path: Path, mosquitto: MosquittoServer) -> None:
    """Retained messages on two topics under a prefix reach `vision listen` when it subscribes;
    one names a readable image (→ an inspection event), one a missing file (→ a dead letter)."""
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion
    from typer.testing import CliRunner

    from microfab.cli import app
    from microfab.store import open_store

    colour_model(tmp_path / "colour.onnx")
    (tmp_path / "colour.yaml").write_text(CARD, encoding="utf-8")
    camera = tmp_path / "share"
    (camera / "day").mkdir(parents=True)
    Image.new("RGB", (640, 480), (25, 25, 25)).save(camera / "day" / "sn-9.png")
    prefix = f"test-{tmp_path.name}/vision"
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{tmp_path.name}")
    client.connect("127.0.0.1", mosquitto.port)
    client.loop_start()
    good = json.dumps({"image": "day/sn-9.png", "order": "WO-2", "unit": "SN-9"})
    infos = [
        client.publish(f"{prefix}/a", good, qos=1, retain=True),
        client.publish(f"{prefix}/b", json.dumps({"image": "day/gone.png"}), qos=1, retain=True),
    ]
    for info in infos:
        info.wait_for_publish(timeout=10)
    client.loop_stop()
    client.disconnect()
    db = f"sqlite:///{tmp_path}/listen.db"
    result = CliRunner().invoke(
        app,
        [
            "vision",
            "listen",
            "--card",
            str(tmp_path / "colour.yaml"),
            "--machine",
            CNC1,
            "--root",
            str(camera),
            "--topic",
            f"{prefix}/#",
            "--broker",
            mosquitto.url,
            "--count",
            "2",
            "--db",
            db,
        ],
    )
    assert result.exit_code == 0, (result.output, result.exception)
    with open_store(db) as store:
        [event] = [s.event for s in store.events(stream="inspection")]
        [letter] = store.dead_letters()
    assert (event.result.value, event.defect, event.order, event.unit) == (
        "fail",
        "dark",
        "WO-2",
        "SN-9",
    )
    assert letter.reason == "image day/gone.png: no such file"
