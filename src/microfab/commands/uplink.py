"""``microfab uplink``: forward this site's stored events to the HQ broker (see docs/hq.md)."""

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


def uplink(
    broker: BrokerOption = None,
    site: Annotated[
        str | None,
        typer.Option(
            "--site",
            help="Site id whose events to forward \\[default: the factory model's only site]",
            show_default=False,
        ),
    ] = None,
    username: UsernameOption = None,
    password: PasswordOption = None,
    tls_ca: TlsCaOption = None,
    mqtt_version: MqttVersionOption = "5",
    db: DbOption = None,
    window: Annotated[
        int, typer.Option(min=1, max=60000, help="Events in flight (unacknowledged) at most")
    ] = 1000,
    max_rate: Annotated[
        float | None,
        typer.Option(
            "--max-rate",
            min=0.001,
            help="Events per second at most (a thin link)",
            show_default=False,
        ),
    ] = None,
    client_id: Annotated[
        str | None,
        typer.Option("--client-id", help="MQTT client id \\[default: microfab-uplink-SITE]"),
    ] = None,
    resend_since: Annotated[
        str | None,
        typer.Option(
            "--resend-since",
            help="Send again the events stored since this time (ISO with offset), e.g. after HQ's "
            "broker lost messages it had acknowledged",
            show_default=False,
        ),
    ] = None,
    status_every: Annotated[
        float, typer.Option("--status-every", min=0.1, help="Seconds between status lines")
    ] = 10.0,
) -> None:
    """Forward the site store's events to the HQ broker: QoS 1, in store order, resumable."""
    import re
    import signal
    import threading

    from microfab.connect.uplink import Uplink
    from microfab.store import open_store
    from microfab.store.uplink import UplinkLog

    if mqtt_version not in ("5", "5.0"):
        raise InputError("--mqtt-version: the uplink needs MQTT 5 (reason codes in PUBACK)")
    settings = broker_settings(broker, username, password, tls_ca, mqtt_version)
    with open_store(db) as store:
        if site is None:
            found = store.factory()
            sites = [s.id for s in found[1].sites] if found else []
            if len(sites) != 1:
                raise InputError(
                    "--site: give the site id to forward"
                    + (f" (the factory model has {', '.join(sites)})" if sites else "")
                )
            site = sites[0]
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,39}", site):
            raise InputError(
                f"--site: '{site}' is not a site id (lower-case letters, digits, '-', '_')"
            )
        key = f"{site}@{settings.host}:{settings.port}"
        if resend_since is not None:
            from microfab.model.events import parse_ts
            from microfab.store.uplink import rewind

            try:
                since = parse_ts(resend_since)
            except ValueError as exc:
                raise InputError(f"--resend-since: {exc}") from None
            seq = rewind(store, key, since, site)
            err.print(
                f"uplink: sending again from seq {seq:,} (events stored since {resend_since})"
            )
        runner = Uplink(
            UplinkLog(store, key, site),
            settings,
            site=site,
            client_id=client_id,
            window=window,
            max_rate=max_rate,
        )
        err.print(
            f"uplink: site {site} of {store.display_url} -> {settings.display}; Ctrl-C to stop",
            highlight=False,
        )
        stop = threading.Event()
        # systemd stops a service with SIGTERM: finish like Ctrl-C (checkpoint saved)
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            runner.run(
                stop,
                report=lambda s: err.print(s.line(site, settings.display), highlight=False),
                report_every_s=status_every,
            )
        except KeyboardInterrupt:
            stop.set()
        err.print(runner.refresh_status().line(site, settings.display), highlight=False)
