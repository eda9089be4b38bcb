"""The ``microfab`` command line (Typer + Rich).

Every command that touches data takes ``--db URL`` (default: ``MICROFAB_DB``, else
``sqlite:///microfab.db``). Errors from microfab print one sentence and exit non-zero
(2 for bad input, 1 otherwise); no traceback.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import socket
import ssl
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.panel import Panel
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from microfab import __version__
from microfab.errors import InputError, LocatedFileError, MicrofabError, NoFactoryError
from microfab.model.events import events_json_schema, parse_ts
from microfab.model.factory import Factory
from microfab.model.factory_file import parse_factory

if TYPE_CHECKING:
    from microfab.api import BackgroundServer
    from microfab.connect.connector import Connector
    from microfab.connect.mqtt_client import BrokerSettings
    from microfab.connect.mqtt_ingest import IngestWorker
    from microfab.connect.mqtt_publish import MqttPublisher
    from microfab.connect.publisher import Publisher
    from microfab.console import MqttPath
    from microfab.quality.alerts import AlertLoop
    from microfab.sim.engine import FactorySimulation
    from microfab.sim.scenario import Scenario
    from microfab.store.event_store import EventStore

from microfab.commands.alerts import alerts_app
from microfab.commands.audit import audit_app
from microfab.commands.backup import backup as backup_command
from microfab.commands.backup import restore as restore_command
from microfab.commands.backup import retention_app
from microfab.commands.carbon import carbon_app
from microfab.commands.common import stored_factory
from microfab.commands.funding import funding_app
from microfab.commands.haccp import haccp_app
from microfab.commands.oee import downtime as downtime_command
from microfab.commands.oee import oee as oee_command
from microfab.commands.orders import orders_app
from microfab.commands.orders import trace as trace_command
from microfab.commands.plan import plan_app
from microfab.commands.quality import anomalies as anomalies_command
from microfab.commands.quality import defects as defects_command
from microfab.commands.quality import health as health_command
from microfab.commands.quality import spc as spc_command
from microfab.commands.report import report_app
from microfab.commands.serve import serve as serve_command
from microfab.commands.users import tokens_app, users_app
from microfab.commands.views import db_rebuild_views, db_status, orders_orphans
from microfab.track.production import line_outputs

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
app.command()(oee_command)
app.command()(downtime_command)
app.add_typer(orders_app, name="orders")
app.command("trace")(trace_command)
app.add_typer(plan_app, name="plan")
app.command("serve")(serve_command)
app.add_typer(users_app, name="users")
app.add_typer(tokens_app, name="tokens")
app.add_typer(audit_app, name="audit")
app.command("backup")(backup_command)
app.command("restore")(restore_command)
app.add_typer(retention_app, name="retention")
app.command("spc")(spc_command)
app.command("anomalies")(anomalies_command)
app.command("health")(health_command)
app.command("defects")(defects_command)
app.add_typer(alerts_app, name="alerts")
app.add_typer(haccp_app, name="haccp")
app.add_typer(carbon_app, name="carbon")
app.add_typer(funding_app, name="funding")
app.add_typer(report_app, name="report")
db_app.command("rebuild-views")(db_rebuild_views)
db_app.command("status")(db_status)
orders_app.command("orphans")(orders_orphans)

out = Console(soft_wrap=True, markup=False)  # user text (names, ids) is never markup
err = Console(stderr=True, soft_wrap=True, markup=False)

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Database URL: sqlite:///FILE.db or postgresql://USER@HOST:PORT/DB "
        "\\[default: $MICROFAB_DB or sqlite:///microfab.db]",
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
        help="Simulated start time, ISO-8601 with offset \\[default: 2026-11-23T08:00:00+08:00]",
        show_default=False,
    ),
]


BrokerOption = Annotated[
    str | None,
    typer.Option(
        "--broker",
        help="MQTT broker URL mqtt://\\[USER@]HOST:PORT or mqtts://… \\[default: $MICROFAB_BROKER or "
        "mqtt://127.0.0.1:1883]",
        show_default=False,
    ),
]
UsernameOption = Annotated[str | None, typer.Option("--username", help="MQTT user name")]
PasswordOption = Annotated[
    str | None,
    typer.Option(
        "--password", help="MQTT password \\[default: $MICROFAB_MQTT_PASSWORD]", show_default=False
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
    except LocatedFileError as exc:
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
    from microfab.commands.users import cli_actor
    from microfab.store import open_store
    from microfab.store.audit import record_change

    factory = _read_factory(factory_file)
    with open_store(db) as store:
        version, created = store.apply_factory(factory, str(factory_file))
        if created:
            record_change(
                store,
                actor=cli_actor(),
                action="factory.apply",
                target=f"factory:{version}",
                before=None if version == 1 else {"version": version - 1},
                after={
                    "version": version,
                    "company": factory.company.name,
                    "source": str(factory_file),
                },
            )
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


class _MqttWarnings(logging.Handler):
    """Shows the MQTT adapters' warnings on stderr while a command runs, each only once in a row:
    a broker that refuses the login is tried again every few seconds, and one line says so."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.muted = False
        self._last: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if self.muted or text == self._last:
            return
        self._last = text
        err.print(f"warning: {text}", highlight=False)


