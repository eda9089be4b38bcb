"""The demo's runtime: simulator → MQTT broker → ingest worker → store, with dashboard and alerts.

``microfab demo`` and ``microfab sim --broker`` parse options and print; the running parts are
here, so that a test drives them without the command line:

- :class:`MqttPipeline` — the embedded broker (or an outside one), the ingest worker subscribed
  before anything is published, the publisher the simulator writes to, draining at the end and
  retiring the worker's persistent session on an outside broker;
- :func:`wait_for_broker` — until a publisher's messages are acknowledged (or stop moving);
- :func:`start_dashboard` — the web app on a background thread, with a sign-in for the run;
- :func:`demo_alert_loop` — the scenario's alert rules evaluated in the background;
- :class:`DemoReplanner` — the plan of the open orders made at the start and made again when
  orders arrive or a machine breaks down, into the dashboard's plan file.

Nothing here prints: warnings go to a ``warn`` callback (the command's stderr console).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from microfab.errors import InputError, MicrofabError
from microfab.logs import MqttWarnings, mqtt_warnings
from microfab.store.maintenance import maintenance_down

if TYPE_CHECKING:
    from microfab.connect.mqtt_client import BrokerSettings
    from microfab.connect.mqtt_ingest import IngestWorker
    from microfab.connect.mqtt_publish import MqttPublisher
    from microfab.console import MqttPath
    from microfab.http.server import BackgroundServer
    from microfab.model.factory import Factory
    from microfab.plan.plan_file import PlanFile
    from microfab.quality.alerts import AlertLoop
    from microfab.sim.scenario import Scenario
    from microfab.store.event_store import EventStore

Warn = Callable[[str], None]

DEMO_USER = "microfab-demo"
"""The embedded broker's one user, with a password generated for each run."""

DEMO_ALERTS_EVERY_S = 10.0
"""Wall-clock seconds between the demo's evaluations of the scenario's alert rules."""

DEMO_REPLAN_EVERY_S = 5.0
"""Fewest wall-clock seconds between two of the demo's re-plans."""

DEMO_MAX_BACKLOG = 5_000
"""Most published events the demo lets wait for the store before it holds the simulator: at
``--speed max`` the simulator outruns the broker and the ingest worker many times over, and
without a bound a long run piles up millions of messages in memory that Ctrl-C then has to wait
for before it can print the totals."""

DEMO_REPLAN_LIMIT_S = 2.0
"""What the solver gets for one of the demo's re-plans (one worker: the simulator keeps a core)."""


def _ignore(text: str) -> None:
    return None


def token() -> str:
    """Eight hex digits that make a client id unique to this run."""
    return uuid.uuid4().hex[:8]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fresh_sqlite(url: str) -> None:
    """Delete a SQLite file database (with its WAL files); InputError for any other URL."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        raise InputError("--fresh only works with a SQLite file database")
    for suffix in ("", "-wal", "-shm"):
        Path(parsed.database + suffix).unlink(missing_ok=True)


def wait_for_broker(publisher: MqttPublisher, *, patience_s: float = 10.0) -> None:
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


def retire_session(settings: BrokerSettings, client_id: str, warn: Warn = _ignore) -> None:
    """Connect once more as ``client_id`` with a clean session, so that an outside broker drops
    the demo worker's persistent session instead of queueing messages for it for days."""
    from microfab.connect.mqtt_client import connect_blocking, new_client

    client = new_client(settings, client_id, clean=True)
    options: dict[str, object] = {"clean_start": True} if settings.protocol == 5 else {}
    try:
        connect_blocking(client, settings, timeout_s=5.0, **options)
        client.disconnect()
        client.loop_stop()
    except MicrofabError as exc:
        warn(f"warning: could not end the demo's MQTT session: {exc.message}")


