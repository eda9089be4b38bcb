"""``microfab ingest``: store every event published on the microfab MQTT topics."""

from __future__ import annotations

from typing import Annotated

import typer

from microfab.commands.common import DbOption
from microfab.commands.mqtt_options import (
    BrokerOption,
    MqttVersionOption,
    PasswordOption,
    TlsCaOption,
    UsernameOption,
    broker_settings,
)
from microfab.console import err
from microfab.errors import InputError


def ingest(
    broker: BrokerOption = None,
    username: UsernameOption = None,
    password: PasswordOption = None,
    tls_ca: TlsCaOption = None,
    mqtt_version: MqttVersionOption = "5",
    db: DbOption = None,
    strict: Annotated[
        bool,
        typer.Option("--strict", help="Dead-letter events of machines not in the factory model"),
    ] = False,
    shared: Annotated[
        bool,
        typer.Option(
            "--shared/--no-shared",
            help="Join the MQTT 5 shared subscription $share/microfab/… (several workers share the load)",
        ),
    ] = True,
    client_id: Annotated[
        str | None,
        typer.Option(
            "--client-id", help="MQTT client id (keep it stable: the session is persistent)"
        ),
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Events per store transaction at most")] = 2000,
    max_payload: Annotated[int, typer.Option(help="Largest accepted payload, bytes")] = 256 * 1024,
    max_future: Annotated[
        str,
        typer.Option(help="Dead-letter (bad_time) events more than this ahead of the wall clock"),
    ] = "5m",
    max_age: Annotated[
        str,
        typer.Option(help="Dead-letter (bad_time) events older than this ('none': any age)"),
    ] = "30d",
    hq: Annotated[
        bool,
        typer.Option(
            "--hq",
            help="HQ of several sites: dead-letter events of sites not registered "
            "(unknown_site) and uplinked events whose site differs from the topic's (site_mismatch)",
        ),
    ] = False,
) -> None:
    """Subscribe to the microfab topics and store every event: QoS 1, acknowledged after commit."""
    from microfab.connect.mqtt_ingest import IngestWorker
    from microfab.model.clock_policy import ClockPolicy
    from microfab.store import open_store
    from microfab.store.hq import HqIngestTarget
    from microfab.store.view_follower import ViewFollower

    settings = broker_settings(broker, username, password, tls_ca, mqtt_version)
    with open_store(db) as store, ViewFollower(store):
        found = store.factory()
        if hq and found is None:
            raise InputError(
                "--hq: no site is registered in this store yet; run "
                "'microfab hq register SITE_FACTORY.yaml' for each site first"
            )
        worker = IngestWorker(
            HqIngestTarget(store) if hq else store,
            settings,
            known_machines={ref.path for ref in found[1].machines()} if found else None,
            reason_codes=found[1].downtime_reasons.codes() if found else None,
            strict=strict,
            shared=shared,
            client_id=client_id,
            batch_size=batch_size,
            max_payload=max_payload,
            clock_policy=ClockPolicy.from_options(max_future, max_age),
            known_sites={site.id for site in found[1].sites} if hq and found else None,
        )
        err.print(
            f"ingest: {settings.display} -> {store.display_url}"
            f"{' (strict)' if strict else ''}{' (HQ)' if hq else ''}; Ctrl-C to stop",
            highlight=False,
        )
        worker.run_forever(log=lambda line: err.print(line, highlight=False))
