"""The ``safety`` stream read back: recent events, alerts to supervisors, near misses.

:func:`raise_alerts` turns every stored safety event of severity ``warning`` or ``critical``
into an alert (rule ``safety``, kind ``safety``, once per event), which the alert delivery
(``microfab alerts run``: MQTT, webhook, e-mail to the supervisors' channels) sends on and the
dashboard banner shows; an intrusion (light curtain, area scanner, person in zone, guard open)
also enters the register as a near miss to look into, once per event.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from microfab.model.alerts import AlertFinding
from microfab.model.events import SafetyKind, format_ts
from microfab.safety.register import IncidentKind, report
from microfab.store import safety as rows
from microfab.store.alerts import insert_alert
from microfab.track.plant import Plant

INTRUSIONS = frozenset(
    {
        SafetyKind.LIGHT_CURTAIN.value,
        SafetyKind.AREA_SCANNER.value,
        SafetyKind.PERSON_IN_ZONE.value,
        SafetyKind.GUARD_OPEN.value,
    }
)

WORDS = {
    "estop_pressed": "emergency stop pressed",
    "estop_released": "emergency stop released",
    "light_curtain": "light curtain interrupted",
    "area_scanner": "area scanner intrusion",
    "guard_open": "guard door opened while running",
    "person_in_zone": "person in the danger zone",
    "gas_limit": "gas limit exceeded",
    "temperature_limit": "temperature limit exceeded",
}


def recent(plant: Plant, limit: int = 100) -> list[dict[str, Any]]:
    """Stored safety events, newest first, as JSON."""
    return [
        {**e, "ts": format_ts(e["ts"]), "words": WORDS.get(str(e.get("kind")), str(e.get("kind")))}
        for e in rows.safety_events(plant.store, limit=limit)
    ]


def raise_alerts(plant: Plant, actor: str = "system:safety") -> dict[str, int]:
    """Alerts (and near misses) from the stored safety events; counts of what was new."""
    raised = near = 0
    now = dt.datetime.now(dt.UTC)
    for event in reversed(rows.safety_events(plant.store, limit=1000)):
        kind = str(event.get("kind"))
        severity = str(event.get("severity"))
        if severity in ("warning", "critical"):
            zone = f" in {event['zone']}" if event.get("zone") else ""
            finding = AlertFinding(
                rule="safety",
                kind="safety",
                severity=severity,
                machine=event["machine"],
                cause=kind,
                ts=event["ts"],
                last_ts=event["ts"],
                message=f"{event['machine'].rsplit('/', 1)[-1]}: {WORDS.get(kind, kind)}{zone}",
                details={
                    "event": event["id"],
                    "zone": event.get("zone"),
                    "source": event.get("source"),
                },
            )
            with plant.store.transaction() as conn:
                if insert_alert(conn, finding, now) is not None:
                    raised += 1
        if kind in INTRUSIONS:
            if rows.has_incident_for(plant.store, event["id"]):
                continue
            report(
                plant,
                actor,
                kind=IncidentKind.NEAR_MISS,
                what=f"{WORDS.get(kind, kind)} ({event['id']})",
                reported_by=str(event.get("source") or "safety device"),
                machine=event["machine"],
                location=str(event.get("zone") or ""),
                occurred_at=event["ts"],
                event_id=event["id"],
            )
            near += 1
    return {"alerts": raised, "near_misses": near}