@contextlib.contextmanager
def _mqtt_warnings() -> Iterator[_MqttWarnings]:
    handler = _MqttWarnings()
    logger = logging.getLogger("microfab.connect")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def _check_tls_ca(tls_ca: Path | None) -> None:
    """Refuse an unreadable CA file before anything starts (paho would raise deep inside)."""
    if tls_ca is None:
        return
    try:
        ssl.create_default_context(cafile=str(tls_ca))
    except (OSError, ssl.SSLError) as exc:
        raise InputError(f"--tls-ca {tls_ca}: not a readable CA certificate ({exc})") from None


def _wait_for_broker(publisher: MqttPublisher, *, patience_s: float = 10.0) -> None:
    """Wait while the broker takes what the publisher holds: until nothing is left, or nothing
    has moved for ``patience_s`` (2 s when the broker is not even connected)."""
    last = publisher.stats.delivered
    moved = time.monotonic()
    while publisher.pending():
        now = time.monotonic()
        if publisher.stats.delivered != last:
            last, moved = publisher.stats.delivered, now
        elif now - moved > (patience_s if publisher.connected else 2.0):
            return
        time.sleep(0.05)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _retire_session(settings: BrokerSettings, client_id: str) -> None:
    """Connect once more as ``client_id`` with a clean session, so that an outside broker drops
    the demo worker's persistent session instead of queueing messages for it for days."""
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    from microfab.connect.mqtt_client import connect_blocking

    if settings.protocol == 5:
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
        options: dict[str, object] = {"clean_start": True}
    else:
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=paho.MQTTv311,
            clean_session=True,
        )
        options = {}
    if settings.username:
        client.username_pw_set(settings.username, settings.password)
    if settings.tls:
        client.tls_set_context(ssl.create_default_context(cafile=settings.tls_ca))
    try:
        connect_blocking(client, settings, timeout_s=5.0, **options)
        client.disconnect()
        client.loop_stop()
    except MicrofabError as exc:
        err.print(f"warning: could not end the demo's MQTT session: {exc.message}", highlight=False)


