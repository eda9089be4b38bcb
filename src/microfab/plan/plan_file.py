"""The plan the dashboard shows and re-plans: the plan file, read and rewritten for the app.

The app keeps its plan where ``microfab plan schedule`` writes it: a plan file (``plan.json`` in
the working directory unless ``create_app(plan_file=…)`` says otherwise), so the command and the
dashboard's *Re-plan* button share one plan. A re-plan runs :func:`microfab.plan.live
.plan_open_orders` over the app's store, in a worker process with a wall clock and a memory limit
(:mod:`microfab.plan.worker`, limits in :mod:`microfab.plan.limits`); one runs at a time (a second
is refused with 409 rather than queued behind a solver that already holds the CPU), and the lock is
released however the first ends (a plan, an error, a worker stopped).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from microfab.errors import InputError, NotFoundError, ReplanRunningError
from microfab.plan.factory import DEFAULT_OBJECTIVE
from microfab.plan.limits import MEMORY_LIMIT_MB
from microfab.plan.live import down_windows, parse_duration
from microfab.plan.problem import Objective
from microfab.plan.worker import plan_in_worker
from microfab.track.orders import list_orders
from microfab.track.plant import Plant

DEFAULT_PLAN_FILE = Path("plan.json")
REPLAN_TIME_LIMIT_S = 5.0
"""What the dashboard's button gives the solver: a few seconds, as issue 5 asks of a re-plan."""


class PlanFile:
    """The plan file of the app, and the one re-plan allowed at a time."""

    def __init__(
        self,
        path: Path | str | None = None,
        *,
        wall_s: float | None = None,
        memory_mb: int = MEMORY_LIMIT_MB,
    ) -> None:
        """``wall_s`` and ``memory_mb`` bound each re-plan's worker (default: the solver's time
        limit plus :data:`~microfab.plan.limits.BUILD_ALLOWANCE_S`, and 2 GB)."""
        self.path = Path(path) if path is not None else DEFAULT_PLAN_FILE
        self.wall_s = wall_s
        self.memory_mb = memory_mb
        self._running = threading.Lock()

    def read(self) -> dict[str, Any] | None:
        """The plan document, or None when there is no plan yet."""
        return read_plan_file(self.path)

    def require(self) -> dict[str, Any]:
        document = self.read()
        if document is None:
            raise NotFoundError(
                f"no plan yet in {self.path}: re-plan on the dashboard's plan page, "
                "POST /api/v1/plan, or run 'microfab plan schedule'"
            )
        return document

    def replan(
        self,
        plant: Plant,
        *,
        time_limit: float = REPLAN_TIME_LIMIT_S,
        repair: bool = False,
        down: Sequence[str] = (),
        horizon: str = "14d",
        objective: str | None = None,
        workers: int = 2,
        maintenance: Mapping[str, Sequence[tuple[dt.datetime, dt.datetime]]] | None = None,
    ) -> tuple[dict[str, Any], bool]:
        """Plan the open orders afresh (or repair the plan in the file); write the file when a
        schedule was found. Returns the plan document and whether it was written.

        ``maintenance``: machine path → scheduled maintenance windows, unavailable like ``down``
        (the caller reads them: ``microfab.store.maintenance.maintenance_down``)."""
        if not self._running.acquire(blocking=False):
            raise ReplanRunningError(
                "a re-plan is already running; wait for it (a few seconds) and look again",
            )
        try:
            factory = plant.factory()
            start = plant.now()
            windows = down_windows(down, start)
            ids = [ref.machine.id for ref in factory.machines()]
            paths = [ref.path for ref in factory.machines()]
            for machine in windows:
                if machine not in ids and machine not in paths:
                    raise NotFoundError(
                        f"down: '{machine}' is not a machine of this factory; give a machine "
                        "id or path (machines: " + ", ".join(ids) + ")"
                    )
            views = list_orders(plant.store, factory, now=start)
            for machine, spans in (maintenance or {}).items():
                windows.setdefault(machine, []).extend(spans)
            planned = plan_in_worker(
                wall_s=self.wall_s,
                memory_mb=self.memory_mb,
                factory=factory,
                views=views,
                start=start,
                horizon=parse_duration(horizon, "horizon"),
                objective=Objective.parse(objective) if objective else DEFAULT_OBJECTIVE,
                down=windows,
                earlier=self.read(),
                repair=repair,
                time_limit=time_limit,
                workers=workers,
            )
            if planned.has_schedule:
                write_plan_file(self.path, planned.document)
            return planned.document, planned.has_schedule
        finally:
            self._running.release()


def parse_window(
    plant: Plant, start: str | None, end: str | None
) -> tuple[dt.datetime | None, dt.datetime | None]:
    """``from``/``to`` query text, as the other routes take it."""
    return plant.time_range(start, end, plant.zone())


def read_plan_file(path: Path) -> dict[str, Any] | None:
    """The plan document in ``path``, or None when there is none (or it is not a plan)."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(document, dict) or "plan" not in document or "operations" not in document:
        return None
    return document


def write_plan_file(path: Path, document: Mapping[str, Any]) -> None:
    """Write the plan document to ``path`` as ``plan schedule`` does (a new file moved into
    place: a reader never sees half a plan)."""
    text = json.dumps(document, ensure_ascii=False, indent=1) + "\n"
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        partial.write_text(text, encoding="utf-8")
        partial.replace(path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise InputError(f"{path}: cannot write the plan file ({exc.strerror or exc})") from None
