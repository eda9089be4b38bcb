"""Routes for the plant as stored: status, the factory tree, machines and their live state, events."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from microfab.api.answers import EventPage, FactoryTree, MachineState, StoreStatus
from microfab.http.deps import PlantDep, PrincipalDep
from microfab.http.errors import ERROR_RESPONSES
from microfab.model.events import STREAMS, event_to_dict, format_ts
from microfab.model.factory import Factory, MachineRef, ReasonCode
from microfab.model.identity import Permission
from microfab.store.event_store import MachineStatus, StoredEvent
from microfab.track import event_query

router = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES)

Stream = Literal[
    "state",
    "count",
    "telemetry",
    "energy",
    "order",
    "material",
    "inspection",
    "safety",
    "stock",
    "task",
]
assert set(Stream.__args__) == set(STREAMS)  # type: ignore[attr-defined]


def _ts(value: dt.datetime | None) -> str | None:
    return None if value is None else format_ts(value)


@router.get(
    "/status",
    response_model=StoreStatus,
    response_model_exclude_unset=True,
    tags=["plant"],
    summary="Store, plant clock and factory version",
)
def status(plant: PlantDep, principal: PrincipalDep) -> dict[str, Any]:
    """Where the data comes from and how far it goes: ``last_seq`` grows with every stored event
    (the dashboard's live stream watches it); ``clock`` is the plant clock (the newest event time).
    ``store`` (the database's location) is shown only to admins (``users.manage``)."""
    answer: dict[str, Any] = {
        "backend": plant.store.dialect,
        "last_seq": plant.store.last_seq(),
        "clock": format_ts(plant.now()),
        "factory_version": plant.factory_version(),
    }
    if principal.allows(Permission.USERS_MANAGE):
        answer["store"] = plant.store.display_url
    return answer


def _reason(node: ReasonCode) -> dict[str, Any]:
    return {
        "code": node.code,
        "name": node.name,
        "name_zh": node.name_zh,
        "children": [_reason(child) for child in node.children],
    }


def machine_json(ref: MachineRef) -> dict[str, Any]:
    m = ref.machine
    return {
        "id": m.id,
        "path": ref.path,
        "name": m.name or m.id,
        "kind": m.kind.value,
        "ideal_cycle_s": m.ideal_cycle_s,
        "produces": m.produces,
        "metered": m.metered,
        "connected": m.connect is not None,
    }


def factory_tree(version: int | None, factory: Factory) -> dict[str, Any]:
    return {
        "version": version,
        "company": factory.company.model_dump(mode="json"),
        "sites": [
            {
                "id": site.id,
                "name": site.name or site.id,
                "timezone": site.timezone,
                "path": site.id,
                "areas": [
                    {
                        "id": area.id,
                        "name": area.name or area.id,
                        "path": f"{site.id}/{area.id}",
                        "lines": [
                            {
                                "id": line.id,
                                "name": line.name or line.id,
                                "path": f"{site.id}/{area.id}/{line.id}",
                                "calendar": line.calendar,
                                "cells": [
                                    {
                                        "id": cell.id,
                                        "name": cell.name or cell.id,
                                        "path": f"{site.id}/{area.id}/{line.id}/{cell.id}",
                                        "machines": [
                                            machine_json(
                                                MachineRef(
                                                    site=site,
                                                    area=area,
                                                    line=line,
                                                    cell=cell,
                                                    machine=m,
                                                )
                                            )
                                            for m in cell.machines
                                        ],
                                    }
                                    for cell in line.cells
                                ],
                            }
                            for line in area.lines
                        ],
                    }
                    for area in site.areas
                ],
            }
            for site in factory.sites
        ],
        "products": [
            {
                "sku": p.sku,
                "name": p.name,
                "routing": [
                    {"seq": op.seq, "name": op.name, "machines": dict(op.machines)}
                    for op in p.routing
                ],
            }
            for p in factory.products
        ],
        "downtime_reasons": {
            "planned": [_reason(r) for r in factory.downtime_reasons.planned],
            "unplanned": [_reason(r) for r in factory.downtime_reasons.unplanned],
        },
    }


@router.get(
    "/factory",
    response_model=FactoryTree,
    response_model_exclude_unset=True,
    tags=["plant"],
    summary="The factory tree (ISA-95)",
)
def factory(plant: PlantDep) -> dict[str, Any]:
    """Site → area → line → cell → machine, with every node's id, name and path; products with
    their routings; downtime reason codes. The model is the one last applied to the store."""
    model = plant.factory()
    return factory_tree(plant.factory_version(), model)


def machine_state(ref: MachineRef, status: MachineStatus | None) -> dict[str, Any]:
    return {
        **machine_json(ref),
        "line": f"{ref.site.id}/{ref.area.id}/{ref.line.id}",
        "cell": ref.cell.id,
        "state": status.state if status else None,
        "reason": status.reason if status else None,
        "since": _ts(status.state_ts) if status else None,
        "order": status.order if status else None,
        "good": status.good if status else 0,
        "scrap": status.scrap if status else 0,
        "kwh": status.kwh if status else None,
        "last_event": _ts(status.last_ts) if status else None,
        "events": status.events if status else 0,
    }


@router.get(
    "/machines",
    response_model=list[MachineState],
    response_model_exclude_unset=True,
    tags=["plant"],
    summary="Every machine and its live state",
)
def machines(plant: PlantDep) -> list[dict[str, Any]]:
    """Machines in factory-file order with their current state (``null`` before the first
    report), reason code, since when, current work order, and good/scrap/events counted since
    the store began (corrections included)."""
    model = plant.factory()
    by_path = {s.machine: s for s in plant.store.machine_status()}
    return [machine_state(ref, by_path.get(ref.path)) for ref in model.machines()]


@router.get(
    "/machines/{machine:path}",
    response_model=MachineState,
    response_model_exclude_unset=True,
    tags=["plant"],
    summary="One machine and its live state",
)
def machine(machine: str, plant: PlantDep) -> dict[str, Any]:
    """``machine`` is its path (site/area/line/cell/machine) or its id when that is unique."""
    ref = plant.machine(machine)
    found = [s for s in plant.store.machine_status() if s.machine == ref.path]
    return machine_state(ref, found[0] if found else None)


def stored_json(stored: StoredEvent) -> dict[str, Any]:
    return {
        **event_to_dict(stored.event),
        "seq": stored.seq,
        "ingest_ts": format_ts(stored.ingest_ts),
    }


@router.get(
    "/events",
    response_model=EventPage,
    response_model_exclude_unset=True,
    tags=["events"],
    summary="Stored events, filtered and paginated",
)
def events(
    plant: PlantDep,
    machine: Annotated[
        list[str] | None,
        Query(description="Machine id or path; repeat for several (default: all machines)"),
    ] = None,
    line: Annotated[
        str | None, Query(description="Only the machines of this line (id or path)")
    ] = None,
    stream: Annotated[Stream | None, Query(description="Only this stream")] = None,
    start: Annotated[
        str | None,
        Query(
            alias="from",
            description="From (inclusive): 2026-11-23, 2026-11-23T08:00 (site time) or ISO-8601 "
            "with an offset",
        ),
    ] = None,
    end: Annotated[
        str | None, Query(alias="to", description="To (exclusive), same forms as 'from'")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Events per page")] = 100,
    cursor: Annotated[
        str | None, Query(description="The 'next' value of the previous page")
    ] = None,
    order: Annotated[
        Literal["asc", "desc"], Query(description="asc: oldest first; desc: newest first")
    ] = "asc",
) -> dict[str, Any]:
    """Events in (ts, id) order. Each page holds up to ``limit`` events and ``next``, the cursor
    of the following page (``null`` on the last page); pass it back as ``cursor`` with the same
    filters. Each event is its export shape (docs/events.md) plus ``seq`` and ``ingest_ts``."""
    model = plant.factory()
    paths: list[str] | None = None
    if line is not None:
        paths = [ref.path for ref in plant.line(line, model).machines]
    if machine:
        chosen = [plant.machine(key, model).path for key in machine]
        paths = chosen if paths is None else [p for p in paths if p in chosen]
    first, last = plant.time_range(start, end, plant.zone(model))
    rows, following = event_query.page(
        plant.store,
        machines=paths,
        stream=stream,
        start=first,
        end=last,
        cursor=cursor,
        limit=limit,
        newest_first=order == "desc",
    )
    return {"events": [stored_json(r) for r in rows], "next": following, "limit": limit}
