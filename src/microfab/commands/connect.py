"""``microfab connect opcua|sparkplug|modbus|s7|mc|enip|mtconnect``: read mapped machines.

The connector is chosen by kind through :mod:`microfab.connect.registry`. The discovery helpers
(``s7 --browse``, ``enip --list-tags``, ``mtconnect --probe``) read a device once and print what
it holds, so points can be mapped without another tool.
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
    help="Read machines over OPC UA, Sparkplug B, Modbus TCP, S7, MC protocol, EtherNet/IP or "
    "MTConnect, as mapped in the factory file.",
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


HostOption = Annotated[
    str | None,
    typer.Option("--host", help="PLC address for a discovery helper", show_default=False),
]


def _discover(lines: list[str]) -> None:
    for line in lines:
        print(line)


@connect_app.command("s7")
def connect_s7(
    db: DbOption = None,
    verbose: VerboseOption = False,
    browse: Annotated[
        str | None,
        typer.Option(
            "--browse",
            help="Print the raw bytes of an area (DB1, M, I, Q) and stop",
            show_default=False,
        ),
    ] = None,
    size: Annotated[int, typer.Option("--size", help="--browse: bytes to read")] = 64,
    host: HostOption = None,
    port: Annotated[int, typer.Option("--port", help="--browse: ISO-on-TCP port")] = 102,
    rack: Annotated[int, typer.Option("--rack", help="--browse: rack")] = 0,
    slot: Annotated[int, typer.Option("--slot", help="--browse: CPU slot")] = 1,
) -> None:
    """Poll the Siemens S7 addresses mapped in the factory model (or --browse a PLC)."""
    if browse is None:
        _run_connector("s7", db, verbose=verbose)
        return
    import asyncio

    from microfab.connect.s7 import browse as browse_area
    from microfab.errors import InputError

    if host is None:
        raise InputError("--browse needs --host, the PLC's address")
    _discover(asyncio.run(browse_area(host, port, rack, slot, browse, size)))


@connect_app.command("mc")
def connect_mc(db: DbOption = None, verbose: VerboseOption = False) -> None:
    """Poll the Mitsubishi MELSEC devices mapped in the factory model (MC protocol, 3E binary)."""
    _run_connector("mc", db, verbose=verbose)


@connect_app.command("enip")
def connect_enip(
    db: DbOption = None,
    verbose: VerboseOption = False,
    list_tags: Annotated[
        bool, typer.Option("--list-tags", help="Print the PLC's controller tags and stop")
    ] = False,
    host: HostOption = None,
    port: Annotated[int, typer.Option("--port", help="--list-tags: EtherNet/IP port")] = 44818,
    slot: Annotated[int, typer.Option("--slot", help="--list-tags: CPU slot")] = 0,
) -> None:
    """Poll the Logix tags mapped in the factory model over EtherNet/IP (or --list-tags)."""
    if not list_tags:
        _run_connector("enip", db, verbose=verbose)
        return
    import asyncio

    from microfab.connect.enip import list_tags as list_plc_tags
    from microfab.errors import InputError

    if host is None:
        raise InputError("--list-tags needs --host, the PLC's address")
    _discover(asyncio.run(list_plc_tags(host, port, slot)))


@connect_app.command("mtconnect")
def connect_mtconnect(
    agent: Annotated[
        str | None,
        typer.Option(
            "--agent",
            help="Only machines mapped to this agent, e.g. http://10.0.0.7:5000",
            show_default=False,
        ),
    ] = None,
    probe: Annotated[
        bool, typer.Option("--probe", help="Print the agent's devices and DataItems and stop")
    ] = False,
    db: DbOption = None,
    verbose: VerboseOption = False,
) -> None:
    """Read the MTConnect DataItems mapped in the factory model (current, then sample)."""
    from microfab.connect.registry import ConnectorOptions

    if not probe:
        _run_connector("mtconnect", db, ConnectorOptions(agent=agent), verbose=verbose)
        return
    import asyncio

    from microfab.connect.mtconnect import probe_lines
    from microfab.errors import InputError

    if agent is None:
        raise InputError("--probe needs --agent, the agent's URL")
    _discover(asyncio.run(probe_lines(agent)))
