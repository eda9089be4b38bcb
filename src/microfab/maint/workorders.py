"""Maintenance work orders: requested → scheduled → in progress → done, or cancelled.

A work order is *corrective* (from an alert, a machine-down stop, or by hand), *predictive*
(from a health or RUL threshold, with the evidence attached) or *preventive* (from a plan). Each
change is one transaction: the row and its audit record (``maint.create``, ``maint.schedule``,
``maint.start``, ``maint.finish``, ``maint.cancel``, ``maint.parts``) commit together, after every
check passed, so a refused change writes nothing.

**Time in maintenance is downtime** (ISO 22400 reason "maintenance"). Starting a job stores a
state change for its machine: ``planned_stop`` with reason :data:`PLANNED_REASON` (``PM``) for a
preventive or predictive job, ``unplanned_stop`` with :data:`UNPLANNED_REASON` (``CM``) for a
corrective one; finishing it stores ``idle``. OEE, the downtime Pareto and MTBF/MTTR read these
like any other stop (docs/oee.md): planned maintenance is outside planned busy time, corrective
maintenance lowers availability. The event ids (``maint-<id>-start``, ``maint-<id>-done``) make
a retry store nothing twice.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from typing import Any

from microfab.errors import InputError, NotFoundError
from microfab.model.events import MachineState, StateChange, format_ts
from microfab.store import maintenance as rows
from microfab.store.audit import append_audit
from microfab.store.event_store import EventStore
from microfab.track.plant import Plant

PLANNED_REASON = "PM"
"""Downtime reason of scheduled (preventive, predictive) maintenance: a planned stop."""
UNPLANNED_REASON = "CM"
"""Downtime reason of corrective maintenance: an unplanned stop."""

DEFAULT_LABOUR_RATE = 250.0
"""HK$ per technician hour when a job is finished without a rate."""


class Kind(enum.StrEnum):
    CORRECTIVE = "corrective"
    PREDICTIVE = "predictive"
    PREVENTIVE = "preventive"


class Source(enum.StrEnum):
    MANUAL = "manual"
    ALERT = "alert"
    MACHINE_DOWN = "machine_down"
    HEALTH = "health"
    PLAN = "plan"


class WoState(enum.StrEnum):
    REQUESTED = "requested"
    SCHEDULED = "scheduled"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    CANCELLED = "cancelled"


OPEN_STATES = (WoState.REQUESTED.value, WoState.SCHEDULED.value, WoState.IN_PROGRESS.value)

NEXT: dict[WoState, frozenset[WoState]] = {
    WoState.REQUESTED: frozenset({WoState.SCHEDULED, WoState.IN_PROGRESS, WoState.CANCELLED}),
    WoState.SCHEDULED: frozenset({WoState.SCHEDULED, WoState.IN_PROGRESS, WoState.CANCELLED}),
    WoState.IN_PROGRESS: frozenset({WoState.DONE}),
    WoState.DONE: frozenset(),
    WoState.CANCELLED: frozenset(),
}
"""Which state may follow which."""


def _ts(value: dt.datetime | None) -> str | None:
    return None if value is None else format_ts(value)


def order_json(row: dict[str, Any], parts: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A stored work order as JSON (CLI ``--json``, REST, pages)."""
    out = {
        "id": int(row["id"]),
        "machine": row["machine"],
        "kind": row["kind"],
        "source": row["source"],
        "source_ref": row["source_ref"] or None,
        "priority": int(row["priority"]),
        "problem": row["problem"],
        "cause_code": row["cause_code"],
        "actions": row["actions"],
        "technician": row["technician"],
        "state": row["state"],
        "requested_at": _ts(row["requested_at"]),
        "window_start": _ts(row["window_start"]),
        "window_end": _ts(row["window_end"]),
        "started_at": _ts(row["started_at"]),
        "finished_at": _ts(row["finished_at"]),
        "result": row["result"],
        "labour_min": float(row["labour_min"]),
        "labour_cost": float(row["labour_cost"]),
        "plan_id": row["plan_id"],
        "evidence": row["evidence"] or {},
        "photos": list(row["photos"] or []),
    }
    if parts is not None:
        out["parts"] = [
            {"part": p["part"], "qty": float(p["qty"]), "unit_cost": float(p["unit_cost"])}
            for p in parts
        ]
        out["parts_cost"] = round(sum(float(p["qty"]) * float(p["unit_cost"]) for p in parts), 2)
    return out


