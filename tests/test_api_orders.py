"""Work orders through the API: create, read, release, cancel, WIP and genealogy; invalid orders
answer with the one error shape."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from microfab.store import EventStore
from webapp import BACKENDS, CNC1, fill, served_plant, serving


@pytest.fixture(scope="module", params=BACKENDS)
def shared(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[httpx.Client]:
    """The plant, served, for the tests that change nothing (one per back end)."""
    with served_plant(request.param, tmp_path_factory.mktemp("orders")) as (_, client):
        yield client


@pytest.fixture
def api(store: EventStore) -> Iterator[httpx.Client]:
    """The plant on a database of its own, for a test that stores orders."""
    fill(store)
    with serving(store) as (_, client):
        yield client


def call(client: httpx.Client, method: str, url: str, status: int, **kwargs: Any) -> Any:
    response = client.request(method, url, **kwargs)
    assert response.status_code == status, response.text
    return response.json()


def test_list_and_read_orders(shared: httpx.Client) -> None:
    orders = call(shared, "GET", "/api/v1/orders", 200)
    assert [(o["order"], o["status"], o["late"]) for o in orders] == [
        ("WO-1", "in_progress", True),
        ("WO-2", "completed", False),
        ("WO-3", "released", False),
    ]
    assert [o["order"] for o in call(shared, "GET", "/api/v1/orders?late=true", 200)] == ["WO-1"]
    assert [o["order"] for o in call(shared, "GET", "/api/v1/orders?status=released", 200)] == [
        "WO-3"
    ]
    one = call(shared, "GET", "/api/v1/orders/WO-1", 200)
    assert (one["product"], one["quantity"], one["due"]) == (
        "BRKT-1",
        800,
        "2026-11-23T07:00:00.000Z",
    )
    assert [op["operation"] for op in one["operations"]] == [10, 20]
    assert one["as_of"] == "2026-11-23T07:59:00.000Z"  # the plant clock


def test_create_release_cancel(api: httpx.Client) -> None:
    body = {"order": "WO-9", "product": "BRKT-1", "quantity": 40, "due": "2026-11-24T12:00"}
    created = call(api, "POST", "/api/v1/orders", 201, json=body)
    assert created["stored"] == 1
    order = created["order"]
    assert (order["order"], order["status"], order["due"]) == (
        "WO-9",
        "created",
        "2026-11-24T04:00:00.000Z",  # site time, Hong Kong
    )
    # a retry stores nothing and says so
    assert call(api, "POST", "/api/v1/orders", 200, json=body)["stored"] == 0
    released = call(api, "POST", "/api/v1/orders/WO-9/release", 201)
    assert released["order"]["status"] == "released"
    assert call(api, "POST", "/api/v1/orders/WO-9/release", 200)["stored"] == 0
    cancelled = call(api, "POST", "/api/v1/orders/WO-9/cancel", 201)
    assert cancelled["order"]["status"] == "cancelled"
    refused = call(api, "POST", "/api/v1/orders/WO-9/release", 400)
    assert "cancelled order cannot be released" in refused["error"]["message"]
    # created and released at once, with the next number of the day
    quick = call(
        api,
        "POST",
        "/api/v1/orders",
        201,
        json={"product": "BRKT-1", "quantity": 5, "release": True},
    )
    assert quick["stored"] == 2 and quick["order"]["status"] == "released"
    board = call(api, "GET", "/api/v1/dashboard", 200)["orders"]
    assert quick["order"]["order"] in [c["order"] for c in board["queued"]]


@pytest.mark.parametrize(
    ("body", "status", "key", "words"),
    [
        ({"product": "BRKT-1", "quantity": 0}, 400, "invalid_input", ["quantity", "from 1"]),
        ({"product": "BRKT-1", "quantity": -3}, 400, "invalid_input", ["quantity", "-3"]),
        ({"product": "BRKT-1", "quantity": "ten"}, 422, "invalid_request", ["field 'quantity'"]),
        ({"product": "BRKT-1"}, 422, "invalid_request", ["field 'quantity'", "required"]),
        ({"product": "NOPE", "quantity": 3}, 404, "not_found", ["NOPE", "BRKT-1"]),
        (
            {"product": "BRKT-1", "quantity": 3, "due": "soon"},
            400,
            "invalid_time_range",
            ["due", "soon"],
        ),
        ({"product": "BRKT-1", "quantity": 3, "priority": 12}, 400, "invalid_input", ["priority"]),
        ({"order": "WO-1", "product": "BRKT-1", "quantity": 3}, 400, "invalid_input", ["WO-1"]),
    ],
)
def test_invalid_orders_are_refused_with_a_sentence(
    shared: httpx.Client, body: dict[str, Any], status: int, key: str, words: list[str]
) -> None:
    error = call(shared, "POST", "/api/v1/orders", status, json=body)["error"]
    assert (error["status"], error["key"]) == (status, key)
    for word in words:
        assert word in error["message"], error["message"]


def test_unknown_order(shared: httpx.Client) -> None:
    for method, url in (
        ("GET", "/api/v1/orders/WO-404"),
        ("POST", "/api/v1/orders/WO-404/release"),
        ("POST", "/api/v1/orders/WO-404/cancel"),
        ("GET", "/api/v1/orders/WO-404/trace"),
    ):
        error = call(shared, method, url, 404)["error"]
        assert error["key"] == "not_found" and "WO-404" in error["message"]
    bad = call(shared, "GET", "/api/v1/orders?status=lost", 422)["error"]
    assert "status" in bad["message"]


def test_wip_and_genealogy(shared: httpx.Client) -> None:
    report = call(shared, "GET", "/api/v1/wip", 200)
    assert report["units"] == sum(r["units"] for r in report["rows"])
    trace = call(shared, "GET", "/api/v1/orders/WO-1/trace", 200)
    assert trace["order"] == "WO-1"
    machines = {b["machine"] for b in trace["batches"]}
    assert CNC1 in machines
    assert sum(b["good"] for b in trace["batches"] if b["machine"] == CNC1) == 760


def test_orders_placed_on_a_simulated_plant_carry_its_clock(store: EventStore) -> None:
    """The demo serves the app with the simulation's clock: an order created, released or
    cancelled there is stamped in the simulated day, not today, so the plant clock stays put."""
    import datetime as dt

    fill(store)
    simulated = dt.datetime(2026, 11, 23, 9, 30, tzinfo=dt.UTC)
    before = store.last_seq()
    with serving(store, clock=lambda: simulated) as (_, client):
        call(client, "POST", "/api/v1/orders", 201, json={"order": "WO-S", "product": "BRKT-1",
             "quantity": 3, "release": True})  # fmt: skip
        call(client, "POST", "/api/v1/orders/WO-S/cancel", 201)
    written = [e.event for e in store.events() if e.seq > before]
    assert sorted(getattr(e, "event", None) for e in written) == [
        "cancelled",
        "created",
        "released",
    ]
    assert {e.ts for e in written} == {simulated}
