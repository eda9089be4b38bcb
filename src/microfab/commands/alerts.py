"""``microfab alerts run|list|ack|close``: evaluate the alert rules, deliver, acknowledge, close."""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from microfab.commands.common import (
    DbOption,
    FromOption,
    JsonOption,
    ToOption,
    out,
    print_json,
    stored_factory,
)
from microfab.errors import InputError

if TYPE_CHECKING:
    from microfab.quality.alert_delivery import AlertChannel, DeliveryResult
    from microfab.quality.alerts import AlertRules, AlertRun
    from microfab.store.alerts import StoredAlert

alerts_app = typer.Typer(
    help="Alerts from rules (threshold, SPC, anomaly, CCP, machine down) 警報.",
    no_args_is_help=True,
)

DEFAULT_RULES = Path("alerts.yaml")


def _channels(
    rules: AlertRules, broker: str | None, username: str | None, password: str | None
) -> list[AlertChannel]:
    from microfab.connect.mqtt_client import parse_broker_url
    from microfab.quality.alert_delivery import (
        EmailAlertChannel,
        MqttAlertChannel,
        WebhookAlertChannel,
    )

    channels: list[AlertChannel] = []
    url = broker or (rules.delivery.mqtt.broker if rules.delivery.mqtt else None)
    if url is not None:
        user = username or (rules.delivery.mqtt.username if rules.delivery.mqtt else None)
        channels.append(MqttAlertChannel(parse_broker_url(url, username=user, password=password)))
    channels += [WebhookAlertChannel(hook) for hook in rules.delivery.webhooks]
    if rules.delivery.email is not None:
        channels.append(EmailAlertChannel(rules.delivery.email))
    return channels


