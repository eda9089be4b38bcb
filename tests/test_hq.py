"""HQ over several sites: the group model, per-site settings, HQ's site checks at ingest, the
uplink's behaviour at the broker (nobody subscribed, a login for another site), the roll-up."""

from __future__ import annotations

import datetime as dt
import re
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from typer.testing import CliRunner

from microfab.cli import app
from microfab.connect.broker_acl import logins_for_hq, write_mosquitto_files
from microfab.connect.mqtt_client import BrokerError, parse_broker_url
from microfab.connect.mqtt_ingest import IngestWorker
from microfab.connect.site_check import site_refusal, topic_site
from microfab.connect.topics import encode, event_topic
from microfab.connect.uplink import SITE_PROPERTY, Uplink
from microfab.errors import InputError, NotFoundError
from microfab.green.factors import load_factors
from microfab.hq.registry import merge_site, only_sites
from microfab.hq.rollup import group_figures
from microfab.model.calendar import public_holidays
from microfab.model.events import EnergyReading, Event, PartCount, StateChange
from microfab.model.factory_file import parse_factory
from microfab.store import EventStore, open_store
from microfab.store.hq import HqIngestTarget, UplinkReport, uplink_reports
from microfab.store.uplink import UplinkLog, checkpoint
from services import MosquittoServer, mosquitto_server
from test_hq_uplink import site_factory

runner = CliRunner()


def site_model(site: str):  # type: ignore[no-untyped-def]
    return parse_factory(site_factory(site), f"{site}.yaml")


# ---------------------------------------------------------------------------- the group model


def test_sites_merge_into_one_group_model_and_narrow_back() -> None:
    hk, gd = site_model("hk1"), site_model("gd1")
    group = merge_site(merge_site(None, hk), gd)
    assert [s.id for s in group.sites] == ["hk1", "gd1"]
    assert [c.id for c in group.calendars] == ["day-shift"]  # the same calendar, taken once
    assert {p.sku for p in group.products} == {"BRKT-hk1", "BRKT-gd1"}
    again = merge_site(group, hk)  # registering a site again replaces it
    assert [s.id for s in again.sites] == ["gd1", "hk1"]
    narrowed = only_sites(group, ["gd1"])
    assert [r.path.split("/")[0] for r in narrowed.machines()] == ["gd1"] * 4
    with pytest.raises(NotFoundError, match="no site 'zz'"):
        only_sites(group, ["zz"])


def test_a_different_calendar_under_a_taken_id_is_renamed_for_its_site() -> None:
    hk = site_model("hk1")
    text = site_factory("gd1").replace('start: "00:00"', 'start: "07:00"')
    gd = parse_factory(text, "gd1.yaml")
    group = merge_site(hk, gd)
    assert [c.id for c in group.calendars] == ["day-shift", "gd1-day-shift"]
    gd_line = group.sites[1].areas[0].lines[0]
    assert gd_line.calendar == "gd1-day-shift"
    assert group.calendar("gd1-day-shift").shifts[0].start == "07:00"


def test_a_product_that_differs_under_the_same_sku_is_refused() -> None:
    hk = site_model("hk1")
    text = site_factory("gd1").replace("sku: BRKT-gd1", "sku: BRKT-hk1")
    with pytest.raises(InputError, match="product 'BRKT-hk1' differs from HQ's"):
        merge_site(hk, parse_factory(text, "gd1.yaml"))


# ---------------------------------------------------------------------------- per-site settings


def test_site_settings_holidays_currency_and_grid_factor() -> None:
    gd = site_model("gd1").sites[0]
    assert (gd.timezone, gd.holidays, gd.currency, gd.grid_factor) == (
        "Asia/Shanghai",
        "CN-GD",
        "CNY",
        "electricity/cn-south",
    )
    assert dt.date(2026, 10, 1) in public_holidays("CN-GD", 2026)  # National Day
    assert dt.date(2026, 10, 1) in public_holidays("HK", 2026)
    assert dt.date(2026, 7, 1) in public_holidays("HK", 2026)  # HKSAR Establishment Day
    assert dt.date(2026, 7, 1) not in public_holidays("CN-GD", 2026)
    assert dt.date(2026, 9, 2) in public_holidays("VN", 2026)  # Viet Nam's National Day
    assert dt.date(2026, 8, 31) in public_holidays("MY", 2026)  # Merdeka
    assert dt.date(2026, 12, 5) in public_holidays("TH", 2026)  # King Bhumibol's birthday
    with pytest.raises(Exception, match="holidays"):
        parse_factory(site_factory("gd1").replace("holidays: CN-GD", "holidays: XX"), "x.yaml")


