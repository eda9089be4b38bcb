"""The alerts on the dashboard: the moulding-cell-wear demo's injected fault raises an alert that
the banner shows before the simulated failure; acknowledging and closing it from the banner or
the API records the signed-in user; `microfab demo` evaluates the scenario's rules itself."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from microfab.cli import app
from microfab.model.events import EVENT_ADAPTER, Event, event_from_dict, parse_ts
from microfab.model.identity import Role
from microfab.quality.alerts import AlertLoop, load_alert_rules
from microfab.quality.defects import defect_pareto
from microfab.quality.spc import spc_report
from microfab.sim.engine import FactorySimulation
from microfab.sim.scenario import SCENARIO_DIR, load_scenario
from microfab.store import EventStore, open_store
from microfab.store.alerts import get_alert
from microfab.store.audit import audit_records
from microfab.store.sink import StoreSink
from webapp import add_test_user, api_token, serving

ROBOT = "yl/moulding/mc-1/unload/robot-1"
HTML = {"accept": "text/html"}


class Demo:
    """The moulding-cell-wear scenario simulated into a store, with its alert rules."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.scenario = load_scenario("moulding-cell-wear")
        store.apply_factory(self.scenario.factory, self.scenario.factory_source)
        self.sink = StoreSink(store)
        self.sim = FactorySimulation(self.scenario, self.sink, seed=1)
        assert self.scenario.folder is not None
        rules = load_alert_rules(self.scenario.folder / "alerts.yaml")
        self.alerts = AlertLoop(store, self.scenario.factory, rules)

    def run_until(self, hours: float) -> None:
        self.sim.run_until(hours * 3600)
        self.sink.flush()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    folder = tmp_path_factory.mktemp("wear")
    with open_store(f"sqlite:///{folder}/wear.db") as store:
        running = Demo(store)
        running.run_until(48)
        run = running.alerts.run_once()
        assert run is not None and run.raised
        yield running


def banner_of(page: str) -> list[dict[str, str]]:
    """The banner's alerts: id, severity, state and machine of each."""
    found = re.search(r'<div class="alert-banner".*?</ul>', page, re.S)
    assert found, "no alert banner on the page"
    return [
        dict(zip(("id", "severity", "state", "machine"), m, strict=True))
        for m in re.findall(
            r'data-alert="(\d+)" data-severity="(\w+)" data-state="(\w+)" data-machine="([^"]+)"',
            found[0],
        )
    ]


def test_the_banner_shows_the_injected_fault_before_the_failure(demo: Demo) -> None:
    # the ground truth: the fault log records a failure only once the machine broke down
    assert [r for r in demo.sim.fault_log if r.machine == ROBOT] == []
    shown_at = demo.sim.now  # the plant clock when the page is looked at
    with serving(demo.store) as (_, client):
        page = client.get("/", headers=HTML)
        assert page.status_code == 200
        banner = banner_of(page.text)
        listed = client.get("/api/v1/alerts").json()["alerts"]
    robot = [a for a in listed if a["machine"] == ROBOT]
    assert {a["rule"] for a in robot} >= {"robot-vibration", "telemetry-anomaly"}
    assert {b["id"] for b in banner} == {str(a["id"]) for a in listed}
    critical = next(a for a in robot if a["rule"] == "robot-vibration")
    assert {
        "id": str(critical["id"]),
        "severity": "critical",
        "state": "open",
        "machine": ROBOT,
    } in (banner)
    assert "vib_rms_mm_s of robot-1 above 1.2" in page.text
    # the simulation goes on until the bearing fails: the alert came first
    demo.run_until(72)
    (failure,) = [r for r in demo.sim.fault_log if r.machine == ROBOT]
    assert failure.kind == "bearing_wear"
    assert failure.onset <= parse_ts(critical["first_ts"]) < shown_at < failure.failure
    assert failure.failure - shown_at > dt.timedelta(hours=6)


def test_the_live_feed_sends_the_banner(demo: Demo) -> None:
    with (
        serving(demo.store) as (_, client),
        client.stream("GET", "/live", params={"since": 0}) as stream,
    ):
        for line in stream.iter_lines():
            if line.startswith("data: "):
                update = json.loads(line.removeprefix("data: "))
                break
    banner = update["panels"]["alerts"]
    assert 'data-testid="alert-banner"' in banner
    assert f'data-machine="{ROBOT}"' in banner
    assert 'action="/alerts/' in banner and 'value="" data-csrf' in banner  # filled by the page


