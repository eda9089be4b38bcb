"""``microfab demo``: a simulated micro-factory through MQTT into the store, with a live view.

The running parts (broker, ingest worker, dashboard, alert loop) are in
:mod:`microfab.runtime.demo`; this module parses the options and prints.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated

import typer
from rich.live import Live
from rich.markup import escape
from rich.panel import Panel

from microfab.commands.common import DbOption
from microfab.commands.mqtt_options import (
    PasswordOption,
    TlsCaOption,
    UsernameOption,
    broker_settings,
    check_tls_ca,
)
from microfab.commands.sim_options import (
    ScenarioOption,
    SeedOption,
    StartOption,
    parse_duration,
    parse_speed,
    parse_start,
)
from microfab.console import err, out
from microfab.errors import InputError
from microfab.model.events import parse_ts

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Callable

    from microfab.connect.publisher import Publisher
    from microfab.http.server import BackgroundServer
    from microfab.model.factory import Factory
    from microfab.quality.alerts import AlertLoop
    from microfab.runtime.demo import MqttPipeline
    from microfab.store.event_store import EventStore


def _warn(text: str) -> None:
    err.print(text, highlight=False)


def _serve_until_interrupted(url: str) -> None:
    """After a finished run, keep the dashboard up on a terminal so the user can look at it."""
    err.print(f"the dashboard stays up at {url} to look at the run; Ctrl-C stops", highlight=False)
    with contextlib.suppress(KeyboardInterrupt):
        while True:
            time.sleep(3600)


@contextlib.contextmanager
def _ctrl_c_held() -> Iterator[list[int]]:
    """While the totals print (a few quick reads), a further Ctrl-C is noted, not raised: the run
    is stopping already, and an impatient second Ctrl-C must not swallow its totals. Yields the
    list the signals held are added to."""
    held: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield held
        return
    previous = signal.signal(signal.SIGINT, lambda number, frame: held.append(number))
    try:
        yield held
    finally:
        signal.signal(signal.SIGINT, previous)


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


def _start_vision(
    store: EventStore,
    factory: Factory,
    clock: Callable[[], dt.datetime],
    cleanup: contextlib.ExitStack,
) -> None:
    from pathlib import Path

    from microfab.model.factory import MachineKind
    from microfab.vision.demo_station import DemoVisionStation
    from microfab.vision.station import StoreSink, register

    stations = [r for r in factory.machines() if r.machine.kind is MachineKind.VISION_INSPECTION]
    if not stations:
        err.print(
            "warning: --vision: the scenario has no vision_inspection machine", highlight=False
        )
        return
    station = DemoVisionStation(
        stations[0].path,
        StoreSink(store),
        clock,
        cache=Path(".microfab-vision"),
        images=Path("vision-images"),
        register=lambda model: register(store, model),
    ).start()
    cleanup.callback(station.stop)
    out.print(
        f"vision AI 品檢: {stations[0].machine.id} judges a simulated product every "
        f"{station.every_s:g} s with a model trained by `vision train` (the quality page shows "
        "the latest images)",
        highlight=False,
    )


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
    plan: Annotated[
        bool,
        typer.Option(
            "--plan/--no-plan",
            help="With the dashboard: plan the open orders at the start and again when orders "
            "arrive or a machine breaks down, into plan.json (the dashboard's plan file)",
        ),
    ] = True,
    vision: Annotated[
        bool,
        typer.Option(
            "--vision",
            help="Run the scenario's vision inspection station with a model trained by `vision "
            "train` on simulated products (trained once into .microfab-vision/, docs/vision.md)",
        ),
    ] = False,
) -> None:
    """Run a simulated Hong Kong micro-factory: simulator → MQTT → ingest → store, with a live view."""
    from microfab.commands.users import cli_actor
    from microfab.console import live_view, totals_table
    from microfab.logs import quiet_embedded_broker
    from microfab.model.clock_policy import UNLIMITED_AGE
    from microfab.runtime.demo import (
        DEMO_ALERTS_EVERY_S,
        DemoReplanner,
        MqttPipeline,
        demo_alert_loop,
        fresh_sqlite,
        start_dashboard,
    )
    from microfab.sim.engine import FactorySimulation
    from microfab.sim.scenario import load_scenario
    from microfab.store import open_store
    from microfab.store.sink import StoreSink
    from microfab.store.url import mask_url, resolve_url
    from microfab.track.production import line_outputs

    chosen = load_scenario(scenario)
    seconds = parse_duration(duration)
    factor = parse_speed(speed)
    begin = parse_start(start)
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
    check_tls_ca(tls_ca)
    settings = (
        broker_settings(broker, username, password, tls_ca, mqtt_version or "5")
        if broker is not None
        else None
    )
    url = resolve_url(db)
    if fresh:
        fresh_sqlite(url)
    with contextlib.ExitStack() as cleanup:
        store = open_store(url)
        cleanup.callback(store.close)
        version, _ = store.apply_factory(chosen.factory, chosen.factory_source)
        sink: StoreSink | None = None
        pipeline: MqttPipeline | None = None
        publisher: Publisher
        if direct:
            sink = publisher = StoreSink(store)
        else:
            if settings is None:
                cleanup.enter_context(quiet_embedded_broker())
            pipeline = MqttPipeline(store, chosen.factory, settings, warn=_warn)
            pipeline.start()
            cleanup.callback(pipeline.stop)
            publisher = pipeline.publisher
        sim = FactorySimulation(chosen, publisher, seed=seed, start=begin)
        if pipeline is not None:  # event times are judged by the simulation's clock
            pipeline.worker.clock, pipeline.worker.clock_policy = lambda: sim.now, UNLIMITED_AGE
        alert_loop = demo_alert_loop(store, chosen)
        if alert_loop is not None:
            out.print(
                f"alerts 警報: the rules of alerts.yaml ({len(alert_loop.rules.rules)}) are "
                f"evaluated every {DEMO_ALERTS_EVERY_S:g} s; open alerts show on the dashboard's "
                "banner",
                highlight=False,
            )
            cleanup.callback(alert_loop.stop, final=False)
        server: BackgroundServer | None = None
        if web:
            from microfab.plan.worker import start_plan_server

            start_plan_server()  # its plans then leave Ctrl-C to the demo (see there)
            server, sign_in = start_dashboard(store, lambda: sim.now, actor=cli_actor())
            cleanup.callback(server.stop)
            out.print(
                f"dashboard 儀表板: {server.url} · API docs {server.url}docs", highlight=False
            )
            out.print(sign_in, highlight=False, soft_wrap=True)
        if vision:
            _start_vision(store, chosen.factory, lambda: sim.now, cleanup)
        replanner: DemoReplanner | None = None
        if web and plan:
            from microfab.plan.plan_file import PlanFile

            plan_file = PlanFile()
            replanner = DemoReplanner(
                store,
                lambda: sim.now,
                plan_file,
                lambda: (sim.orders_released, sim.breakdowns),
            ).start()
            cleanup.callback(replanner.stop)
            out.print(
                f"plan 計劃: made now and again when orders arrive or a machine breaks down, "
                f"into {plan_file.path} (the dashboard's plan page)",
                highlight=False,
            )
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
                    if pipeline is not None:  # at --speed max: never far ahead of the store
                        pipeline.keep_up(sim.published, redraw)
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
                try:  # the worker commits what it holds before the totals are read
                    pipeline.stop()
                except KeyboardInterrupt:  # a further Ctrl-C: the totals say what is missing
                    interrupted, complete = True, False
            with _ctrl_c_held():
                redraw(force=True)
        with _ctrl_c_held():  # Ctrl-C always prints the totals
            if not out.is_terminal:
                out.line()  # Rich ends a live display with a newline on terminals only
            wall = time.perf_counter() - wall_start
            status = store.machine_status()
            out.print(totals_table(chosen.factory, status))
            made = line_outputs(
                store, chosen.factory
            ).values()  # line output, not a sum of stations
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
        try:  # after the totals, a further Ctrl-C skips what is left to say
            if alert_loop is not None:
                alert_loop.stop()
                _print_demo_alerts(store, chosen.factory, alert_loop)
            if replanner is not None:
                replanner.stop()
                note = f"; last re-plan failed: {replanner.error}" if replanner.error else ""
                out.print(f"plan 計劃: {replanner.plans} plans written{note}", highlight=False)
        except KeyboardInterrupt:
            interrupted = True
        if server is not None and not interrupted and sys.stdin.isatty():
            _serve_until_interrupted(server.url)
