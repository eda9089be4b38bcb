"""What the API and the dashboard write to the audit log, and under whose name.

Every change made through the web — orders created, released or cancelled, operator entries
(reasons, counts, corrections), plans committed — is recorded with the signed-in principal's
``actor`` (``user:NAME`` or ``token:NAME``) by :func:`microfab.store.audit.record_change`, right
after the change is stored. A repeated request that stores nothing records nothing.

Operator entries also carry ``by`` in the event itself: for a signed-in user it is the user's
name (a different ``by`` is refused); a machine or gateway using an API token says which operator
typed the entry, as before.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from microfab.errors import InputError
from microfab.model.events import event_to_dict, format_ts
from microfab.model.identity import Principal
from microfab.store.audit import record_change
from microfab.store.event_store import EventStore
from microfab.track import operator_input
from microfab.track.orders import OrderChange, WorkOrderView


def operator_by(principal: Principal, given: str | None) -> str | None:
    """Who an operator entry is by: the signed-in user, or (API tokens) the name given."""
    if principal.kind != "user":
        return given
    typed = (given or "").strip()
    if typed and typed != principal.name:
        raise InputError(
            f"you are signed in as {principal.name}; an entry is recorded under your own name, "
            f"not {typed!r} (leave 'by' out)"
        )
    return principal.name


def order_summary(view: WorkOrderView) -> dict[str, Any]:
    return {
        "order": view.order,
        "product": view.product,
        "options": view.options,
        "quantity": view.quantity,
        "due": None if view.due is None else format_ts(view.due),
        "priority": view.priority,
        "status": view.status,
    }


def record_order_change(
    store: EventStore,
    principal: Principal,
    action: str,
    change: OrderChange,
    before: WorkOrderView | None = None,
) -> None:
    """``orders.create``, ``orders.release`` or ``orders.cancel`` when it stored something."""
    if not change.stored:
        return
    record_change(
        store,
        actor=principal.actor,
        action=action,
        target=f"order:{change.view.order}",
        before=None if before is None else {"status": before.status},
        after=order_summary(change.view) if before is None else {"status": change.view.status},
    )


def record_operator_entry(
    store: EventStore, principal: Principal, action: str, entry: operator_input.Entry
) -> None:
    """``operator.reason``, ``operator.count`` or ``operator.correction`` (a new event)."""
    if not entry.stored:
        return
    record_change(
        store,
        actor=principal.actor,
        action=action,
        target=f"machine:{entry.event.machine}",
        after=event_to_dict(entry.event),
    )


def record_plan(
    store: EventStore, principal: Principal, path: Path, document: dict[str, Any], saved: bool
) -> None:
    """``plan.commit`` when a re-plan wrote the plan file."""
    if not saved:
        return
    plan = document.get("plan", {})
    record_change(
        store,
        actor=principal.actor,
        action="plan.commit",
        target=f"plan:{path.name}",
        after={
            "file": str(path),
            "status": plan.get("status"),
            "objective": plan.get("objective"),
            "objective_value": plan.get("objective_value"),
            "orders": len(document.get("orders", [])),
            "start": plan.get("start"),
        },
    )
