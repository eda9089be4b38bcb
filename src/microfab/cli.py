"""The ``microfab`` command line (Typer + Rich).

Every command that touches data takes ``--db URL`` (default: ``MICROFAB_DB``, else
``sqlite:///microfab.db``). Errors from microfab print one sentence and exit non-zero
(2 for bad input, 1 otherwise); no traceback.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.panel import Panel
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from microfab import __version__
from microfab.errors import FactoryFileError, InputError, MicrofabError, NoFactoryError
from microfab.model.events import events_json_schema, parse_ts
from microfab.model.factory import Factory
from microfab.model.factory_file import parse_factory

if TYPE_CHECKING:
    from microfab.connect.connector import Connector
    from microfab.connect.mqtt_client import BrokerSettings
    from microfab.store.event_store import EventStore

app = typer.Typer(
    name="microfab",
    help="Open-source operating system for Hong Kong smart micro-factories 智能微工廠: "
    "collect → track → plan → prove.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
events_app = typer.Typer(
    help="Read, follow, export and import stored events.", no_args_is_help=True
)
factory_app = typer.Typer(help="Store and inspect the factory model.", no_args_is_help=True)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
app.add_typer(events_app, name="events")
app.add_typer(factory_app, name="factory")
connect_app = typer.Typer(
    help="Read machines over OPC UA, Sparkplug B or Modbus TCP, as mapped in the factory file.",
    no_args_is_help=True,
)
deadletters_app = typer.Typer(
    help="Messages that could not become events, with the reason.", no_args_is_help=True
)
app.add_typer(db_app, name="db")
app.add_typer(connect_app, name="connect")
app.add_typer(deadletters_app, name="deadletters")

out = Console(soft_wrap=True, markup=False)  # user text (names, ids) is never markup
err = Console(stderr=True, soft_wrap=True, markup=False)

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Database URL: sqlite:///FILE.db or postgresql://USER@HOST:PORT/DB "
        "[default: $MICROFAB_DB or sqlite:///microfab.db]",
        show_default=False,
    ),
]
ScenarioOption = Annotated[
    str, typer.Option("--scenario", help="Scenario name (food-line, moulding-cell) or folder")
]
SeedOption = Annotated[int, typer.Option("--seed", help="Random seed; same seed, same events")]
StartOption = Annotated[
    str | None,
    typer.Option(
        "--start",
        help="Simulated start time, ISO-8601 with offset [default: 2026-11-23T08:00:00+08:00]",
        show_default=False,
    ),
]


BrokerOption = Annotated[
    str | None,
    typer.Option(
        "--broker",
        help="MQTT broker URL mqtt://[USER@]HOST:PORT or mqtts://… [default: $MICROFAB_BROKER or "
        "mqtt://127.0.0.1:1883]",
        show_default=False,
    ),
]
UsernameOption = Annotated[str | None, typer.Option("--username", help="MQTT user name")]
PasswordOption = Annotated[
    str | None,
    typer.Option(
        "--password", help="MQTT password [default: $MICROFAB_MQTT_PASSWORD]", show_default=False
    ),
]
TlsCaOption = Annotated[
    Path | None, typer.Option("--tls-ca", help="CA certificate file; turns TLS on")
]
MqttVersionOption = Annotated[
    str, typer.Option("--mqtt-version", help="MQTT protocol version: 5 or 3.1.1")
]


def main() -> None:
    """Entry point: run the app, turning microfab errors into one line on stderr."""
    try:
        app()
    except FactoryFileError as exc:
        for problem in exc.problems:
            err.print(problem, highlight=False, markup=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except MicrofabError as exc:
        err.print(f"[bold red]error:[/] {escape(exc.message)}", highlight=False, markup=True)
        sys.exit(exc.exit_code)


# ---------------------------------------------------------------------------- general


@app.command()
def version() -> None:
    """Print the microfab version."""
    out.print(f"microfab {__version__}")


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="Folder to write factory.yaml into")] = Path(
        "."
    ),
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite an existing factory.yaml")
    ] = False,
) -> None:
    """Write a commented starter factory file (factory.yaml) to edit for your plant."""
    from importlib.resources import files

    directory.mkdir(parents=True, exist_ok=True)
    target = directory / "factory.yaml"
    if target.exists() and not force:
        raise InputError(f"{target} already exists; pass --force to overwrite it")
    template = files("microfab").joinpath("templates/factory.yaml").read_text(encoding="utf-8")
    target.write_text(template, encoding="utf-8")
    out.print(f"wrote {target}")
    out.print(f"next: edit it, then run microfab validate {target}")


def _read_factory(path: Path) -> Factory:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read ({exc})") from None
    return parse_factory(text, str(path))


def _factory_summary(factory: Factory) -> str:
    refs = factory.machines()
    lines = {(r.site.id, r.area.id, r.line.id) for r in refs}
    return (
        f"{factory.company.name}: {len(factory.sites)} site(s), {len(lines)} line(s), "
        f"{len(refs)} machines, {len(factory.products)} products, {len(factory.calendars)} calendar(s)"
    )


@app.command()
def validate(factory_file: Annotated[Path, typer.Argument(help="Factory file (YAML)")]) -> None:
    """Check a factory file; on error print file:line field: problem and exit 2."""
    factory = _read_factory(factory_file)
    out.print(f"[green]valid[/]: {escape(_factory_summary(factory))}", highlight=False, markup=True)


@factory_app.command("apply")
def factory_apply(
    factory_file: Annotated[Path, typer.Argument(help="Factory file (YAML)")], db: DbOption = None
) -> None:
    """Validate a factory file and store it as the current (versioned) factory model."""
    from microfab.store import open_store

    factory = _read_factory(factory_file)
    with open_store(db) as store:
        version, created = store.apply_factory(factory, str(factory_file))
    state = "stored as" if created else "unchanged, already"
    out.print(f"factory {state} version {version}: {_factory_summary(factory)}", highlight=False)


@factory_app.command("show")
def factory_show(db: DbOption = None) -> None:
    """Print the current factory model as JSON."""
    from microfab.store import open_store

    with open_store(db) as store:
        found = store.factory()
    if found is None:
        raise NoFactoryError(
            "no factory model in this store yet; run 'microfab factory apply FILE'"
        )
    version, factory = found
    print(
        json.dumps(
            {"version": version, **factory.model_dump(mode="json")}, ensure_ascii=False, indent=2
        )
    )


@factory_app.command("schema")
def factory_schema() -> None:
    """Print the JSON Schema of the factory file."""
    schema = Factory.model_json_schema()
    print(
        json.dumps(
            {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema},
            indent=2,
            ensure_ascii=False,
        )
    )


@db_app.command("upgrade")
def db_upgrade(db: DbOption = None) -> None:
    """Create the schema or migrate it to this version (Alembic)."""
    from microfab.store.event_store import upgrade_store
    from microfab.store.url import mask_url, resolve_url

    before, after = upgrade_store(db)
    where = mask_url(resolve_url(db))
    if before == after:
        out.print(f"{where}: schema already at revision {after}", highlight=False)
    else:
        out.print(
            f"{where}: schema upgraded from {before or 'empty'} to revision {after}",
            highlight=False,
        )


# ---------------------------------------------------------------------------- simulator


def _start(value: str | None) -> dt.datetime:
    from microfab.sim.engine import DEFAULT_START

    if value is None:
        return DEFAULT_START
    try:
        return parse_ts(value)
    except ValueError as exc:
        raise InputError(f"--start: {exc}") from None


def _duration(value: str | None) -> float | None:
    from microfab.sim.engine import parse_duration

    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise InputError(f"--duration: {exc}") from None


def _speed(value: str) -> float | None:
    """``max`` -> None (as fast as possible), else a positive factor."""
    if value.lower() == "max":
        return None
    try:
        speed = float(value)
    except ValueError:
        raise InputError(f"--speed: '{value}' is not a number or 'max'") from None
    if speed <= 0:
        raise InputError("--speed must be positive (600 = ten simulated minutes per second)")
    return speed


def _fresh_sqlite(url: str) -> None:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        raise InputError("--fresh only works with a SQLite file database")
    for suffix in ("", "-wal", "-shm"):
        Path(parsed.database + suffix).unlink(missing_ok=True)


@app.command()
def demo(
    scenario: ScenarioOption = "food-line",
    speed: Annotated[str, typer.Option(help="Simulated seconds per real second, or 'max'")] = "600",
    duration: Annotated[
        str | None,
        typer.Option(
            help="Simulated time to run, e.g. 8h; default: until Ctrl-C", show_default=False
        ),
    ] = None,
    seed: SeedOption = 1,
    start: StartOption = None,
    db: DbOption = None,
    web: Annotated[
        bool,
        typer.Option(
            "--web/--no-web", help="Serve the web dashboard (arrives with the tracking release)"
        ),
    ] = True,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Delete the SQLite database first")
    ] = False,
) -> None:
    """Run a simulated Hong Kong micro-factory into the store, with a live terminal view."""
    from microfab.console import live_view, totals_table
    from microfab.sim.engine import FactorySimulation
    from microfab.sim.scenario import load_scenario
    from microfab.store import open_store
    from microfab.store.sink import StoreSink
    from microfab.store.url import mask_url, resolve_url

    chosen = load_scenario(scenario)
    seconds = _duration(duration)
    factor = _speed(speed)
    begin = _start(start)
    url = resolve_url(db)
    if fresh:
        _fresh_sqlite(url)
    store = open_store(url)
    version, _ = store.apply_factory(chosen.factory, chosen.factory_source)
    sink = StoreSink(store)
    sim = FactorySimulation(chosen, sink, seed=seed, start=begin)
    if web:
        err.print("web dashboard: not in this release yet; showing the terminal view", style="dim")
    out.print(
        f"microfab demo: {chosen.name} ({chosen.description}) into {mask_url(url)}, "
        f"factory version {version}",
        highlight=False,
    )
    wall_start = time.perf_counter()
    speed_label = "max" if factor is None else f"{factor:g}x"

    def view() -> Panel:
        return live_view(
            chosen.factory,
            store.machine_status(),
            store.order_status(),
            scenario=chosen.name,
            sim_time=sim.now,
            stored=sink.totals.inserted,
            duplicates=sink.totals.duplicates,
            speed=speed_label,
        )

    interrupted = False
    try:
        with Live(view(), console=out, refresh_per_second=4, transient=False) as live:
            last_draw = 0.0
            for now in sim.paced(seconds, factor):
                finished = seconds is not None and now >= seconds
                if time.perf_counter() - last_draw >= 0.25 or finished:
                    live.update(view())
                    last_draw = time.perf_counter()
    except KeyboardInterrupt:
        interrupted = True
        sink.flush()
    wall = time.perf_counter() - wall_start
    status = store.machine_status()
    out.print(totals_table(chosen.factory, status))
    totals = sink.totals
    good = sum(s.good for s in status)
    scrap = sum(s.scrap for s in status)
    out.print(
        f"{'stopped' if interrupted else 'finished'}: simulated {sim.env.now / 3600:.2f} h in {wall:.1f} s; "
        f"events stored {totals.inserted:,}, duplicates ignored {totals.duplicates:,}, "
        f"conflicts {len(totals.conflicts):,}; good {good:,}, scrap {scrap:,}; "
        f"orders released {sim.orders_released}, completed {sim.orders_completed}",
        highlight=False,
    )
    store.close()


@app.command()
def sim(
    scenario: ScenarioOption = "food-line",
    duration: Annotated[str, typer.Option(help="Simulated time to run, e.g. 8h")] = "8h",
    speed: Annotated[str, typer.Option(help="Simulated seconds per real second, or 'max'")] = "max",
    seed: SeedOption = 1,
    start: StartOption = None,
    db: DbOption = None,
    jsonl: Annotated[
        Path | None,
        typer.Option(
            "--jsonl", help="Write events to this JSONL file ('-' for stdout) instead of the store"
        ),
    ] = None,
) -> None:
    """Run the simulator headless: into the store, or to a JSONL file, with a progress bar."""
    from microfab.connect.publisher import ListPublisher
    from microfab.model.events import event_to_dict
    from microfab.sim.engine import FactorySimulation
    from microfab.sim.scenario import load_scenario
    from microfab.store.sink import StoreSink

    chosen = load_scenario(scenario)
    seconds = _duration(duration)
    assert seconds is not None
    factor = _speed(speed)
    begin = _start(start)
    store = None
    publisher: ListPublisher | StoreSink
    if jsonl is not None and str(jsonl) != "-":
        try:  # fail before simulating, not after
            jsonl.open("w", encoding="utf-8").close()
        except OSError as exc:
            raise InputError(f"{jsonl}: cannot write ({exc.strerror})") from None
    if jsonl is None:
        from microfab.store import open_store

        store = open_store(db)
        store.apply_factory(chosen.factory, chosen.factory_source)
        publisher = StoreSink(store)
    else:
        publisher = ListPublisher()
    simulation = FactorySimulation(chosen, publisher, seed=seed, start=begin)
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>5.1f}%"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )
    with progress:
        task = progress.add_task(f"simulating {chosen.name}", total=seconds)
        for now in simulation.paced(seconds, factor):
            progress.update(task, completed=now)
    if isinstance(publisher, ListPublisher):
        lines = (
            json.dumps(event_to_dict(e), ensure_ascii=False, separators=(",", ":"))
            for e in publisher.events
        )
        text = "\n".join(lines) + ("\n" if publisher.events else "")
        if str(jsonl) == "-":
            sys.stdout.write(text)
        else:
            assert jsonl is not None
            jsonl.write_text(text, encoding="utf-8")
            err.print(f"wrote {len(publisher.events):,} events to {jsonl}")
    else:
        assert store is not None
        totals = publisher.totals
        err.print(
            f"stored {totals.inserted:,} events ({totals.duplicates:,} duplicates ignored, "
            f"{len(totals.conflicts):,} conflicts)"
        )
        store.close()


# ---------------------------------------------------------------------------- events


@events_app.command("export")
def events_export(
    format: Annotated[str, typer.Option("--format", help="Output format (jsonl)")] = "jsonl",
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="File to write [default: stdout]", show_default=False),
    ] = None,
    with_ingest_time: Annotated[
        bool, typer.Option("--with-ingest-time", help="Add ingest_ts to each line")
    ] = False,
    db: DbOption = None,
) -> None:
    """Write every stored event, one JSON object per line, ordered by (ts, id)."""
    from microfab.store import open_store
    from microfab.store.jsonl import export_jsonl

    if format != "jsonl":
        raise InputError(f"--format: '{format}' is not supported; use jsonl")
    with open_store(db) as store:
        if output is None:
            export_jsonl(store, sys.stdout, with_ingest_time=with_ingest_time)
            sys.stdout.flush()
        else:
            try:
                handle = output.open("w", encoding="utf-8")
            except OSError as exc:
                raise InputError(f"{output}: cannot write ({exc.strerror})") from None
            with handle:
                n = export_jsonl(store, handle, with_ingest_time=with_ingest_time)
            err.print(f"wrote {n:,} events to {output}")


@events_app.command("import")
def events_import(
    file: Annotated[Path, typer.Argument(help="JSONL file of events (the export format)")],
    db: DbOption = None,
) -> None:
    """Load events from a JSONL file; already-stored events are skipped, conflicts reported."""
    from microfab.store import open_store
    from microfab.store.jsonl import import_jsonl

    with open_store(db) as store:
        report = import_jsonl(store, file)
    r = report.result
    out.print(
        f"{file}: {report.lines:,} lines; stored {r.inserted:,} new events, "
        f"skipped {r.duplicates:,} already stored, rejected {len(r.conflicts):,} id conflicts",
        highlight=False,
    )
    for line, conflict in report.conflict_lines[:20]:
        err.print(
            f"{file}:{line}: id_conflict: event '{conflict.id}' is stored with different content; "
            "not imported",
            highlight=False,
        )
    if r.conflicts:
        raise MicrofabError(
            f"{len(r.conflicts)} events were rejected as id conflicts (listed above)"
        )


@events_app.command("import-counts")
def events_import_counts(
    file: Annotated[
        Path, typer.Argument(help="CSV file: ts,machine,good[,scrap,order,operation]")
    ],
    db: DbOption = None,
) -> None:
    """Load part counts from a CSV file (machines with no connection); re-imports store nothing new."""
    from microfab.connect.csv_counts import import_counts_csv
    from microfab.store import open_store
    from microfab.store.sink import StoreSink

    with open_store(db) as store:
        factory = _stored_factory(store)
        sink = StoreSink(store)
        report = import_counts_csv(file, factory, sink)
    r = sink.totals
    out.print(
        f"{file}: {report.rows:,} rows from {report.machines:,} machines; "
        f"stored {r.inserted:,} new count events, skipped {r.duplicates:,} already stored",
        highlight=False,
    )


@events_app.command("tail")
def events_tail(
    lines: Annotated[
        int, typer.Option("-n", "--lines", help="How many recent events to show first")
    ] = 10,
    follow: Annotated[
        bool, typer.Option("-f", "--follow", help="Keep printing new events as they arrive")
    ] = False,
    machine: Annotated[
        str | None, typer.Option(help="Only events whose machine path starts with this")
    ] = None,
    stream: Annotated[str | None, typer.Option(help="Only this stream (state, count, …)")] = None,
    db: DbOption = None,
) -> None:
    """Print the most recently stored events as JSON lines; with -f, follow new ones."""
    from microfab.model.events import event_to_dict
    from microfab.store import open_store
    from microfab.store.event_store import StoredEvent

    def show(stored: StoredEvent) -> None:
        print(
            json.dumps(event_to_dict(stored.event), ensure_ascii=False, separators=(",", ":")),
            flush=True,
        )

    with open_store(db) as store:
        last = store.last_seq()
        if lines > 0:
            recent = store.events(
                by="seq", limit=lines, machine_prefix=machine, stream=stream, newest_first=True
            )
            for stored in reversed(list(recent)):
                show(stored)
        if not follow:
            return
        try:
            while True:
                for stored in store.events(
                    by="seq", after_seq=last, machine_prefix=machine, stream=stream
                ):
                    show(stored)
                    last = stored.seq
                time.sleep(0.5)
        except KeyboardInterrupt:
            return


@app.command()
def bench(
    name: Annotated[
        str, typer.Argument(help="Benchmark to run: a file bench/NAME.py of the source tree")
    ],
    repeat: Annotated[int, typer.Option(help="Runs per configuration (medians are reported)")] = 3,
    write: Annotated[
        bool, typer.Option("--write/--no-write", help="Record the result in docs/benchmarks.md")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON")] = False,
    events: Annotated[
        int | None,
        typer.Option(help="Events per run (benchmarks that take it)", show_default=False),
    ] = None,
    broker: Annotated[
        str | None,
        typer.Option(
            help="MQTT broker URL (ingest) [default: a private Mosquitto]", show_default=False
        ),
    ] = None,
    db: Annotated[
        str | None,
        typer.Option(
            "--db", help="Database URL [default: a temporary SQLite file]", show_default=False
        ),
    ] = None,
) -> None:
    """Run a benchmark from bench/, print its figures and record them in docs/benchmarks.md."""
    import inspect

    from microfab.benchmarks import find_benchmark, machine_note, record

    module, root = find_benchmark(name)
    accepted = inspect.signature(module.run).parameters
    given = {"events": events, "broker": broker, "db": db}
    for option, value in given.items():
        if value is not None and option not in accepted:
            raise InputError(f"benchmark '{name}' does not take --{option}")
    result = module.run(repeat=repeat, **{k: v for k, v in given.items() if v is not None})
    text = module.markdown(result)
    if as_json:
        print(json.dumps({**result, "machine": machine_note()}, indent=2))
    else:
        print(text)
    if write:
        target = record(root / "docs" / "benchmarks.md", name, module.TITLE, text)
        err.print(f"recorded in {target}")


# ---------------------------------------------------------------------------- connectivity


def _broker(
    broker: str | None,
    username: str | None,
    password: str | None,
    tls_ca: Path | None,
    mqtt_version: str = "5",
) -> BrokerSettings:
    from microfab.connect.mqtt_client import parse_broker_url

    return parse_broker_url(
        broker,
        username=username,
        password=password,
        tls_ca=str(tls_ca) if tls_ca else None,
        protocol=mqtt_version,
    )


def _stored_factory(store: EventStore) -> Factory:
    found = store.factory()
    if found is None:
        raise NoFactoryError(
            "no factory model in this store yet; run 'microfab factory apply FACTORY.yaml' first"
        )
    return found[1]


@app.command()
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
) -> None:
    """Subscribe to the microfab topics and store every event: QoS 1, acknowledged after commit."""
    from microfab.connect.mqtt_ingest import IngestWorker
    from microfab.store import open_store

    settings = _broker(broker, username, password, tls_ca, mqtt_version)
    with open_store(db) as store:
        found = store.factory()
        worker = IngestWorker(
            store,
            settings,
            known_machines={ref.path for ref in found[1].machines()} if found else None,
            strict=strict,
            shared=shared,
            client_id=client_id,
            batch_size=batch_size,
            max_payload=max_payload,
        )
        err.print(
            f"ingest: {settings.display} -> {store.display_url}"
            f"{' (strict)' if strict else ''}; Ctrl-C to stop",
            highlight=False,
        )
        worker.run_forever(log=lambda line: err.print(line, highlight=False))


@app.command()
def broker(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 1883,
) -> None:
    """Run the embedded MQTT 3.1.1 broker (for the demo and small sites; use Mosquitto/EMQX in production)."""
    from microfab.connect.broker import run_broker

    err.print(f"embedded MQTT broker on mqtt://{host}:{port}; Ctrl-C to stop", highlight=False)
    run_broker(host, port)


def _run_connector(
    kind: str, db: str | None, endpoint: str | None = None, **options: object
) -> None:
    import asyncio

    from microfab.connect.connector import run_until_interrupted
    from microfab.connect.mqtt_client import BrokerSettings
    from microfab.store import open_store
    from microfab.store.sink import StoreSink

    with open_store(db) as store:
        factory = _stored_factory(store)
        sink = StoreSink(store, batch_size=500)
        if kind == "opcua":
            from microfab.connect.opcua import OpcUaConnector

            connector: Connector = OpcUaConnector(factory, sink, endpoint=endpoint)
        elif kind == "sparkplug":
            from microfab.connect.sparkplug import SparkplugHost

            settings = options["broker"]
            assert isinstance(settings, BrokerSettings)
            connector = SparkplugHost(factory, sink, settings)
        else:
            from microfab.connect.modbus import ModbusConnector

            connector = ModbusConnector(factory, sink)
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
) -> None:
    """Subscribe to the OPC UA nodes mapped in the factory model; reconnects by itself."""
    _run_connector("opcua", db, endpoint=endpoint)


@connect_app.command("sparkplug")
def connect_sparkplug(
    broker: BrokerOption = None,
    username: UsernameOption = None,
    password: PasswordOption = None,
    tls_ca: TlsCaOption = None,
    db: DbOption = None,
) -> None:
    """Run a Sparkplug B host application for the edge nodes mapped in the factory model."""
    _run_connector("sparkplug", db, broker=_broker(broker, username, password, tls_ca))


@connect_app.command("modbus")
def connect_modbus(db: DbOption = None) -> None:
    """Poll the Modbus TCP registers mapped in the factory model."""
    _run_connector("modbus", db)


@deadletters_app.command("list")
def deadletters_list(
    limit: Annotated[int, typer.Option("-n", "--limit", help="Newest N dead letters")] = 20,
    db: DbOption = None,
) -> None:
    """Show the newest dead letters: when, topic, reason and the start of the payload."""
    from rich.table import Table

    from microfab.store import open_store

    with open_store(db) as store:
        letters = store.dead_letters(limit=limit, newest_first=True)
        total = store.dead_letter_count()
    table = Table(title=f"Dead letters: newest {len(letters)} of {total:,}", title_justify="left")
    for column in ("received (UTC)", "source", "topic", "reason", "payload"):
        table.add_column(column, overflow="fold")
    for letter in letters:
        table.add_row(
            letter.received_at.strftime("%Y-%m-%d %H:%M:%S"),
            letter.source,
            letter.topic,
            letter.reason,
            letter.payload[:80],
        )
    out.print(table)


@deadletters_app.command("export")
def deadletters_export(
    format: Annotated[str, typer.Option("--format", help="Output format (jsonl)")] = "jsonl",
    db: DbOption = None,
) -> None:
    """Write every dead letter as JSON lines: topic, payload, reason, received_at (oldest first)."""
    from microfab.model.events import format_ts
    from microfab.store import open_store

    if format != "jsonl":
        raise InputError(f"--format: '{format}' is not supported; use jsonl")
    with open_store(db) as store:
        for letter in store.dead_letters():
            record = {
                "topic": letter.topic,
                "payload": letter.payload,
                "reason": letter.reason,
                "received_at": format_ts(letter.received_at),
                "source": letter.source,
            }
            sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")


@events_app.command("schema")
def events_schema() -> None:
    """Print the JSON Schema of one event."""
    print(json.dumps(events_json_schema(), indent=2, ensure_ascii=False))


if __name__ == "__main__":  # pragma: no cover
    main()
