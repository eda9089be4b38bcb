"""One JSON error shape for every error the API gives, with a sentence saying what was wrong."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from microfab.http.errors import ErrorBody
from microfab.store import open_store
from webapp import BACKENDS, CNC1, served_plant, serving


@pytest.fixture(scope="module", params=BACKENDS)
def api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[httpx.Client]:
    """The plant, served; only bad requests are sent, so a module shares one per back end."""
    with served_plant(request.param, tmp_path_factory.mktemp("errors")) as (_, client):
        yield client


def check_shape(response: httpx.Response, status: int, key: str) -> dict[str, Any]:
    """The error shape, exactly: {"error": {"status", "key", "message", "details"}}."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == ["error"]
    error = body["error"]
    assert set(error) == {"status", "key", "message", "details"}
    assert error["status"] == status and error["key"] == key
    message = error["message"]
    assert isinstance(message, str) and len(message) > 15 and "\n" not in message
    assert "Traceback" not in message and "Exception" not in message
    ErrorBody.model_validate(body)
    return error


BAD_REQUESTS = [
    # (method, url, params or json, status, key, words in the message)
    ("GET", "/api/v1/machines/cnc-9", None, 404, "not_found", ["cnc-9", "cnc-1"]),
    ("GET", "/api/v1/oee", {"line": "line9"}, 404, "not_found", ["line9", "kt/plant/line1"]),
    ("GET", "/api/v1/oee", {"machine": "robot-9"}, 404, "not_found", ["robot-9"]),
    ("GET", "/api/v1/events", {"machine": "nope"}, 404, "not_found", ["nope"]),
    (
        "GET",
        "/api/v1/oee",
        {"from": "2026-11-24", "to": "2026-11-23"},
        400,
        "invalid_time_range",
        ["'to'", "'from'", "2026-11-24"],
    ),
    (
        "GET",
        "/api/v1/events",
        {"from": "2026-11-23T10:00", "to": "2026-11-23T10:00"},
        400,
        "invalid_time_range",
        ["empty or inverted"],
    ),
    (
        "GET",
        "/api/v1/downtime",
        {"from": "yesterday"},
        400,
        "invalid_time_range",
        ["from", "yesterday"],
    ),
    (
        "GET",
        "/api/v1/oee.csv",
        {"to": "2026-13-45"},
        400,
        "invalid_time_range",
        ["to", "2026-13-45"],
    ),
    ("GET", "/api/v1/events", {"limit": "0"}, 422, "invalid_request", ["limit", "greater than"]),
    ("GET", "/api/v1/events", {"limit": "lots"}, 422, "invalid_request", ["limit", "integer"]),
    (
        "GET",
        "/api/v1/events",
        {"stream": "vibration"},
        422,
        "invalid_request",
        ["stream", "'state'"],
    ),
    ("GET", "/api/v1/oee", {"by": "week"}, 422, "invalid_request", ["by", "'shift'"]),
    ("GET", "/api/v1/events", {"cursor": "not-a-cursor"}, 400, "invalid_input", ["cursor"]),
    ("GET", "/api/v1/nothing-here", None, 404, "not_found", ["/api/v1/nothing-here"]),
    ("DELETE", "/api/v1/machines", None, 405, "method_not_allowed", ["DELETE"]),
    (
        "POST",
        "/api/v1/machines/cnc-1/counts",
        {"good": -5, "by": "Chan"},
        422,
        "invalid_request",
        ["field 'good'", "greater than or equal to 0"],
    ),
    (
        "POST",
        "/api/v1/machines/cnc-1/counts",
        {"good": "many", "by": "Chan"},
        422,
        "invalid_request",
        ["field 'good'"],
    ),
    (
        "POST",
        "/api/v1/machines/cnc-1/counts",
        {"good": 0, "scrap": 0, "by": "Chan"},
        400,
        "invalid_input",
        ["nothing to record"],
    ),
    (
        "POST",
        "/api/v1/machines/cnc-1/counts",
        {"good": 3},  # an API token says which operator typed it (a user is the operator)
        400,
        "invalid_input",
        ["'by'", "required"],
    ),
    (
        "POST",
        "/api/v1/machines/cnc-1/counts",
        {"good": 3, "by": "Chan", "order": "WO-404"},
        404,
        "not_found",
        ["WO-404"],
    ),
    (
        "POST",
        "/api/v1/machines/cnc-1/reasons",
        {"event": "s-2", "reason": "NOPE", "by": "Chan"},
        400,
        "invalid_input",
        ["NOPE", "UB-MECH"],
    ),
    (
        "POST",
        "/api/v1/machines/cnc-1/reasons",
        {"event": "s-21", "reason": "UB", "by": "Chan"},
        404,
        "not_found",
        ["s-21", CNC1],
    ),
    (
        "POST",
        "/api/v1/machines/cnc-1/corrections",
        {"corrects": "c-1", "good": 300, "scrap": 10, "by": "Chan"},
        400,
        "invalid_input",
        ["nothing to correct"],
    ),
]


@pytest.mark.parametrize(
    ("method", "url", "data", "status", "key", "words"),
    BAD_REQUESTS,
    ids=[f"{r[0]} {r[1]} {r[4]}-{i}" for i, r in enumerate(BAD_REQUESTS)],
)
def test_every_error_has_the_one_shape(
    api: httpx.Client,
    method: str,
    url: str,
    data: dict[str, Any] | None,
    status: int,
    key: str,
    words: list[str],
) -> None:
    query, body = (data, None) if method == "GET" else (None, data)
    response = api.request(method, url, params=query, json=body)
    error = check_shape(response, status, key)
    for word in words:
        assert word in error["message"], error["message"]


def test_malformed_fields_are_listed_in_details(api: httpx.Client) -> None:
    response = api.post("/api/v1/machines/cnc-1/counts", json={"good": -1, "scrap": "x"})
    error = check_shape(response, 422, "invalid_request")
    fields = {d["field"] for d in error["details"]}
    assert fields == {"body.good", "body.scrap"}
    broken = api.post(
        "/api/v1/machines/cnc-1/counts",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    check_shape(broken, 422, "invalid_request")


def test_no_factory_yet_is_a_conflict_that_says_what_to_run(tmp_path: Path) -> None:
    with open_store(f"sqlite:///{tmp_path}/empty.db") as empty, serving(empty) as (_, client):
        error = check_shape(client.get("/api/v1/machines"), 409, "no_factory")
        assert "microfab factory apply" in error["message"]
        # a browser asking for the page gets the same key and message as HTML
        page = client.get("/", headers={"accept": "text/html"})
        assert page.status_code == 409 and "text/html" in page.headers["content-type"]
        assert 'data-key="no_factory"' in page.text and "microfab factory apply" in page.text


def test_browser_pages_get_an_html_error_page(api: httpx.Client) -> None:
    page = api.get("/operator/kt/plant/line1/machining/cnc-9", headers={"accept": "text/html"})
    assert page.status_code == 404
    assert 'data-key="not_found"' in page.text and "cnc-9" in page.text
    # the same URL for a script: JSON
    check_shape(api.get("/operator/kt/plant/line1/machining/cnc-9"), 404, "not_found")