class _MqttPipeline:
    """The demo's way from the simulator to the store: MQTT publisher → broker → ingest worker.

    ``settings`` None starts microfab's embedded broker (MQTT 3.1.1) on a free local port, with a
    login generated for this run (user ``microfab-demo``, a random password): nobody else gets in.
    """

    def __init__(
        self,
        store: EventStore,
        factory: Factory,
        settings: BrokerSettings | None,
    ) -> None:
        self.store = store
        self.factory = factory
        self.embedded = settings is None
        self._settings = settings
        self._stack = contextlib.ExitStack()
        self._warnings: _MqttWarnings | None = None
        self._worker: IngestWorker | None = None
        self._publisher: MqttPublisher | None = None

    @property
    def settings(self) -> BrokerSettings:
        assert self._settings is not None, "start() first"
        return self._settings

    @property
    def display(self) -> str:
        """The broker's URL as shown: the embedded broker's generated login stays out of view."""
        if self.embedded:
            return f"mqtt://{self.settings.host}:{self.settings.port}"
        return self.settings.display

    @property
    def worker(self) -> IngestWorker:
        assert self._worker is not None, "start() first"
        return self._worker

    @property
    def publisher(self) -> MqttPublisher:
        assert self._publisher is not None, "start() first"
        return self._publisher

    def start(self) -> None:
        """Start the broker (embedded), then the ingest worker (subscribed), then the publisher."""
        from microfab.connect.mqtt_publish import MqttPublisher

        try:
            self._warnings = self._stack.enter_context(_mqtt_warnings())
            if self._settings is None:
                self._settings = self._start_embedded_broker()
            self._worker = self._start_worker()
            self._publisher = MqttPublisher(self.settings, client_id=f"microfab-demo-{_token()}")
        except BaseException:
            self._stack.close()
            raise

    def _start_embedded_broker(self) -> BrokerSettings:
        import secrets

        from microfab.connect.broker import EmbeddedBroker
        from microfab.connect.mqtt_client import BrokerError, parse_broker_url

        # amqtt warns about acknowledgements that cross the worker's DISCONNECT at the end of a
        # run; harmless here (the demo checks what was stored), and not for the live view.
        amqtt_log = logging.getLogger("amqtt")
        self._stack.callback(amqtt_log.setLevel, amqtt_log.level)
        amqtt_log.setLevel(logging.ERROR)
        # The demo's own credentials: the broker accepts nobody else, even on loopback.
        username, password = "microfab-demo", secrets.token_urlsafe(18)
        for attempt in range(3):  # the free port may be taken again before the broker binds it
            broker = EmbeddedBroker("127.0.0.1", _free_port(), users={username: password})
            try:
                broker.start()
            except BrokerError:
                if attempt == 2:
                    raise
                continue
            self._stack.callback(broker.stop)
            return parse_broker_url(
                broker.url, username=username, password=password, protocol="3.1.1"
            )
        raise AssertionError("unreachable")

    def _start_worker(self) -> IngestWorker:
        from microfab.connect.mqtt_client import BrokerError
        from microfab.connect.mqtt_ingest import IngestWorker

        client_id = f"microfab-demo-ingest-{_token()}"
        worker = IngestWorker(
            self.store,
            self.settings,
            known_machines={ref.path for ref in self.factory.machines()},
            shared=False,
            client_id=client_id,
        )
        assert self._warnings is not None
        self._warnings.muted = True  # a refused first connection is one error, raised below
        worker.start()
        self._warnings.muted = False
        if not self.embedded:  # callbacks run last-in first-out: this one after worker.stop
            self._stack.callback(_retire_session, self.settings, client_id)
        self._stack.callback(worker.stop)
        # Events published before the broker has the worker's subscription would go nowhere
        # (its session is new), so the simulator starts only after the SUBACK.
        if not worker.wait_subscribed(10.0):
            raise BrokerError(
                f"the MQTT broker at {self.settings.display} did not confirm the subscription "
                f"to {worker.subscription} within 10 s"
            )
        return worker

    def path(self, published: int) -> MqttPath:
        from microfab.console import MqttPath

        s = self.worker.stats
        return MqttPath(
            broker=self.display,
            embedded=self.embedded,
            published=published,
            waiting=self.publisher.pending(),
            ingested=s.stored + s.duplicates,
            dead_letters=s.dead_letters,
        )

    def everything_ingested(self) -> bool:
        """The broker has every message and the worker has committed as many as were published
        (one event per message: the demo publishes unbatched)."""
        queued = self.publisher.stats.queued
        return self.publisher.pending() == 0 and self.worker.stats.received >= queued

    def drain(self, tick: Callable[[], None], *, patience_s: float = 15.0) -> bool:
        """Flush the publisher, then wait until the worker has stored everything published or
        nothing has moved for ``patience_s``; call ``tick`` meanwhile. True if all arrived."""
        self.publisher.flush()
        last = (-1, -1)
        moved = time.monotonic()
        while not self.everything_ingested():
            now = time.monotonic()
            progress = (self.publisher.stats.delivered, self.worker.stats.received)
            if progress != last:
                last, moved = progress, now
            elif now - moved > patience_s:
                return False
            tick()
            time.sleep(0.05)
        return True

    def stop(self) -> None:
        """Stop the publisher, the worker (it commits what it holds) and the embedded broker."""
        if self._warnings is not None:
            self._warnings.muted = True  # the final totals say what did not arrive
        if self._publisher is not None:
            self._publisher.close(timeout_s=0)
        self._stack.close()


