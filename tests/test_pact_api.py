"""PACT's REST endpoints for customers: the client-credentials grant at ``/auth/token``, and
``/3/footprints`` (list, pagination, filters) and ``/3/footprints/{id}`` over the simulated food
line, validated against the PACT v3.0.3 schema; PACT's error shape, 401 and 403."""

from __future__ import annotations

import datetime as dt
import json
import zoneinfo
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

from conftest import pact_spec
from microfab.cli import app as cli
from microfab.errors import MicrofabError
from microfab.green.pact_footprints import PactPeriodText, last_complete_month
from microfab.model.identity import Role
from microfab.sim.engine import FactorySimulation
from microfab.sim.scenario import load_scenario
from microfab.store import open_store
from microfab.store.sink import StoreSink
from webapp import add_test_user, api_token, serving

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = ROOT / "docs" / "examples" / "carbon-food-line.yaml"
MONTH = "2026-11"  # the food line runs on 2026-11-23 from 08:00 HKT
PRODUCTS = ["MEAL-CHK-RICE", "MEAL-VEG-NOODLE"]


def _spec() -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load(
        (pact_spec() / "pact-openapi-3.0.3.yaml").read_text("utf-8")
    )
    return spec


def _validator(ref: str) -> jsonschema.Draft202012Validator:
    schema = {"$ref": ref, "components": _spec()["components"]}
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def _errors(document: Any, ref: str = "#/components/schemas/ProductFootprint") -> list[str]:
    found = _validator(ref).iter_errors(document)
    return [f"{list(e.absolute_path)}: {e.message}" for e in found]


def _is_pact_error(response: httpx.Response, status: int, code: str) -> bool:
    body = response.json()
    return (
        response.status_code == status
        and body["code"] == code
        and _errors(body, "#/components/schemas/Error") == []
    )


@pytest.fixture(scope="module")
def food_line(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The demo's food line, eight simulated hours (``microfab demo --scenario food-line
    --duration 8h --seed 1``), in a SQLite file, and a customer's footprints.read token made with
    ``microfab tokens create``: the store's URL."""
    url = f"sqlite:///{tmp_path_factory.mktemp('pact')}/fl.db"
    scenario = load_scenario("food-line")
    with open_store(url) as store:
        store.apply_factory(scenario.factory, "food-line")
        sink = StoreSink(store, batch_size=5000)
        FactorySimulation(scenario, sink, seed=1).run_until(8 * 3600)  # from 08:00 HKT
        sink.flush()
    return url


@pytest.fixture(scope="module")
def customer(food_line: str) -> tuple[str, str]:
    """The client id and secret of a customer's token (``--scope footprints.read``)."""
    made = CliRunner().invoke(
        cli, ["tokens", "create", "acme-pact", "--scope", "footprints.read", "--db", food_line]
    )
    assert made.exit_code == 0, made.output
    secret = next(line for line in made.stdout.splitlines() if line.startswith("mfb_"))
    return "acme-pact", secret.strip()


@pytest.fixture(scope="module")
def served(food_line: str) -> Iterator[tuple[str, httpx.Client]]:
    """The app for the month of the food line's day; a client without credentials."""
    with (
        open_store(food_line) as store,
        serving(store, role=None, carbon_settings=SETTINGS, pact_period=MONTH) as (url, client),
    ):
        yield url, client


def _bearer(client: httpx.Client, customer: tuple[str, str]) -> dict[str, str]:
    answer = client.post(
        "/auth/token", data={"grant_type": "client_credentials"}, auth=customer
    ).json()
    return {"Authorization": f"Bearer {answer['access_token']}"}