def test_acknowledge_and_close_through_the_api_name_the_caller(demo: Demo) -> None:
    with serving(demo.store, role=Role.OPERATOR) as (_, client):
        listed = client.get("/api/v1/alerts").json()["alerts"]
        target = next(a for a in listed if a["state"] == "open")["id"]
        acked = client.post(f"/api/v1/alerts/{target}/ack")
        assert acked.status_code == 200, acked.text
        assert acked.json()["state"] == "acknowledged"
        actor = acked.json()["acked_by"]
        assert actor.startswith("token:test-operator-")
        again = client.post(f"/api/v1/alerts/{target}/ack")
        assert (again.status_code, again.json()["error"]["key"]) == (400, "alert_state")
        closed = client.post(f"/api/v1/alerts/{target}/close").json()
        assert (closed["state"], closed["closed_by"]) == ("closed", actor)
        missing = client.post("/api/v1/alerts/99999/close")
        assert missing.status_code == 404
        still_open = {a["id"] for a in client.get("/api/v1/alerts").json()["alerts"]}
        everything = client.get("/api/v1/alerts", params={"state": "all"}).json()["alerts"]
    assert target not in still_open
    assert target in {a["id"] for a in everything}
    actions = [(r.action, r.actor) for r in audit_records(demo.store, target=f"alert:{target}")]
    assert actions == [("alerts.acknowledge", actor), ("alerts.close", actor)]
    with serving(demo.store, role=Role.VIEWER) as (_, viewer):
        refused = viewer.post(f"/api/v1/alerts/{target}/close")
        assert (refused.status_code, refused.json()["error"]["key"]) == (403, "forbidden")


def test_the_banner_buttons_record_the_signed_in_user(demo: Demo) -> None:
    name, password = add_test_user(demo.store, Role.ENGINEER)
    with (
        serving(demo.store) as (url, _),
        httpx.Client(base_url=url, timeout=30, headers=HTML) as browser,
    ):
        login = browser.get("/login").text
        token = re.search(r'name="csrf_token" value="([^"]+)"', login)
        assert token
        signed = browser.post(
            "/login",
            data={"name": name, "password": password, "next": "/plan", "csrf_token": token[1]},
        )
        assert signed.status_code == 303
        page = browser.get("/plan")
        banner = banner_of(page.text)
        target = next(b for b in banner if b["state"] == "open")["id"]
        csrf = re.search(r'<meta name="csrf-token" content="([^"]+)"', page.text)
        assert csrf and f'name="csrf_token" value="{csrf[1]}"' in page.text
        assert 'name="next" value="/plan"' in page.text
        refused = browser.post(f"/alerts/{target}/ack", data={"next": "/plan"})
        assert refused.status_code == 403 and "csrf_failed" in refused.text
        done = browser.post(f"/alerts/{target}/ack", data={"next": "/plan", "csrf_token": csrf[1]})
        assert (done.status_code, done.headers["location"]) == (303, "/plan")
        acked = get_alert(demo.store, int(target))
        assert acked is not None and acked.acked_by == f"user:{name}"
        after = banner_of(browser.get("/plan").text)
        assert {"id": target, "state": "acknowledged"}.items() <= next(
            b for b in after if b["id"] == target
        ).items()
        elsewhere = browser.post(
            f"/alerts/{target}/close", data={"next": "//evil.example", "csrf_token": csrf[1]}
        )
        assert elsewhere.headers["location"] == "/"  # only back to a page of ours
    closed = get_alert(demo.store, int(target))
    assert closed is not None and closed.closed_by == f"user:{name}"