@dataclass(frozen=True, slots=True)
class NewOrder:
    """What a new work order needs; the rest is filled in as it goes."""

    machine: str
    kind: Kind
    problem: str
    source: Source = Source.MANUAL
    source_ref: str = ""
    priority: int = 5
    evidence: dict[str, Any] | None = None
    plan_id: int | None = None
    window: tuple[dt.datetime, dt.datetime] | None = None


def _check_text(value: str, field: str, *, most: int = 2000, empty: bool = False) -> str:
    text = value.strip()
    if not text and not empty:
        raise InputError(f"{field}: must not be empty")
    if len(text) > most:
        raise InputError(f"{field}: at most {most} characters, got {len(text)}")
    return text


def _check_window(start: dt.datetime, end: dt.datetime) -> None:
    if start.tzinfo is None or end.tzinfo is None:
        raise InputError("window: give times with an offset or 'Z'")
    if end <= start:
        raise InputError(f"window: ends {format_ts(end)} at or before it starts {format_ts(start)}")
    if end - start > dt.timedelta(days=31):
        raise InputError("window: longer than 31 days")


def create_order(plant: Plant, new: NewOrder, actor: str, at: dt.datetime | None = None) -> int:
    """Store a new work order (``requested``, or ``scheduled`` with a window); its id."""
    ref = plant.machine(new.machine)
    if not 1 <= new.priority <= 9:
        raise InputError(f"priority: {new.priority} is not 1 (most urgent) to 9")
    problem = _check_text(new.problem, "problem")
    if new.window is not None:
        _check_window(*new.window)
    when = (at or plant.stamp()).astimezone(dt.UTC)
    values: dict[str, Any] = {
        "machine": ref.path,
        "kind": new.kind.value,
        "source": new.source.value,
        "source_ref": new.source_ref,
        "priority": new.priority,
        "problem": problem,
        "cause_code": None,
        "actions": "",
        "technician": None,
        "state": (WoState.SCHEDULED if new.window else WoState.REQUESTED).value,
        "requested_at": when,
        "window_start": new.window[0] if new.window else None,
        "window_end": new.window[1] if new.window else None,
        "labour_min": 0.0,
        "labour_cost": 0.0,
        "plan_id": new.plan_id,
        "evidence": new.evidence or {},
        "photos": [],
    }
    with plant.store.transaction() as conn:
        if new.source is not Source.MANUAL and new.source_ref:
            same = rows.open_order_for(
                conn, source=new.source.value, source_ref=new.source_ref, states=OPEN_STATES
            )
            if same is not None:
                return same
        order_id = rows.insert_order(conn, values)
        after = order_json(
            {**values, "id": order_id, "started_at": None, "finished_at": None, "result": None}
        )
        append_audit(
            conn, actor=actor, action="maint.create", target=f"maint:{order_id}", after=after
        )
    return order_id


def get(store: EventStore, order_id: int) -> dict[str, Any]:
    row = rows.get_order(store, order_id)
    if row is None:
        raise NotFoundError(f"no maintenance work order {order_id}")
    return order_json(row, rows.issues_of(store, [order_id]))


def _change(
    plant: Plant,
    order_id: int,
    to: WoState,
    actor: str,
    values: dict[str, Any],
    action: str,
    check: Any = None,
) -> dict[str, Any]:
    with plant.store.transaction() as conn:
        row = rows.order_row(conn, order_id)
        if row is None:
            raise NotFoundError(f"no maintenance work order {order_id}")
        state = WoState(row["state"])
        if to not in NEXT[state]:
            verb = {
                WoState.DONE: "finish",
                WoState.IN_PROGRESS: "start",
                WoState.SCHEDULED: "schedule",
                WoState.CANCELLED: "cancel",
            }[to]
            hint = " (start it first)" if to is WoState.DONE else ""
            raise InputError(
                f"work order {order_id} is {state.value.replace('_', ' ')}: cannot {verb} it{hint}"
            )
        if check is not None:
            check(row)
        before = order_json(row)
        rows.update_order(conn, order_id, {"state": to.value, **values})
        after_row = rows.order_row(conn, order_id)
        assert after_row is not None
        after = order_json(after_row)
        append_audit(
            conn,
            actor=actor,
            action=action,
            target=f"maint:{order_id}",
            before=before,
            after=after,
        )
    return after_row


def schedule_order(
    plant: Plant,
    order_id: int,
    start: dt.datetime,
    end: dt.datetime,
    actor: str,
    technician: str | None = None,
) -> dict[str, Any]:
    """Give the job its window (machine unavailable for the planner) and, optionally, a technician."""
    _check_window(start, end)
    values: dict[str, Any] = {"window_start": start, "window_end": end}
    if technician:
        values["technician"] = _check_text(technician, "technician", most=200)
    row = _change(plant, order_id, WoState.SCHEDULED, actor, values, "maint.schedule")
    return order_json(row)