def _token() -> str:
    import uuid

    return uuid.uuid4().hex[:8]


def _dashboard(store: EventStore, clock: Callable[[], dt.datetime]) -> tuple[BackgroundServer, str]:
    """The dashboard on port 8000 (a free port when 8000 is taken), and how to sign in to it.

    A store without an admin gets user ``admin`` (``demo-admin`` if that name is taken) with a
    generated one-time password, printed once; there is no default password."""
    from microfab.api import BackgroundServer, create_app
    from microfab.commands.users import cli_actor
    from microfab.model.identity import Role
    from microfab.store.identity import add_user, generate_password, get_user, list_users

    if any(user.role is Role.ADMIN for user in list_users(store)):
        sign_in = "sign in 登入 with your admin user ('microfab users list' shows the users)"
    else:
        name = "admin" if get_user(store, "admin") is None else "demo-admin"
        password = generate_password()
        add_user(store, name, Role.ADMIN, password, actor=cli_actor())
        sign_in = (
            f"sign in 登入: user {name}, one-time password {password} (shown only now; "
            f"change it with 'microfab users password {name}')"
        )
    app = create_app(store, clock=clock)  # the simulation's time is the plant's
    try:
        server = BackgroundServer(app, "127.0.0.1", 8000)
    except InputError:  # port 8000 in use
        server = BackgroundServer(app, "127.0.0.1", 0)
    return server.start(), sign_in


def _serve_until_interrupted(url: str) -> None:
    """After a finished run, keep the dashboard up on a terminal so the user can look at it."""
    err.print(f"the dashboard stays up at {url} to look at the run; Ctrl-C stops", highlight=False)
    with contextlib.suppress(KeyboardInterrupt):
        while True:
            time.sleep(3600)


DEMO_ALERTS_EVERY_S = 10.0
"""Wall-clock seconds between the demo's evaluations of the scenario's alert rules."""


def _demo_alerts(store: EventStore, scenario: Scenario) -> AlertLoop | None:
    """The scenario's alert rules (``alerts.yaml`` in its folder) evaluated in the background
    while the demo runs, or None when it has none."""
    from microfab.quality.alerts import AlertLoop, load_alert_rules

    if scenario.folder is None or not (scenario.folder / "alerts.yaml").is_file():
        return None
    path = scenario.folder / "alerts.yaml"
    loop = AlertLoop(store, scenario.factory, load_alert_rules(path), every_s=DEMO_ALERTS_EVERY_S)
    out.print(
        f"alerts 警報: the rules of {path.name} ({len(loop.rules.rules)}) are evaluated every "
        f"{DEMO_ALERTS_EVERY_S:g} s; open alerts show on the dashboard's banner",
        highlight=False,
    )
    return loop.start()


