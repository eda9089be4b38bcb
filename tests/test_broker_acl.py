"""Per-device broker logins: a device publishes only under its own machine path and cannot
subscribe to ``#``, on the embedded broker and on a real Mosquitto with the generated files."""

from __future__ import annotations

import os
import stat
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from hypothesis import given
from hypothesis import strategies as st
from paho.mqtt.client import topic_matches_sub
from paho.mqtt.enums import CallbackAPIVersion
from typer.testing import CliRunner

from microfab.cli import app
from microfab.connect.broker import EmbeddedBroker
from microfab.connect.broker_acl import (
    filter_covers,
    logins_for_factory,
    mosquitto_password_hash,
    permits,
    read_access_file,
)
from microfab.errors import InputError
from microfab.model.factory_file import load_factory
from services import free_port, mosquitto_server

FACTORY = Path(__file__).parent.parent / "docs" / "examples" / "factory-connected.yaml"
CNC = "kt/plant/line1/machining/cnc-2"
BENCH = "kt/plant/line1/packing/bench-1"


@pytest.mark.parametrize(
    ("allowed", "requested", "covered"),
    [
        (f"microfab/v1/{CNC}/+", f"microfab/v1/{CNC}/count", True),
        (f"microfab/v1/{CNC}/+", f"microfab/v1/{CNC}/+", True),
        (f"microfab/v1/{CNC}/+", f"microfab/v1/{BENCH}/count", False),
        (f"microfab/v1/{CNC}/+", f"microfab/v1/{CNC}/#", False),
        (f"microfab/v1/{CNC}/+", f"microfab/v1/{CNC}/count/extra", False),
        (f"microfab/v1/{CNC}/+", f"microfab/v1/{CNC}", False),
        (f"microfab/v1/{CNC}/+", "microfab/v1/+/plant/line1/machining/cnc-2/count", False),
        (f"microfab/v1/{CNC}/+", "#", False),
        ("microfab/v1/#", "microfab/v1", True),
        ("microfab/v1/#", "microfab/v1/+/+/+/+/+/+", True),
        ("microfab/v1/#", "microfab/#", False),
        ("spBv1.0/g/NDATA/gw", "spBv1.0/g/NDATA/other", False),
    ],
)
def test_a_filter_covers_only_what_it_matches(allowed: str, requested: str, covered: bool) -> None:
    assert filter_covers(allowed, requested) is covered


def test_a_shared_subscription_is_judged_by_its_filter() -> None:
    assert permits(["microfab/v1/#"], "$share/microfab/microfab/v1/+/+/+/+/+/+")
    assert not permits(["microfab/v1/#"], "$share/microfab/#")


def test_one_login_per_publishing_machine_and_edge_node() -> None:
    logins = {x.user: x for x in logins_for_factory(load_factory(FACTORY))}
    # cnc-1 (OPC UA) and press-1 (Modbus) are polled by microfab: they get no login
    assert sorted(logins) == [
        "kt-plant.pack-gw",
        "kt.plant.line1.machining.cnc-2",
        "kt.plant.line1.packing.bench-1",
        "microfab",
    ]
    cnc = logins["kt.plant.line1.machining.cnc-2"]
    assert cnc.may_publish(f"microfab/v1/{CNC}/count")
    assert not cnc.may_publish(f"microfab/v1/{BENCH}/count")
    assert not cnc.may_subscribe("#") and not cnc.may_subscribe("microfab/v1/#")
    gateway = logins["kt-plant.pack-gw"]
    assert gateway.may_publish("spBv1.0/kt-plant/DDATA/pack-gw/packer1")
    assert gateway.may_publish("spBv1.0/kt-plant/NDEATH/pack-gw")
    assert not gateway.may_publish("spBv1.0/kt-plant/NDATA/other-gw")
    assert not gateway.may_publish(f"microfab/v1/{CNC}/count")
    assert gateway.may_subscribe("spBv1.0/kt-plant/NCMD/pack-gw")
    assert not gateway.may_subscribe("spBv1.0/#")
    service = logins["microfab"]
    assert service.may_subscribe("$share/microfab/microfab/v1/+/+/+/+/+/+")
    assert service.may_subscribe("spBv1.0/kt-plant/#")
    assert not service.may_subscribe("#")


def test_the_mosquitto_hash_is_pbkdf2_sha512() -> None:
    # the line `mosquitto_passwd -b` wrote for dev1/secret (Mosquitto 2.0.11)
    line = "$7$101$r5O8ymDytMaIK7M3$b5/l2bSFzm6alrUK97KrJAm4ZYNiD6eZ9WRh9hSdZWf/nqvM+EMT9b/UBx+x8QNgg21JNETN0PZEblua5DkOHg=="
    import base64

    salt = base64.b64decode(line.split("$")[3])
    assert mosquitto_password_hash("secret", salt=salt, iterations=101) == line