@alerts_app.command("run")
def alerts_run(
    rules_file: Annotated[
        Path, typer.Option("--rules", help="Alert rules YAML (see docs/examples/alerts.yaml)")
    ] = DEFAULT_RULES,
    once: Annotated[
        bool, typer.Option("--once", help="Evaluate and deliver once, then stop")
    ] = False,
    every: Annotated[
        float, typer.Option("--every", help="Seconds between evaluations (without --once)")
    ] = 60.0,
    broker: Annotated[
        str | None,
        typer.Option(
            "--broker",
            help="Publish alerts on microfab/v1/{site}/alerts at this MQTT broker, e.g. "
            "mqtt://127.0.0.1:1883 \\[default: delivery.mqtt of the rules file; none]",
            show_default=False,
        ),
    ] = None,
    username: Annotated[str | None, typer.Option("--username", help="MQTT user name")] = None,
    password: Annotated[
        str | None,
        typer.Option(
            "--password",
            help="MQTT password \\[default: $MICROFAB_MQTT_PASSWORD]",
            show_default=False,
        ),
    ] = None,
    start: FromOption = None,
    end: ToOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Evaluate the alert rules over the stored events and deliver new alerts (periodically)."""
    from microfab.commands.quality import _range
    from microfab.quality.alert_delivery import deliver_pending
    from microfab.quality.alerts import load_alert_rules, run_alert_rules
    from microfab.safety.feed import raise_alerts as raise_safety_alerts
    from microfab.store import open_store
    from microfab.track.plant import Plant

    if not every > 0:
        raise InputError("--every must be a positive number of seconds")
    rules = load_alert_rules(rules_file)
    channels = _channels(rules, broker, username, password)
    try:
        with open_store(db) as store, contextlib.suppress(KeyboardInterrupt):
            factory = stored_factory(store)
            first, last = _range(factory, start, end)
            shown_notes: dict[str, str] = {}
            while True:
                run = run_alert_rules(store, factory, rules, start=first, end=last)
                raise_safety_alerts(Plant(store))  # e-stops, intrusions (docs/safety.md)
                deliveries = deliver_pending(store, channels)
                if as_json:
                    print_json(
                        {
                            **run.to_json(),
                            "deliveries": [
                                {
                                    "alert": d.alert_id,
                                    "event": d.event,
                                    "channel": d.channel,
                                    "error": d.error,
                                }
                                for d in deliveries
                            ],
                        }
                    )
                elif once or not shown_notes or run.raised or run.updated or deliveries:
                    _print_run(factory.sites[0].zone, run, deliveries, shown_notes)
                if once:
                    break
                time.sleep(every)
    finally:
        for channel in channels:
            channel.close()


def _print_run(
    zone: dt.tzinfo, run: AlertRun, deliveries: list[DeliveryResult], shown: dict[str, str]
) -> None:
    """One run: new alerts as a table, a summary line, rule notes (each only when it changed)."""
    raised = run.raised
    now = dt.datetime.now(zone)
    if raised:
        _table(f"New alerts 新警報 ({now:%H:%M:%S}; site time)", raised, zone)
    out.print(
        f"{now:%H:%M:%S} raised {len(raised)}, repeats folded into open alerts {run.updated}, "
        f"held off {run.held_off}",
        highlight=False,
    )
    for rule, note in run.notes.items():
        if shown.get(rule) != note:
            out.print(f"  {rule}: {note}", highlight=False)
    shown.clear()
    shown.update(run.notes or {"": ""})
    failed = [d for d in deliveries if d.error]
    sent = len(deliveries) - len(failed)
    if deliveries:
        out.print(f"  delivered {sent}, failed {len(failed)} (retried next run)", highlight=False)
    for d in failed[:5]:
        out.print(f"  alert {d.alert_id} {d.event} → {d.channel}: {d.error}", highlight=False)


def _table(title: str, alerts: list[StoredAlert], zone: dt.tzinfo) -> None:
    table = Table(title=title)
    for name in ("id", "state", "severity", "machine", "since", "rule", "message"):
        table.add_column(name, justify="right" if name == "id" else "left", overflow="fold")
    for a in alerts:
        table.add_row(
            str(a.id),
            a.state.value,
            a.severity,
            a.machine.rsplit("/", 1)[-1],
            f"{a.first_ts.astimezone(zone):%m-%d %H:%M}",
            a.rule,
            a.message + (f" (×{a.occurrences})" if a.occurrences > 1 else ""),
        )
    out.print(table)


@alerts_app.command("list")
def alerts_list(
    open_only: Annotated[
        bool, typer.Option("--open", help="Only alerts not yet closed (open or acknowledged)")
    ] = False,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="Newest N alerts")] = 50,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """List alerts, newest first."""
    from microfab.store import open_store
    from microfab.store.alerts import delivery_log, list_alerts

    with open_store(db) as store:
        alerts = list_alerts(store, open_only=open_only, limit=limit)
        if as_json:
            print_json([{**a.to_json(), "deliveries": delivery_log(store, a.id)} for a in alerts])
            return
        found = store.factory()
        zone = found[1].sites[0].zone if found else dt.UTC
    if not alerts:
        out.print("no open alerts" if open_only else "no alerts")
        return
    _table("Alerts 警報 (newest first; site time)", alerts, zone)


@alerts_app.command("ack")
def alerts_ack(
    alert_id: Annotated[int, typer.Argument(help="Alert id (from 'alerts list')")],
    db: DbOption = None,
) -> None:
    """Acknowledge an alert (who and when go to the alert and the audit log)."""
    from microfab.commands.users import cli_actor
    from microfab.quality.alerts import acknowledge_alert
    from microfab.store import open_store

    with open_store(db) as store:
        alert = acknowledge_alert(store, alert_id, cli_actor())
    out.print(f"alert {alert.id} acknowledged by {alert.acked_by}", highlight=False)


@alerts_app.command("close")
def alerts_close(
    alert_id: Annotated[int, typer.Argument(help="Alert id (from 'alerts list')")],
    db: DbOption = None,
) -> None:
    """Close an alert (who and when go to the alert and the audit log); hold-off starts."""
    from microfab.commands.users import cli_actor
    from microfab.quality.alerts import close_alert
    from microfab.store import open_store

    with open_store(db) as store:
        alert = close_alert(store, alert_id, cli_actor())
    out.print(f"alert {alert.id} closed by {alert.closed_by}", highlight=False)