def _print_demo_alerts(store: EventStore, factory: Factory, loop: AlertLoop) -> None:
    from microfab.quality.alerts import open_alerts

    if loop.error is not None:
        err.print(f"warning: the alert rules could not be evaluated: {loop.error}", highlight=False)
    found = open_alerts(store, limit=50)
    zone = factory.sites[0].zone
    out.print(f"alerts 警報: {len(found)} open", highlight=False)
    for alert in found:
        since = parse_ts(alert["first_ts"]).astimezone(zone).strftime("%m-%d %H:%M")
        machine = str(alert["machine"]).rsplit("/", 1)[-1]
        out.print(
            f"  {alert['id']:>3} {alert['severity']:<8} {machine:<10} since {since}  "
            f"{escape(alert['message'])}",
            highlight=False,
            soft_wrap=True,
        )


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
            "--web/--no-web",
            help="Serve the live dashboard and REST API on http://127.0.0.1:8000 "
            "(another free port when 8000 is taken)",
        ),
    ] = True,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Delete the SQLite database first")
    ] = False,
    broker: Annotated[
        str | None,
        typer.Option(
            "--broker",
            help="Use this MQTT broker, e.g. mqtt://127.0.0.1:1883 (Mosquitto), instead of "
            "starting the embedded one; the demo's ingest worker stores every event published "
            "on microfab/v1/… there \\[default: the embedded broker on a free local port]",
            show_default=False,
        ),
    ] = None,
    username: UsernameOption = None,
    password: PasswordOption = None,
    tls_ca: TlsCaOption = None,
    mqtt_version: Annotated[
        str | None,
        typer.Option(
            "--mqtt-version",
            help="With --broker: MQTT protocol version, 5 or 3.1.1 \\[default: 5; the embedded "
            "broker speaks 3.1.1]",
            show_default=False,
        ),
    ] = None,
    direct: Annotated[
        bool,
        typer.Option("--direct", help="Store the simulated events directly, without MQTT"),
    ] = False,
) -> None:
    """Run a simulated Hong Kong micro-factory: simulator → MQTT → ingest → store, with a live view."""
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
    mqtt_options = {
        "--broker": broker,
        "--username": username,
        "--password": password,
        "--tls-ca": tls_ca,
        "--mqtt-version": mqtt_version,
    }
    given = [name for name, value in mqtt_options.items() if value is not None]
    if direct and given:
        raise InputError(f"{given[0]} does not apply with --direct (no MQTT)")
    if broker is None and given:
        raise InputError(
            f"{given[0]} only applies with --broker; the demo's embedded broker makes its own login"
        )
    _check_tls_ca(tls_ca)
    settings = (
        _broker(broker, username, password, tls_ca, mqtt_version or "5")
        if broker is not None
        else None
    )
    url = resolve_url(db)
    if fresh:
        _fresh_sqlite(url)
    with contextlib.ExitStack() as cleanup:
        store = open_store(url)
        cleanup.callback(store.close)
        version, _ = store.apply_factory(chosen.factory, chosen.factory_source)
        sink: StoreSink | None = None
        pipeline: _MqttPipeline | None = None
        publisher: Publisher
        if direct:
            sink = publisher = StoreSink(store)
        else:
            pipeline = _MqttPipeline(store, chosen.factory, settings)
            pipeline.start()
            cleanup.callback(pipeline.stop)
            publisher = pipeline.publisher
        sim = FactorySimulation(chosen, publisher, seed=seed, start=begin)
        alert_loop = _demo_alerts(store, chosen)
        if alert_loop is not None:
            cleanup.callback(alert_loop.stop, final=False)
        server: BackgroundServer | None = None
        if web:
            server, sign_in = _dashboard(store, lambda: sim.now)
            cleanup.callback(server.stop)
            out.print(
                f"dashboard 儀表板: {server.url} · API docs {server.url}docs", highlight=False
            )
            out.print(sign_in, highlight=False, soft_wrap=True)
        route = (
            "directly"
            if pipeline is None
            else f"via MQTT {pipeline.display}"
            + (" (embedded broker, demo login)" if pipeline.embedded else "")
        )
        out.print(
            f"microfab demo: {chosen.name} ({chosen.description}) into {mask_url(url)} {route}, "
            f"factory version {version}",
            highlight=False,
        )
        wall_start = time.perf_counter()
        speed_label = "max" if factor is None else f"{factor:g}x"

        def view() -> Panel:
            if pipeline is not None:
                stored, duplicates = pipeline.worker.stats.stored, pipeline.worker.stats.duplicates
            else:
                assert sink is not None
                stored, duplicates = sink.totals.inserted, sink.totals.duplicates
            return live_view(
                chosen.factory,
                store.machine_status(),
                store.order_status(),
                scenario=chosen.name,
                sim_time=sim.now,
                stored=stored,
                duplicates=duplicates,
                speed=speed_label,
                mqtt=pipeline.path(sim.published) if pipeline is not None else None,
            )

        interrupted = False
        complete = True
        with Live(view(), console=out, refresh_per_second=4, transient=False) as live:
            last_draw = 0.0

            def redraw(force: bool = False) -> None:
                nonlocal last_draw
                if force or time.perf_counter() - last_draw >= 0.25:
                    live.update(view())
                    last_draw = time.perf_counter()

            try:
                for now in sim.paced(seconds, factor):
                    redraw(force=seconds is not None and now >= seconds)
            except KeyboardInterrupt:
                interrupted = True
            try:
                if pipeline is not None:
                    complete = pipeline.drain(redraw)
                else:
                    assert sink is not None
                    sink.flush()
            except KeyboardInterrupt:
                interrupted, complete = True, False
            if pipeline is not None:
                pipeline.stop()  # the worker commits what it holds before the totals are read
            redraw(force=True)
        if not out.is_terminal:
            out.line()  # Rich ends a live display with a newline on terminals only
        wall = time.perf_counter() - wall_start
        status = store.machine_status()
        out.print(totals_table(chosen.factory, status))
        made = line_outputs(store, chosen.factory).values()  # line output, not a sum of stations
        good = sum(line.good for line in made)
        scrap = sum(line.scrap_inside + line.scrap_outside for line in made)
        if pipeline is not None:
            w = pipeline.worker.stats
            stored_text = (
                f"events stored {w.stored:,}, duplicates ignored {w.duplicates:,}, "
                f"dead letters {w.dead_letters:,}"
            )
        else:
            assert sink is not None
            t = sink.totals
            stored_text = (
                f"events stored {t.inserted:,}, duplicates ignored {t.duplicates:,}, "
                f"conflicts {len(t.conflicts):,}"
            )
        out.print(
            f"{'stopped' if interrupted else 'finished'}: simulated {sim.env.now / 3600:.2f} h "
            f"in {wall:.1f} s; {stored_text}; line output good {good:,}, scrap {scrap:,}; "
            f"orders released {sim.orders_released}, completed {sim.orders_completed}",
            highlight=False,
        )
        if pipeline is not None:
            w = pipeline.worker.stats
            out.print(
                f"MQTT: {sim.published:,} events published to {pipeline.display}"
                f"{' (embedded broker)' if pipeline.embedded else ''}, "
                f"{w.stored + w.duplicates:,} ingested, {w.dead_letters:,} dead letters",
                highlight=False,
            )
            if not complete:
                missing = sim.published - w.stored - w.duplicates - w.dead_letters
                err.print(
                    f"warning: {max(missing, 0):,} published events had not reached the store "
                    "when the demo stopped",
                    highlight=False,
                )
        if alert_loop is not None:
            alert_loop.stop()
            _print_demo_alerts(store, chosen.factory, alert_loop)
        if server is not None and not interrupted and sys.stdin.isatty():
            _serve_until_interrupted(server.url)


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
    broker: Annotated[
        str | None,
        typer.Option(
            "--broker",
            help="Publish the events to this MQTT broker (mqtt://\\[USER@]HOST:PORT or mqtts://…) "
            "on the microfab/v1/… topics, QoS 1, instead of storing them; `microfab ingest` "
            "stores them",
            show_default=False,
        ),
    ] = None,
    spool: Annotated[
        Path | None,
        typer.Option(
            "--spool",
            help="With --broker: SQLite file holding the messages the broker has not "
            "acknowledged (all of them while it is unreachable); they go first, in order, when "
            "it is back or on the next run with this file \\[default: microfab-spool.db in the "
            "working directory]",
            show_default=False,
        ),
    ] = None,
    batch: Annotated[
        int,
        typer.Option(
            "--batch",
            min=1,
            max=1000,
            help="With --broker: up to N consecutive events of one topic per message (a JSON array)",
        ),
    ] = 1,
    username: UsernameOption = None,
    password: PasswordOption = None,
    tls_ca: TlsCaOption = None,
    mqtt_version: MqttVersionOption = "5",
) -> None:
    """Run the simulator headless: into the store, to a JSONL file or to an MQTT broker."""
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
    if broker is None:
        needs_broker = {
            "--spool": spool,
            "--batch": batch if batch != 1 else None,
            "--username": username,
            "--password": password,
            "--tls-ca": tls_ca,
            "--mqtt-version": mqtt_version if mqtt_version != "5" else None,
        }
        given = [name for name, value in needs_broker.items() if value is not None]
        if given:
            raise InputError(f"{given[0]} only applies with --broker")
    else:
        if jsonl is not None:
            raise InputError("--jsonl and --broker exclude each other: write a file or publish")
        if db is not None:
            raise InputError(
                "--db does not apply with --broker: the events go to the broker, and "
                "`microfab ingest --db …` stores them"
            )
        _check_tls_ca(tls_ca)
        settings = _broker(broker, username, password, tls_ca, mqtt_version)
        _sim_over_mqtt(
            chosen,
            seconds,
            factor,
            seed=seed,
            begin=begin,
            settings=settings,
            spool=spool or Path("microfab-spool.db"),
            batch=batch,
        )
        return
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
    interrupted = _simulate_with_progress(simulation, seconds, factor)
    publisher.flush()
    if interrupted:
        err.print(f"stopped after {simulation.env.now / 3600:.2f} simulated hours", highlight=False)
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