def test_demo_evaluates_the_scenarios_alert_rules(tmp_path: Path) -> None:
    assert (SCENARIO_DIR / "moulding-cell-wear" / "alerts.yaml").is_file()
    args = ["demo", "--scenario", "moulding-cell-wear", "--speed", "max", "--duration", "48h"]
    args += ["--no-web", "--direct", "--db", f"sqlite:///{tmp_path}/demo.db"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "alerts.yaml (4) are evaluated every 10 s" in result.output
    assert "alerts 警報: 4 open" in result.output
    assert re.search(r"critical robot-1\s+since 11-24 15:11", result.output)
    with open_store(f"sqlite:///{tmp_path}/demo.db") as store:
        token = api_token(store, Role.VIEWER)
        assert token
    plain_args = ["demo", "--scenario", "moulding-cell", "--speed", "max", "--duration", "1h"]
    plain_args += ["--no-web", "--direct", "--db", f"sqlite:///{tmp_path}/plain.db"]
    plain = CliRunner().invoke(app, plain_args)
    assert plain.exit_code == 0, plain.output
    assert "alerts 警報" not in plain.output  # a scenario without alerts.yaml runs none


VISION = "yl/moulding/mc-1/qc/vision-1"


def inspections() -> list[Event]:
    """Twelve inspections on vision-1: three fails of CAP-A (two short shots, one flash), one
    unclassified fail of CAP-B, the rest passes."""
    plan = (
        [
            ("CAP-A", "short_shot"),
            ("CAP-A", "flash"),
            ("CAP-A", "short_shot"),
            ("CAP-B", None),
        ]
        + [("CAP-A", "pass")] * 5
        + [("CAP-B", "pass")] * 3
    )
    return [
        EVENT_ADAPTER.validate_python(
            {
                "id": f"insp-{i}",
                "ts": f"2026-11-24T01:{i:02d}:00Z",
                "machine": VISION,
                "stream": "inspection",
                "product": product,
                **(
                    {"result": "pass"} if defect == "pass" else {"result": "fail", "defect": defect}
                ),
            }
        )
        for i, (product, defect) in enumerate(plan)
    ]


def test_an_inspection_passed_has_no_defect() -> None:
    with pytest.raises(ValueError, match="a passed inspection has no 'defect'"):
        event_from_dict(
            {
                "id": "i-1",
                "ts": "2026-11-24T01:00:00Z",
                "machine": VISION,
                "stream": "inspection",
                "result": "pass",
                "defect": "flash",
            }
        )


def test_the_defect_pareto_per_product_and_machine(demo: Demo, tmp_path: Path) -> None:
    assert demo.store.append(inspections()).inserted == 12
    report = defect_pareto(demo.store)
    assert (report["inspected"], report["failed"]) == (12, 4)
    assert [(d["defect"], d["count"]) for d in report["defects"]] == [
        ("short_shot", 2),
        ("flash", 1),
        ("unclassified", 1),
    ]
    assert report["defects"][-1]["cumulative"] == pytest.approx(1.0)
    first, second = report["groups"]
    assert (first["product"], first["machine"], first["inspected"], first["failed"]) == (
        "CAP-A",
        VISION,
        8,
        3,
    )
    assert [d["share"] for d in first["defects"]] == pytest.approx([2 / 3, 1 / 3])
    assert (second["product"], second["failed"]) == ("CAP-B", 1)
    with serving(demo.store, role=Role.VIEWER) as (_, client):
        assert client.get("/api/v1/defects").json() == report
        later = client.get("/api/v1/defects", params={"from": "2026-11-24T09:05"}).json()
        assert later["inspected"] == 12 - 5  # site time: 09:05 HKT is 01:05 UTC
    db = str(demo.store.engine.url)
    result = CliRunner().invoke(app, ["defects", "--db", db])
    assert result.exit_code == 0, result.output
    assert "Inspected 12, failed 4 (33.33%)" in result.output
    assert "short_shot" in result.output
    as_json = CliRunner().invoke(app, ["defects", "--json", "--db", db])
    assert json.loads(as_json.stdout)["failed"] == 4


def test_the_quality_page(demo: Demo) -> None:
    with serving(demo.store, role=Role.VIEWER) as (_, client):
        page = client.get(
            "/quality", params={"c": "imm-1:cycle_s", "lsl": "28", "usl": "32"}, headers=HTML
        )
        assert page.status_code == 200, page.text
        html = page.text
        data = re.search(r'<script type="application/json" id="spc-data">(.*?)</script>', html)
        assert data
        chart = json.loads(data[1])
        wanted = spc_report(demo.store, demo.scenario.factory, "imm-1:cycle_s", lsl=28, usl=32)
        assert [p["value"] for p in chart["points"]] == [p["value"] for p in wanted["points"]]
        assert chart["center"] == wanted["limits"]["mean"]["center"]
        flagged = [i for i, p in enumerate(chart["points"]) if p["out"]]
        assert flagged == wanted["out_of_control"]
        assert all(p["out"] for p in chart["points"] if p["rules"])
        assert 'data-cap="cpk"' in html and f"{wanted['capability']['cpk']:.2f}" in html
        assert '<option value="robot-1:vib_rms_mm_s"' in html
        assert 'href="/quality"' in html  # the top bar links the page
        assert f'data-machine="{ROBOT}"' in html  # the health table
        assert "abnormal telemetry on robot-1" in html  # the anomaly alerts
        assert 'id="defects-summary"' in html
        unknown = client.get("/quality", params={"c": "nope:x"}, headers=HTML)
        assert unknown.status_code == 200 and 'id="spc-note"' in unknown.text
        bad = client.get("/quality", params={"c": "imm-1:cycle_s", "lsl": "x"}, headers=HTML)
        assert bad.status_code == 200 and "LSL: &#39;x&#39; is not a number" in bad.text
