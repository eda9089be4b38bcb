"""Alert delivery: MQTT ``microfab/v1/{site}/alerts``, webhook (HTTP POST) and e-mail (SMTP).

Each channel sends an alert's events — ``raised``, ``acknowledged``, ``closed`` — once:
:func:`deliver_pending` finds what a channel has not yet had (``alert_deliveries``), sends it and
records the attempt, so a channel that was down gets everything on a later run (up to
:data:`~microfab.store.alerts.MAX_DELIVERY_ATTEMPTS` runs). The payload is the alert's JSON
(:meth:`~microfab.store.alerts.StoredAlert.to_json`) plus ``event``:

- MQTT: QoS 1, not retained, topic ``microfab/v1/{site}/alerts``;
- webhook: ``POST`` with header ``Idempotency-Key: microfab-alert-{id}-{event}`` (a receiver that
  keeps the keys it has seen ignores a repeat), retried up to 3 times within a run on a network
  error, 408, 429 or 5xx;
- e-mail: the ``raised`` event of alerts at or above ``min_severity``, ``Message-ID``
  ``<microfab-alert-{id}@HOST>``; host, port and user from the rules file or
  ``MICROFAB_SMTP_HOST``/``_PORT``/``_USER``, the password only from ``MICROFAB_SMTP_PASSWORD``.
"""

from __future__ import annotations

import json
import smtplib
import time
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, Protocol

from microfab.errors import MicrofabError
from microfab.model.alerts import SEVERITIES
from microfab.quality.alerts import EmailDelivery, WebhookDelivery
from microfab.store.alerts import StoredAlert, pending_deliveries, record_delivery
from microfab.store.event_store import EventStore

ALERTS_TOPIC = "microfab/v1/{site}/alerts"


class DeliveryError(MicrofabError):
    """An alert could not be delivered on a channel (retried by the next run)."""

    key = "alert_delivery_failed"


def alert_payload(alert: StoredAlert, event: str) -> dict[str, Any]:
    """What every channel sends: the alert's JSON and the event that happened to it."""
    return {"event": event, **alert.to_json()}


class AlertChannel(Protocol):
    """A way to send alerts; ``name`` identifies it in the delivery log."""

    name: str

    def wants(self, alert: StoredAlert, event: str) -> bool: ...

    def send(self, alert: StoredAlert, event: str) -> None: ...

    def close(self) -> None: ...


class MqttAlertChannel:
    """Publishes on ``microfab/v1/{site}/alerts`` (QoS 1) through a paho client of its own."""

    events: tuple[str, ...] = ("raised", "acknowledged", "closed")

    def __init__(self, settings: Any, client_id: str = "microfab-alerts") -> None:
        from microfab.connect.mqtt_client import BrokerSettings

        assert isinstance(settings, BrokerSettings)
        self.settings = settings
        self.name = f"mqtt:{settings.display}"
        self.client_id = client_id
        self._client: Any = None
        self._failed: str | None = None
        """Why connecting failed in this run (the next sends fail at once, not after a wait)."""

    def wants(self, alert: StoredAlert, event: str) -> bool:
        return event in self.events

    def _connected(self) -> Any:
        from microfab.connect.mqtt_client import connect_blocking, new_client

        if self._client is None:
            client = new_client(self.settings, self.client_id)
            connect_blocking(client, self.settings)
            self._client = client
        return self._client

    def send(self, alert: StoredAlert, event: str) -> None:
        from microfab.connect.mqtt_client import BrokerError

        if self._failed is not None:
            raise DeliveryError(self._failed)
        try:
            client = self._connected()
        except BrokerError as exc:
            self._failed = exc.message
            raise DeliveryError(exc.message) from None
        body = json.dumps(alert_payload(alert, event), ensure_ascii=False, separators=(",", ":"))
        info = client.publish(ALERTS_TOPIC.format(site=alert.site), body.encode("utf-8"), qos=1)
        try:
            info.wait_for_publish(timeout=10)
        except (RuntimeError, ValueError) as exc:
            raise DeliveryError(f"MQTT publish to {self.settings.display} failed: {exc}") from None
        if not info.is_published():
            raise DeliveryError(f"the MQTT broker at {self.settings.display} did not confirm")

    def close(self) -> None:
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()
            self._client = None