def _simulate_with_progress(
    simulation: FactorySimulation, seconds: float, factor: float | None
) -> bool:
    """Run to ``seconds`` with a progress bar on stderr; True if Ctrl-C stopped it first."""
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>5.1f}%"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,  # a pipe or a log file gets the summary only
    )
    try:
        with progress:
            task = progress.add_task(f"simulating {simulation.scenario.name}", total=seconds)
            for now in simulation.paced(seconds, factor):
                progress.update(task, completed=now)
    except KeyboardInterrupt:
        return True
    return False


def _sim_over_mqtt(
    chosen: Scenario,
    seconds: float,
    factor: float | None,
    *,
    seed: int,
    begin: dt.datetime,
    settings: BrokerSettings,
    spool: Path,
    batch: int,
) -> None:
    """``microfab sim --broker``: publish through a spool; say at the end what the broker took."""
    from microfab.connect.mqtt_publish import MqttPublisher
    from microfab.sim.engine import FactorySimulation

    err.print(f"publishing to {settings.display}; spool {spool}", highlight=False)
    with _mqtt_warnings() as warnings:
        publisher = MqttPublisher(settings, spool_path=spool, batch=batch)
        try:
            backlog = publisher.pending()
            if backlog:
                err.print(
                    f"{backlog:,} messages from an earlier run wait in the spool; they go first",
                    highlight=False,
                )
            simulation = FactorySimulation(chosen, publisher, seed=seed, start=begin)
            interrupted = _simulate_with_progress(simulation, seconds, factor)
            publisher.flush()
            if interrupted:
                err.print(
                    f"stopped after {simulation.env.now / 3600:.2f} simulated hours",
                    highlight=False,
                )
            else:
                with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: stop waiting
                    _wait_for_broker(publisher)
        finally:
            warnings.muted = True  # the summary below says what stays in the spool
            publisher.close(timeout_s=0)
    stats = publisher.stats
    left = publisher.pending()
    total = stats.queued + backlog
    summary = f"published {simulation.published:,} events to {settings.display}"
    if batch > 1:
        summary += f" in {stats.queued:,} messages"
    if stats.delivered == total:
        summary += f"; the broker acknowledged all {total:,} messages"
    else:
        summary += f"; the broker acknowledged {stats.delivered:,} of {total:,} messages"
    if backlog:
        summary += f" (with {backlog:,} spooled by an earlier run)"
    if stats.rejected:
        summary += f" and refused {stats.rejected:,}"
    if left:
        summary += (
            f"; {left:,} wait in the spool {spool} and go first the next time "
            "microfab sim publishes with it"
        )
    else:
        summary += f"; the spool {spool} is empty"
    err.print(summary, highlight=False)


