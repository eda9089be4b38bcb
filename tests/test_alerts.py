"""Alerts over a real store: rules → alerts, dedup, hold-off, ack/close with audit, delivery.

Delivery goes to real things on loopback: a private Mosquitto, an HTTP server and a tiny SMTP
server run by the test.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import socketserver
import subprocess
import sys
import threading
from collections.abc import Iterator
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import paho.mqtt.client as paho
import pytest
from typer.testing import CliRunner

from microfab.cli import app
from microfab.connect.mqtt_client import connect_blocking, new_client, parse_broker_url
from microfab.errors import LocatedFileError, NotFoundError
from microfab.model.events import Event, StateChange, TelemetrySample
from microfab.model.factory import Factory
from microfab.model.factory_file import parse_factory
from microfab.quality.alert_delivery import (
    EmailAlertChannel,
    MqttAlertChannel,
    WebhookAlertChannel,
    deliver_pending,
)
from microfab.quality.alerts import (
    AlertRules,
    AlertStateError,
    acknowledge_alert,
    close_alert,
    load_alert_rules,
    open_alerts,
    run_alert_rules,
)
from microfab.store import open_store
from microfab.store.alerts import delivery_log, list_alerts
from microfab.store.audit import audit_records, verify_audit
from microfab.store.event_store import EventStore
from services import MosquittoServer

DATA = Path(__file__).parent / "data"
CNC = "kt/plant/line1/machining/cnc-1"
T0 = dt.datetime(2026, 11, 23, 0, 0, tzinfo=dt.UTC)


def at(minutes: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def telemetry(values: list[float], first_minute: int = 0, prefix: str = "t") -> list[Event]:
    return [
        TelemetrySample(
            id=f"{prefix}-{first_minute + i}",
            ts=at(first_minute + i),
            machine=CNC,
            metrics={"temp_c": v},
        )
        for i, v in enumerate(values)
    ]


def plant(store: EventStore, values: list[float]) -> Factory:
    factory = parse_factory((DATA / "factory-small.yaml").read_text(encoding="utf-8"))
    store.apply_factory(factory, "factory-small.yaml")
    store.append([StateChange(id="s-0", ts=T0, machine=CNC, state="running"), *telemetry(values)])
    return factory


def rules(tmp_path: Path, text: str, name: str = "alerts.yaml") -> AlertRules:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return load_alert_rules(path)


HOT = """
hold_off_min: 60
rules:
  - {id: cnc-hot, kind: threshold, machine: cnc-1, metric: temp_c, above: 80, severity: critical}
