"""The embedded broker requires credentials unless told --insecure-dev; the demo brings its own."""

from __future__ import annotations

import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from typer.testing import CliRunner

from microfab.cli import app
from microfab.connect.broker import EmbeddedBroker
from microfab.errors import InputError

MAIN = "from microfab.cli import main; main()"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def connect(port: int, username: str | None = None, password: str | None = None) -> str:
    """The broker's CONNACK reason for this login."""
    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv311)
    if username is not None:
        client.username_pw_set(username, password)
    answers: list[str] = []
    client.on_connect = lambda _c, _u, _f, reason, _p=None: answers.append(str(reason))
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        deadline = time.monotonic() + 10
        while not answers and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        client.loop_stop()
        client.disconnect()
    assert answers, "no CONNACK"
    return answers[0]


def test_a_broker_with_users_admits_only_them() -> None:
    port = free_port()
    broker = EmbeddedBroker("127.0.0.1", port, users={"line-1": "s3cret-pass"})
    with broker:
        assert connect(port) == "Not authorized"
        assert connect(port, "line-1", "wrong") == "Not authorized"
        assert connect(port, "someone", "s3cret-pass") == "Not authorized"
        assert connect(port, "line-1", "s3cret-pass") == "Success"
        folder = broker._folder
        assert folder is not None
        file = folder / "passwords"
        assert stat.S_IMODE(file.stat().st_mode) == 0o600
        text = file.read_text(encoding="utf-8")
        assert text.startswith("line-1:$argon2id$") and "s3cret-pass" not in text
    assert not folder.exists()  # the hashes go with the broker


def test_without_users_the_library_broker_is_anonymous() -> None:
    port = free_port()
    with EmbeddedBroker("127.0.0.1", port):
        assert connect(port) == "Success"


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ([], "requires credentials"),
        (["--username", "u"], "requires credentials"),
        (["--insecure-dev", "--username", "u", "--password", "p"], "without --username"),
    ],
)
def test_microfab_broker_refuses_to_start_open_by_accident(args: list[str], words: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "MICROFAB_MQTT_PASSWORD"}
    result = CliRunner().invoke(app, ["broker", "--port", str(free_port()), *args], env=env)
    assert isinstance(result.exception, InputError)  # main() prints it and exits 2
    assert words in result.exception.message


def test_microfab_broker_with_a_user(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", MAIN, "broker", "--port", str(port), "--username", "plant"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "MICROFAB_MQTT_PASSWORD": "from-the-env", "COLUMNS": "200"},
    )
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        assert re.search(rf"mqtt://127\.0\.0\.1:{port}, accepting user plant only", line), line
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the broker did not listen"
                time.sleep(0.05)
        assert connect(port) == "Not authorized"
        assert connect(port, "plant", "from-the-env") == "Success"
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=15)
    assert process.returncode == 0