class MqttPipeline:
    """The demo's way from the simulator to the store: MQTT publisher → broker → ingest worker.

    ``settings`` None starts microfab's embedded broker (MQTT 3.1.1) on a free local port, with a
    login generated for this run (user ``microfab-demo``, a random password): nobody else gets in.
    The MQTT adapters' warnings go to ``warn``, each once in a row.
    """

    def __init__(
        self,
        store: EventStore,
        factory: Factory,
        settings: BrokerSettings | None,
        *,
        warn: Warn = _ignore,
    ) -> None:
        self.store = store
        self.factory = factory
        self.embedded = settings is None
        self._settings = settings
        self._warn = warn
        self._stack = contextlib.ExitStack()
        self._warnings: MqttWarnings | None = None
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

    def start(self) -> MqttPipeline:
        """Start the broker (embedded), then the ingest worker (subscribed), then the publisher."""
        from microfab.connect.mqtt_publish import MqttPublisher
        from microfab.store.view_follower import ViewFollower

        try:
            self._warnings = self._stack.enter_context(mqtt_warnings(self._warn))
            if self._settings is None:
                self._settings = self._start_embedded_broker()
            self._worker = self._start_worker()
            # the production views follow the ingest in the background (off the append path)
            self._stack.enter_context(ViewFollower(self.store))
            self._publisher = MqttPublisher(self.settings, client_id=f"microfab-demo-{token()}")
        except BaseException:
            self._stack.close()
            raise
        return self

    def _start_embedded_broker(self) -> BrokerSettings:
        from microfab.connect.broker import EmbeddedBroker
        from microfab.connect.mqtt_client import BrokerError, parse_broker_url

        # The demo's own credentials: the broker accepts nobody else, even on loopback.
        password = secrets.token_urlsafe(18)
        for attempt in range(3):  # the free port may be taken again before the broker binds it
            broker = EmbeddedBroker("127.0.0.1", free_port(), users={DEMO_USER: password})
            try:
                broker.start()
            except BrokerError:
                if attempt == 2:
                    raise
                continue
            self._stack.callback(broker.stop)
            return parse_broker_url(
                broker.url, username=DEMO_USER, password=password, protocol="3.1.1"
            )
        raise AssertionError("unreachable")

    def _start_worker(self) -> IngestWorker:
        from microfab.connect.mqtt_client import BrokerError
        from microfab.connect.mqtt_ingest import IngestWorker

        client_id = f"microfab-demo-ingest-{token()}"
        worker = IngestWorker(
            self.store,
            self.settings,
            known_machines={ref.path for ref in self.factory.machines()},
            reason_codes=self.factory.downtime_reasons.codes(),
            shared=False,
            client_id=client_id,
        )
        assert self._warnings is not None
        self._warnings.muted = True  # a refused first connection is one error, raised below
        worker.start()
        self._warnings.muted = False
        if not self.embedded:  # callbacks run last-in first-out: this one after worker.stop
            self._stack.callback(retire_session, self.settings, client_id, self._warn)
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
        """How far ``published`` events have come, for the live view."""
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

    def arrived(self) -> int:
        """Published events the worker has taken in (stored, duplicates, dead letters)."""
        s = self.worker.stats
        return s.stored + s.duplicates + s.dead_letters

    def keep_up(
        self,
        published: int,
        tick: Callable[[], None] = lambda: None,
        *,
        backlog: int = DEMO_MAX_BACKLOG,
        patience_s: float = 15.0,
    ) -> bool:
        """Hold the caller (the simulator) while more than ``backlog`` of the ``published``
        events have not reached the store, calling ``tick`` meanwhile; give up (False) when
        nothing has moved for ``patience_s``."""
        last = -1
        moved = time.monotonic()
        while published - self.arrived() > backlog:
            now, arrived = time.monotonic(), self.arrived()
            if arrived != last:
                last, moved = arrived, now
            elif now - moved > patience_s:
                return False
            tick()
            time.sleep(0.02)
        return True

    def drain(self, tick: Callable[[], None] = lambda: None, *, patience_s: float = 15.0) -> bool:
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


def start_dashboard(
    store: EventStore, clock: Callable[[], dt.datetime], *, actor: str
) -> tuple[BackgroundServer, str]:
    """The dashboard on port 8000 (a free port when 8000 is taken), started on a background
    thread, and how to sign in to it.

    A store without an admin gets user ``admin`` (``demo-admin`` if that name is taken) with a
    generated one-time password, told once in the returned sentence; there is no default
    password. ``actor`` names who added that user in the audit log."""
    from microfab.app import create_app
    from microfab.http.server import BackgroundServer
    from microfab.model.identity import Role
    from microfab.store.identity import add_user, generate_password, get_user, list_users

    if any(user.role is Role.ADMIN for user in list_users(store)):
        sign_in = "sign in 登入 with your admin user ('microfab users list' shows the users)"
    else:
        name = "admin" if get_user(store, "admin") is None else "demo-admin"
        password = generate_password()
        add_user(store, name, Role.ADMIN, password, actor=actor)
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


def demo_alert_loop(store: EventStore, scenario: Scenario) -> AlertLoop | None:
    """The scenario's alert rules (``alerts.yaml`` in its folder) evaluated in the background
    every :data:`DEMO_ALERTS_EVERY_S` seconds, started; None when the scenario has none."""
    from microfab.quality.alerts import AlertLoop, load_alert_rules

    if scenario.folder is None or not (scenario.folder / "alerts.yaml").is_file():
        return None
    path = scenario.folder / "alerts.yaml"
    loop = AlertLoop(store, scenario.factory, load_alert_rules(path), every_s=DEMO_ALERTS_EVERY_S)
    return loop.start()


class DemoReplanner:
    """The demo's plan: made when the run starts and again whenever ``changes()`` moves (orders
    released, machines broken down), at most every :data:`DEMO_REPLAN_EVERY_S` wall-clock
    seconds, on a background thread, into ``plan_file`` (the dashboard's). The plan reads the
    open orders from the store, so it sees what has been ingested so far.

    ``plans`` counts the plans written; ``error`` holds the last re-plan's failure (a demo goes
    on without a plan rather than stopping)."""

    def __init__(
        self,
        store: EventStore,
        clock: Callable[[], dt.datetime],
        plan_file: PlanFile,
        changes: Callable[[], tuple[int, ...]],
        *,
        every_s: float = DEMO_REPLAN_EVERY_S,
    ) -> None:
        from microfab.track.plant import Plant

        self.plant = Plant(store, clock=clock)
        self.plan_file = plan_file
        self.changes = changes
        self.every_s = every_s
        self.plans = 0
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="microfab-demo-replan", daemon=True)

    def start(self) -> DemoReplanner:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=DEMO_REPLAN_LIMIT_S + 10.0)

    def replan(self) -> None:
        """Plan the open orders now (as the dashboard's re-plan button does, with a shorter
        time limit)."""
        try:
            _, written = self.plan_file.replan(
                self.plant,
                time_limit=DEMO_REPLAN_LIMIT_S,
                workers=1,
                maintenance=maintenance_down(self.plant.store),
            )
        except MicrofabError as exc:
            self.error = exc.message
            return
        except Exception as exc:  # a fault: the demo goes on without a new plan, and says so
            self.error = f"{type(exc).__name__}: {exc}"
            return
        self.plans += written
        self.error = None

    def _run(self) -> None:
        seen: tuple[int, ...] | None = None
        while not self._stop.is_set():
            now = self.changes()
            if now != seen:
                seen = now
                self.replan()
            self._stop.wait(self.every_s)