"""

# two excursions above 80 (minutes 3–4 and 8)
TEMPS = [70, 71, 72, 85, 86, 70, 71, 72, 90, 71]


def test_a_threshold_rule_raises_one_alert_per_cause_and_a_second_run_raises_nothing(
    store: EventStore, tmp_path: Path
) -> None:
    factory = plant(store, TEMPS)
    hot = rules(tmp_path, HOT)
    run = run_alert_rules(store, factory, hot)
    (alert,) = run.raised
    assert (alert.rule, alert.machine, alert.cause, alert.severity) == (
        "cnc-hot",
        CNC,
        "temp_c",
        "critical",
    )
    assert alert.first_ts == at(3) and alert.last_ts == at(8)
    assert alert.occurrences == 2 and run.updated == 1
    assert alert.message == "temp_c of cnc-1 above 80: 86 (2 readings in a row)"
    again = run_alert_rules(store, factory, hot)
    assert again.raised == [] and again.updated == 0
    assert [a["id"] for a in open_alerts(store)] == [alert.id]
    # a new excursion while the alert is open is counted into it, not raised again
    store.append(telemetry([95], first_minute=20))
    third = run_alert_rules(store, factory, hot)
    assert third.raised == [] and third.updated == 1
    (stored,) = list_alerts(store)
    assert stored.occurrences == 3 and stored.last_ts == at(20)


def test_ack_and_close_record_who_and_when_in_the_alert_and_the_audit_log(
    store: EventStore, tmp_path: Path
) -> None:
    factory = plant(store, TEMPS)
    (alert,) = run_alert_rules(store, factory, rules(tmp_path, HOT)).raised
    acked = acknowledge_alert(store, alert.id, "user:may.chan", now=at(30))
    assert acked.state == "acknowledged" and acked.acked_by == "user:may.chan"
    assert acked.acked_at == at(30)
    assert [a["state"] for a in open_alerts(store)] == ["acknowledged"]  # still on the banner
    with pytest.raises(AlertStateError, match="acknowledged already"):
        acknowledge_alert(store, alert.id, "user:may.chan")
    closed = close_alert(store, alert.id, "cli:tech", now=at(40))
    assert closed.state == "closed" and closed.closed_by == "cli:tech"
    assert open_alerts(store) == []
    with pytest.raises(AlertStateError, match="closed already"):
        close_alert(store, alert.id, "cli:tech")
    with pytest.raises(NotFoundError):
        acknowledge_alert(store, 999, "cli:tech")
    records = audit_records(store, action_prefix="alerts.")
    assert [(r.action, r.actor, r.target) for r in records] == [
        ("alerts.acknowledge", "user:may.chan", f"alert:{alert.id}"),
        ("alerts.close", "cli:tech", f"alert:{alert.id}"),
    ]
    assert records[1].before_value() == {"state": "acknowledged"}
    assert records[1].after_value()["state"] == "closed"
    assert verify_audit(store).ok


def test_no_re_raise_within_the_hold_off_of_a_close(store: EventStore, tmp_path: Path) -> None:
    factory = plant(store, TEMPS)
    hot = rules(tmp_path, HOT)
    (alert,) = run_alert_rules(store, factory, hot, now=at(10)).raised
    close_alert(store, alert.id, "cli:tech", now=at(12))
    # the closed occurrence is not raised again, however often the rules run
    assert run_alert_rules(store, factory, hot, now=at(13)).raised == []
    store.append(telemetry([99], first_minute=30))
    held = run_alert_rules(store, factory, hot, now=at(31))
    assert held.raised == [] and held.held_off == 1
    later = run_alert_rules(store, factory, hot, now=at(12 + 60))
    (again,) = later.raised
    assert again.id != alert.id and again.first_ts == at(30)


def test_a_machine_down_longer_than_the_limit_raises_an_alert_with_its_reason(
    store: EventStore, tmp_path: Path
) -> None:
    factory = plant(store, [])
    store.append(
        [
            StateChange(id="s-1", ts=at(10), machine=CNC, state="unplanned_stop", reason="UB-MECH"),
            StateChange(id="s-2", ts=at(100), machine=CNC, state="running"),
            StateChange(id="s-3", ts=at(200), machine=CNC, state="unplanned_stop", reason="UB"),
            StateChange(id="s-4", ts=at(230), machine=CNC, state="idle"),
        ]
    )
    down = rules(tmp_path, "rules:\n  - {id: down, kind: machine_down, minutes: 60}\n")
    (alert,) = run_alert_rules(store, factory, down).raised
    assert (alert.cause, alert.first_ts, alert.last_ts) == ("UB-MECH", at(10), at(100))
    assert alert.message == "cnc-1 was down (unplanned_stop, UB-MECH) for 90 min (limit 60 min)"
    # a stop still going on counts up to the newest stored event
    store.append(
        [
            StateChange(id="s-5", ts=at(300), machine=CNC, state="unplanned_stop", reason="UB"),
            *telemetry([1.0], first_minute=400, prefix="late"),
        ]
    )
    (ongoing,) = run_alert_rules(store, factory, down).raised
    assert ongoing.cause == "UB" and ongoing.details["ongoing"] is True
    assert ongoing.details["minutes"] == 100


def test_an_spc_rule_raises_when_the_chart_goes_out_of_control_after_its_baseline(
    store: EventStore, tmp_path: Path
) -> None:
    rng = random.Random(4)
    values = [rng.gauss(50, 1) for _ in range(150)] + [rng.gauss(54, 1) for _ in range(40)]
    factory = plant(store, values)
    spc = rules(
        tmp_path,
        "rules:\n  - {id: temp-spc, kind: spc, characteristic: 'cnc-1:temp_c', rules: [1],\n"
        "     dispersion: false, baseline: 25}\n",
    )
    (alert,) = run_alert_rules(store, factory, spc).raised
    assert alert.cause == "temp_c" and alert.kind == "spc"
    assert alert.first_ts >= at(150)  # not before the shift
    assert alert.details["rules"] == [1]
    # too little baseline: the rule says so instead of raising
    short = rules(
        tmp_path,
        "rules:\n  - {id: s2, kind: spc, characteristic: 'cnc-1:temp_c', baseline: 500}\n",
        "short.yaml",
    )
    run = run_alert_rules(store, factory, short)
    assert run.raised == [] and "all 38 points are in the baseline" in run.notes["s2"]


def test_a_rules_file_with_faults_names_each_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "hold_off_min: 30\n"
        "rules:\n"
        "  - {id: a, kind: threshold, machine: cnc-1, metric: temp_c}\n"
        "  - {id: a, kind: machine_down, minutes: 5}\n"
        "  - {id: b, kind: vibes}\n"
        "  - {id: c, kind: spc, characteristic: cnc-1, rules: [12]}\n",
        encoding="utf-8",
    )
    with pytest.raises(LocatedFileError) as caught:
        load_alert_rules(bad)
    assert caught.value.problems == [
        f"{bad}:5 rules[2].kind: 'vibes' is not one of threshold, spc, anomaly, ccp, machine_down",
    ]
    bad.write_text(
        "rules:\n"
        "  - {id: a, kind: threshold, machine: cnc-1, metric: temp_c}\n"
        "  - {id: a, kind: machine_down, minutes: 5}\n"
        "  - {id: c, kind: spc, characteristic: cnc-1, rules: [12]}\n"
        "  - {id: d, kind: machine_down, minutes: -1, extra: 1}\n",
        encoding="utf-8",
    )
    with pytest.raises(LocatedFileError) as caught:
        load_alert_rules(bad)
    assert caught.value.problems == [
        f"{bad}:5 rules[3].minutes: Input should be greater than 0",
        f"{bad}:5 rules[3].extra: unknown field (check the spelling)",
    ]
    bad.write_text(
        "rules:\n"
        "  - {id: a, kind: threshold, machine: cnc-1, metric: temp_c}\n"
        "  - {id: a, kind: machine_down, minutes: 5}\n"
        "  - {id: c, kind: spc, characteristic: cnc-1, rules: [12]}\n",
        encoding="utf-8",
    )
    with pytest.raises(LocatedFileError) as caught:
        load_alert_rules(bad)
    assert caught.value.problems == [
        f"{bad}:2 rules[0]: a threshold needs 'above', 'below' or both",
        f"{bad}:3 rules[1].id: rule id 'a' is used twice",
        f"{bad}:4 rules[2].rules: run rules are numbered 1–9, not [12]",
        f"{bad}:4 rules[2].characteristic: write MACHINE:METRIC, e.g. imm-1:cycle_s",
    ]


# ---------------------------------------------------------------------------- delivery


def test_alerts_are_published_on_the_site_alerts_topic(
    store: EventStore, tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    factory = plant(store, TEMPS)
    (alert,) = run_alert_rules(store, factory, rules(tmp_path, HOT)).raised
    settings = parse_broker_url(mosquitto.url)
    received: list[tuple[str, dict[str, Any]]] = []
    got = threading.Event()
    subscriber = new_client(settings, "test-alerts-sub")

    def on_message(client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        received.append((message.topic, json.loads(message.payload)))
        got.set()

    subscriber.on_message = on_message
    connect_blocking(subscriber, settings)
    subscribed = threading.Event()
    subscriber.on_subscribe = lambda *args: subscribed.set()
    subscriber.subscribe("microfab/v1/+/alerts", qos=1)
    assert subscribed.wait(10)
    channel = MqttAlertChannel(settings)
    try:
        results = deliver_pending(store, [channel])
        assert [(r.alert_id, r.event, r.error) for r in results] == [(alert.id, "raised", None)]
        assert got.wait(10)
        assert deliver_pending(store, [channel]) == []  # delivered once
    finally:
        channel.close()
        subscriber.disconnect()
        subscriber.loop_stop()
    ((topic, payload),) = received
    assert topic == "microfab/v1/kt/alerts"
    assert payload["event"] == "raised" and payload["id"] == alert.id
    assert payload["machine"] == CNC and payload["state"] == "open"
    assert payload["first_ts"] == "2026-11-23T00:03:00.000Z"


class _Hook(BaseHTTPRequestHandler):
    answers: ClassVar[list[int]] = []
    seen: ClassVar[list[tuple[str, dict[str, Any]]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        status = self.answers.pop(0) if self.answers else 200
        self.seen.append((self.headers["Idempotency-Key"], {"status": status, **body}))
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture
def webhook() -> Iterator[tuple[str, type[_Hook]]]:
    handler = type("Hook", (_Hook,), {"answers": [], "seen": []})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hook", handler
    finally:
        server.shutdown()
        server.server_close()


def test_a_webhook_is_retried_and_gets_each_event_once_keyed_by_alert_id(
    store: EventStore, tmp_path: Path, webhook: tuple[str, type[_Hook]]
) -> None:
    url, hook = webhook
    factory = plant(store, TEMPS)
    config = rules(tmp_path, HOT + f"delivery:\n  webhooks: [{{url: '{url}'}}]\n")
    (alert,) = run_alert_rules(store, factory, config).raised
    channel = WebhookAlertChannel(config.delivery.webhooks[0], backoff_s=0.01)
    hook.answers = [503]  # the first attempt fails, the retry gets through
    results = deliver_pending(store, [channel])
    assert [(r.event, r.error) for r in results] == [("raised", None)]
    key = f"microfab-alert-{alert.id}-raised"
    assert [(k, s["status"]) for k, s in hook.seen] == [(key, 503), (key, 200)]
    assert deliver_pending(store, [channel]) == []
    # down for a whole run: recorded, and the next run delivers it
    acknowledge_alert(store, alert.id, "cli:tech")
    hook.answers = [500, 500, 500]
    (failed,) = deliver_pending(store, [channel])
    assert failed.error == f"webhook {url} answered 500"
    (retried,) = deliver_pending(store, [channel])
    assert retried.error is None and retried.event == "acknowledged"
    assert hook.seen[-1][0] == f"microfab-alert-{alert.id}-acknowledged"
    assert hook.seen[-1][1]["acked_by"] == "cli:tech"
    log = {(d["event"], d["attempts"], d["error"]) for d in delivery_log(store, alert.id)}
    assert log == {("raised", 1, None), ("acknowledged", 2, None)}


class _SmtpSink(socketserver.StreamRequestHandler):
    """Just enough SMTP to take a message: every command gets 250, DATA is kept."""

    messages: ClassVar[list[bytes]] = []

    def handle(self) -> None:
        self.wfile.write(b"220 sink ready\r\n")
        while line := self.rfile.readline():
            verb = line.strip().upper()
            if verb == b"DATA":
                self.wfile.write(b"354 go on\r\n")
                lines = []
                while (part := self.rfile.readline()) not in (b".\r\n", b""):
                    lines.append(part[1:] if part.startswith(b"..") else part)
                self.messages.append(b"".join(lines))
                self.wfile.write(b"250 queued\r\n")
            elif verb == b"QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 ok\r\n")


def test_a_raised_alert_is_e_mailed_through_smtp(
    store: EventStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler = type("Sink", (_SmtpSink,), {"messages": []})
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        factory = plant(store, TEMPS)
        config = rules(
            tmp_path,
            HOT + "delivery:\n  email: {to: [qa@example.com], sender: line@example.com,\n"
            "          host: nowhere.invalid, port: 2525}\n",
        )
        monkeypatch.setenv("MICROFAB_SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("MICROFAB_SMTP_PORT", str(server.server_address[1]))
        (alert,) = run_alert_rules(store, factory, config).raised
        assert config.delivery.email is not None
        channel = EmailAlertChannel(config.delivery.email)
        (result,) = deliver_pending(store, [channel])
        assert result.error is None
        acknowledge_alert(store, alert.id, "cli:tech")
        assert deliver_pending(store, [channel]) == []  # e-mail only on raise
    finally:
        server.shutdown()
        server.server_close()
    (raw,) = handler.messages
    mail = message_from_bytes(raw)
    assert mail["To"] == "qa@example.com" and mail["From"] == "line@example.com"
    assert mail["Subject"] == f"[microfab critical] cnc-1: threshold temp_c (alert {alert.id})"
    assert "temp_c of cnc-1 above 80" in mail.get_payload()


# ---------------------------------------------------------------------------- command line


def test_the_alert_commands_run_list_ack_and_close(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/plant.db"
    with open_store(db) as store:
        plant(store, TEMPS)
    (tmp_path / "alerts.yaml").write_text(HOT, encoding="utf-8")
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["alerts", "run", "--once", "--rules", str(tmp_path / "alerts.yaml"), "--db", db, "--json"],
    )
    assert result.exit_code == 0, result.output
    (raised,) = json.loads(result.output)["raised"]
    listed = runner.invoke(app, ["alerts", "list", "--open", "--json", "--db", db])
    assert [a["id"] for a in json.loads(listed.output)] == [raised["id"]]
    ack = runner.invoke(app, ["alerts", "ack", str(raised["id"]), "--db", db])
    assert ack.exit_code == 0 and "acknowledged by cli:" in ack.output
    close = runner.invoke(app, ["alerts", "close", str(raised["id"]), "--db", db])
    assert close.exit_code == 0 and "closed by cli:" in close.output
    again = microfab_fails("alerts", "close", str(raised["id"]), "--db", db)
    assert again.stderr.strip() == f"error: alert {raised['id']} is closed already"
    empty = runner.invoke(app, ["alerts", "list", "--open", "--db", db])
    assert empty.output.strip() == "no open alerts"
    bad = microfab_fails("alerts", "run", "--once", "--rules", str(tmp_path / "none.yaml"))
    assert "cannot read" in bad.stderr


def microfab_fails(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the real command line; it must fail as bad input (exit 2) without a traceback."""
    proc = subprocess.run(
        [sys.executable, "-m", "microfab.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    return proc
