"""Operator input through the API: a reason for a stop, counts typed in, corrections — each a new
event naming who entered it; the stored originals never change, and every reader sees the result."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from microfab.model.events import PartCount, StateChange, event_from_dict
from microfab.store import EventStore
from microfab.track.operator_input import restatement_id
from webapp import CNC1, CNC2, event, fill, serving

WINDOW = {"from": "2026-11-23", "to": "2026-11-24"}


@pytest.fixture
def api(store: EventStore) -> Iterator[httpx.Client]:
    fill(store)
    with serving(store) as (_, client):
        yield client


def post(client: httpx.Client, url: str, body: dict[str, Any], status: int = 201) -> Any:
    response = client.post(url, json=body)
    assert response.status_code == status, response.text
    return response.json()


def stored(store: EventStore, event_id: str) -> Any:
    (found,) = [s.event for s in store.events() if s.event.id == event_id]
    return found


def test_a_stop_gets_its_reason_as_a_restatement(api: httpx.Client, store: EventStore) -> None:
    stops = api.get("/api/v1/machines/cnc-2/stops", params={"unexplained": True}).json()
    assert [(s["event"], s["state"], s["seconds"]) for s in stops] == [
        ("s-21", "unplanned_stop", 1200.0)
    ]
    before = api.get("/api/v1/downtime", params=WINDOW).json()["pareto"]
    assert "UNPLANNED_STOP" in [r["reason"] for r in before]

    answer = post(
        api,
        "/api/v1/machines/cnc-2/reasons",
        {"event": "s-21", "reason": "UB-MECH", "by": "Chan Tai Man", "token": "tap-0001"},
    )
    assert answer["stored"] is True
    ev = answer["event"]
    assert (ev["id"], ev["state"], ev["reason"], ev["corrects"], ev["by"]) == (
        "s-21~tap-0001",
        "unplanned_stop",
        "UB-MECH",
        "s-21",
        "Chan Tai Man",
    )
    assert ev["ts"] == "2026-11-23T06:00:00.000Z"  # the stop's own time
    # the original is untouched; the restatement sorts after it
    original = stored(store, "s-21")
    assert isinstance(original, StateChange) and original.reason is None
    # the downtime Pareto now books the 20 minutes under the reason
    after = {r["reason"]: r for r in api.get("/api/v1/downtime", params=WINDOW).json()["pareto"]}
    assert "UNPLANNED_STOP" not in after
    assert after["UB-MECH"]["seconds"] == 1800.0 + 1200.0
    assert after["UB-MECH"]["machines"] == [CNC1, CNC2]
    stops = api.get("/api/v1/machines/cnc-2/stops").json()
    assert (stops[0]["reason"], stops[0]["reason_by"]) == ("UB-MECH", "Chan Tai Man")
    assert api.get("/api/v1/machines/cnc-2/stops", params={"unexplained": True}).json() == []

    # the same tap again stores nothing new
    again = post(
        api,
        "/api/v1/machines/cnc-2/reasons",
        {"event": "s-21", "reason": "UB-MECH", "by": "Chan Tai Man", "token": "tap-0001"},
        status=200,
    )
    assert again["stored"] is False
    # a different reason later wins (a newer restatement, sorted after the first)
    post(api, "/api/v1/machines/cnc-2/reasons", {"event": "s-21", "reason": "PM", "by": "Lee"})
    reasons = {r["reason"] for r in api.get("/api/v1/downtime", params=WINDOW).json()["pareto"]}
    assert "PM" in reasons


def test_a_new_stop_shows_at_once_and_takes_its_reason(
    api: httpx.Client, store: EventStore
) -> None:
    store.append([event("s-40", "2026-11-23T16:10:00+08:00", CNC2, "state", state="micro_stop")])
    assert api.get("/api/v1/machines/cnc-2").json()["reason"] is None
    post(api, "/api/v1/machines/cnc-2/reasons", {"event": "s-40", "reason": "UB", "by": "Wong"})
    machine = api.get("/api/v1/machines/cnc-2").json()
    assert (machine["state"], machine["reason"]) == ("micro_stop", "UB")
    assert api.get("/api/v1/status").json()["clock"] == "2026-11-23T08:10:00.000Z"


def test_counts_entered_by_hand(api: httpx.Client) -> None:
    before = api.get("/api/v1/machines/cnc-2").json()
    answer = post(
        api,
        "/api/v1/machines/cnc-2/counts",
        {"good": 12, "scrap": 1, "order": "WO-1", "ts": "2026-11-23T15:00", "by": "Ho"},
    )
    ev = answer["event"]
    assert (ev["good"], ev["scrap"], ev["order"], ev["operation"], ev["by"]) == (
        12,
        1,
        "WO-1",
        10,  # the step cnc-2 runs for BRKT-1, filled in
        "Ho",
    )
    assert ev["ts"] == "2026-11-23T07:00:00.000Z" and ev["id"].startswith("op-")
    after = api.get("/api/v1/machines/cnc-2").json()
    assert (after["good"], after["scrap"]) == (before["good"] + 12, before["scrap"] + 1)
    oee = api.get("/api/v1/oee", params={**WINDOW, "machine": "cnc-2"}).json()[0]
    assert (oee["good"], oee["scrap"]) == (32, 2)
    # a step the machine does not run is refused
    wrong = api.post(
        "/api/v1/machines/cnc-2/counts",
        json={"good": 1, "order": "WO-1", "operation": 20, "by": "Ho"},
    )
    assert wrong.status_code == 400 and "operation 20" in wrong.json()["error"]["message"]
    meter = api.post("/api/v1/machines/meter-1/counts", json={"good": 1, "by": "Ho"})
    assert meter.status_code == 400 and "countable" in meter.json()["error"]["message"]


def test_a_wrong_count_is_corrected_by_a_compensating_event(
    api: httpx.Client, store: EventStore
) -> None:
    answer = post(
        api,
        "/api/v1/machines/cnc-1/corrections",
        {"corrects": "c-2", "good": 190, "scrap": 15, "by": "Supervisor Lam"},
    )
    ev = answer["event"]
    assert (ev["corrects"], ev["good"], ev["scrap"], ev["by"]) == ("c-2", -10, 10, "Supervisor Lam")
    assert (ev["ts"], ev["order"], ev["operation"]) == ("2026-11-23T03:30:00.000Z", "WO-1", 10)
    original = stored(store, "c-2")
    assert isinstance(original, PartCount) and (original.good, original.scrap) == (200, 5)
    counts = {c["event"]: c for c in api.get("/api/v1/machines/cnc-1/counts").json()}
    assert (counts["c-2"]["good"], counts["c-2"]["scrap"]) == (190, 15)
    assert counts["c-2"]["reported"] == {"good": 200, "scrap": 5}
    assert counts["c-2"]["corrections"][0]["by"] == "Supervisor Lam"
    assert ev["id"] not in counts  # corrections are not listed as counts of their own
    machine = api.get("/api/v1/machines/cnc-1").json()
    assert (machine["good"], machine["scrap"]) == (750, 30)
    row = api.get("/api/v1/oee", params={**WINDOW, "machine": "cnc-1"}).json()[0]
    assert (row["good"], row["scrap"], row["total"]) == (750, 30, 780)
    # correcting again works from the corrected numbers; the net never goes below zero
    second = post(
        api,
        "/api/v1/machines/cnc-1/corrections",
        {"corrects": "c-2", "good": 200, "scrap": 0, "by": "Lam"},
    )["event"]
    assert (second["good"], second["scrap"]) == (10, -15)
    correction_of_correction = api.post(
        "/api/v1/machines/cnc-1/corrections",
        json={"corrects": second["id"], "good": 1, "scrap": 0, "by": "Lam"},
    )
    assert correction_of_correction.status_code == 400
    assert "itself a correction" in correction_of_correction.json()["error"]["message"]


def test_negative_counts_only_in_corrections() -> None:
    base = {"id": "x", "ts": "2026-11-23T00:00:00Z", "machine": CNC1, "stream": "count"}
    with pytest.raises(ValueError, match="greater than or equal to 0"):
        event_from_dict({**base, "good": -1})
    fixed = event_from_dict({**base, "good": -1, "scrap": 1, "corrects": "c-1", "by": "Lam"})
    assert isinstance(fixed, PartCount) and fixed.good == -1


@pytest.mark.parametrize(
    "original",
    ["s-21", "food-line-20261123T000000Z-s1-0000042", "x" * 64, "a" * 60 + "~~~~", "~" * 63 + "a"],
)
def test_restatement_ids_sort_after_the_original(original: str) -> None:
    restated = restatement_id(original, "abcdef12")
    assert restated > original and len(restated) <= 64
    assert all(0x21 <= ord(ch) <= 0x7E for ch in restated)
