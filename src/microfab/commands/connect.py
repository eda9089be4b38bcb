"""``microfab connect opcua|sparkplug|modbus``: read machines as mapped in the factory model.

The connector is chosen by kind through :mod:`microfab.connect.registry`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from microfab.commands.common import DbOption, stored_factory
from microfab.commands.mqtt_options import (
    BrokerOption,
    MqttVersionOption,
    PasswordOption,
    TlsCaOption,
    UsernameOption,
    broker_settings,
)
from microfab.console import err

if TYPE_CHECKING:
    from microfab.connect.registry import ConnectorOptions

connect_app = typer.Typer(
    help="Read machines over OPC UA, Sparkplug B or Modbus TCP, as mapped in the factory file.",
    no_args_is_help=True,
)

VerboseOption = Annotated[
    bool,
    typer.Option(
        "--verbose",
        "-v",
        help="Also log every link change, birth and rebirth, and the protocol libraries' warnings",
    ),
]


def _run_connector(
    kind: str, db: str | None, options: ConnectorOptions | None = None, *, verbose: bool = False
) -> None:
    """Run the connector of ``kind`` (see :mod:`microfab.connect.registry`) into the store until
    Ctrl-C, with its status lines on stderr."""
    import asyncio

    from microfab.connect.connector import run_until_interrupted
    from microfab.connect.publisher import ClockCheckedPublisher
    from microfab.connect.registry import build_connector
    from microfab.logs import configure_connector_logging
    from microfab.store import open_store
    from microfab.store.sink import StoreSink

    with open_store(db) as store:
        factory = stored_factory(store)
        sink = ClockCheckedPublisher(  # device times judged by the clock policy
            StoreSink(store, batch_size=500), store.append_dead_letters, source=kind
        )
        connector = build_connector(kind, factory, sink, options)
        configure_connector_logging(verbose)
        err.print(
            f"connect {kind}: storing into {store.display_url}; Ctrl-C to stop", highlight=False
        )
        asyncio.run(
            run_until_interrupted(connector, log=lambda line: err.print(line, highlight=False))
        )
        sink.flush()


@connect_app.command("opcua")
def connect_opcua(
    endpoint: Annotated[
        str | None,
        typer.Argument(help="Only machines mapped to this endpoint, e.g. opc.tcp://10.0.0.5:4840"),
    ] = None,
    db: DbOption = None,
    verbose: VerboseOption = False,
) -> None:
    """Subscribe to the OPC UA nodes mapped in the factory model; reconnects by itself."""
    from microfab.connect.registry import ConnectorOptions

    _run_connector("opcua", db, ConnectorOptions(endpoint=endpoint), verbose=verbose)


@connect_app.command("sparkplug")
def connect_sparkplug(
    broker: BrokerOption = None,
    username: UsernameOption = None,
    password: PasswordOption = None,
    tls_ca: TlsCaOption = None,
    mqtt_version: MqttVersionOption = "5",
    host_id: Annotated[
        str,
        typer.Option(
            "--host-id", help="Sparkplug host id: names this host's STATE topic spBv1.0/STATE/ID"
        ),
    ] = "microfab",
    db: DbOption = None,
    verbose: VerboseOption = False,
) -> None:
    """Run a Sparkplug B host application for the edge nodes mapped in the factory model."""
    from microfab.connect.registry import ConnectorOptions

    settings = broker_settings(broker, username, password, tls_ca, mqtt_version)
    _run_connector(
        "sparkplug", db, ConnectorOptions(broker=settings, host_id=host_id), verbose=verbose
    )


@connect_app.command("modbus")
def connect_modbus(db: DbOption = None, verbose: VerboseOption = False) -> None:
    """Poll the Modbus TCP registers mapped in the factory model."""
    _run_connector("modbus", db, verbose=verbose)
