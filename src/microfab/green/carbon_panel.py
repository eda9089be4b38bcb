"""The dashboard's carbon panel: kWh and kgCO2e per unit by line and product, and idle waste.

The figures are :func:`microfab.green.intensity.energy_intensity` for the dashboard's window
(site midnight to the plant clock). Accounting a whole day takes a fraction of a second, so a
:class:`CarbonPanel` keeps the last result and recomputes it only when the store has moved on
and at most once per ``refresh_s``, in a background thread: a live update never waits for it.
The live feed (:mod:`microfab.web.live`) sends a fresh update when a recomputation lands
(:attr:`CarbonPanel.version`). Only the first figures of a day are computed while the caller
waits. Each result carries its own window, so what the panel shows can be checked with
``microfab carbon footprint --from … --to …`` or ``energy_intensity`` for the same window.

Without a carbon settings file the panel still shows energy and Scope 1 + 2 per unit, and says
what is missing (no material factors, so upstream is not included); it never invents a number.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from microfab.errors import MicrofabError
from microfab.green.intensity import energy_intensity
from microfab.green.settings import CarbonSettings, load_settings
from microfab.model.events import format_ts
from microfab.track.plant import Plant

MISSING_MATERIALS = "materials without an emission factor"
"""How :mod:`microfab.green.footprint` starts the flag for materials left out of upstream."""
NO_TARIFF = "no electricity tariff"
"""The footprint's flag about cost, which the panel does not show."""


@dataclass(frozen=True, slots=True)
class CarbonView:
    """One computed set of carbon figures, for one window and store sequence number."""

    seq: int
    start: dt.datetime
    end: dt.datetime
    intensity: dict[str, Any]
    """``Intensity.to_json()``: ``rows``, ``idle``, ``message``."""
    settings_file: str | None
    error: str | None = None
    """Set when the figures could not be computed (the store is away, a factor is missing)."""
    notes: list[str] = field(default_factory=list)
    """What the figures leave out, and the factors' flags, each once."""
    version: int = 0
    """:attr:`CarbonPanel.version` when these figures were kept (0: not kept)."""

    @property
    def rows(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.intensity.get("rows", [])
        return rows

    @property
    def idle(self) -> list[dict[str, Any]]:
        idle: list[dict[str, Any]] = self.intensity.get("idle", [])
        return idle

    @property
    def message(self) -> str | None:
        return self.error or self.intensity.get("message")

    def upstream_included(self, row: dict[str, Any]) -> bool:
        """False when materials of the row's product have no factor (upstream left out)."""
        return not any(flag.startswith(MISSING_MATERIALS) for flag in row["flags"])

    def to_json(self) -> dict[str, Any]:
        rows = [{**row, "upstream_included": self.upstream_included(row)} for row in self.rows]
        return {
            "seq": self.seq,
            "from": format_ts(self.start),
            "to": format_ts(self.end),
            "settings_file": self.settings_file,
            "rows": rows,
            "idle": self.idle,
            "message": self.message,
            "notes": self.notes,
        }


def _notes(settings_file: str | None, intensity: dict[str, Any]) -> list[str]:
    notes: list[str] = []
    if settings_file is None:
        notes.append(
            "No carbon settings file: no material factors, so kgCO2e/unit is Scope 1 + 2 only "
            "(upstream materials not included). Start the server with "
            "--carbon-settings FILE (docs/green.md)."
        )
    for row in intensity.get("rows", []):
        for flag in row["flags"]:
            if not flag.startswith(NO_TARIFF) and flag not in notes:
                notes.append(flag)
    return notes


class CarbonPanel:
    """The carbon figures of the dashboard's window, cached (one per app)."""

    def __init__(
        self, plant: Plant, settings_path: Path | str | None = None, *, refresh_s: float = 10.0
    ) -> None:
        self.plant = plant
        self.settings_path = Path(settings_path) if settings_path is not None else None
        # read now: a bad settings file is one sentence when the server starts, not a panel error
        self.settings: CarbonSettings = load_settings(self.settings_path)
        self.refresh_s = refresh_s
        self.version = 0
        """Bumped whenever new figures are kept (the live feed re-sends the panels)."""
        self._lock = threading.Lock()
        self._compute_lock = threading.Lock()
        self._view: CarbonView | None = None
        self._started_at = float("-inf")
        self._worker: threading.Thread | None = None
        self._closed = False

    @property
    def settings_file(self) -> str | None:
        return None if self.settings_path is None else self.settings_path.name

    def figures(self, seq: int, start: dt.datetime | None, end: dt.datetime | None) -> CarbonView:
        """The figures for ``[start, end)`` now, no cache (an omitted end is the first or last
        stored event); a :class:`~microfab.errors.MicrofabError` when they cannot be had."""
        result = energy_intensity(
            self.plant.store, self.plant.factory(), start=start, end=end, settings=self.settings
        )
        doc = result.to_json()
        return CarbonView(
            seq,
            result.start,
            result.end,
            doc,
            self.settings_file,
            notes=_notes(self.settings_file, doc),
        )

    def compute(self, seq: int, start: dt.datetime, end: dt.datetime) -> CarbonView:
        """The figures for the panel: as :meth:`figures`, an error kept as the panel's message."""
        try:
            return self.figures(seq, start, end)
        except MicrofabError as exc:
            return CarbonView(seq, start, end, {}, self.settings_file, error=exc.message)

    def _keep(self, view: CarbonView) -> CarbonView:
        with self._lock:
            current = self._view
            if current is None or (view.start, view.seq) >= (current.start, current.seq):
                self.version += 1
                self._view = dataclasses.replace(view, version=self.version)
            assert self._view is not None
            return self._view

    def _refresh(self, seq: int, start: dt.datetime, end: dt.datetime) -> None:
        try:
            with self._compute_lock:
                if not self._closed:
                    self._keep(self.compute(seq, start, end))
        finally:
            with self._lock:
                self._worker = None

    def view(self, seq: int, start: dt.datetime, end: dt.datetime) -> CarbonView:
        """The figures to show for the window ``[start, end)`` at store sequence ``seq``: the
        kept ones (recomputed in the background when stale), or, for a new day, computed now."""
        with self._lock:
            kept = self._view
            if kept is not None and kept.start == start:
                due = time.monotonic() - self._started_at >= self.refresh_s
                if kept.seq != seq and due and self._worker is None and not self._closed:
                    self._started_at = time.monotonic()
                    self._worker = threading.Thread(
                        target=self._refresh,
                        args=(seq, start, end),
                        name="microfab-carbon",
                        daemon=True,
                    )
                    self._worker.start()
                return kept
        with self._compute_lock:  # the first figures of the day: the caller waits, once
            with self._lock:
                kept = self._view
            if kept is not None and kept.start == start:
                return kept
            self._started_at = time.monotonic()
            return self._keep(self.compute(seq, start, end))

    def wait(self, timeout_s: float = 30.0) -> None:
        """Wait for a recomputation in the background, if one is running."""
        with self._lock:
            worker = self._worker
        if worker is not None:
            worker.join(timeout_s)

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop recomputing (the store is about to close); wait for a running computation."""
        with self._lock:
            self._closed = True
        self.wait(timeout_s)
