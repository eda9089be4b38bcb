"""The alert banner on every dashboard page: alerts not yet closed, newest first.

Each row is one alert of :func:`microfab.quality.alerts.open_alerts` as the banner shows it:
severity (its colour), the machine's short name, the message, since when (site time) and who
acknowledged it. The banner's buttons post to ``/alerts/{id}/ack`` and ``/alerts/{id}/close``
(:mod:`microfab.web.quality_pages`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from microfab.errors import MicrofabError
from microfab.quality.alerts import open_alerts
from microfab.track.plant import Plant

SHOWN = 8
"""Alerts the banner lists; more are counted, and ``/api/v1/alerts`` has them all."""
SEVERITIES = ("critical", "warning", "info")


@dataclass(frozen=True, slots=True)
class BannerRow:
    id: int
    state: str
    severity: str
    machine: str
    machine_path: str
    message: str
    since: str
    """When the condition started in the data, site time (``24/11 15:17``)."""
    since_iso: str
    occurrences: int
    acked_by: str | None


def _local(text: str | None, zone: dt.tzinfo) -> str:
    if not text:
        return ""
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value.astimezone(zone).strftime("%d/%m %H:%M")


def banner_rows(plant: Plant, limit: int = SHOWN + 1) -> list[BannerRow]:
    """The open alerts as banner rows (none when the store has no factory or cannot answer)."""
    try:
        zone = plant.zone()
        alerts: list[dict[str, Any]] = open_alerts(plant.store, limit=limit)
    except MicrofabError:
        return []
    rows = []
    for alert in alerts:
        severity = alert["severity"] if alert["severity"] in SEVERITIES else "info"
        path = str(alert["machine"] or "")
        rows.append(
            BannerRow(
                id=int(alert["id"]),
                state=str(alert["state"]),
                severity=severity,
                machine=path.rsplit("/", 1)[-1],
                machine_path=path,
                message=str(alert["message"]),
                since=_local(alert["first_ts"], zone),
                since_iso=str(alert["first_ts"] or ""),
                occurrences=int(alert["occurrences"]),
                acked_by=alert["acked_by"],
            )
        )
    return rows