def test_mainland_and_viet_nam_grid_factors_are_shipped_with_their_sources() -> None:
    factors = load_factors()
    cn = factors.choose("electricity/cn-national", 2026)
    assert cn is not None and (cn.factor.year, cn.factor.value) == (2022, 0.5366)
    assert "Ministry of Ecology and Environment" in cn.factor.source
    south = factors.choose("electricity/cn-south", 2022)
    assert south is not None and south.factor.value == 0.3869
    vn = factors.choose("electricity/vn-national", 2023)
    assert vn is not None and vn.factor.value == 0.6592
    assert "Department of Climate Change" in vn.factor.source


# ---------------------------------------------------------------------------- HQ's site checks


def test_site_refusals() -> None:
    known = {"hk1", "gd1"}
    topic = "microfab/v1/hk1/plant/line1/machining/hk1-cnc-1/count"
    assert topic_site(topic) == "hk1"
    assert site_refusal(topic, "hk1", known) is None
    assert site_refusal(topic, None, known) is None  # a bridge names no site: the ACL guards
    refused = site_refusal(topic, "gd1", known)
    assert refused is not None and refused.startswith("site_mismatch: the uplink of site 'gd1'")
    other = "microfab/v1/zz/plant/line1/machining/m/count"
    refused = site_refusal(other, None, known)
    assert refused is not None and refused.startswith("unknown_site: site 'zz'")
    assert site_refusal("elsewhere/x", None, known) is None  # decoding makes it bad_topic


