"""Every page of the app over a demo-like plant, for the phone-layout and 中文 tests.

The plant is the demo's food line, eight simulated hours (as ``microfab demo --scenario food-line
--duration 8h --seed 1``), with the example carbon settings and funding ledger, and a plan made
through the plan page. The pages are enumerated from the app itself: every ``GET`` route that
answers HTML, plus the API docs, with its path parameters filled from the plant.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute

from microfab.app import create_app
from microfab.http.server import BackgroundServer
from microfab.model.identity import Role
from microfab.sim.engine import FactorySimulation
from microfab.sim.scenario import load_scenario
from microfab.store import EventStore, open_store
from microfab.store.sink import StoreSink
from webapp import add_test_user, api_token

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "docs" / "examples"
FUNDING_REPORTS = ("evidence", "progress", "final", "benefit")


def page_routes(app: FastAPI) -> list[str]:
    """The path of every page: GET routes answering HTML (their templates, not filled in)."""
    found: list[str] = []
    for route in app.routes:
        inner = getattr(route, "original_router", None)
        for sub in [route] if inner is None else inner.routes:
            if (
                isinstance(sub, APIRoute)
                and "GET" in sub.methods
                and (sub.response_class is HTMLResponse or sub.path == "/docs")
            ):
                found.append(sub.path)
    return found


def page_urls(app: FastAPI, store: EventStore) -> list[str]:
    """Every page route with its parameters filled from the plant: each machine's operator page
    once (the first), one order page, each funding report."""
    stored = store.factory()
    assert stored is not None
    machine = stored[1].machines()[0].path
    order = next(o.order for o in store.order_status())
    urls: list[str] = []
    for path in page_routes(app):
        if "{kind}" in path:
            urls.extend(path.replace("{kind}", kind) for kind in FUNDING_REPORTS)
        else:
            url = re.sub(r"\{machine(:path)?\}", machine, path).replace("{order}", order)
            url = url.replace("{site}", machine.split("/", 1)[0])  # HQ's site page
            urls.append(url.replace("{order_id}", "1"))  # the maintenance work order made below
    return urls


@contextmanager
def demo_site(folder: Path) -> Iterator[tuple[str, httpx.Client, list[str], tuple[str, str]]]:
    """The app over the demo-like plant on a free port: its URL, an admin API client, the page
    URLs (paths) and an admin user's name and password, for signing in in a browser."""
    scenario = load_scenario("food-line")
    with open_store(f"sqlite:///{folder}/demo.db") as store:
        store.apply_factory(scenario.factory, "food-line")
        sink = StoreSink(store, batch_size=5000)
        FactorySimulation(scenario, sink, seed=1).run_until(8 * 3600)
        sink.flush()
        admin = add_test_user(store, Role.ADMIN)
        app = create_app(
            store,
            plan_file=folder / "plan.json",
            carbon_settings=EXAMPLES / "carbon-food-line.yaml",
            funding_ledger=EXAMPLES / "nifs-ledger.yaml",
        )
        headers = {"Authorization": f"Bearer {api_token(store, Role.ADMIN)}"}
        with (
            BackgroundServer(app) as server,
            httpx.Client(base_url=server.url, timeout=60, headers=headers) as client,
        ):
            planned = client.post("/plan", data={"time_limit": "2"})
            assert planned.status_code == 303, planned.text
            # a scheduled maintenance work order, for its page and the technician's (issue 21);
            # not started, which would store a state change at today's wall-clock time
            machine = scenario.factory.machines()[0].path
            job = client.post(
                "/api/v1/maintenance/orders",
                json={"machine": machine, "kind": "preventive", "problem": "lubricate"},
            )
            assert job.status_code == 200, job.text
            window = {"start": "2026-11-23T16:00:00+08:00", "end": "2026-11-23T17:00:00+08:00"}
            scheduled = client.post(
                f"/api/v1/maintenance/orders/{job.json()['id']}/schedule", json=window
            )
            assert scheduled.status_code == 200, scheduled.text
            yield server.url, client, page_urls(app, store), admin
