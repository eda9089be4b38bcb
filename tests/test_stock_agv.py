"""Transfer tasks to an AGV over MQTT: assigned tasks are stored and published on
microfab/v1/{agv}/task; the AGV's answers arrive as task events and move the task board."""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from typer.testing import CliRunner

from microfab.cli import app
from microfab.connect.decode import decode_message
from microfab.model.events import TaskStatus, TransferTaskUpdate, parse_ts
from microfab.stock.agv import task_board
from microfab.store import open_store
from services import MosquittoServer

DATA = Path(__file__).parent / "data"


def test_tasks_are_assigned_published_and_answered(
    tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    db_url = f"sqlite:///{tmp_path}/store.db"  # a CLI test: the store is not its subject
    site = f"s{uuid.uuid4().hex[:8]}"
    agv = f"{site}/plant/line1/transfer/agv-1"
    runner = CliRunner()
    env = {"MICROFAB_DB": db_url}
    for args in (
        ["factory", "apply", str(DATA / "factory-stock.yaml")],
        ["stock", "receive", "RICE-JASMINE", "30", "--lot", "R1", "--to", "bin-a1"],
    ):
        assert runner.invoke(app, args, env=env).exit_code == 0
    got: list[paho.MQTTMessage] = []
    arrived = threading.Event()
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"agv-{site}")

    def on_message(_c: paho.Client, _u: object, message: paho.MQTTMessage) -> None:
        got.append(message)
        arrived.set()

    client.on_message = on_message
    client.connect("127.0.0.1", mosquitto.port)
    client.subscribe(f"microfab/v1/{agv}/task", qos=1)
    client.loop_start()
    try:
        url = f"mqtt://127.0.0.1:{mosquitto.port}"
        assigned = runner.invoke(
            app, ["stock", "tasks", "--assign", agv, "--broker", url, "--json"], env=env
        )
        assert assigned.exit_code == 0, assigned.output
        tasks = json.loads(assigned.stdout)
        assert [(t["item"], t["from"], t["to"], t["qty"]) for t in tasks] == [
            ("RICE-JASMINE", "bin-a1", "ls-1", 20.0)
        ]
        assert arrived.wait(10)
    finally:
        client.loop_stop()
        client.disconnect()
    payload = json.loads(got[0].payload)
    assert payload["task"] == tasks[0]["id"] and payload["status"] == "assigned"
    assert (payload["from_location"], payload["to_location"], payload["qty"]) == (
        "bin-a1", "ls-1", 20.0
    )  # fmt: skip
    # the AGV answers on the same topic; ingest decodes it like any event
    answer = json.dumps(
        {
            "id": "agv-1-0001",
            "ts": "2030-01-01T00:00:00Z",
            "task": tasks[0]["id"],
            "status": "failed",
            "reason": "aisle blocked",
        }
    ).encode()
    decoded = decode_message(got[0].topic, answer, received_at=parse_ts(payload["ts"]))
    assert decoded.dead == []
    with open_store(db_url) as store:
        store.append(decoded.events)
        board = task_board(store)
    assert [(r.task, r.status, r.reason, r.agv) for r in board] == [
        (tasks[0]["id"], "failed", "aisle blocked", agv)
    ]
    again = runner.invoke(app, ["stock", "tasks", "--board", "--json"], env=env)
    assert json.loads(again.stdout)[0]["status"] == "failed"


def test_an_assigned_task_says_what_to_move() -> None:
    with pytest.raises(ValueError, match="an assigned task needs qty, unit, from_location"):
        TransferTaskUpdate.model_validate(
            {"id": "t", "ts": "2026-12-01T00:00:00Z", "machine": "a/b/c/d/agv-1",
             "task": "task-1", "status": TaskStatus.ASSIGNED, "item": "RICE"}
        )  # fmt: skip