# ---------------------------------------------------------------------------- events


@events_app.command("export")
def events_export(
    format: Annotated[str, typer.Option("--format", help="Output format (jsonl)")] = "jsonl",
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="File to write \\[default: stdout]", show_default=False
        ),
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
    file: Annotated[Path, typer.Argument(help="CSV file: ts,machine,good[,scrap,order,operation]")],
    db: DbOption = None,
) -> None:
    """Load part counts from a CSV file (machines with no connection); re-imports store nothing new."""
    from microfab.connect.csv_counts import import_counts_csv
    from microfab.store import open_store
    from microfab.store.sink import StoreSink

    with open_store(db) as store:
        factory = stored_factory(store)
        sink = StoreSink(store)
        report = import_counts_csv(file, factory, sink)
    r = sink.totals
    out.print(
        f"{file}: {report.rows:,} rows from {report.machines:,} "
        f"machine{'' if report.machines == 1 else 's'}; "
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
            help="MQTT broker URL (ingest) \\[default: a private Mosquitto]", show_default=False
        ),
    ] = None,
    db: Annotated[
        str | None,
        typer.Option(
            "--db", help="Database URL \\[default: a temporary SQLite file]", show_default=False
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

    _check_tls_ca(tls_ca)
    return parse_broker_url(
        broker,
        username=username,
        password=password,
        tls_ca=str(tls_ca) if tls_ca else None,
        protocol=mqtt_version,
    )


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
    username: Annotated[
        str | None, typer.Option("--username", help="The one MQTT user clients log in as")
    ] = None,
    password: PasswordOption = None,
    insecure_dev: Annotated[
        bool,
        typer.Option(
            "--insecure-dev",
            help="Accept anonymous clients (development on one machine only)",
        ),
    ] = False,
) -> None:
    """Run the embedded MQTT 3.1.1 broker (for the demo and small sites; use Mosquitto/EMQX in production)."""
    import os

    from microfab.connect.broker import run_broker

    password = password or os.environ.get("MICROFAB_MQTT_PASSWORD")
    if insecure_dev and (username or password):
        raise InputError("--insecure-dev accepts anonymous clients: give it without --username")
    if not insecure_dev and not (username and password):
        raise InputError(
            "the broker requires credentials: give --username and --password (or "
            "$MICROFAB_MQTT_PASSWORD), or --insecure-dev to accept anonymous clients on a "
            "development machine"
        )
    users = {username: password} if username and password else None
    who = f"user {username} only" if users else "ANONYMOUS clients (--insecure-dev)"
    err.print(
        f"embedded MQTT broker on mqtt://{host}:{port}, accepting {who}; Ctrl-C to stop",
        highlight=False,
    )
    try:
        run_broker(host, port, users)
    except ValueError as exc:
        raise InputError(f"--username: {exc}") from None


VerboseOption = Annotated[
    bool,
    typer.Option(
        "--verbose",
        "-v",
        help="Also log every link change, birth and rebirth, and the protocol libraries' warnings",
    ),
]


def _run_connector(
    kind: str,
    db: str | None,
    endpoint: str | None = None,
    *,
    verbose: bool = False,
    **options: object,
) -> None:
    import asyncio

    from microfab.connect.connector import configure_connector_logging, run_until_interrupted
    from microfab.connect.mqtt_client import BrokerSettings
    from microfab.store import open_store
    from microfab.store.sink import StoreSink

    with open_store(db) as store:
        factory = stored_factory(store)
        sink = StoreSink(store, batch_size=500)
        if kind == "opcua":
            from microfab.connect.opcua import OpcUaConnector

            connector: Connector = OpcUaConnector(factory, sink, endpoint=endpoint)
        elif kind == "sparkplug":
            from microfab.connect.sparkplug import SparkplugHost

            settings = options["broker"]
            assert isinstance(settings, BrokerSettings)
            host_id = options.get("host_id", "microfab")
            assert isinstance(host_id, str)
            connector = SparkplugHost(factory, sink, settings, host_id=host_id)
        else:
            from microfab.connect.modbus import ModbusConnector

            connector = ModbusConnector(factory, sink)
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
    _run_connector("opcua", db, endpoint=endpoint, verbose=verbose)


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
    _run_connector(
        "sparkplug",
        db,
        verbose=verbose,
        broker=_broker(broker, username, password, tls_ca, mqtt_version),
        host_id=host_id,
    )


@connect_app.command("modbus")
def connect_modbus(db: DbOption = None, verbose: VerboseOption = False) -> None:
    """Poll the Modbus TCP registers mapped in the factory model."""
    _run_connector("modbus", db, verbose=verbose)


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
