"""The dashboard pages as served HTML: tiles, order board, OEE and Pareto panels, both languages,
the live stream (SSE), the operator forms, the shift report (HTML and PDF) and `microfab serve`."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import DATA
from microfab.errors import InputError
from microfab.http.server import bind
from microfab.model.factory_file import parse_factory
from microfab.model.identity import Role
from microfab.reports import chromium
from microfab.store import EventStore, open_store
from microfab.web.live import apply_patch, line_patch
from webapp import (
    CNC1,
    CNC2,
    ROBOT1,
    add_test_user,
    api_token,
    event,
    fill,
    read_update,
    serving,
    shown_after,
)

HTML = {"accept": "text/html"}


@pytest.fixture
def web(store: EventStore) -> Iterator[httpx.Client]:
    """The plant served over each back end (for the live stream, which polls the store)."""
    fill(store)
    with serving(store) as (_, client):
        yield client


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[EventStore]:
    """Pages render the same on both back ends (the API tests cover both): SQLite is enough."""
    with open_store(f"sqlite:///{tmp_path}/plant.db") as opened:
        yield fill(opened)


@pytest.fixture
def page_web(sqlite_store: EventStore) -> Iterator[httpx.Client]:
    with serving(sqlite_store) as (_, client):
        yield client


def tile(page: str, machine: str) -> str:
    """The HTML of one machine tile."""
    found = re.search(
        rf'<a class="tile [^"]*" href="[^"]*" data-machine="{machine}".*?</a>', page, re.S
    )
    assert found, f"no tile for {machine}"
    return found.group(0)


def test_dashboard_page(page_web: httpx.Client) -> None:
    web = page_web
    page = web.get("/", headers=HTML)
    assert page.status_code == 200
    text = page.text
    assert 'data-state="running"' in tile(text, CNC1)
    assert "state-running" in tile(text, CNC1)
    assert "WO-1" in tile(text, CNC1) and ">760<" in tile(text, CNC1)  # today's good count
    # both languages are in the page; the toggle shows one
    assert '<span class="en">Line overview</span>' in text
    assert '<span class="zh" lang="zh-Hant-HK">生產線總覽</span>' in text
    # order board: WO-1 is late (due 15:00, plant clock 15:59), in progress
    board = re.search(r'data-order="WO-1" data-status="in_progress"', text)
    assert board and 'order-card late" data-order="WO-1"' in text
    assert 'order-card" data-order="WO-2" data-status="completed"' in text
    # OEE numbers and the charts' data, rendered by the server
    assert 'data-machine="kt/plant/line1" data-level="line"' in text
    charts = json.loads(re.search(r'id="chart-data">(.*?)</script>', text, re.S).group(1))  # type: ignore[union-attr]
    assert {c["name"] for c in charts["oee"]} >= {"cnc-1", "robot-1", "cnc-2", "line1"}
    assert charts["pareto"][0]["reason"] == "UB-MECH"
    assert len(charts["output"]["hours"]) == 24
    # nothing from the internet: every script and style is ours
    for url in re.findall(r'(?:src|href)="([^"]+)"', text):
        assert url.startswith(("/", "#")), url
    assert web.get("/static/vendor/echarts/echarts.min.js").status_code == 200
    notice = web.get("/static/vendor/echarts/NOTICE").text
    assert "6.1.0" in notice and "Apache-2.0" in notice


def test_live_stream_sends_only_what_changed_when_events_are_stored(
    web: httpx.Client, store: EventStore
) -> None:
    with web.stream("GET", "/live", headers={"accept": "text/event-stream"}) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = response.iter_lines()
        first = read_update(lines)
        assert first["seq"] == store.last_seq()
        assert 'data-state="running"' in tile(first["panels"]["overview"], CNC1)
        store.append(
            [event("s-50", "2026-11-23T16:01:00+08:00", CNC1, "state", state="unplanned_stop")]
        )
        second = read_update(lines)
        store.append([event("s-51", "2026-11-23T16:03:00+08:00", CNC1, "state", state="running")])
        third = read_update(lines)
    panels = {"clock", "overview", "orders", "oee", "downtime", "carbon", "alerts"}
    assert set(first["panels"]) == panels  # a new stream gets every part once (alerts: empty)
    assert set(first["charts"]) == {"oee", "pareto", "output", "shifts"}
    assert second["seq"] == first["seq"] + 1 and third["seq"] == first["seq"] + 2
    # then only what changed, each panel the page holds as line edits of it: the tile and the
    # clock change; the (empty) alert banner and the carbon panel do not
    changed = set(second.get("panels", {})) | set(second.get("patches", {}))
    assert {"overview", "clock"} <= changed < panels
    assert "alerts" not in changed and "carbon" not in changed
    assert "overview" in second["patches"]  # a few lines of one tile, not the whole panel
    assert len(json.dumps(second["patches"]["overview"])) < len(first["panels"]["overview"]) / 4
    for name, chart in second.get("charts", {}).items():
        assert chart != first["charts"][name]
    # what the page shows after applying the edits is what a new page is sent in full
    after_second = shown_after(first["panels"], second)
    stopped = tile(after_second["overview"], CNC1)
    assert 'data-state="unplanned_stop"' in stopped and "state-unplanned_stop" in stopped
    assert "16:01" in after_second["clock"]
    shown = shown_after(after_second, third)
    with web.stream("GET", "/live") as response:
        fresh = read_update(response.iter_lines())
    assert fresh["seq"] == third["seq"]
    assert shown == fresh["panels"]
    # a page rendered at some sequence number gets only what came after it
    seq = store.last_seq()
    with web.stream("GET", f"/live?since={seq}") as response:
        lines = response.iter_lines()
        store.append([event("c-51", "2026-11-23T16:04:00+08:00", ROBOT1, "count", good=5)])
        fourth = read_update(lines)
    assert fourth["seq"] == seq + 1
    assert "overview" in fourth["panels"]  # this stream has not sent it yet: in full


@given(
    st.lists(st.sampled_from(["<a>", "<b>", "", "x", "tile 1", "tile 2"]), max_size=30),
    st.lists(st.sampled_from(["<a>", "<b>", "", "x", "tile 1", "tile 3"]), max_size=30),
)
def test_line_patches_rebuild_the_new_html_exactly(old: list[str], new: list[str]) -> None:
    before, after = "\n".join(old), "\n".join(new)
    assert apply_patch(before, line_patch(before, after)) == after


def test_operator_pages_and_forms(page_web: httpx.Client, sqlite_store: EventStore) -> None:
    web, store = page_web, sqlite_store
    index = web.get("/operator", headers=HTML)
    assert index.status_code == 200 and f'href="/operator/{CNC2}"' in index.text
    page = web.get(f"/operator/{CNC2}", headers=HTML)
    assert page.status_code == 200
    assert 'data-event="s-21"' in page.text  # the stop without a reason
    token = re.search(r'name="token" value="([0-9a-f]{32})"', page.text).group(1)  # type: ignore[union-attr]
    form = {"event": "s-21", "reason": "UB-MECH", "by": "陳大文 Chan", "token": token}
    saved = web.post(f"/operator/{CNC2}/reason", data=form)
    assert saved.status_code == 303
    assert saved.headers["location"].startswith(f"/operator/{CNC2}?done=reason")
    after = web.get(saved.headers["location"], headers=HTML)
    assert 'data-done="reason"' in after.text
    assert 'data-event="s-21"' not in after.text.split('id="counts"')[0]  # explained now
    assert "陳大文 Chan" in after.text.split('id="entries"')[1]  # who did it
    assert 'value="陳大文 Chan"' in after.text  # the name is remembered for the next form
    # the same form sent twice (a double tap) is stored once
    again = web.post(f"/operator/{CNC2}/reason", data=form)
    assert "again=1" in again.headers["location"]
    assert sum(1 for s in store.events() if getattr(s.event, "corrects", None) == "s-21") == 1

    counted = web.post(
        f"/operator/{CNC2}/counts",
        data={"good": "7", "scrap": "0", "order": "", "ts": "2026-11-23T15:30", "by": "Ho"},
    )
    assert counted.status_code == 303
    corrected = web.post(
        f"/operator/{CNC2}/correction",
        data={"event": "c-20", "good": "18", "scrap": "3", "by": "Lam"},
    )
    assert corrected.status_code == 303
    machine = web.get("/api/v1/machines/cnc-2").json()
    assert (machine["good"], machine["scrap"]) == (20 + 7 - 2, 1 + 2)

    bad = web.post(f"/operator/{CNC2}/counts", data={"good": "x", "by": "Ho"})
    assert bad.status_code == 400 and "is not a whole number" in bad.text
    nobody = web.post(f"/operator/{CNC2}/counts", data={"good": "3", "by": " "})
    assert nobody.status_code == 400 and "operator name" in nobody.text


def with_finish_option(store: EventStore) -> None:
    """Apply the small factory again with a variant option on BRKT-1 (a custom finish)."""
    text = (DATA / "factory-small.yaml").read_text(encoding="utf-8")
    text = text.replace(
        "    unit_price_hkd: 12.5\n",
        "    unit_price_hkd: 12.5\n    options:\n      - name: finish\n"
        "        choices: [{code: raw, name: Raw}, {code: anodised, time_factor: 1.2}]\n",
    )
    store.apply_factory(parse_factory(text), "small-options.yaml")


def test_order_form_creates_releases_and_cancels(
    page_web: httpx.Client, sqlite_store: EventStore
) -> None:
    web = page_web
    with_finish_option(sqlite_store)
    board = web.get("/", headers=HTML).text
    assert 'href="/orders/new"' in board and 'href="/orders/WO-1"' in board
    form = web.get("/orders/new", headers=HTML)
    assert form.status_code == 200
    assert 'name="option:BRKT-1:finish"' in form.text and 'value="anodised"' in form.text
    assert 'value="BRKT-1" selected' in form.text  # the only product is chosen already

    # the API's checks and sentences; the form comes back with what was typed
    fields = {"product": "BRKT-1", "quantity": "0", "due": "2026-11-25T12:00", "priority": "3"}
    zero = web.post("/orders/new", data={**fields, "option:BRKT-1:finish": "raw"})
    assert zero.status_code == 400 and "quantity: must be a whole number from 1" in zero.text
    assert 'value="2026-11-25T12:00"' in zero.text and 'value="raw" selected' in zero.text
    missing = web.post("/orders/new", data={**fields, "quantity": "40"})
    assert missing.status_code == 400
    assert "options: BRKT-1 needs a choice for finish (raw, anodised)" in missing.text
    api = web.post(
        "/api/v1/orders", json={"product": "BRKT-1", "quantity": 40, "priority": 3, "due": "x"}
    ).json()["error"]["message"]
    words = web.post("/orders/new", data={**fields, "quantity": "40", "due": "x"})
    assert words.status_code == 400 and api.replace("'", "&#39;") in words.text
    typed = web.post("/orders/new", data={**fields, "quantity": "ten"})
    assert typed.status_code == 422 and "invalid request: field &#39;quantity&#39;" in typed.text
    unknown = web.post("/orders/new", data={"product": "NOPE", "quantity": "3"})
    assert unknown.status_code == 404 and "NOPE" in unknown.text

    # a good order: created, shown on its page, on the board with a release button
    good = {**fields, "quantity": "40", "order": "WO-9", "option:BRKT-1:finish": "anodised"}
    created = web.post("/orders/new", data=good)
    assert created.status_code == 303
    assert created.headers["location"] == "/orders/WO-9?done=created#saved"
    page = web.get(created.headers["location"], headers=HTML).text
    assert 'data-order="WO-9" data-status="created"' in page and 'data-done="created"' in page
    assert "finish: <b>anodised</b>" in page and 'data-action="release"' in page
    order = web.get("/api/v1/orders/WO-9").json()
    assert (order["quantity"], order["priority"], order["options"]) == (
        40,
        3,
        {"finish": "anodised"},
    )
    assert order["due"] == "2026-11-25T04:00:00.000Z"  # site time, Hong Kong
    again = web.post("/orders/new", data=good)  # a double tap stores nothing more
    assert again.headers["location"] == "/orders/WO-9?done=created&again=1#saved"
    board = web.get("/", headers=HTML).text
    assert 'action="/orders/WO-9/release"' in board

    # release from the board, back to the board
    released = web.post("/orders/WO-9/release", data={"next": "/#orders"})
    assert (released.status_code, released.headers["location"]) == (303, "/#orders")
    assert web.get("/api/v1/orders/WO-9").json()["status"] == "released"
    # cancel from the order page: only when ticked
    unticked = web.post("/orders/WO-9/cancel", data={})
    assert unticked.status_code == 400 and "yes, cancel this order" in unticked.text
    cancelled = web.post("/orders/WO-9/cancel", data={"confirm": "1"})
    assert cancelled.headers["location"] == "/orders/WO-9?done=cancelled#saved"
    page = web.get("/orders/WO-9", headers=HTML).text
    assert 'data-status="cancelled"' in page and 'data-action="release"' not in page
    refused = web.post("/orders/WO-9/release", data={})
    assert refused.status_code == 400 and "a cancelled order cannot be released" in refused.text
    lost = web.get("/orders/WO-404", headers=HTML)
    assert lost.status_code == 404 and "WO-404" in lost.text


def test_plan_page_replans_and_draws_plan_against_actual(
    sqlite_store: EventStore, tmp_path: Path
) -> None:
    with serving(sqlite_store, plan_file=tmp_path / "plan.json") as (_, web):
        empty = web.get("/plan", headers=HTML)
        assert empty.status_code == 200 and 'id="no-plan"' in empty.text
        assert 'href="/plan"' in web.get("/", headers=HTML).text  # in the top bar
        slow = web.post("/plan", data={"time_limit": "600"})
        assert slow.status_code == 400 and "is not 0.5 to 60 seconds" in slow.text
        unknown = web.post("/plan", data={"time_limit": "1", "down_machine": "cnc-9"})
        assert (
            unknown.status_code == 404 and "down: &#39;cnc-9&#39; is not a machine" in unknown.text
        )
        done = web.post(
            "/plan", data={"time_limit": "1", "down_machine": "cnc-2", "down_for": "3h"}
        )
        assert (done.status_code, done.headers["location"]) == (303, "/plan?done=replanned#saved")
        page = web.get(done.headers["location"], headers=HTML).text
        assert 'data-done="replanned"' in page and 'id="no-plan"' not in page
        assert '<tr data-order="WO-1" class="late">' in page  # late: marked in the table
        assert '<tr data-order="WO-3">' in page
        data = json.loads(re.search(r'id="gantt-data">(.*?)</script>', page, re.S).group(1))  # type: ignore[union-attr]
        assert data == web.get("/api/v1/plan/gantt").json()
        assert [m["name"] for m in data["machines"]] == ["cnc-1", "robot-1", "cnc-2"]
        assert '<script src="/static/gantt.js"></script>' in page
        assert web.get("/static/gantt.js").status_code == 200
        for url in re.findall(r'(?:src|href)="([^"]+)"', page):
            assert url.startswith(("/", "#")), url


def test_shift_report(page_web: httpx.Client) -> None:
    web = page_web
    report = web.get("/report/shift", headers=HTML)
    assert report.status_code == 200
    assert 'data-day="2026-11-23" data-shift="day"' in report.text
    assert "@media print" in report.text  # the print CSS is in the page
    assert "UB-MECH" in report.text and "WO-1" in report.text
    chosen = web.get("/report/shift", params={"day": "2026-11-23", "shift": "day"}, headers=HTML)
    assert chosen.status_code == 200
    missing = web.get("/report/shift", params={"day": "2026-11-23", "shift": "night"})
    assert missing.status_code == 404 and "night" in missing.json()["error"]["message"]


@pytest.mark.skipif(chromium() is None, reason="PDF export needs chromium")
def test_shift_report_as_pdf(tmp_path: Path) -> None:
    with open_store(f"sqlite:///{tmp_path}/pdf.db") as store, serving(fill(store)) as (_, web):
        pdf = web.get("/report/shift.pdf")
    assert pdf.status_code == 200, pdf.text
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")


def test_pdf_without_chromium_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MICROFAB_CHROMIUM", str(tmp_path / "no-such-browser"))
    with open_store(f"sqlite:///{tmp_path}/pdf.db") as store, serving(fill(store)) as (_, web):
        answer = web.get("/report/shift.pdf")
    assert answer.status_code == 501
    assert answer.json()["error"]["key"] == "pdf_unavailable"


def test_a_taken_port_is_one_sentence() -> None:
    with bind("127.0.0.1", 0) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(InputError, match=f"127.0.0.1:{port}: the port is in use"):
            bind("127.0.0.1", port)


SERVE = "import typer; from microfab.commands.serve import serve; typer.run(serve)"


def test_microfab_serve(tmp_path: Path) -> None:
    """`microfab serve --port 0` prints its URL, serves the dashboard and stops on Ctrl-C."""
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
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        found = re.search(r"dashboard (http://127\.0\.0\.1:\d+/)", first)
        assert found, first
        health = httpx.get(found.group(1) + "healthz", timeout=10).json()
        assert health["ok"] is True and health["last_seq"] == 22
        assert "cnc-1" in httpx.get(found.group(1), headers=HTML | auth, timeout=10).text
    finally:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=15)
    assert process.returncode == 0, err


DEMO = "from microfab.cli import main; main()"


def test_demo_serves_the_dashboard_while_it_runs(tmp_path: Path) -> None:
    """`microfab demo` (web on by default) prints the dashboard URL; the dashboard shows the
    simulated machines filling in live; Ctrl-C stops the demo and the server cleanly."""
    db = f"sqlite:///{tmp_path}/demo.db"
    args = ["demo", "--speed", "120", "--duration", "2h", "--direct", "--db", db]
    process = subprocess.Popen(
        [sys.executable, "-c", DEMO, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        cwd=tmp_path,  # the demo writes its plan.json here
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        found = re.search(r"dashboard 儀表板: (http://127\.0\.0\.1:\d+/)", first)
        assert found, first
        base = found.group(1)
        # the demo made an admin and printed its one-time password: sign in with it
        login = re.search(r"user (admin), one-time password (\S+) ", process.stdout.readline())
        assert login, "the demo printed no way to sign in"
        assert httpx.get(base + "api/v1/machines", timeout=10).status_code == 401
        grant = {"username": login.group(1), "password": login.group(2)}
        bearer = httpx.post(base + "auth/token", data=grant, timeout=10).json()["access_token"]
        auth = {"Authorization": f"Bearer {bearer}"}
        seen: set[str] = set()
        for _ in range(100):  # the simulator reports every machine within the first minutes
            machines = httpx.get(base + "api/v1/machines", headers=auth, timeout=10).json()
            seen = {m["path"] for m in machines if m["state"] is not None}
            if len(seen) == len(machines):
                break
            time.sleep(0.1)
        assert seen and len(seen) == len(machines), machines
        page = httpx.get(base, headers=HTML | auth, timeout=10).text
        assert all(path.rsplit("/", 1)[-1] in page for path in seen)
    finally:
        process.send_signal(signal.SIGINT)
        output, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "stopped: simulated" in output
    with pytest.raises(httpx.ConnectError):
        httpx.get(base + "healthz", timeout=2)