def test_the_client_credentials_grant_takes_the_token_by_basic_auth(
    served: tuple[str, httpx.Client], customer: tuple[str, str], food_line: str
) -> None:
    _, client = served
    name, secret = customer
    granted = client.post("/auth/token", data={"grant_type": "client_credentials"}, auth=customer)
    assert granted.status_code == 200
    assert granted.headers["cache-control"] == "no-store"
    assert granted.json() == {"access_token": secret, "token_type": "bearer"}  # never expires

    for wrong in ((name, secret[:-2] + "xx"), ("someone-else", secret), (name, "not-a-token")):
        refused = client.post("/auth/token", data={"grant_type": "client_credentials"}, auth=wrong)
        assert refused.status_code == 401
        assert refused.json()["error"] == "invalid_client"
        assert refused.headers["www-authenticate"].startswith("Basic")
    bare = client.post("/auth/token", data={"grant_type": "client_credentials"})
    assert bare.status_code == 401
    by_form = client.post(
        "/auth/token",
        data={"grant_type": "client_credentials", "client_id": name, "client_secret": secret},
    )
    assert by_form.json()["access_token"] == secret

    with open_store(food_line) as store:  # the password grant still works
        user, password = add_test_user(store, Role.VIEWER)
    signed_in = client.post("/auth/token", data={"username": user, "password": password})
    assert signed_in.status_code == 200
    assert signed_in.json()["expires_in"] > 0
    missing = client.post("/auth/token", data={})
    assert missing.status_code == 422
    assert missing.json()["error"]["key"] == "invalid_request"


def test_list_and_get_are_valid_pact_documents_with_the_numbers_of_carbon_export(
    served: tuple[str, httpx.Client], customer: tuple[str, str], food_line: str, tmp_path: Path
) -> None:
    _, client = served
    headers = _bearer(client, customer)
    listed = client.get("/3/footprints", headers=headers)
    assert listed.status_code == 200
    assert "link" not in listed.headers
    data = listed.json()["data"]
    assert [d["productIds"][0].rsplit(":", 1)[1] for d in data] == PRODUCTS
    for document in data:
        assert _errors(document) == []
        assert document["pcf"]["referencePeriodStart"] == "2026-10-31T16:00:00.000Z"
        assert document["pcf"]["referencePeriodEnd"] == "2026-11-30T16:00:00.000Z"
        one = client.get(f"/3/footprints/{document['id']}", headers=headers)
        assert one.status_code == 200
        assert one.json() == {"data": document}

    again = client.get("/3/footprints", headers=headers).json()["data"]
    assert [d["id"] for d in again] == [d["id"] for d in data]
    with (  # a new server over the same data gives the same ids
        open_store(food_line) as store,
        serving(store, role=None, carbon_settings=SETTINGS, pact_period=MONTH) as (_, other),
    ):
        restarted = other.get("/3/footprints", headers=headers).json()["data"]
        assert [d["id"] for d in restarted] == [d["id"] for d in data]
    with (  # default period: October, the last complete month before the plant clock: nothing
        open_store(food_line) as store,
        serving(store, role=None, carbon_settings=SETTINGS) as (_, october),
    ):
        assert october.get("/3/footprints", headers=headers).json() == {"data": []}

    output = tmp_path / "pact.json"
    exported = CliRunner().invoke(
        cli,
        ["carbon", "export", "--product", "MEAL-CHK-RICE", "--from", "2026-11-01",
         "--to", "2026-12-01", "--settings", str(SETTINGS), "--db", food_line,
         "--output", str(output)],
    )  # fmt: skip
    assert exported.exit_code == 0, exported.output
    document = json.loads(output.read_text("utf-8"))
    assert document["id"] == data[0]["id"]
    assert document["pcf"] == data[0]["pcf"]
    assert float(document["pcf"]["pcfExcludingBiogenicUptake"]) > 0


