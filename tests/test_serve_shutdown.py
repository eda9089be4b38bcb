"""Ctrl-C on `microfab serve` with a dashboard open: the live stream ends, the server stops at
once and quietly (no cancelled-task traceback from uvicorn)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from microfab.model.identity import Role
from microfab.store import open_store
from webapp import add_test_user, api_token, fill

SERVE = "import typer; from microfab.commands.serve import serve; typer.run(serve)"


def test_ctrl_c_with_an_open_dashboard_stops_quietly(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/plant.db"
    with open_store(url) as store:
        fill(store)
        add_test_user(store, Role.ADMIN)
        auth = {"Authorization": f"Bearer {api_token(store, Role.VIEWER)}"}
    process = subprocess.Popen(
        [sys.executable, "-c", SERVE, "--port", "0", "--db", url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    ended = threading.Event()
    received: list[str] = []

    def follow(base: str) -> None:
        with (
            httpx.Client(timeout=httpx.Timeout(10, read=None), headers=auth) as client,
            client.stream("GET", base + "live") as response,
        ):
            for line in response.iter_lines():
                received.append(line)
        ended.set()  # the server ended the stream: a complete response, not a cut connection

    try:
        assert process.stdout is not None
        found = re.search(r"dashboard (http://127\.0\.0\.1:\d+/)", process.stdout.readline())
        assert found
        reader = threading.Thread(target=follow, args=(found.group(1),), daemon=True)
        reader.start()
        deadline = time.monotonic() + 10
        while not any(line.startswith("event: update") for line in received):
            assert time.monotonic() < deadline, received
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert ended.wait(5), "the live stream was cut instead of ended"
    assert "Traceback" not in err and "ERROR" not in err, err