# ---------------------------------------------------------------------------- the command


def generate(tmp_path: Path, *extra: str) -> dict[str, str]:
    """Run ``microfab broker acl`` into tmp_path; the passwords it wrote, by user."""
    args = ["broker", "acl", "--factory", str(FACTORY), "--out", str(tmp_path / "devices.yaml")]
    args += ["--mosquitto", str(tmp_path / "mosquitto"), "--passwords", str(tmp_path / "pw.tsv")]
    result = CliRunner().invoke(app, [*args, *extra])
    assert result.exit_code == 0, result.output
    lines = (tmp_path / "pw.tsv").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "user\tkind\tpassword"
    return {user: password for user, _kind, password in (x.split("\t") for x in lines[1:])}


def test_microfab_broker_acl_writes_private_files_without_passwords(tmp_path: Path) -> None:
    passwords = generate(tmp_path)
    assert len(passwords) == 4 and len(set(passwords.values())) == 4
    files = [tmp_path / "devices.yaml", tmp_path / "pw.tsv"]
    files += [tmp_path / "mosquitto" / "password_file", tmp_path / "mosquitto" / "acl_file"]
    for file in files:
        assert stat.S_IMODE(file.stat().st_mode) == 0o600, file
    for file in files[:1] + files[2:]:
        text = file.read_text(encoding="utf-8")
        assert not any(p in text for p in passwords.values()), file
    entries = read_access_file(tmp_path / "devices.yaml")
    assert all(e.password_hash.startswith("$argon2id$") for e in entries)
    acl = (tmp_path / "mosquitto" / "acl_file").read_text(encoding="utf-8")
    assert f"user kt.plant.line1.machining.cnc-2\ntopic readwrite microfab/v1/{CNC}/+\n" in acl
    assert "topic read #" not in acl and "pattern" not in acl
    # a second run would lock every device out: only with --force
    result = CliRunner().invoke(
        app, ["broker", "acl", "--factory", str(FACTORY), "--out", str(tmp_path / "devices.yaml")]
    )
    assert isinstance(result.exception, InputError)
    assert "--force" in result.exception.message
    assert generate(tmp_path, "--force") != passwords


# ---------------------------------------------------------------------------- real brokers