def count_event(site: str, n: int = 0) -> PartCount:
    now = dt.datetime.now(dt.UTC)
    return PartCount(
        id=f"{site}-{uuid.uuid4().hex}",
        ts=now.replace(microsecond=now.microsecond // 1000 * 1000),
        machine=f"{site}/plant/line1/machining/{site}-cnc-1",
        good=1 + n,
    )


def publish(port: int, messages: list[tuple[Event, str | None]]) -> None:
    """Publish events at QoS 1 as an uplink would (with its site property when given)."""
    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        for event, site in messages:
            props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            if site is not None:
                props.UserProperty = (SITE_PROPERTY, site)
            client.publish(
                event_topic(event), encode([event]), qos=1, properties=props
            ).wait_for_publish(5)
    finally:
        client.disconnect()
        client.loop_stop()


@pytest.fixture
def hq_store(tmp_path: Path) -> Iterator[EventStore]:
    with open_store(f"sqlite:///{tmp_path}/hq.db") as store:
        store.apply_factory(merge_site(site_model("hk1"), site_model("gd1")), "test")
        yield store


def test_hq_ingest_refuses_unknown_sites_and_sites_writing_as_others(
    hq_store: EventStore, mosquitto: MosquittoServer
) -> None:
    worker = IngestWorker(
        hq_store,
        parse_broker_url(mosquitto.url),
        known_sites={"hk1", "gd1"},
        client_id=f"hq-{uuid.uuid4().hex[:6]}",
    )
    worker.start()
    try:
        assert worker.wait_subscribed()
        good, bridged = count_event("hk1"), count_event("gd1")
        posing, stranger = count_event("hk1", 1), count_event("zz")
        publish(mosquitto.port, [(good, "hk1"), (bridged, None), (posing, "gd1"), (stranger, "zz")])
        deadline = time.monotonic() + 10
        while worker.stats.received < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        worker.stop()
    assert {s.event.id for s in hq_store.events()} == {good.id, bridged.id}
    reasons = sorted(letter.reason.split(":")[0] for letter in hq_store.dead_letters())
    assert reasons == ["site_mismatch", "unknown_site"]
    assert worker.stats.site_refused == 2
    # a replay never takes the site mismatch; the unknown site's event once the site is registered
    replayed = runner.invoke(app, ["deadletters", "replay", "--db", hq_store.url])
    assert replayed.exit_code == 0 and "replayed 0 of 2" in replayed.stdout, replayed.output
    zz = parse_factory(site_factory("gd1").replace("gd1", "zz"), "zz.yaml")
    hq_store.apply_factory(merge_site(hq_store.factory()[1], zz), "test")  # type: ignore[index]
    replayed = runner.invoke(app, ["deadletters", "replay", "--db", hq_store.url])
    assert "replayed 1 of 2" in replayed.stdout, replayed.output
    assert "site_mismatch: sent by another site's uplink; never replayed" in replayed.stdout
    assert stranger.id in {s.event.id for s in hq_store.events()}
    assert posing.id not in {s.event.id for s in hq_store.events()}


# ---------------------------------------------------------------------------- the uplink at the broker


def fill(store: EventStore, site: str, n: int) -> list[str]:
    events = [count_event(site, i) for i in range(n)]
    store.append(events)
    return [e.id for e in events]


def run_uplink(uplink: Uplink) -> tuple[threading.Thread, threading.Event, list[BaseException]]:
    stop = threading.Event()
    failures: list[BaseException] = []

    def target() -> None:
        try:
            uplink.run(stop, report_every_s=0.3)
        except BaseException as exc:  # handed to the test
            failures.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    return thread, stop, failures


def test_the_uplink_holds_its_checkpoint_until_hq_listens(
    tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    with (
        open_store(f"sqlite:///{tmp_path}/site.db") as site,
        open_store(f"sqlite:///{tmp_path}/hq.db") as hq,
    ):
        hq.apply_factory(site_model("hk1"), "test")
        sent = fill(site, "hk1", 30)
        key = f"hk1@127.0.0.1:{mosquitto.port}"
        uplink = Uplink(
            UplinkLog(site, key, "hk1"), parse_broker_url(mosquitto.url), site="hk1", window=10
        )
        thread, stop, failures = run_uplink(uplink)
        try:
            deadline = time.monotonic() + 10
            while uplink.status.resends == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert uplink.status.resends >= 1  # the broker dropped them: nobody subscribed
            assert checkpoint(site, key).seq == 0
            worker = IngestWorker(
                HqIngestTarget(hq),
                parse_broker_url(mosquitto.url),
                known_sites={"hk1"},
                client_id="hq-late",
            )
            worker.start()
            try:
                deadline = time.monotonic() + 20
                while hq.count() < len(sent) and time.monotonic() < deadline:
                    time.sleep(0.05)
                while checkpoint(site, key).seq < site.last_seq() and time.monotonic() < deadline:
                    time.sleep(0.05)

                def reported() -> UplinkReport | None:
                    return uplink_reports(hq).get("hk1")

                while time.monotonic() < deadline and (
                    (r := reported()) is None or r.checkpoint < site.last_seq()
                ):
                    time.sleep(0.05)
            finally:
                worker.stop()
        finally:
            stop.set()
            thread.join()
        assert not failures
        assert {s.event.id for s in hq.events()} == set(sent)
        mark = checkpoint(site, key)
        assert mark.seq == site.last_seq() and mark.acknowledged == len(sent)
        status = uplink.refresh_status()
        assert (status.lag_events, status.lag_s) == (0, 0.0)
        report = uplink_reports(hq)["hk1"]  # what the uplink told HQ (the site tile's backlog)
        assert (report.checkpoint, report.lag_events) == (site.last_seq(), 0)
        tile = group_figures(hq, hq.factory()[1]).sites[0]  # type: ignore[index]
        assert (tile.site, tile.uplink_lag_events) == ("hk1", 0)
        assert not hq.dead_letters()  # the status messages are no events, nor mistakes


def test_an_uplink_login_cannot_publish_another_sites_events(tmp_path: Path) -> None:
    logins = logins_for_hq(merge_site(site_model("hk1"), site_model("gd1")))
    assert [x.user for x in logins] == ["microfab", "uplink.hk1", "uplink.gd1"]
    passwords = {x.user: f"pw-{x.user}-0123456789" for x in logins}
    write_mosquitto_files(tmp_path / "access", logins, passwords)
    with (
        mosquitto_server(access=tmp_path / "access") as broker,
        open_store(f"sqlite:///{tmp_path}/site.db") as site,
    ):
        fill(site, "hk1", 3)
        key = "hk1@hq"
        settings = parse_broker_url(
            broker.url, username="uplink.gd1", password=passwords["uplink.gd1"]
        )
        uplink = Uplink(UplinkLog(site, key, "hk1"), settings, site="hk1")
        thread, stop, failures = run_uplink(uplink)
        thread.join(timeout=20)
        stop.set()
        thread.join()
    assert len(failures) == 1 and isinstance(failures[0], BrokerError)
    assert re.search(r"refused event seq \d of site 'hk1': Not authorized", str(failures[0]))
    assert checkpoint(site, key).seq == 0


# ---------------------------------------------------------------------------- the roll-up


def test_roll_up_per_site_and_for_the_group(hq_store: EventStore) -> None:
    start = dt.datetime(2026, 12, 7, 1, 0, tzinfo=dt.UTC)  # 09:00 in Hong Kong and Guangdong
    events: list[Event] = []
    for site, good, kwh in (("hk1", 10, 5.0), ("gd1", 30, 8.0)):
        machine = f"{site}/plant/line1/machining/{site}-cnc-1"
        events += [
            StateChange(id=f"{site}-s", ts=start, machine=machine, state="running"),
            PartCount(
                id=f"{site}-c", ts=start + dt.timedelta(minutes=30), machine=machine, good=good
            ),
            EnergyReading(id=f"{site}-e0", ts=start, machine=machine, kwh=100.0),
            EnergyReading(
                id=f"{site}-e1",
                ts=start + dt.timedelta(minutes=30),
                machine=machine,
                kwh=100.0 + kwh,
            ),
        ]
    hq_store.append(events)
    figures = group_figures(hq_store, hq_store.factory()[1])  # type: ignore[index]
    hk, gd = figures.sites
    assert (hk.site, hk.good, hk.kwh, hk.grid_factor) == ("hk1", 10, 5.0, "electricity/clp")
    assert (gd.site, gd.good, gd.kwh, gd.grid_factor) == ("gd1", 30, 8.0, "electricity/cn-south")
    assert gd.kgco2e == round(8.0 * 0.3869, 3) and gd.kgco2e_per_unit == round(8.0 * 0.3869 / 30, 6)
    assert gd.newest_event == start + dt.timedelta(minutes=30)
    assert hk.oee is not None and 0 < hk.oee <= 1
    assert figures.good == 40 and figures.kwh == 13.0
    assert figures.kgco2e == round(hk.kgco2e + gd.kgco2e, 3)  # type: ignore[operator]
    only_gd = group_figures(hq_store, hq_store.factory()[1], ["gd1"])  # type: ignore[index]
    assert [s.site for s in only_gd.sites] == ["gd1"] and only_gd.good == 30
    shown = runner.invoke(app, ["hq", "status", "--db", hq_store.url, "--json"])
    assert shown.exit_code == 0, shown.output
    assert '"site": "gd1"' in shown.stdout


def test_a_site_manager_sees_only_the_sites_granted_to_them(hq_store: EventStore) -> None:
    from microfab.model.identity import Role
    from microfab.store.identity import create_token
    from webapp import serving

    start = dt.datetime(2026, 12, 7, 1, 0, tzinfo=dt.UTC)
    hq_store.append(
        [
            PartCount(id=f"{s}-c", ts=start, machine=f"{s}/plant/line1/machining/{s}-cnc-1", good=5)
            for s in ("hk1", "gd1")
        ]
    )
    token, secret = create_token(hq_store, "gd-manager", role=Role.SITE_MANAGER, actor="cli:tests")
    granted = runner.invoke(
        app, ["hq", "grant", f"token:{token.name}", "--site", "gd1", "--db", hq_store.url]
    )
    assert granted.exit_code == 0, granted.output
    as_manager = {"Authorization": f"Bearer {secret}"}
    with serving(hq_store, role=Role.HQ_MANAGER) as (_, hq_client):
        every = hq_client.get("/api/v1/hq/sites").json()
        assert [s["site"] for s in every["sites"]] == ["hk1", "gd1"]
        assert hq_client.get("/hq/hk1").status_code == 200
        mine = hq_client.get("/api/v1/hq/sites", headers=as_manager).json()
        assert [s["site"] for s in mine["sites"]] == ["gd1"] and mine["group"]["good"] == 5
        page = hq_client.get("/hq", headers=as_manager)
        assert page.status_code == 200 and 'data-site="gd1"' in page.text
        assert 'data-site="hk1"' not in page.text
        assert hq_client.get("/hq/gd1", headers=as_manager).status_code == 200
        assert hq_client.get("/hq/hk1", headers=as_manager).status_code == 404
        assert hq_client.get("/", headers=as_manager).status_code == 403  # no plant pages


def test_money_in_hkd_by_the_rate_of_its_day(tmp_path: Path) -> None:
    from decimal import Decimal

    from microfab.errors import LocatedFileError
    from microfab.hq.money import load_rates

    path = tmp_path / "rates.yaml"
    path.write_text(
        "version: t-1\nrates:\n"
        "  - {currency: CNY, from: 2026-01-01, hkd: 1.0850, source: month-end}\n"
        "  - {currency: CNY, from: 2026-07-01, hkd: 1.0910, source: month-end}\n",
        encoding="utf-8",
    )
    rates = load_rates(path)
    assert rates.to_hkd("1000", "CNY", dt.date(2026, 3, 1)) == Decimal("1085.00")
    assert rates.to_hkd("1000", "CNY", dt.date(2026, 7, 1)) == Decimal("1091.00")
    assert rates.to_hkd("12.345", "HKD", dt.date(2026, 7, 1)) == Decimal("12.34")
    with pytest.raises(InputError, match="the first is from 2026-01-01"):
        rates.to_hkd(1, "CNY", dt.date(2025, 12, 31))
    with pytest.raises(InputError, match="no HKD rate for VND"):
        rates.to_hkd(1, "VND", dt.date(2026, 3, 1))
    path.write_text("version: t-2\nrates:\n  - {currency: cny, from: 2026-01-01, hkd: 1}\n")
    with pytest.raises(LocatedFileError) as fault:
        load_rates(path)
    assert "rates.yaml:3" in str(fault.value.problems)


def test_a_sites_order_prefix_keeps_its_automatic_order_ids_apart_at_hq() -> None:
    from microfab.track.orders import _next_order_id

    text = site_factory("gd1").replace(
        "    currency: CNY\n", "    currency: CNY\n    order_prefix: GD1-\n"
    )
    gd = parse_factory(text, "gd1.yaml")
    at = dt.datetime(2026, 12, 7, 2, 0, tzinfo=dt.UTC)
    known = ["GD1-WO261207-001", "WO261207-007"]
    assert _next_order_id(known, at, gd) == "GD1-WO261207-002"
    assert _next_order_id(known, at, site_model("hk1")) == "WO261207-008"
    with pytest.raises(Exception, match="order_prefix"):
        parse_factory(text.replace("order_prefix: GD1-", "order_prefix: gd1"), "gd1.yaml")


def test_the_checkpoint_only_moves_forward_and_pending_reads_settled_events(
    store: EventStore,
) -> None:
    from microfab.store.uplink import advance, backlog, pending, rewind

    sent = fill(store, "hk1", 3)
    fill(store, "gd1", 2)
    hk = pending(store, after_seq=0, limit=10, site="hk1", settle=dt.timedelta(0))
    assert [s.event.id for s in hk] == sent
    fresh = pending(store, after_seq=0, limit=10, site="hk1", settle=dt.timedelta(hours=1))
    # several writers on PostgreSQL: only events stored `settle` ago are read (sequence gaps)
    assert len(fresh) == (0 if store.dialect == "postgresql" else 3)
    last = hk[-1]
    advance(store, "hk1@hq", last.seq, last.event.ts, last.ingest_ts, 3)
    advance(store, "hk1@hq", hk[0].seq, hk[0].event.ts, hk[0].ingest_ts, 1)  # late, older: kept
    mark = checkpoint(store, "hk1@hq")
    assert (mark.seq, mark.acknowledged) == (last.seq, 3)
    waiting = backlog(store, after_seq=mark.seq, site="hk1")
    assert (waiting.events, waiting.oldest_ingest_ts) == (0, None)
    assert backlog(store, after_seq=0, site="gd1").events == 2
    # HQ lost what it had acknowledged: the events stored since a time go again
    now = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    assert rewind(store, "hk1@hq", now, "hk1") == last.seq  # nothing stored since: unchanged
    assert rewind(store, "hk1@hq", hk[1].ingest_ts, "hk1") in (0, hk[0].seq)
    assert backlog(store, after_seq=checkpoint(store, "hk1@hq").seq, site="hk1").events >= 2
