"""The HTTP upload of an inspection image (a token with ``inspection.write``), the thumbnail route,
and the quality page's latest judged images."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
from PIL import Image

from conftest import DATA
from microfab.model.factory_file import parse_factory
from microfab.model.identity import Permission
from microfab.store import EventStore, open_store
from microfab.store.identity import create_token
from test_vision_run import CARD, colour_model
from webapp import serving

LINE = "kt/plant/line1"
CNC2 = f"{LINE}/utility/cnc-2"


def png(rgb: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (640, 480), rgb).save(buf, format="PNG")
    return buf.getvalue()


def test_upload_judges_the_image_and_stores_one_event(tmp_path: Path) -> None:
    with open_store(f"sqlite:///{tmp_path}/plant.db") as store:
        upload_and_read(store, tmp_path)  # asserts each answer as it goes
        stored = [s.event for s in store.events() if s.event.stream == "inspection"]
    assert sorted((e.result, e.defect or "") for e in stored) == [("fail", "red"), ("pass", "")]  # type: ignore[union-attr]


def upload_and_read(store: EventStore, tmp_path: Path) -> None:
    colour_model(tmp_path / "colour.onnx")
    (tmp_path / "colour.yaml").write_text(CARD, encoding="utf-8")
    text = (DATA / "factory-small.yaml").read_text(encoding="utf-8")
    text = text.replace(
        "{id: cnc-2, kind: cnc, ideal_cycle_s: 40.0}",
        f"{{id: cnc-2, kind: cnc, ideal_cycle_s: 40.0, inspection_model: '{tmp_path / 'colour.yaml'}'}}",
    )
    store.apply_factory(parse_factory(text), "small.yaml")
    _, camera = create_token(
        store, "camera-1", role=None, scopes=[Permission.INSPECTION_WRITE], actor="cli:tests"
    )
    with serving(store, vision_images=tmp_path / "kept") as (url, client):
        with httpx.Client(
            base_url=url, timeout=30, headers={"Authorization": f"Bearer {camera}"}
        ) as gateway:
            red = gateway.post(
                f"/api/v1/machines/{CNC2}/inspections",
                params={"order": "WO-1", "lot": "L-9", "unit": "SN-1", "name": "sn-1.png"},
                content=png((230, 25, 25)),
                headers={"Content-Type": "image/png"},
            )
            light = gateway.post("/api/v1/machines/cnc-2/inspections", content=png((205, 205, 205)))
            cut = gateway.post(f"/api/v1/machines/{CNC2}/inspections", content=png((1, 2, 3))[:300])
            no_model = gateway.post(
                f"/api/v1/machines/{LINE}/machining/cnc-1/inspections", content=png((9, 9, 9))
            )
            not_allowed = gateway.get("/api/v1/defects")
        assert red.status_code == 201, red.text
        event = red.json()
        assert (event["stream"], event["machine"], event["result"], event["defect"]) == (
            "inspection",
            CNC2,
            "fail",
            "red",
        )
        assert (event["order"], event["lot"], event["unit"]) == ("WO-1", "L-9", "SN-1")
        assert event["model"] == "colour" and event["image"].endswith(".png")
        assert light.status_code == 201 and light.json()["result"] == "pass"
        assert cut.status_code == 400
        assert cut.json()["error"]["key"] == "unreadable_image"
        assert "truncated" in cut.json()["error"]["message"]
        assert no_model.status_code == 404
        assert "no inspection_model" in no_model.json()["error"]["message"]
        assert not_allowed.status_code == 403

        thumb = client.get(f"/api/v1/inspections/images/{event['image']}")
        assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
        assert client.get("/api/v1/inspections/images/../secret.png").status_code == 404
        defects = client.get("/api/v1/defects").json()
        assert defects["inspected"] == 2 and defects["failed"] == 1

        page = client.get("/quality", headers={"Accept": "text/html"})
        assert page.status_code == 200
        assert f'src="/api/v1/inspections/images/{event["image"]}"' in page.text
        assert 'data-verdict="fail"' in page.text
