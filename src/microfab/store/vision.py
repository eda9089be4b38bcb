"""Vision inspection in the store: the model cards stations used, and what each model judged.

``vision_models`` keeps each (model, version) a station registered with its card (the measured
precision/recall in it); :func:`model_use` counts the ``inspection`` events each model judged per
machine, with the first and last, from the event log. :func:`anomaly_alert_use` counts the alerts
the telemetry anomaly detector raised (also an AI/ML model in use).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, func, select

from microfab.store import schema
from microfab.store.event_store import EventStore


@dataclass(frozen=True, slots=True)
class RegisteredModel:
    model: str
    version: str
    task: str
    card: dict[str, Any]
    registered_at: dt.datetime


@dataclass(frozen=True, slots=True)
class ModelUse:
    """Inspections one model (version) judged on one machine."""

    machine: str
    model: str
    version: str | None
    inspections: int
    failed: int
    first_ts: dt.datetime
    last_ts: dt.datetime


@dataclass(frozen=True, slots=True)
class DetectorUse:
    """Alerts the telemetry anomaly detector raised on one machine."""

    machine: str
    alerts: int
    first_ts: dt.datetime
    last_ts: dt.datetime


def register_model(
    store: EventStore, model: str, version: str, task: str, card: dict[str, Any], at: dt.datetime
) -> bool:
    """Keep a model's card (once per model and version; a changed card replaces the kept one).
    True when it was new."""
    t = schema.vision_models
    with store.transaction() as conn:
        found = conn.execute(
            select(t.c.card).where(t.c.model == model, t.c.version == version)
        ).first()
        if found is None:
            conn.execute(
                t.insert().values(
                    model=model, version=version, task=task, card=card, registered_at=at
                )
            )
            return True
        if found[0] != card:
            conn.execute(
                t.update()
                .where(t.c.model == model, t.c.version == version)
                .values(task=task, card=card)
            )
        return False


def registered_models(store: EventStore) -> list[RegisteredModel]:
    """Every registered model, by id and version."""
    t = schema.vision_models
    stmt = select(t.c.model, t.c.version, t.c.task, t.c.card, t.c.registered_at).order_by(
        t.c.model, t.c.version
    )
    with store.engine.connect() as conn:
        return [RegisteredModel(*row) for row in conn.execute(stmt)]


def model_use(store: EventStore) -> list[ModelUse]:
    """Inspections judged by a model, per machine, model and version."""
    t = schema.events
    model = t.c.body["model"].as_string()
    version = t.c.body["model_version"].as_string()
    result = t.c.body["result"].as_string()
    failed = func.sum(case((result == "fail", 1), else_=0))
    stmt = (
        select(
            t.c.machine, model, version, func.count(), failed, func.min(t.c.ts), func.max(t.c.ts)
        )
        .where(t.c.stream == "inspection", model.is_not(None))
        .group_by(t.c.machine, model, version)
        .order_by(t.c.machine, model, version)
    )
    with store.engine.connect() as conn:
        return [
            ModelUse(m, mo, v, int(n), int(f or 0), a, b)
            for m, mo, v, n, f, a, b in conn.execute(stmt)
        ]


def anomaly_alert_use(store: EventStore) -> list[DetectorUse]:
    """Alerts of kind ``anomaly`` per machine (the telemetry anomaly detector at work)."""
    t = schema.alerts
    stmt = (
        select(t.c.machine, func.count(), func.min(t.c.first_ts), func.max(t.c.last_ts))
        .where(t.c.kind == "anomaly")
        .group_by(t.c.machine)
        .order_by(t.c.machine)
    )
    with store.engine.connect() as conn:
        return [DetectorUse(m, int(n), a, b) for m, n, a, b in conn.execute(stmt)]
