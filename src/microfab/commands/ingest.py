"""``microfab ingest``: store every event published on the microfab MQTT topics."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Protocol

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

if TYPE_CHECKING:
    from microfab.connect.mqtt_client import BrokerSettings
    from microfab.connect.mqtt_ingest import IngestWorker
    from microfab.model.clock_policy import ClockPolicy
    from microfab.store import EventStore


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
    processes: Annotated[
        int,
        typer.Option(
            "--processes",
            min=1,
            max=64,
            help="Ingest processes on the shared subscription (MQTT 5, --shared): the broker "
            "gives each message to one of them; one per core is plenty",
        ),
    ] = 1,
    retire: Annotated[
        list[str] | None,
        typer.Option(
            "--retire",
            metavar="CLIENT_ID",
            help="Retire a worker for good: store what the broker queued on its session, end "
            "the session (no more share of the shared subscription), and exit; repeatable",
        ),
    ] = None,
) -> None:
    """Subscribe to the microfab topics and store every event: QoS 1, acknowledged after commit."""
    import multiprocessing
    import socket

    from microfab.model.clock_policy import ClockPolicy
    from microfab.store import open_store
    from microfab.store.view_follower import ViewFollower

    settings = broker_settings(broker, username, password, tls_ca, mqtt_version)
    if processes > 1 and not (shared and settings.protocol == 5):
        raise InputError(
            "--processes: several ingest processes share the load only through the MQTT 5 "
            "shared subscription; drop --no-shared / --mqtt-version 3.1.1, or run one process"
        )
    if retire and settings.protocol != 5:
        raise InputError(
            "--retire ends a session with MQTT 5's session expiry; drop --mqtt-version 3.1.1 "
            "(an MQTT 3.1.1 worker's session ends when it connects once with a clean session)"
        )
    with open_store(db) as store, ViewFollower(store):
        found = store.factory()
        if hq and found is None:
            raise InputError(
                "--hq: no site is registered in this store yet; run "
                "'microfab hq register SITE_FACTORY.yaml' for each site first"
            )
        base_id = client_id or f"microfab-ingest-{socket.gethostname()}"
        spec = WorkerSpec(
            db=store.url,
            settings=settings,
            known_machines=frozenset(ref.path for ref in found[1].machines()) if found else None,
            reason_codes=frozenset(found[1].downtime_reasons.codes()) if found else None,
            strict=strict,
            shared=shared,
            batch_size=batch_size,
            max_payload=max_payload,
            clock_policy=ClockPolicy.from_options(max_future, max_age),
            known_sites=frozenset(site.id for site in found[1].sites) if hq and found else None,
            hq=hq,
        )
        if retire:
            for retired in retire:
                worker = _worker(spec, store, retired)
                taken = worker.retire()
                err.print(
                    f"ingest: {retired}: "
                    + (
                        "the broker held no session"
                        if not worker.session_present
                        else f"stored the {taken:,} messages the broker held, session ended"
                        if taken
                        else "no messages were held, session ended"
                    ),
                    highlight=False,
                )
            return
        if shared and settings.protocol == 5:
            _retire_sessions(spec, store, base_id, processes)
        # the other processes: their own store connection and client id (a persistent session
        # each), the same subscription; this process keeps the production views caught up and
        # tells them when to stop (Ctrl-C reaches it; they ignore it and finish their batch)
        spawn = multiprocessing.get_context("spawn")
        stop = spawn.Event()
        others = [
            spawn.Process(
                target=run_worker,
                args=(spec, f"{base_id}-{k}", f"[{k + 1}/{processes}] ", stop),
                name=f"ingest process {k + 1}",
            )
            for k in range(1, processes)
        ]
        for process in others:
            process.start()
        err.print(
            f"ingest: {settings.display} -> {store.display_url}"
            f"{' (strict)' if strict else ''}{' (HQ)' if hq else ''}"
            f"{f', {processes} processes' if processes > 1 else ''}; Ctrl-C to stop",
            highlight=False,
        )
        try:
            worker = _worker(spec, store, base_id)
            worker.run_forever(
                log=lambda line: err.print(
                    (f"[1/{processes}] " if processes > 1 else "") + line, highlight=False
                )
            )
        finally:
            stop.set()
            for process in others:
                process.join(timeout=60)
                if process.exitcode != 0:
                    err.print(f"ingest: {process.name} ended with exit code {process.exitcode}")


class EventLike(Protocol):
    def wait(self, timeout: float | None = None) -> bool: ...


@dataclass(frozen=True)
class WorkerSpec:
    """Everything one ingest process needs, picklable (the other processes are spawned)."""

    db: str
    settings: BrokerSettings
    known_machines: frozenset[str] | None = None
    reason_codes: frozenset[str] | None = None
    strict: bool = False
    shared: bool = True
    batch_size: int = 2000
    max_payload: int = 256 * 1024
    clock_policy: ClockPolicy | None = None
    known_sites: frozenset[str] | None = None
    hq: bool = False


def run_worker(spec: WorkerSpec, client_id: str, prefix: str, stop: EventLike) -> None:
    """One more ingest process (``--processes``): its own store connection, until ``stop``."""
    import signal

    from microfab.store import open_store

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the first process says when to stop
    with open_store(spec.db, upgrade=False) as store:
        worker = _worker(spec, store, client_id)
        worker.start()
        try:
            if worker.wait_subscribed():
                err.print(f"{prefix}subscribed to {worker.subscription} as {client_id}")
            while not stop.wait(10.0):
                err.print(prefix + worker.stats.summary(), highlight=False)
        finally:
            worker.stop()
            err.print(f"{prefix}stopped: {worker.stats.summary()}", highlight=False)


def _retire_sessions(spec: WorkerSpec, store: EventStore, base_id: str, processes: int) -> None:
    """End the sessions of ingest processes no longer run (``--processes`` lowered): process k
    uses the client id ``BASE-k`` (k ≥ 1), so ``BASE-processes``, ``BASE-(processes+1)``, … in
    turn, until one the broker does not hold. What the broker queued on them is stored first."""
    from microfab.connect.mqtt_client import BrokerError

    for k in range(max(processes, 1), 65):
        worker = _worker(spec, store, f"{base_id}-{k}")
        try:
            taken = worker.retire()
        except BrokerError as exc:  # ingest itself will say so, or work: not a reason to stop
            err.print(f"ingest: could not check for retired processes' sessions: {exc}")
            return
        if not worker.session_present:
            return
        err.print(
            f"ingest: ended the session of ingest process {k + 1} ({base_id}-{k}), no longer "
            f"run, after storing the {taken:,} messages the broker held for it",
            highlight=False,
        )


def _worker(spec: WorkerSpec, store: EventStore, client_id: str) -> IngestWorker:
    from microfab.connect.mqtt_ingest import IngestWorker
    from microfab.store.hq import HqIngestTarget

    return IngestWorker(
        HqIngestTarget(store) if spec.hq else store,
        spec.settings,
        known_machines=spec.known_machines,
        reason_codes=spec.reason_codes,
        strict=spec.strict,
        shared=spec.shared,
        client_id=client_id,
        batch_size=spec.batch_size,
        max_payload=spec.max_payload,
        clock_policy=spec.clock_policy,
        known_sites=spec.known_sites,
    )