class Client:
    """A paho client that records what it receives and waits for acknowledgements."""

    def __init__(self, port: int, user: str, password: str, protocol: int) -> None:
        self.client = paho.Client(CallbackAPIVersion.VERSION2, protocol=protocol)
        self.client.username_pw_set(user, password)
        self.received: list[tuple[str, bytes]] = []
        self.granted: list[int] = []
        self.subscribed = threading.Event()
        self.client.on_message = lambda _c, _u, m: self.received.append((m.topic, m.payload))
        self.client.on_subscribe = self._on_subscribe
        connected = threading.Event()
        self.reason: list[str] = []

        def on_connect(*args: object) -> None:
            self.reason.append(str(args[3]))
            connected.set()

        self.client.on_connect = on_connect
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert connected.wait(10), "no CONNACK"

    def _on_subscribe(self, _c: object, _u: object, _mid: object, codes: list, _p: object) -> None:
        self.granted = [int(getattr(code, "value", code)) for code in codes]
        self.subscribed.set()

    def subscribe(self, topic_filter: str) -> int:
        self.subscribed.clear()
        self.client.subscribe(topic_filter, qos=1)
        assert self.subscribed.wait(10), "no SUBACK"
        return self.granted[0]

    def publish(self, topic: str, payload: str) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(10)

    def wait_for(self, payload: bytes, timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while payload not in [p for _t, p in self.received]:
            assert time.monotonic() < deadline, f"{payload!r} never arrived: {self.received}"
            time.sleep(0.02)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@contextmanager
def clients(port: int, passwords: dict[str, str], protocol: int) -> Iterator[list[Client]]:
    """The service login, cnc-2 and bench-1, connected."""
    made: list[Client] = []
    try:
        for user in (
            "microfab",
            "kt.plant.line1.machining.cnc-2",
            "kt.plant.line1.packing.bench-1",
        ):
            made.append(Client(port, user, passwords[user], protocol))
            assert made[-1].reason == ["Success"], (user, made[-1].reason)
        yield made
    finally:
        for client in made:
            client.close()


def check_device_isolation(
    port: int, passwords: dict[str, str], protocol: int, share: bool, refuses_subscriptions: bool
) -> None:
    with clients(port, passwords, protocol) as (service, cnc, bench):
        ingest_filter = "microfab/v1/+/+/+/+/+/+"
        granted = service.subscribe(f"$share/microfab/{ingest_filter}" if share else ingest_filter)
        assert granted < 0x80
        # amqtt refuses the subscription in the SUBACK; Mosquitto 2.0 grants it and delivers
        # nothing the login may not read
        for refused in ("#", f"microfab/v1/{CNC}/+"):
            assert bench.subscribe(refused) >= 0x80 or not refuses_subscriptions
        cnc.publish(f"microfab/v1/{BENCH}/count", "forged by cnc-2")
        cnc.publish(f"microfab/v1/{CNC}/count", "cnc-2 own count")
        service.wait_for(b"cnc-2 own count")
        time.sleep(0.3)  # anything else in flight would have arrived by now
        assert service.received == [(f"microfab/v1/{CNC}/count", b"cnc-2 own count")]
        assert bench.received == []


def test_the_embedded_broker_keeps_each_device_to_its_own_topics(tmp_path: Path) -> None:
    passwords = generate(tmp_path)
    port = free_port()
    with EmbeddedBroker("127.0.0.1", port, access_file=tmp_path / "devices.yaml"):
        check_device_isolation(
            port, passwords, paho.MQTTv311, share=False, refuses_subscriptions=True
        )
        stranger = Client(port, "nobody", "x", paho.MQTTv311)
        stranger.close()
        assert stranger.reason == ["Not authorized"]


def test_a_username_login_beside_an_access_file_may_use_every_topic(tmp_path: Path) -> None:
    passwords = generate(tmp_path)
    port = free_port()
    broker = EmbeddedBroker(
        "127.0.0.1", port, users={"plant": "s3cret-pass"}, access_file=tmp_path / "devices.yaml"
    )
    with broker:
        plant = Client(port, "plant", "s3cret-pass", paho.MQTTv311)
        try:
            assert plant.subscribe("#") < 0x80
            with clients(port, passwords, paho.MQTTv311) as (_service, cnc, _bench):
                cnc.publish(f"microfab/v1/{CNC}/state", "running")
                plant.wait_for(b"running")
        finally:
            plant.close()


@pytest.mark.parametrize("protocol", [paho.MQTTv311, paho.MQTTv5], ids=["3.1.1", "5"])
def test_mosquitto_keeps_each_device_to_its_own_topics(tmp_path: Path, protocol: int) -> None:
    passwords = generate(tmp_path)
    with mosquitto_server(persistence=False, access=tmp_path / "mosquitto") as server:
        share = protocol == paho.MQTTv5
        check_device_isolation(
            server.port, passwords, protocol, share=share, refuses_subscriptions=False
        )
        wrong = Client(server.port, "kt.plant.line1.machining.cnc-2", "wrong", protocol)
        wrong.close()
        assert wrong.reason != ["Success"]


def test_microfab_broker_refuses_a_broken_access_file(tmp_path: Path) -> None:
    (tmp_path / "devices.yaml").write_text("users: [{user: a}]\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "MICROFAB_MQTT_PASSWORD"}
    result = CliRunner().invoke(
        app,
        ["broker", "--port", str(free_port()), "--access", str(tmp_path / "devices.yaml")],
        env=env,
    )
    assert isinstance(result.exception, InputError)
    assert "needs user and password_hash" in result.exception.message


def test_mosquitto_keeps_an_edge_node_to_its_own_sparkplug_messages(tmp_path: Path) -> None:
    passwords = generate(tmp_path)
    with mosquitto_server(persistence=False, access=tmp_path / "mosquitto") as server:
        service = Client(server.port, "microfab", passwords["microfab"], paho.MQTTv5)
        gateway = Client(
            server.port, "kt-plant.pack-gw", passwords["kt-plant.pack-gw"], paho.MQTTv5
        )
        try:
            assert service.subscribe("spBv1.0/kt-plant/#") < 0x80
            gateway.publish("spBv1.0/kt-plant/DDATA/other-gw/packer1", "forged")
            gateway.publish("spBv1.0/kt-plant/NDATA/pack-gw", "own")
            service.wait_for(b"own")
            time.sleep(0.3)
            assert service.received == [("spBv1.0/kt-plant/NDATA/pack-gw", b"own")]
        finally:
            gateway.close()
            service.close()


LEVELS = st.sampled_from(["microfab", "v1", "kt", "cnc-2", "count", "+", "#"])


@given(st.lists(LEVELS, min_size=1, max_size=5), st.lists(LEVELS, min_size=1, max_size=5))
def test_on_plain_topics_a_filter_covers_exactly_what_mqtt_matches(
    allowed: list[str], topic: list[str]
) -> None:
    filter_ = "/".join(
        level for i, level in enumerate(allowed) if level != "#" or i == len(allowed) - 1
    )
    plain = "/".join(level for level in topic if level not in ("+", "#"))
    if not plain:
        return
    assert filter_covers(filter_, plain) is topic_matches_sub(filter_, plain)
