"""Safety: the ``safety`` stream on the MQTT contract, e-stops stopping the machine in the
moulding-cell-wear scenario, alerts to supervisors, the near-miss register and the /safety page."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from microfab.connect.decode import decode_message
from microfab.connect.publisher import Publisher
from microfab.errors import InputError
from microfab.model.events import Event, SafetyEvent, StateChange
from microfab.safety.feed import raise_alerts
from microfab.safety.register import (
    IncidentKind,
    IncidentState,
    advance,
    days_since_lost_time,
    report,
)
from microfab.sim.engine import DEFAULT_START, FactorySimulation
from microfab.sim.scenario import load_scenario
from microfab.store import open_store
from microfab.store.alerts import list_alerts
from microfab.store.audit import audit_records
from microfab.track.plant import Plant
from webapp import serving

IMM2 = "yl/moulding/mc-1/imm/imm-2"
ROBOT1 = "yl/moulding/mc-1/unload/robot-1"


def test_an_estop_on_mqtt_is_a_safety_event_and_an_unplanned_stop() -> None:
    payload = {
        "id": "sf-1",
        "ts": "2026-11-25T07:30:00+08:00",
        "kind": "estop_pressed",
        "severity": "critical",
        "zone": "imm-2-front",
        "source": "estop-2",
    }
    decoded = decode_message(
        f"microfab/v1/{IMM2}/safety",
        json.dumps(payload).encode(),
        received_at=dt.datetime(2026, 11, 25, tzinfo=dt.UTC),
        reason_codes={"SAFETY", "PB"},
    )
    assert not decoded.dead
    safety, stop = decoded.events
    assert isinstance(safety, SafetyEvent) and safety.kind.value == "estop_pressed"
    assert isinstance(stop, StateChange)
    assert (stop.id, stop.ts, stop.state.value, stop.reason) == (
        "sf-1~stop",
        safety.ts,
        "unplanned_stop",
        "SAFETY",
    )
    bad = decode_message(
        f"microfab/v1/{IMM2}/safety",
        b'{"id": "sf-2", "ts": "2026-11-25T07:30:00Z", "kind": "smoke"}',
        received_at=dt.datetime(2026, 11, 25, tzinfo=dt.UTC),
    )
    assert not bad.events and "invalid_event: kind" in bad.dead[0].reason
    assert "severity" in bad.dead[0].reason


class Keep(Publisher):
    """Safety events, and the state changes of the two machines they happen on."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def publish(self, event: Event) -> None:
        if event.stream == "safety" or (
            event.stream == "state" and event.machine in (IMM2, ROBOT1)
        ):
            self.events.append(event)

    def flush(self) -> None:
        return None


def test_safety_events_stop_the_machine_in_the_wear_scenario_and_show_on_the_page(
    tmp_path: Path,
) -> None:
    scenario = load_scenario("moulding-cell-wear")
    keep = Keep()
    FactorySimulation(scenario, keep, seed=1).run_until(74 * 3600)
    safety = [e for e in keep.events if isinstance(e, SafetyEvent)]
    assert [(e.machine, e.kind.value) for e in safety] == [
        (IMM2, "estop_pressed"),
        (IMM2, "estop_released"),
        (ROBOT1, "area_scanner"),
    ]
    pressed, released = safety[0], safety[1]
    assert pressed.ts == DEFAULT_START + dt.timedelta(hours=72.5)  # Thursday 08:30, as configured
    imm2 = [e for e in keep.events if isinstance(e, StateChange) and e.machine == IMM2]
    stop = next(e for e in imm2 if e.ts == pressed.ts)
    assert (stop.state.value, stop.reason) == ("unplanned_stop", "SAFETY")
    assert released.ts - pressed.ts == dt.timedelta(minutes=12)
    after = [e for e in imm2 if e.ts > pressed.ts]
    assert after and after[0].ts >= released.ts  # stopped until the e-stop was released

    with open_store(f"sqlite:///{tmp_path}/s.db") as store:
        store.apply_factory(scenario.factory, "moulding-cell-wear")
        store.append(keep.events)
        status = {s.machine: s for s in store.machine_status()}
        assert status[IMM2].state is not None
        plant = Plant(store)
        assert raise_alerts(plant) == {"alerts": 2, "near_misses": 1}
        assert raise_alerts(plant) == {"alerts": 0, "near_misses": 0}  # once per event
        alerts = {a.cause: a for a in list_alerts(store) if a.rule == "safety"}
        assert alerts["estop_pressed"].severity == "critical"
        assert alerts["area_scanner"].severity == "warning"

        lost = report(
            plant,
            "user:ho",
            kind=IncidentKind.INCIDENT,
            what="cut hand on mould",
            reported_by="ho",
            machine="imm-1",
            injury=True,
            lost_time=True,
            occurred_at=dt.datetime(2026, 11, 20, 9, tzinfo=dt.UTC),
        )
        days = days_since_lost_time(plant, now=dt.datetime(2026, 11, 25, 2, tzinfo=dt.UTC))
        assert days == [{"site": "yl", "last_lost_time": "2026-11-20T09:00:00.000Z", "days": 5}]
        with pytest.raises(InputError, match="say what was done"):
            advance(plant, lost, IncidentState.CLOSED, "user:ho")
        advance(plant, lost, IncidentState.INVESTIGATING, "user:ho", "mould guard checked")
        closed = advance(plant, lost, IncidentState.CLOSED, "user:ho", "gloves issued")
        assert (
            closed["state"] == "closed"
            and closed["actions"] == "mould guard checked\ngloves issued"
        )
        assert [r.action for r in audit_records(store, target=f"incident:{lost}")] == [
            "safety.report",
            "safety.investigate",
            "safety.close",
        ]
        with pytest.raises(InputError, match="a near miss injured nobody"):
            report(
                plant,
                "user:ho",
                kind=IncidentKind.NEAR_MISS,
                what="x",
                reported_by="ho",
                injury=True,
            )

        with serving(store) as (_, client):
            page = client.get("/safety", headers={"accept": "text/html"})
            assert page.status_code == 200
            text = page.text
            assert f'data-kind="estop_pressed" data-machine="{IMM2}"' in text
            assert 'data-kind="area_scanner"' in text
            assert "area scanner intrusion" in text  # the near miss entered for it
            assert 'data-site="yl"' in text
            answer = client.get("/api/v1/safety").json()
            assert answer["days_since_lost_time"][0]["site"] == "yl"
            assert [e["kind"] for e in answer["events"]][:1] == ["area_scanner"]
