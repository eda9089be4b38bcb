"""Ctrl-C always prints the totals: a real ``microfab demo`` (dashboard, MQTT, --speed max) with a
browser's live stream open and a re-plan in flight, stopped as a terminal's Ctrl-C stops it (SIGINT
to the whole process group) and then once more (an impatient second Ctrl-C).

Also the cause found in a long run: a CP-SAT solve left SIGINT at its default action, so the next
Ctrl-C ended the process on the spot with no totals and no message.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

SRC = Path(__file__).resolve().parents[1] / "src"


def _stored(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            return int(conn.execute("select count(*) from events").fetchone()[0])
    except sqlite3.Error:
        return 0


def test_ctrl_c_prints_the_totals_with_streams_open_and_a_replan_running(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(SRC), COLUMNS="120")
    db = tmp_path / "demo.db"
    log = (tmp_path / "out.txt").open("w+", encoding="utf-8")
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "microfab.cli", "demo", "--scenario", "food-line"),
            *("--speed", "max", "--db", f"sqlite:///{db}", "--fresh"),
        ],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    streamed: list[int] = []
    stop_stream = threading.Event()
    try:
        deadline = time.monotonic() + 30
        url = password = None
        while time.monotonic() < deadline and not (url and password):
            text = Path(log.name).read_text(encoding="utf-8")
            found = re.search(r"dashboard 儀表板: (http://\S+/)", text)
            login = re.search(r"user (\S+), one-time password (\S+) ", text)
            url = found.group(1) if found else None
            password = login.group(2) if login else None
            assert proc.poll() is None, text
            time.sleep(0.1)
        assert url and password and login, Path(log.name).read_text(encoding="utf-8")
        with httpx.Client(base_url=url, timeout=30) as client:
            token = client.post(
                "/auth/token", data={"username": login.group(1), "password": password}
            ).json()["access_token"]
            headers = {"Authorization": f"Bearer {token}"}

            def live() -> None:  # an open dashboard: its Server-Sent Events stream
                with (
                    httpx.Client(base_url=url, timeout=30, headers=headers) as browser,
                    browser.stream("GET", "/live") as answer,
                ):
                    streamed.append(answer.status_code)
                    for _ in answer.iter_bytes():
                        if stop_stream.is_set():
                            break

            reader = threading.Thread(target=live, daemon=True)
            reader.start()
            while _stored(db) < 1500 and time.monotonic() < deadline + 20:
                time.sleep(0.2)
            replans: list[int] = []

            def replan() -> None:
                try:
                    answer = client.post(
                        "/api/v1/plan", headers=headers, json={"time_limit": 2}, timeout=30
                    )
                    replans.append(answer.status_code)
                except httpx.HTTPError:
                    replans.append(0)  # the server stopped under it: also fine

            planner = threading.Thread(target=replan, daemon=True)
            planner.start()
            time.sleep(0.5)  # the re-plan is in its worker now
            os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C
            time.sleep(0.3)
            os.killpg(proc.pid, signal.SIGINT)  # and again, impatiently
            code = proc.wait(timeout=25)
            stop_stream.set()
            planner.join(10)
            reader.join(10)
        output = Path(log.name).read_text(encoding="utf-8")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
    assert streamed == [200]
    assert code == 0, output
    assert "Totals per machine" in output, output
    totals = re.search(r"stopped: simulated [\d.]+ h in [\d.]+ s; events stored ([\d,]+)", output)
    assert totals is not None, output
    assert int(totals.group(1).replace(",", "")) >= 1500
    assert "MQTT: " in output and "Traceback" not in output and "Aborted" not in output


def test_a_solve_leaves_ctrl_c_to_python(tmp_path: Path) -> None:
    """After a CP-SAT solve in the process, Ctrl-C is still a KeyboardInterrupt (it used to end
    the process silently, exit status 130: CP-SAT set SIGINT to its default action)."""
    script = tmp_path / "solve_then_interrupt.py"
    script.write_text(
        "import os, signal, time\n"
        "from microfab.plan.formats import parse_instance\n"
        "from microfab.plan.solvers.cpsat.search import Settings, solve\n"
        "problem = parse_instance('3 2\\n0 3 1 4\\n1 2 0 5\\n0 4 1 1\\n', 'jssp')\n"
        "result = solve(problem, Settings(time_limit=1.0, workers=1))\n"
        "print('solved', result.status.value, flush=True)\n"
        "try:\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "    time.sleep(2)\n"
        "except KeyboardInterrupt:\n"
        "    print('KeyboardInterrupt', flush=True)\n",
        encoding="utf-8",
    )
    run = subprocess.run(
        [sys.executable, str(script)],
        env=dict(os.environ, PYTHONPATH=str(SRC)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, (run.returncode, run.stdout, run.stderr)
    assert "solved" in run.stdout and "KeyboardInterrupt" in run.stdout, run.stdout