def test_pagination_follows_the_link_header(
    served: tuple[str, httpx.Client], customer: tuple[str, str]
) -> None:
    url, client = served
    headers = _bearer(client, customer)
    first = client.get("/3/footprints", params={"limit": 1}, headers=headers)
    assert first.status_code == 200
    assert len(first.json()["data"]) == 1
    link = first.headers["link"]
    assert link.startswith("<") and link.endswith('>; rel="next"')
    target = link[1 : link.index(">")]
    assert urlsplit(target).netloc == urlsplit(url).netloc  # absolute, the same host
    second = client.get(target, headers=headers)
    assert second.status_code == 200
    assert "link" not in second.headers
    everything = client.get("/3/footprints", headers=headers).json()["data"]
    assert first.json()["data"] + second.json()["data"] == everything
    assert client.get(target, headers=headers).json() == second.json()  # callable again

    none = client.get("/3/footprints", params={"limit": 0}, headers=headers)
    assert none.json() == {"data": []}
    assert "offset=0" in none.headers["link"]

    noodle = client.get(
        "/3/footprints",
        params={"productId": everything[1]["productIds"][0].upper(), "geography": "hk"},
        headers=headers,
    ).json()["data"]
    assert noodle == [everything[1]]
    assert client.get("/3/footprints", params={"geography": "DE"}, headers=headers).json() == {
        "data": []
    }
    valid = client.get("/3/footprints", params={"validOn": "2027-06-01T00:00:00Z"}, headers=headers)
    assert len(valid.json()["data"]) == 2
    before = client.get("/3/footprints", params={"validOn": "2026-11-15"}, headers=headers)
    assert before.json() == {"data": []}  # valid only from the reference period's end
    bad = client.get("/3/footprints", params={"limit": "many"}, headers=headers)
    assert _is_pact_error(bad, 400, "BadRequest")
    assert _is_pact_error(
        client.get("/3/footprints", params={"status": "Gone"}, headers=headers), 400, "BadRequest"
    )


def test_credentials_and_errors_have_pact_shape(
    served: tuple[str, httpx.Client], customer: tuple[str, str], food_line: str
) -> None:
    _, client = served
    some_id = "397cf99d-419e-5a56-9aaa-805d1fa0226e"
    for path in ("/3/footprints", f"/3/footprints/{some_id}"):
        anonymous = client.get(path)
        assert _is_pact_error(anonymous, 401, "TokenExpired")
        assert anonymous.headers["www-authenticate"] == "Bearer"
        bad = client.get(path, headers={"Authorization": "Bearer mfb_0000_nope"})
        assert _is_pact_error(bad, 401, "TokenExpired")
    with open_store(food_line) as store:
        viewer = {"Authorization": f"Bearer {api_token(store, Role.VIEWER)}"}
    denied = client.get("/3/footprints", headers=viewer)
    assert _is_pact_error(denied, 403, "AccessDenied")
    assert "footprints.read" in denied.json()["message"]

    headers = _bearer(client, customer)
    missing = client.get("/3/footprints/00000000-0000-0000-0000-000000000000", headers=headers)
    assert _is_pact_error(missing, 404, "NotFound")
    read_only = client.post("/3/footprints", headers=headers, json={})
    assert read_only.status_code == 405
    assert read_only.json()["code"] == "BadRequest"
    plant = client.get("/api/v1/status", headers=headers)  # the customer sees nothing else
    assert plant.status_code == 403
    assert plant.json()["error"]["key"] == "forbidden"


def test_the_period_is_a_month_or_a_range_in_site_time() -> None:
    hk = zoneinfo.ZoneInfo("Asia/Hong_Kong")
    assert PactPeriodText("2026-12").range(hk) == (
        dt.datetime(2026, 11, 30, 16, tzinfo=dt.UTC),
        dt.datetime(2026, 12, 31, 16, tzinfo=dt.UTC),
    )
    assert PactPeriodText("2026-11-23T08:00..2026-11-23T16:00").range(hk) == (
        dt.datetime(2026, 11, 23, 0, tzinfo=dt.UTC),
        dt.datetime(2026, 11, 23, 8, tzinfo=dt.UTC),
    )
    january = dt.datetime(2027, 1, 5, 3, tzinfo=dt.UTC)
    assert last_complete_month(january, hk) == PactPeriodText("2026-12").range(hk)
    for bad in ("2026-13", "soon", "2026-11-02..2026-11-01", "..2026-11-01"):
        with pytest.raises(MicrofabError):
            PactPeriodText(bad)
