"""The incident and near-miss register: reported → investigating → closed, every step audited.

An entry says what happened, where (site, optionally machine, and a free-text location), who
reported it, whether someone was injured and whether the injury cost working time (a *lost-time*
incident, which resets the site's "days since the last lost-time incident"), and the actions
taken. Each change is one transaction with its audit record (``safety.report``,
``safety.investigate``, ``safety.close``); a refused change writes nothing.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from microfab.errors import InputError, NotFoundError
from microfab.model.events import format_ts
from microfab.store import safety as rows
from microfab.store.audit import append_audit
from microfab.track.plant import Plant


class IncidentKind(enum.StrEnum):
    INCIDENT = "incident"
    NEAR_MISS = "near_miss"


class IncidentState(enum.StrEnum):
    REPORTED = "reported"
    INVESTIGATING = "investigating"
    CLOSED = "closed"


def _text(value: str, field: str, most: int = 2000, empty: bool = False) -> str:
    text = value.strip()
    if not text and not empty:
        raise InputError(f"{field}: must not be empty")
    if len(text) > most:
        raise InputError(f"{field}: at most {most} characters, got {len(text)}")
    return text


def incident_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": int(row["id"]),
        "site": row["site"],
        "machine": row["machine"],
        "kind": row["kind"],
        "what": row["what"],
        "location": row["location"],
        "reported_by": row["reported_by"],
        "injury": bool(row["injury"]),
        "lost_time": bool(row["lost_time"]),
        "occurred_at": format_ts(row["occurred_at"]),
        "actions": row["actions"],
        "state": row["state"],
        "closed_at": None if row["closed_at"] is None else format_ts(row["closed_at"]),
        "closed_by": row["closed_by"],
        "event_id": row["event_id"],
    }


def report(
    plant: Plant,
    actor: str,
    *,
    kind: IncidentKind,
    what: str,
    reported_by: str,
    site: str | None = None,
    machine: str | None = None,
    location: str = "",
    injury: bool = False,
    lost_time: bool = False,
    occurred_at: dt.datetime | None = None,
    actions: str = "",
    event_id: str | None = None,
) -> int:
    """Enter an incident or near miss; its id."""
    factory = plant.factory()
    path = None
    if machine:
        ref = plant.machine(machine, factory)
        path, site = ref.path, ref.site.id
    sites = [s.id for s in factory.sites]
    site = site or sites[0]
    if site not in sites:
        raise NotFoundError(f"site: '{site}' is not a site of this factory ({', '.join(sites)})")
    if lost_time and not injury:
        raise InputError("lost time: a lost-time incident is an injury; set injury too")
    if kind is IncidentKind.NEAR_MISS and injury:
        raise InputError("injury: a near miss injured nobody; report it as an incident")
    when = (occurred_at or plant.stamp()).astimezone(dt.UTC)
    values = {
        "site": site,
        "machine": path,
        "kind": kind.value,
        "what": _text(what, "what"),
        "location": _text(location, "location", 200, empty=True),
        "reported_by": _text(reported_by, "reported by", 200),
        "injury": int(injury),
        "lost_time": int(lost_time),
        "occurred_at": when,
        "actions": _text(actions, "actions", empty=True),
        "state": IncidentState.REPORTED.value,
        "closed_at": None,
        "closed_by": None,
        "event_id": event_id,
    }
    with plant.store.transaction() as conn:
        if event_id is not None:
            same = rows.incident_for_event(conn, event_id)
            if same is not None:
                return same
        incident_id = rows.insert_incident(conn, values)
        append_audit(
            conn,
            actor=actor,
            action="safety.report",
            target=f"incident:{incident_id}",
            after=incident_json({**values, "id": incident_id}),
        )
    return incident_id


_NEXT = {
    IncidentState.REPORTED: {IncidentState.INVESTIGATING, IncidentState.CLOSED},
    IncidentState.INVESTIGATING: {IncidentState.INVESTIGATING, IncidentState.CLOSED},
    IncidentState.CLOSED: set(),
}


def advance(
    plant: Plant, incident_id: int, to: IncidentState, actor: str, actions: str = ""
) -> dict[str, Any]:
    """Move an entry on (investigating, closed), adding the actions taken; closing needs them."""
    added = _text(actions, "actions", empty=True)
    with plant.store.transaction() as conn:
        row = rows.incident_row(conn, incident_id)
        if row is None:
            raise NotFoundError(f"no safety incident {incident_id}")
        state = IncidentState(row["state"])
        if to not in _NEXT[state]:
            raise InputError(
                f"incident {incident_id} is {state.value}: cannot move it to {to.value}"
            )
        all_actions = "\n".join(a for a in (row["actions"], added) if a)
        if to is IncidentState.CLOSED and not all_actions:
            raise InputError(f"incident {incident_id}: say what was done (actions) to close it")
        values: dict[str, Any] = {"state": to.value, "actions": all_actions}
        if to is IncidentState.CLOSED:
            values |= {"closed_at": dt.datetime.now(dt.UTC), "closed_by": actor}
        rows.update_incident(conn, incident_id, values)
        after = rows.incident_row(conn, incident_id)
        assert after is not None
        append_audit(
            conn,
            actor=actor,
            action=f"safety.{'close' if to is IncidentState.CLOSED else 'investigate'}",
            target=f"incident:{incident_id}",
            before=incident_json(row),
            after=incident_json(after),
        )
    return incident_json(after)


def days_since_lost_time(plant: Plant, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Per site: the last lost-time incident and the whole days since (None: none recorded)."""
    moment = now or plant.now()
    last = rows.last_lost_time(plant.store)
    out = []
    for site in plant.factory().sites:
        when = last.get(site.id)
        out.append(
            {
                "site": site.id,
                "last_lost_time": None if when is None else format_ts(when),
                "days": None
                if when is None
                else max(
                    0,
                    (moment.astimezone(site.zone).date() - when.astimezone(site.zone).date()).days,
                ),
            }
        )
    return out


def list_json(plant: Plant, limit: int = 200) -> list[dict[str, Any]]:
    return [incident_json(r) for r in rows.list_incidents(plant.store, limit=limit)]
