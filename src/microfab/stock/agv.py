"""Transfer tasks to AGVs (or people): assignment events, and the task board read back.

A task the kanban rules call for (:mod:`microfab.stock.kanban`) is *assigned* to one AGV by a
``task`` event stamped with the AGV's machine path, which microfab stores and publishes on
``microfab/v1/{agv path}/task``; the AGV answers there with ``acknowledged``, ``started``,
``done`` or ``failed``. The board shows each task's newest status (by event time, then id).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from microfab.model.events import TaskStatus, TransferTaskUpdate, format_ts
from microfab.stock.kanban import TransferTask
from microfab.store.event_store import EventStore


def assignments(
    tasks: list[TransferTask], agv: str, *, now: dt.datetime
) -> list[TransferTaskUpdate]:
    """One ``assigned`` event per task for the AGV at machine path ``agv`` (id: task id +
    ``-assigned``, so assigning the same task again stores nothing)."""
    return [
        TransferTaskUpdate(
            id=f"{task.id}-assigned",
            ts=now,
            machine=agv,
            task=task.id,
            status=TaskStatus.ASSIGNED,
            item=task.item,
            lot=task.picks[0].lot if len(task.picks) == 1 else None,
            qty=task.qty,
            unit=task.unit,
            from_location=task.source,
            to_location=task.location,
        )
        for task in tasks
    ]


@dataclass
class BoardRow:
    task: str
    agv: str
    status: str
    since: dt.datetime
    item: str | None
    qty: float | None
    unit: str | None
    source: str | None
    target: str | None
    reason: str | None

    def to_json(self) -> dict[str, object]:
        return {
            "task": self.task,
            "agv": self.agv,
            "status": self.status,
            "since": format_ts(self.since),
            "item": self.item,
            "qty": self.qty,
            "unit": self.unit,
            "from": self.source,
            "to": self.target,
            "reason": self.reason,
        }


def task_board(store: EventStore) -> list[BoardRow]:
    """Every assigned task with its newest status, newest first."""
    board: dict[str, BoardRow] = {}
    for stored in store.events(stream="task"):
        ev = stored.event
        if not isinstance(ev, TransferTaskUpdate):
            continue
        row = board.get(ev.task)
        if row is None:
            row = board[ev.task] = BoardRow(
                ev.task, ev.machine, ev.status.value, ev.ts, None, None, None, None, None, None
            )
        if ev.status is TaskStatus.ASSIGNED:
            row.item, row.qty, row.unit = ev.item, ev.qty, ev.unit
            row.source, row.target, row.agv = ev.from_location, ev.to_location, ev.machine
        if ev.ts >= row.since:  # events come in (ts, id) order: the last one wins
            row.status, row.since, row.reason = ev.status.value, ev.ts, ev.reason
    return sorted(board.values(), key=lambda r: (r.since, r.task), reverse=True)
