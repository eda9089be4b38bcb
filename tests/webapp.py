"""A small plant for the API, dashboard and browser tests, and the app served on a free port.

The factory is tests/data/factory-small.yaml (line kt/plant/line1: cnc-1, robot-1, cnc-2 and an
energy meter; day shift 08:00–16:00 Mon–Fri with lunch 12:00–12:30). The events are the OEE worked
example on cnc-1 (docs/oee.md), robot-1 unloading, a stop without a reason on cnc-2, and three
orders: WO-1 in progress (due 15:00, so late at the plant clock 15:59), WO-2 completed on time,
WO-3 released and waiting.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import DATA, pg_create_database, pg_drop_database
from microfab.app import create_app
from microfab.http.server import BackgroundServer
from microfab.model.events import EVENT_ADAPTER, Event
from microfab.model.factory_file import parse_factory
from microfab.model.identity import Role
from microfab.store import EventStore, open_store
from microfab.store.identity import add_user, create_token
from microfab.web.live import apply_patch

LINE = "kt/plant/line1"
CNC1 = f"{LINE}/machining/cnc-1"
ROBOT1 = f"{LINE}/machining/robot-1"
CNC2 = f"{LINE}/utility/cnc-2"
METER = f"{LINE}/utility/meter-1"
DAY = "2026-11-23"


def at(hhmm: str, day: str = DAY) -> str:
    """A Hong Kong time on the test day, as event text."""
    return f"{day}T{hhmm}:00+08:00"


def utc(hhmm: str, day: str = DAY) -> dt.datetime:
    return dt.datetime.fromisoformat(at(hhmm, day)).astimezone(dt.UTC)


def event(id_: str, ts: str, machine: str, stream: str, **fields: Any) -> Event:
    return EVENT_ADAPTER.validate_python(
        {"id": id_, "ts": ts, "machine": machine, "stream": stream, **fields}
    )


def plant_events() -> list[Event]:
    return [
        # orders
        event(
            "o-1",
            at("07:50"),
            CNC1,
            "order",
            order="WO-1",
            event="released",
            product="BRKT-1",
            quantity=800,
            due=at("15:00"),
        ),
        event(
            "o-2",
            at("07:51"),
            CNC2,
            "order",
            order="WO-2",
            event="released",
            product="BRKT-1",
            quantity=20,
            due=at("18:00"),
        ),
        event(
            "o-3",
            at("07:52"),
            CNC1,
            "order",
            order="WO-3",
            event="released",
            product="BRKT-1",
            quantity=50,
            due=at("17:00", "2026-11-24"),
        ),
        event("o-4", at("08:00"), CNC1, "order", order="WO-1", event="started", operation=10),
        event("o-5", at("08:01"), CNC2, "order", order="WO-2", event="started", operation=10),
        event("o-6", at("09:30"), CNC2, "order", order="WO-2", event="completed"),
        # the OEE worked example on cnc-1
        event("s-1", at("08:00"), CNC1, "state", state="running"),
        event("s-2", at("10:00"), CNC1, "state", state="unplanned_stop", reason="UB-MECH"),
        event("s-3", at("10:30"), CNC1, "state", state="running"),
        event("s-4", at("12:00"), CNC1, "state", state="planned_stop", reason="PB"),
        event("s-5", at("12:30"), CNC1, "state", state="running"),
        event("c-1", at("09:00"), CNC1, "count", good=300, scrap=10, order="WO-1", operation=10),
        event("c-2", at("11:30"), CNC1, "count", good=200, scrap=5, order="WO-1", operation=10),
        event("c-3", at("15:59"), CNC1, "count", good=260, scrap=5, order="WO-1", operation=10),
        # robot-1 unloads
        event("s-10", at("08:00"), ROBOT1, "state", state="running"),
        event("c-10", at("09:00"), ROBOT1, "count", good=700, scrap=0, order="WO-1", operation=20),
        # cnc-2: WO-2, then a stop nobody explained
        event("s-20", at("08:00"), CNC2, "state", state="running"),
        event("c-20", at("09:20"), CNC2, "count", good=20, scrap=1, order="WO-2", operation=10),
        event("s-21", at("14:00"), CNC2, "state", state="unplanned_stop"),
        event("s-22", at("14:20"), CNC2, "state", state="running"),
        # the meter
        event("e-1", at("08:00"), METER, "energy", kwh=1000.0),
        event("e-2", at("15:00"), METER, "energy", kwh=1042.5),
    ]


def fill(store: EventStore) -> EventStore:
    """Apply the small factory and store the events above."""
    store.apply_factory(parse_factory((DATA / "factory-small.yaml").read_text()), "small.yaml")
    result = store.append(plant_events())
    assert result.inserted == len(plant_events())
    return store


def api_token(store: EventStore, role: Role = Role.ADMIN) -> str:
    """A new API token with ``role``'s permissions (a fresh name each time)."""
    _, secret = create_token(
        store, f"test-{role.value}-{secrets.token_hex(3)}", role=role, actor="cli:tests"
    )
    return secret


def add_test_user(store: EventStore, role: Role) -> tuple[str, str]:
    """A new user with ``role``: its name and password."""
    name = f"{role.value.replace('_', '-')}-{secrets.token_hex(3)}"
    password = f"pass phrase {secrets.token_hex(8)}"
    add_user(store, name, role, password, actor="cli:tests")
    return name, password


@contextmanager
def serving(
    store: EventStore, *, role: Role | None = Role.ADMIN, **options: Any
) -> Iterator[tuple[str, httpx.Client]]:
    """The app over ``store`` on a free loopback port, and a client for it that sends an API
    token of ``role`` (None: no credentials)."""
    options.setdefault("poll_s", 0.1)
    options.setdefault("min_refresh_s", 0.2)
    app = create_app(store, **options)
    headers = {} if role is None else {"Authorization": f"Bearer {api_token(store, role)}"}
    with (
        BackgroundServer(app) as server,
        httpx.Client(base_url=server.url, timeout=30, headers=headers) as client,
    ):
        yield server.url, client


BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]
"""Parameters for a module-scoped fixture over both back ends (see :func:`served_plant`)."""


@contextmanager
def served_plant(backend: str, folder: Path) -> Iterator[tuple[EventStore, httpx.Client]]:
    """A fresh database on ``backend`` holding the plant above, served: for read-only test
    modules, which share one per back end (a module-scoped fixture) to stay fast."""
    url = f"sqlite:///{folder}/store.db" if backend == "sqlite" else pg_create_database()
    try:
        with open_store(url) as store, serving(fill(store)) as (_, client):
            yield store, client
    finally:
        if backend != "sqlite":
            pg_drop_database(url)


def read_update(lines: Iterator[str]) -> dict[str, Any]:
    """The next ``update`` message of the dashboard's SSE stream (``/live``)."""
    kind = None
    for line in lines:
        if line.startswith("event: "):
            kind = line.removeprefix("event: ")
        elif line.startswith("data: ") and kind == "update":
            return dict(json.loads(line.removeprefix("data: ")))
    raise AssertionError("the stream ended")


def shown_after(panels: dict[str, str], update: dict[str, Any]) -> dict[str, str]:
    """The panels a page shows after applying ``update`` as dashboard.js does: panels sent in
    full replace, line edits patch what the page holds."""
    panels = {**panels, **update.get("panels", {})}
    for name, edits in update.get("patches", {}).items():
        panels[name] = apply_patch(panels[name], [(a, b, lines) for a, b, lines in edits])
    return panels
