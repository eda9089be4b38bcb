"""``microfab safety …``: safety events, alerts to supervisors, the incident and near-miss
register, days since the last lost-time incident (docs/safety.md)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.table import Table

from microfab.commands.common import DbOption, JsonOption, out, print_json
from microfab.commands.users import cli_actor
from microfab.errors import InputError
from microfab.track.plant import Plant

safety_app = typer.Typer(
    help="Safety: e-stops and intrusions, alerts to supervisors, the incident and near-miss "
    "register, days since the last lost-time incident 職業安全.",
    no_args_is_help=True,
)


@contextmanager
def _plant(db: str | None) -> Iterator[Plant]:
    from microfab.store import open_store

    with open_store(db) as store:
        yield Plant(store)


def _local(text: str, zone: Any) -> str:
    return dt.datetime.fromisoformat(text).astimezone(zone).strftime("%a %d/%m %H:%M:%S")


@safety_app.command("events")
def events(
    limit: Annotated[int, typer.Option("--limit", min=1, max=10000)] = 50,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Stored safety events, newest first."""
    from microfab.safety.feed import recent

    with _plant(db) as plant:
        found = recent(plant, limit)
        zone = plant.zone()
    if as_json:
        print_json(found)
        return
    table = Table("time", "machine", "kind", "severity", "zone")
    for e in found:
        table.add_row(
            _local(e["ts"], zone),
            e["machine"].rsplit("/", 1)[-1],
            e["kind"],
            e["severity"],
            e.get("zone") or "",
        )
    out.print(table)


@safety_app.command("run")
def run(db: DbOption = None, as_json: JsonOption = False) -> None:
    """Raise alerts (warning, critical) and near misses (intrusions) from stored safety events;
    'microfab alerts run' delivers the alerts to the supervisors' channels."""
    from microfab.safety.feed import raise_alerts

    with _plant(db) as plant:
        counts = raise_alerts(plant)
    if as_json:
        print_json(counts)
        return
    out.print(
        f"{counts['alerts']} new safety alert(s), {counts['near_misses']} near miss(es) registered"
    )


@safety_app.command("report")
def report_command(
    what: Annotated[str, typer.Option("--what", help="What happened")],
    reported_by: Annotated[str, typer.Option("--by", help="Who reported it")],
    kind: Annotated[str, typer.Option("--kind", help="incident or near_miss")] = "near_miss",
    machine: Annotated[str | None, typer.Option("--machine", show_default=False)] = None,
    site: Annotated[str | None, typer.Option("--site", show_default=False)] = None,
    location: Annotated[str, typer.Option("--where", help="Where on the floor")] = "",
    injury: Annotated[bool, typer.Option("--injury/--no-injury")] = False,
    lost_time: Annotated[bool, typer.Option("--lost-time/--no-lost-time")] = False,
    at: Annotated[
        str | None, typer.Option("--at", help="When it happened", show_default=False)
    ] = None,
    actions: Annotated[str, typer.Option("--actions")] = "",
    db: DbOption = None,
) -> None:
    """Enter an incident or near miss in the register."""
    from microfab.model.timerange import parse_time
    from microfab.safety.register import IncidentKind, report

    try:
        chosen = IncidentKind(kind)
    except ValueError:
        raise InputError(f"--kind: '{kind}' is not one of incident, near_miss") from None
    with _plant(db) as plant:
        when = None if at is None else parse_time(at, plant.zone(), field="--at")
        incident_id = report(
            plant,
            cli_actor(),
            kind=chosen,
            what=what,
            reported_by=reported_by,
            site=site,
            machine=machine,
            location=location,
            injury=injury,
            lost_time=lost_time,
            occurred_at=when,
            actions=actions,
        )
    out.print(f"{chosen.value.replace('_', ' ')} {incident_id} registered")


@safety_app.command("close")
def close_command(
    incident_id: Annotated[int, typer.Argument(min=1)],
    actions: Annotated[str, typer.Option("--actions", help="What was done")] = "",
    investigate: Annotated[
        bool, typer.Option("--investigate", help="Move to investigating instead")
    ] = False,
    db: DbOption = None,
) -> None:
    """Close an entry (or move it to investigating), with the actions taken."""
    from microfab.safety.register import IncidentState, advance

    to = IncidentState.INVESTIGATING if investigate else IncidentState.CLOSED
    with _plant(db) as plant:
        found = advance(plant, incident_id, to, cli_actor(), actions)
    out.print(f"incident {incident_id}: {found['state']}")


@safety_app.command("register")
def register(db: DbOption = None, as_json: JsonOption = False) -> None:
    """The register, newest first, and days since the last lost-time incident per site."""
    from microfab.safety.register import days_since_lost_time, list_json

    with _plant(db) as plant:
        found = list_json(plant)
        days = days_since_lost_time(plant)
        zone = plant.zone()
    if as_json:
        print_json({"incidents": found, "days_since_lost_time": days})
        return
    for d in days:
        if d["days"] is None:
            out.print(f"site {d['site']}: no lost-time incident recorded")
        else:
            out.print(f"site {d['site']}: {d['days']} day(s) since the last lost-time incident")
    table = Table("id", "when", "kind", "what", "injury", "state")
    for i in found:
        table.add_row(
            str(i["id"]),
            _local(i["occurred_at"], zone),
            i["kind"],
            i["what"][:50],
            "yes" if i["injury"] else "",
            i["state"],
        )
    out.print(table)