def start_order(
    plant: Plant,
    order_id: int,
    actor: str,
    technician: str | None = None,
    at: dt.datetime | None = None,
) -> dict[str, Any]:
    """Start the job: the machine enters maintenance downtime (see the module docstring)."""
    when = (at or plant.stamp()).astimezone(dt.UTC)
    values: dict[str, Any] = {"started_at": when}
    if technician:
        values["technician"] = _check_text(technician, "technician", most=200)
    row = _change(plant, order_id, WoState.IN_PROGRESS, actor, values, "maint.start")
    corrective = row["kind"] == Kind.CORRECTIVE.value
    plant.store.append(
        [
            StateChange(
                id=f"maint-{order_id}-start",
                ts=when,
                machine=row["machine"],
                state=MachineState.UNPLANNED_STOP if corrective else MachineState.PLANNED_STOP,
                reason=UNPLANNED_REASON if corrective else PLANNED_REASON,
                by=(row["technician"] or actor)[:64],
            )
        ]
    )
    return order_json(row)


def finish_order(
    plant: Plant,
    order_id: int,
    actor: str,
    *,
    result: str,
    actions: str = "",
    cause_code: str | None = None,
    labour_min: float | None = None,
    rate: float = DEFAULT_LABOUR_RATE,
    at: dt.datetime | None = None,
) -> dict[str, Any]:
    """Finish a started job: result, actions, cause code, labour (default: the time since it
    started); the machine goes back to ``idle``."""
    when = (at or plant.stamp()).astimezone(dt.UTC)
    text = _check_text(result, "result")
    done_actions = _check_text(actions, "actions", empty=True)
    if cause_code is not None:
        cause_code = _check_text(cause_code, "cause code", most=64) or None
    if labour_min is not None and not 0 <= labour_min <= 60 * 24 * 31:
        raise InputError(f"labour: {labour_min} minutes is not 0 to 44,640 (31 days)")
    if not 0 <= rate <= 100_000:
        raise InputError(f"labour rate: HK${rate} an hour is not 0 to 100,000")

    def check(row: dict[str, Any]) -> None:
        started = row["started_at"]
        if started is not None and when < started:
            raise InputError(
                f"work order {order_id}: finish time {format_ts(when)} is before it started "
                f"({format_ts(started)})"
            )

    stored = rows.get_order(plant.store, order_id)
    started_at = stored["started_at"] if stored else None
    minutes = labour_min
    if minutes is None:
        minutes = 0.0 if started_at is None else max(0.0, (when - started_at).total_seconds() / 60)
    values = {
        "finished_at": when,
        "result": text,
        "actions": done_actions,
        "cause_code": cause_code,
        "labour_min": round(minutes, 1),
        "labour_cost": round(minutes / 60 * rate, 2),
    }
    row = _change(plant, order_id, WoState.DONE, actor, values, "maint.finish", check)
    plant.store.append(
        [
            StateChange(
                id=f"maint-{order_id}-done",
                ts=when,
                machine=row["machine"],
                state=MachineState.IDLE,
                by=(row["technician"] or actor)[:64],
            )
        ]
    )
    return order_json(row)


def cancel_order(plant: Plant, order_id: int, actor: str, why: str) -> dict[str, Any]:
    reason = _check_text(why, "reason")
    row = _change(plant, order_id, WoState.CANCELLED, actor, {"result": reason}, "maint.cancel")
    return order_json(row)


PHOTO_TYPES = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}
PHOTO_MAX_BYTES = 900_000
"""A photo's largest size (the request body limit is 1 MiB; the technician page shrinks
photos in the browser before sending them)."""