class WebhookAlertChannel:
    """POSTs the payload as JSON, idempotent by alert id and event, retried on transient errors."""

    def __init__(self, hook: WebhookDelivery, *, attempts: int = 3, backoff_s: float = 0.5) -> None:
        self.hook = hook
        self.name = f"webhook:{hook.url}"
        self.events: tuple[str, ...] = tuple(hook.events)
        self.attempts = attempts
        self.backoff_s = backoff_s

    def wants(self, alert: StoredAlert, event: str) -> bool:
        return event in self.events

    def send(self, alert: StoredAlert, event: str) -> None:
        import httpx

        headers = {
            "Idempotency-Key": f"microfab-alert-{alert.id}-{event}",
            "X-Microfab-Event": f"alert.{event}",
        }
        problem = ""
        for attempt in range(self.attempts):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                response = httpx.post(
                    self.hook.url, json=alert_payload(alert, event), headers=headers, timeout=10
                )
            except httpx.HTTPError as exc:
                problem = f"webhook {self.hook.url} failed: {exc}"
                continue
            if response.is_success:
                return
            problem = f"webhook {self.hook.url} answered {response.status_code}"
            if response.status_code not in (408, 429) and response.status_code < 500:
                break
        raise DeliveryError(problem)

    def close(self) -> None:
        return None


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    host: str
    port: int
    user: str | None
    password: str | None
    starttls: bool


def smtp_settings(email: EmailDelivery) -> SmtpSettings:
    """The rules file's SMTP settings, overridden by ``MICROFAB_SMTP_*`` environment variables."""
    from microfab.settings import SettingsError, load_settings, secret

    try:
        environment = load_settings()
    except SettingsError as exc:
        raise DeliveryError(exc.message) from None
    return SmtpSettings(
        host=environment.smtp_host or email.host,
        port=environment.smtp_port or email.port,
        user=environment.smtp_user or email.user,
        password=secret(environment.smtp_password),
        starttls=email.starttls,
    )


class EmailAlertChannel:
    """Sends a raised alert to the recipients by SMTP."""

    events: tuple[str, ...] = ("raised",)

    def __init__(self, email: EmailDelivery) -> None:
        self.email = email
        self.name = "email:" + ",".join(email.to)

    def wants(self, alert: StoredAlert, event: str) -> bool:
        rank = SEVERITIES.index(alert.severity) if alert.severity in SEVERITIES else 0
        return event in self.events and rank >= SEVERITIES.index(self.email.min_severity)

    def message(self, alert: StoredAlert) -> EmailMessage:
        msg = EmailMessage()
        msg["Subject"] = (
            f"[microfab {alert.severity}] {alert.machine.rsplit('/', 1)[-1]}: {alert.kind} "
            f"{alert.cause} (alert {alert.id})"
        )
        msg["From"] = self.email.sender
        msg["To"] = ", ".join(self.email.to)
        msg["Message-ID"] = f"<microfab-alert-{alert.id}@{self.email.sender.split('@')[1]}>"
        lines = [
            alert.message,
            "",
            f"alert    {alert.id} ({alert.state.value})",
            f"rule     {alert.rule} ({alert.kind})",
            f"machine  {alert.machine}",
            f"since    {alert.to_json()['first_ts']}",
            "",
            "Acknowledge: microfab alerts ack " + str(alert.id),
            "",
            json.dumps(alert.details, ensure_ascii=False, indent=2),
        ]
        msg.set_content("\n".join(lines))
        return msg

    def send(self, alert: StoredAlert, event: str) -> None:
        s = smtp_settings(self.email)
        try:
            with smtplib.SMTP(s.host, s.port, timeout=10) as smtp:
                if s.starttls:
                    smtp.starttls()
                if s.user:
                    smtp.login(s.user, s.password or "")
                smtp.send_message(self.message(alert))
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(f"e-mail via {s.host}:{s.port} failed: {exc}") from None

    def close(self) -> None:
        return None


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    alert_id: int
    event: str
    channel: str
    error: str | None


def deliver_pending(store: EventStore, channels: list[AlertChannel]) -> list[DeliveryResult]:
    """Send every alert event a channel has not had yet; record each attempt."""
    by_name = {c.name: c for c in channels}
    results = []
    for alert, event, name in pending_deliveries(store, list(by_name)):
        channel = by_name[name]
        if not channel.wants(alert, event):
            continue
        try:
            channel.send(alert, event)
            error = None
        except DeliveryError as exc:
            error = exc.message
        record_delivery(store, alert.id, event, name, error)
        results.append(DeliveryResult(alert.id, event, name, error))
    return results
