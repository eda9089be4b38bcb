"""What every route reads: the store, its current factory model, the plant clock, id look-ups.

The **plant clock** is :meth:`EventStore.plant_clock` (the time of the newest stored event, the
wall clock while the store is empty) unless the app was given a clock of its own (the demo
passes its simulation's time).
"""

from __future__ import annotations

import datetime as dt
import threading
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from microfab.errors import InputError, NoFactoryError, NotFoundError
from microfab.model.factory import Factory, MachineRef
from microfab.model.timerange import query_window
from microfab.settings import load_settings
from microfab.store import EventStore


@dataclass(frozen=True, slots=True)
class LineRef:
    """A production line and its machines, in file order."""

    path: str
    id: str
    name: str
    site_zone: zoneinfo.ZoneInfo
    machines: tuple[MachineRef, ...]


class Plant:
    """The store behind the app, with the stored factory model cached by version."""

    def __init__(
        self,
        store: EventStore,
        *,
        clock: Callable[[], dt.datetime] | None = None,
        plan_source: Callable[[], Mapping[str, Any] | None] | None = None,
    ):
        self.store = store
        self._clock = clock
        self.plan_source = plan_source
        """Reads the plan document (the app's plan file), whose planned ends are the expected
        completions of the orders it holds (:func:`microfab.track.orders.plan_of`)."""
        self._lock = threading.Lock()
        self._factory: tuple[int, Factory] | None = None

    # ------------------------------------------------------------------ factory

    def factory_version(self) -> int | None:
        return self.store.factory_version()

    def factory(self) -> Factory:
        """The newest applied factory model; :class:`NoFactoryError` when there is none."""
        version = self.factory_version()
        if version is None:
            raise NoFactoryError(
                "no factory model in this store yet; run 'microfab factory apply FACTORY.yaml' "
                "(or 'microfab demo') first"
            )
        with self._lock:
            cached = self._factory
        if cached is not None and cached[0] == version:
            return cached[1]
        found = self.store.factory(version)
        if found is None:  # pragma: no cover - a version cannot disappear
            raise NoFactoryError(f"factory version {version} vanished from the store")
        with self._lock:
            self._factory = found
        return found[1]

    # ------------------------------------------------------------------ time

    def stamp(self) -> dt.datetime:
        """The time written on events made here (orders created, released, cancelled): the
        given clock — the demo passes its simulation's time, so an order placed on the dashboard
        lands in the simulated day — or else the wall clock, as on a real plant."""
        if self._clock is not None:
            return self._clock().astimezone(dt.UTC)
        return dt.datetime.now(dt.UTC)

    def now(self) -> dt.datetime:
        """The plant clock (see the module docstring)."""
        if self._clock is not None:
            return self._clock().astimezone(dt.UTC)
        return self.store.plant_clock()

    def zone(self, factory: Factory | None = None) -> zoneinfo.ZoneInfo:
        """The time zone of the (first) site: the one pages show times in."""
        return (factory or self.factory()).sites[0].zone

    def time_range(
        self, start: str | None, end: str | None, zone: zoneinfo.ZoneInfo
    ) -> tuple[dt.datetime | None, dt.datetime | None]:
        """Parse ``from``/``to`` query text; an empty or inverted range, a time outside
        1970–2200 or a window longer than ``MICROFAB_MAX_QUERY_DAYS`` is a TimeRangeError."""
        return query_window(start, end, zone, span=None, max_days=load_settings().max_query_days)

    # ------------------------------------------------------------------ look-ups

    def machine(self, key: str, factory: Factory | None = None) -> MachineRef:
        """A machine by path (site/area/line/cell/machine) or by id when the id is unique."""
        factory = factory or self.factory()
        refs = factory.machines()
        for ref in refs:
            if ref.path == key:
                return ref
        matches = [ref for ref in refs if ref.machine.id == key]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            paths = ", ".join(ref.path for ref in matches)
            raise InputError(f"machine id '{key}' is ambiguous; give its path: {paths}")
        known = ", ".join(ref.machine.id for ref in refs[:12]) + (", …" if len(refs) > 12 else "")
        raise NotFoundError(
            f"no machine '{key}' in the factory; give a machine id or path (known: {known})"
        )

    def lines(self, factory: Factory | None = None) -> list[LineRef]:
        factory = factory or self.factory()
        found: dict[str, list[MachineRef]] = {}
        for ref in factory.machines():
            found.setdefault(line_path(ref), []).append(ref)
        return [
            LineRef(
                path=path,
                id=refs[0].line.id,
                name=refs[0].line.name or refs[0].line.id,
                site_zone=refs[0].site.zone,
                machines=tuple(refs),
            )
            for path, refs in found.items()
        ]

    def line(self, key: str, factory: Factory | None = None) -> LineRef:
        """A line by path (site/area/line) or by id when the id is unique."""
        lines = self.lines(factory)
        matches = [ln for ln in lines if key in (ln.path, ln.id)]
        exact = [ln for ln in matches if ln.path == key]
        if exact:
            return exact[0]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            paths = ", ".join(ln.path for ln in matches)
            raise InputError(f"line id '{key}' is ambiguous; give its path: {paths}")
        known = ", ".join(ln.path for ln in lines) or "none"
        raise NotFoundError(f"no production line '{key}' in the factory (lines: {known})")


def line_path(ref: MachineRef) -> str:
    return f"{ref.site.id}/{ref.area.id}/{ref.line.id}"