def add_photo(
    plant: Plant, order_id: int, data: bytes, content_type: str, actor: str
) -> dict[str, Any]:
    """Attach a photo to a work order (kept in the database, so backups carry it)."""
    kind = content_type.split(";")[0].strip().lower()
    if kind not in PHOTO_TYPES:
        raise InputError(f"photo: {kind or 'no type'} is not a JPEG, PNG or WebP image")
    if not data:
        raise InputError("photo: the file is empty")
    if len(data) > PHOTO_MAX_BYTES:
        raise InputError(f"photo: {len(data):,} bytes, at most {PHOTO_MAX_BYTES:,}")
    signatures = {"image/jpeg": b"\xff\xd8", "image/png": b"\x89PNG", "image/webp": b"RIFF"}
    if not data.startswith(signatures[kind]):
        raise InputError(f"photo: the file's content is not {kind}")
    now = dt.datetime.now(dt.UTC)
    with plant.store.transaction() as conn:
        row = rows.order_row(conn, order_id)
        if row is None:
            raise NotFoundError(f"no maintenance work order {order_id}")
        photo_id = rows.insert_photo(
            conn,
            {
                "order_id": order_id,
                "name": f"photo.{PHOTO_TYPES[kind]}",
                "content_type": kind,
                "data": data,
                "at": now,
                "by": actor,
            },
        )
        photos = [*list(row["photos"] or []), photo_id]
        rows.update_order(conn, order_id, {"photos": photos})
        append_audit(
            conn,
            actor=actor,
            action="maint.photo",
            target=f"maint:{order_id}",
            before={"photos": list(row["photos"] or [])},
            after={"photos": photos, "bytes": len(data)},
        )
    return get(plant.store, order_id)


def list_json(
    store: EventStore,
    *,
    machine: str | None = None,
    open_only: bool = False,
    technician: str | None = None,
    limit: int | None = 200,
) -> list[dict[str, Any]]:
    found = rows.list_orders(
        store,
        machine=machine,
        states=OPEN_STATES if open_only else None,
        technician=technician,
        limit=limit,
    )
    return [order_json(r) for r in found]


# ---------------------------------------------------------------------------- sources


def from_alert(plant: Plant, alert_id: int, actor: str, priority: int = 3) -> int:
    """A corrective work order for a stored alert (once per alert while it is open)."""
    from microfab.store.alerts import get_alert

    alert = get_alert(plant.store, alert_id)
    if alert is None:
        raise NotFoundError(f"no alert {alert_id}")
    kind = Kind.PREDICTIVE if alert.kind in ("anomaly", "health") else Kind.CORRECTIVE
    return create_order(
        plant,
        NewOrder(
            machine=alert.machine,
            kind=kind,
            problem=alert.message,
            source=Source.ALERT,
            source_ref=str(alert_id),
            priority=priority,
            evidence={"alert": alert.to_json()},
        ),
        actor,
    )


def from_machine_down(plant: Plant, machine: str, actor: str) -> int | None:
    """A corrective work order for a machine whose newest state is an unplanned stop (a
    breakdown), once per stop; None when the machine is not down."""
    ref = plant.machine(machine)
    status = {s.machine: s for s in plant.store.machine_status()}.get(ref.path)
    if status is None or status.state != MachineState.UNPLANNED_STOP.value:
        return None
    key = f"{ref.path}@{_ts(status.state_ts)}"
    return create_order(
        plant,
        NewOrder(
            machine=ref.path,
            kind=Kind.CORRECTIVE,
            problem=f"machine down: {status.reason or 'no reason given'}",
            source=Source.MACHINE_DOWN,
            source_ref=key[:200],
            priority=2,
            evidence={
                "state": status.state,
                "reason": status.reason,
                "since": _ts(status.state_ts),
            },
        ),
        actor,
    )


def from_health(
    plant: Plant,
    actor: str,
    *,
    min_health: float = 0.4,
    max_rul_h: float = 24.0,
    report: dict[str, Any] | None = None,
) -> list[int]:
    """Predictive work orders for machines whose health index is below ``min_health`` or whose
    remaining useful life is under ``max_rul_h`` hours, with the health evidence attached."""
    from microfab.quality.maintenance import health_report

    if not 0 <= min_health <= 1:
        raise InputError(f"--min-health: {min_health} is not 0 to 1")
    if max_rul_h <= 0:
        raise InputError(f"--max-rul: {max_rul_h} hours must be more than 0")
    factory = plant.factory()
    if report is None:
        report = health_report(plant.store, [ref.path for ref in factory.machines()])
    made = []
    for machine in report.get("machines", []):
        health = machine.get("health")
        rul = machine.get("rul_h")
        low = health is not None and health < min_health
        short = rul is not None and rul < max_rul_h
        if not (low or short):
            continue
        why = f"health {health:.2f}" if low else f"remaining useful life {rul:.1f} h"
        made.append(
            create_order(
                plant,
                NewOrder(
                    machine=machine["machine"],
                    kind=Kind.PREDICTIVE,
                    problem=f"predicted failure: {why}; {machine.get('recommendation', '')}".strip(),
                    source=Source.HEALTH,
                    source_ref=machine["machine"],
                    priority=2 if short else 4,
                    evidence=machine,
                ),
                actor,
            )
        )
    return made
