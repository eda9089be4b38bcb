"""Issue 15, finding 7: extreme times and numbers on every route answer 4xx naming the field,
never 5xx.

The routes come from the app's OpenAPI document: every query, path or JSON body field that takes a
time, a day or a number gets 0001-01-01, 9999-12-31, 1970-01-01, offsets that push a time past
either end, huge and negative numbers, NaN and infinity. The pages outside the document that take
such fields (the order form, the plan form, the operator forms, the shift report, the live stream)
get the same. A route that answered 500 on any of them before is listed in ``KNOWN`` and must be
among those exercised, so the enumeration cannot silently shrink.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from webapp import BACKENDS, CNC1, served_plant

TIMES = [
    "0001-01-01",
    "9999-12-31",
    "1970-01-01",
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59.999-12:00",
    "9999-12-31T23:59:59.999Z",
    "2100-01-01",
    "99999-01-01",
]
NUMBERS = [
    "99999999999999999999999999",
    "-99999999999999999999999999",
    "-1",
    "1e308",
    "-1e308",
    "nan",
    "inf",
]
TIME_WORDS = re.compile(
    r"(^|_)(ts|due|day|from|to|time|start|end|as_of|since|until|expires)$|^valid"
)

REFUSALS = {"invalid_time_range", "invalid_request", "over_limit"}
"""Keys of an answer refusing the value sent (it must name the field)."""

KNOWN = {
    ("GET", "/api/v1/oee", "from"),
    ("GET", "/api/v1/oee", "to"),
    ("GET", "/api/v1/downtime", "from"),
    ("GET", "/api/v1/downtime", "to"),
    ("GET", "/api/v1/plan/gantt", "from"),
    ("GET", "/report/shift.pdf", "day"),
    ("POST", "/api/v1/orders", "due"),
    ("POST", "/api/v1/orders", "quantity"),
    ("POST", "/api/v1/plan", "horizon"),
    ("POST", "/api/v1/plan", "time_limit"),
    ("POST", "/api/v1/machines/{machine}/counts", "ts"),
    ("GET", "/api/v1/events", "from"),
    ("GET", "/api/v1/carbon/intensity", "to"),
    ("POST", "/api/v1/alerts/{alert_id}/ack", "alert_id"),
}


@pytest.fixture(scope="module", params=BACKENDS)
def api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[httpx.Client]:
    with served_plant(request.param, tmp_path_factory.mktemp("plant")) as (_, client):
        client.timeout = httpx.Timeout(120)
        yield client


def _kind(name: str, schema: dict[str, Any]) -> str | None:
    """``time``, ``number`` or None (a field this test leaves alone)."""
    types = {schema.get("type")} | {s.get("type") for s in schema.get("anyOf", [])}
    if types & {"integer", "number"}:
        return "number"
    if "string" in types and (TIME_WORDS.search(name) or name == "horizon"):
        return "time"
    return None


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    for option in [schema, *schema.get("anyOf", [])]:
        ref = option.get("$ref")
        if ref:
            found: dict[str, Any] = document["components"]["schemas"][ref.rsplit("/", 1)[-1]]
            return found
    return schema


BODIES: dict[str, dict[str, Any]] = {
    # a valid body per route, one field of which is replaced at a time
    "/api/v1/orders": {"product": "BRKT-1", "quantity": 5, "due": "2026-11-25T12:00"},
    "/api/v1/machines/{machine}/counts": {"good": 1, "scrap": 0, "by": "x"},
    "/api/v1/machines/{machine}/reasons": {"reason": "UB-MECH", "by": "x"},
    "/api/v1/machines/{machine}/corrections": {"good": 1, "scrap": 0, "by": "x"},
    "/api/v1/plan": {"time_limit": 0.5},
    "/api/v1/maintenance/orders": {"machine": CNC1, "problem": "x"},
    "/api/v1/maintenance/orders/{order_id}/schedule": {
        "start": "2026-11-24T09:00:00+08:00",
        "end": "2026-11-24T10:00:00+08:00",
    },
    "/api/v1/stock/moves": {
        "id": "limits-1",
        "ts": "2026-11-23T09:00:00+08:00",
        "kind": "receipt",
        "item": "x",
        "qty": 1,
        "unit": "kg",
        "to": "x",
    },
}
PATHS = {
    "machine": CNC1,
    "order": "WO-1",
    "id": "x",
    "kind": "progress",
    "alert_id": "1",
    "order_id": "1",
    "incident_id": "1",
}


def _cases(document: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """(method, path template, where, field, kind) for every time or number field."""
    found = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                kind = _kind(parameter["name"], parameter["schema"])
                if kind:
                    found.append((method.upper(), path, parameter["in"], parameter["name"], kind))
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                schema = _resolve(document, content["application/json"]["schema"])
                for name, field in schema.get("properties", {}).items():
                    kind = _kind(name, _resolve(document, field))
                    if kind:
                        found.append((method.upper(), path, "body", name, kind))
    return found


def _send(
    api: httpx.Client, method: str, path: str, where: str, name: str, value: str
) -> httpx.Response:
    url = path
    for key, default in PATHS.items():
        url = url.replace("{" + key + "}", value if where == "path" and key == name else default)
    if where == "query":
        return api.request(method, url, params={name: value})
    if where == "body":
        body = dict(BODIES.get(path, {}))
        body[name] = _typed(value)
        return api.request(method, url, json=body)
    return api.request(method, url)


def _typed(value: str) -> Any:
    """A number as JSON has it (NaN and infinity as text: JSON has no such number)."""
    try:
        number = int(value)
    except ValueError:
        try:
            as_float = float(value)
        except ValueError:
            return value
        return value if as_float != as_float or abs(as_float) == float("inf") else as_float
    return number


def test_every_time_and_number_field_of_the_api_answers_4xx_never_5xx(
    api: httpx.Client,
) -> None:
    document = api.get("/openapi.json").json()
    cases = _cases(document)
    covered = {(method, path, name) for method, path, _, name, _ in cases}
    assert covered >= KNOWN, sorted(KNOWN - covered)
    failures = []
    for method, path, where, name, kind in cases:
        for value in TIMES if kind == "time" else NUMBERS:
            try:
                answer = _send(api, method, path, where, name, value)
            except httpx.TransportError as exc:  # the server broke off: a 500 in the log
                failures.append((method, path, name, value, "no answer", str(exc)))
                continue
            pdf_missing = answer.status_code == 501 and path.endswith(".pdf")
            if answer.status_code >= 500 and not pdf_missing:
                failures.append((method, path, name, value, answer.status_code, answer.text[:200]))
            elif answer.status_code in (400, 422) and value in ("0001-01-01", "9999-12-31"):
                body = answer.json()
                if body.get("error", {}).get("key") not in REFUSALS:
                    continue  # refused for another reason (e.g. no funding ledger)
                error = body.get("error", body)  # PACT's routes answer {"code", "message"}
                if name not in error["message"] and not any(
                    name in d["field"] for d in error.get("details", [])
                ):
                    failures.append((method, path, name, value, "field not named", error))
    assert not failures, "\n".join(repr(f) for f in failures)
    # afterwards the product still answers
    for url in ("/api/v1/oee", "/api/v1/downtime", "/api/v1/orders", "/api/v1/dashboard", "/"):
        assert api.get(url).status_code == 200, url


PAGE_CASES = [
    ("GET", "/report/shift", "day", TIMES),
    ("GET", "/live", "since", NUMBERS),
    ("GET", "/funding/report/progress", "as_of", TIMES),
    ("POST", "/orders/new", "due", TIMES),
    ("POST", "/orders/new", "quantity", NUMBERS),
    ("POST", "/orders/new", "priority", NUMBERS),
    ("POST", "/plan", "time_limit", NUMBERS),
    ("POST", "/plan", "down_for", [f"{n}d" for n in NUMBERS[:1]] + TIMES[:2]),
    ("POST", f"/operator/{CNC1}/counts", "ts", TIMES),
    ("POST", f"/operator/{CNC1}/counts", "good", NUMBERS),
    ("POST", "/alerts/99999999999999999999999999/ack", "", [""]),
]
FORMS: dict[str, dict[str, str]] = {
    "/orders/new": {"product": "BRKT-1", "quantity": "5", "due": "2026-11-25T12:00"},
    "/plan": {"time_limit": "0.5", "down_machine": "cnc-1", "down_for": "1h"},
    f"/operator/{CNC1}/counts": {"good": "1", "scrap": "0", "by": "x"},
}


@pytest.mark.parametrize(("method", "path", "name", "values"), PAGE_CASES)
def test_pages_taking_times_and_numbers_answer_4xx_never_5xx(
    api: httpx.Client, method: str, path: str, name: str, values: list[str]
) -> None:
    for value in values:
        if method == "GET":
            if path == "/live":  # a stream: a refused value answers at once, a good one streams
                with api.stream("GET", path, params={name: value}) as answer:
                    assert answer.status_code < 500, (name, value)
                continue
            answer = api.get(path, params={name: value}, headers={"Accept": "text/html"})
        else:
            answer = api.post(path, data={**FORMS.get(path, {}), name: value})
        assert answer.status_code < 500, (path, name, value, answer.text[:300])


def test_an_order_due_in_year_1_is_refused_naming_due(api: httpx.Client) -> None:
    answer = api.post("/api/v1/orders", json={**BODIES["/api/v1/orders"], "due": "0001-01-01"})
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["key"] == "invalid_time_range"
    assert error["message"].startswith("due: '0001-01-01' is outside the times microfab takes")
    form = api.post("/orders/new", data={**FORMS["/orders/new"], "due": "0001-01-01"})
    assert form.status_code == 400 and "due: &#39;0001-01-01&#39; is outside" in form.text


def test_a_shift_report_of_year_9999_is_refused_naming_day(api: httpx.Client) -> None:
    for path in ("/report/shift", "/report/shift.pdf"):
        answer = api.get(path, params={"day": "9999-12-31"})
        assert answer.status_code == 400, (path, answer.text[:300])
        assert "day: '9999-12-31' is outside" in answer.text.replace("&#39;", "'")


def test_the_openapi_document_lists_the_time_fields(tmp_path: Path) -> None:
    """The enumeration reads what it should: a query time, a body time, a body number."""
    document = {
        "paths": {
            "/a": {
                "get": {
                    "parameters": [
                        {"in": "query", "name": "from", "schema": {"anyOf": [{"type": "string"}]}},
                        {"in": "query", "name": "line", "schema": {"type": "string"}},
                    ]
                },
                "post": {
                    "requestBody": {
                        "content": {"application/json": {"schema": {"$ref": "#/c/schemas/B"}}}
                    }
                },
            }
        },
        "components": {
            "schemas": {"B": {"properties": {"due": {"type": "string"}, "n": {"type": "integer"}}}}
        },
    }
    assert _cases(document) == [
        ("GET", "/a", "query", "from", "time"),
        ("POST", "/a", "body", "due", "time"),
        ("POST", "/a", "body", "n", "number"),
    ]
