"""``microfab sim``: run the simulator headless, into the store, a JSONL file or an MQTT broker."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from microfab.commands.common import DbOption
from microfab.commands.mqtt_options import (
    MqttVersionOption,
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
from microfab.console import err
from microfab.errors import InputError

if TYPE_CHECKING:
    from microfab.connect.mqtt_client import BrokerSettings
    from microfab.sim.engine import FactorySimulation
    from microfab.sim.scenario import Scenario


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
    seconds = parse_duration(duration)
    assert seconds is not None
    factor = parse_speed(speed)
    begin = parse_start(start)
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
        check_tls_ca(tls_ca)
        settings = broker_settings(broker, username, password, tls_ca, mqtt_version)
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
    from microfab.logs import mqtt_warnings
    from microfab.runtime.demo import wait_for_broker
    from microfab.sim.engine import FactorySimulation

    err.print(f"publishing to {settings.display}; spool {spool}", highlight=False)
    with mqtt_warnings(lambda text: err.print(text, highlight=False)) as warnings:
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
                    wait_for_broker(publisher)
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
