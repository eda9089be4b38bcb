"""The hourly production read model: good and scrap per machine × order × operation × site hour.

**What a row holds.** ``production_hourly`` has one row per machine, site hour (stored as the
UTC instant the local hour begins), order (``''`` when the count named none) and routing
operation (``-1`` when it named none): the good and scrap counted inside the line's planned
working time, and apart from them those counted outside it (``outside_good``,
``outside_scrap``). Working time comes from the calendar of the machine's line in the stored
factory model; a machine the factory does not know has no working time, so all its counts are
outside. Counts are added as they are (a correction's negative count subtracts).

**Energy and material** (revision 0007). ``meter_intervals`` holds the energy between
consecutive readings of each meter (machine × carrier), by the carbon accounting's rule
(:func:`microfab.model.carbon.meter_intervals`: a backward step is a reset, never negative
energy); ``energy_hourly`` holds each interval's energy split over the site hours it spans by time
(exact, in milli-units); ``material_hourly`` the material consumed per machine × order × material
× unit × site hour. A late reading re-derives its meter's intervals from the last reading before
it, moving their hour parts out and back in, in the same transaction.

**How it is kept.** A projector with a durable checkpoint: :func:`catch_up` takes in every event
stored after the checkpoint (its ingest sequence) and moves the checkpoint, in one transaction,
so a crash loses nothing and counts nothing twice. Every read of the model catches up first, so
a reader never sees it behind the log; ``microfab db status`` and ``/healthz`` report how far
behind it is (:func:`view_lag`). A count is additive, so a late or out-of-order event (a
store-and-forward replay hours later) lands in the hour it was stamped with, whenever it arrives.
A new factory version (its calendars decide working time) rebuilds the model from the log.

**Bad rows.** A stored count whose body cannot be read (not JSON, counts not integers) is skipped
and named in ``view_skipped`` (sequence, event id, reason); the projection carries on.

SQL is written for both back ends: the same statements (``ON CONFLICT … DO UPDATE``) run on
SQLite and PostgreSQL, so both hold the same rows.
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import json
import math
import zoneinfo
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.engine import Connection

from microfab.model.calendar import working_windows
from microfab.model.carbon import apportion, meter_intervals, overlap_s, to_milli
from microfab.model.factory import Factory
from microfab.store import schema
from microfab.store.event_store import EventStore
from microfab.store.schema import sqlite_time, stored_time

VIEW = "production_hourly"
BATCH = 50_000
"""Events read per step of a catch-up (one transaction each)."""
_HOUR = dt.timedelta(hours=1)
_UTC = zoneinfo.ZoneInfo("UTC")

Progress = Callable[[int, int], None]
"""Called with (events taken in so far, events to take in) during a catch-up."""


@dataclass(frozen=True, slots=True)
class HourCount:
    """Units one machine counted in one site hour for one order step (a read-model row)."""

    machine: str
    hour: dt.datetime
    order: str | None
    operation: int | None
    good: int
    scrap: int
    outside_good: int
    outside_scrap: int


@dataclass(frozen=True, slots=True)
class CountTotal:
    """Units one machine counted for one order step over a range of hours."""

    machine: str
    order: str | None
    operation: int | None
    good: int
    scrap: int
    outside_good: int
    outside_scrap: int

    @property
    def all_good(self) -> int:
        """Good units inside and outside working time."""
        return self.good + self.outside_good

    @property
    def all_scrap(self) -> int:
        return self.scrap + self.outside_scrap


@dataclass(frozen=True, slots=True)
class SkippedEvent:
    """A stored event the projection could not read."""

    seq: int
    event_id: str
    reason: str


@dataclass(slots=True)
class CatchUp:
    """What one catch-up did."""

    events: int = 0
    """Events read past the checkpoint (all streams)."""
    counts: int = 0
    """Count events taken into the model."""
    skipped: list[SkippedEvent] = field(default_factory=list)
    rebuilt: bool = False
    seq: int = 0
    """The checkpoint afterwards."""


@dataclass(frozen=True, slots=True)
class ViewLag:
    """How far the read model is behind the log."""

    view: str
    checkpoint: int
    last_seq: int
    factory_version: int | None
    skipped: int

    @property
    def behind(self) -> int:
        return max(self.last_seq - self.checkpoint, 0)


# ---------------------------------------------------------------------------- working time


@dataclass(slots=True)
class _Calendars:
    """Machine → (site zone, planned working windows), the windows computed per local day."""

    factory: Factory | None
    lines: dict[str, tuple[Any, Any, str | None]] = field(default_factory=dict)
    """machine path -> (calendar, zone, holidays)"""
    days: dict[tuple[str, dt.date], tuple[list[dt.datetime], list[dt.datetime]]] = field(
        default_factory=dict
    )

    def __post_init__(self) -> None:
        if self.factory is None:
            return
        for ref in self.factory.machines():
            try:
                calendar = self.factory.calendar(ref.line.calendar)
            except (KeyError, ValueError):
                continue
            self.lines[ref.path] = (calendar, ref.site.zone, ref.site.holidays)

    def zone(self, machine: str) -> zoneinfo.ZoneInfo:
        found = self.lines.get(machine)
        return found[1] if found else _UTC

    def _day(self, machine: str, day: dt.date) -> tuple[list[dt.datetime], list[dt.datetime]]:
        """Working windows of the machine's line within one local day, sorted."""
        key = (machine, day)
        edges = self.days.get(key)
        if edges is None:
            calendar, zone, holidays = self.lines[machine]
            begin = dt.datetime.combine(day, dt.time(0), zone)
            finish = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), zone)
            windows = working_windows(calendar, begin, finish, zone, holidays)
            edges = ([w.start for w in windows], [w.end for w in windows])
            self.days[key] = edges
        return edges

    def inside(self, machine: str, ts: dt.datetime) -> bool:
        """True when ``ts`` lies in planned working time of the machine's line."""
        found = self.lines.get(machine)
        if found is None:
            return False
        starts, ends = self._day(machine, ts.astimezone(found[1]).date())
        i = bisect.bisect_right(starts, ts) - 1
        return i >= 0 and ts < ends[i]

    def inside_seconds(self, machine: str, start: dt.datetime, end: dt.datetime) -> float:
        """Seconds of ``[start, end)`` within planned working time of the machine's line."""
        found = self.lines.get(machine)
        if found is None or end <= start:
            return 0.0
        zone = found[1]
        total = 0.0
        day, last = start.astimezone(zone).date(), end.astimezone(zone).date()
        while day <= last:
            for s, e in zip(*self._day(machine, day), strict=True):
                lo, hi = max(s, start), min(e, end)
                if lo < hi:
                    total += (hi - lo).total_seconds()
            day += dt.timedelta(days=1)
        return total


VIEW_FIRST = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
VIEW_END = dt.datetime(2200, 1, 1, tzinfo=dt.UTC)
"""Event times the read models take: the times microfab reads at all (model/timerange.py). An
event stamped outside them (a device clock reset to year 1 or run to 9999, stored before the
clock policy existed) is named in ``view_skipped`` instead of breaking the projection."""


def _event_time(ts: object) -> dt.datetime:
    """A stored event time for the read models; ValueError when missing or out of range."""
    when = stored_time(ts)
    if when is None:
        raise ValueError("no time stamp")
    if not VIEW_FIRST <= when < VIEW_END:
        raise ValueError(f"time {when.isoformat()} outside 1970-01-01 .. 2200-01-01")
    return when


def site_hour(ts: dt.datetime, zone: zoneinfo.ZoneInfo) -> dt.datetime:
    """The UTC instant the site-time hour holding ``ts`` began."""
    local = ts.astimezone(zone).replace(minute=0, second=0, microsecond=0)
    return local.astimezone(dt.UTC)


# ---------------------------------------------------------------------------- projection


def catch_up(store: EventStore, *, progress: Progress | None = None) -> CatchUp:
    """Take every event stored after the checkpoint into the model (see the module docstring)."""
    done = CatchUp()
    current = _current(store)
    if current is not None:
        done.seq = current
        return done
    version, factory = _stored_factory(store)
    calendars: _Calendars | None = None
    while True:
        with store.transaction() as conn:
            checkpoint, seen_version = _checkpoint(store, conn)
            if seen_version != version:
                _empty(conn)
                checkpoint = 0
                done.rebuilt = True
            last = int(conn.scalar(select(func.max(schema.events.c.seq))) or 0)
            if checkpoint >= last:
                _save_checkpoint(store, conn, checkpoint, version)
                done.seq = checkpoint
                return done
            upper = min(last, checkpoint + BATCH)
            if calendars is None:
                calendars = _Calendars(factory)
            rows = conn.exec_driver_sql(_select_counts(store), (checkpoint, upper)).all()
            sums, skipped = _project(rows, calendars)
            _upsert(store, conn, sums)
            unreadable = _project_states(store, conn, checkpoint, upper, calendars)
            unreadable += _project_energy(store, conn, checkpoint, upper, calendars)
            unreadable += _project_materials(store, conn, checkpoint, upper, calendars)
            _record_skipped(conn, skipped)
            _save_checkpoint(store, conn, upper, version)
        done.events += upper - checkpoint
        done.counts += len(rows) - len(skipped)
        named = {s.seq for s in done.skipped}
        done.skipped += skipped
        done.skipped += [s for s in unreadable if s.seq not in named and s.seq > checkpoint]
        done.seq = upper
        if progress is not None:
            progress(upper, last)


_FACTORIES: dict[tuple[str, int], Factory] = {}
"""Stored factory models by (store URL, version): a version never changes once applied."""


def _stored_factory(store: EventStore) -> tuple[int | None, Factory | None]:
    """The newest applied factory model, read (and validated) once per version."""
    with store.engine.connect() as conn:
        version = conn.scalar(select(func.max(schema.factory_versions.c.version)))
    if version is None:
        return None, None
    key = (store.url, int(version))
    if key not in _FACTORIES:
        found = store.factory(int(version))
        if found is None:
            return None, None
        _FACTORIES[key] = found[1]
    return int(version), _FACTORIES[key]


def _current(store: EventStore) -> int | None:
    """The checkpoint when the model is up to date with the log and the factory, else None: one
    cheap read, so that every read of the model can afford to ask."""
    checkpoints, factories = schema.view_checkpoints, schema.factory_versions
    with store.engine.connect() as conn:
        row = conn.execute(
            select(checkpoints.c.seq, checkpoints.c.factory_version).where(
                checkpoints.c.view == VIEW
            )
        ).first()
        last = int(conn.scalar(select(func.max(schema.events.c.seq))) or 0)
        version = conn.scalar(select(func.max(factories.c.version)))
    if row is None or int(row[0]) < last or row[1] != version:
        return None
    return int(row[0])


def rebuild(store: EventStore, *, progress: Progress | None = None) -> CatchUp:
    """Empty the model and take in the whole log again (idempotent: same log, same rows)."""
    with store.transaction() as conn:
        _empty(conn)
        conn.execute(delete(schema.view_checkpoints).where(schema.view_checkpoints.c.view == VIEW))
    done = catch_up(store, progress=progress)
    done.rebuilt = True
    return done


def view_lag(store: EventStore) -> ViewLag:
    """Where the model's checkpoint stands against the log (read only; nothing is caught up)."""
    table = schema.view_checkpoints
    with store.engine.connect() as conn:
        row = conn.execute(
            select(table.c.seq, table.c.factory_version).where(table.c.view == VIEW)
        ).first()
        last = int(conn.scalar(select(func.max(schema.events.c.seq))) or 0)
        skipped = int(conn.scalar(select(func.count()).select_from(schema.view_skipped)) or 0)
    checkpoint, version = (int(row[0]), row[1]) if row else (0, None)
    found = store.factory()
    if found is not None and found[0] != version:
        checkpoint = 0  # a new factory version: the model rebuilds on its next read
    return ViewLag(VIEW, checkpoint, last, version, skipped)


def view_health(store: EventStore) -> list[dict[str, Any]]:
    """The read models' lag as ``/healthz`` reports it: a view behind its checkpoint says so."""
    lag = view_lag(store)
    return [
        {
            "view": lag.view,
            "checkpoint": lag.checkpoint,
            "behind": lag.behind,
            "skipped": lag.skipped,
        }
    ]


def skipped_events(store: EventStore) -> list[SkippedEvent]:
    table = schema.view_skipped
    with store.engine.connect() as conn:
        rows = conn.execute(select(table).order_by(table.c.seq)).all()
    return [SkippedEvent(int(seq), event_id, reason) for seq, event_id, reason in rows]


def _empty(conn: Connection) -> None:
    conn.execute(delete(schema.production_hourly))
    conn.execute(delete(schema.state_spans))
    conn.execute(delete(schema.view_skipped))
    conn.execute(delete(schema.meter_intervals))
    conn.execute(delete(schema.energy_hourly))
    conn.execute(delete(schema.material_hourly))


def _project_states(
    store: EventStore, conn: Connection, lower: int, upper: int, calendars: _Calendars
) -> list[SkippedEvent]:
    """Re-derive the state spans of every machine with state changes in ``(lower, upper]``, from
    the earliest span the new changes touch (a span lasts until the next change, so a late change
    reshapes the span it lands in and those after it)."""
    earliest: dict[str, dt.datetime] = {}
    skipped: list[SkippedEvent] = []
    for machine, ts in conn.exec_driver_sql(
        _sql(
            store,
            "SELECT machine, MIN(ts) FROM events WHERE seq > ? AND seq <= ? AND stream = 'state' "
            "GROUP BY machine",
        ),
        (lower, upper),
    ):
        when = stored_time(ts)
        if when is not None:
            earliest[machine] = min(max(when, VIEW_FIRST), VIEW_END)
    for machine, t0 in sorted(earliest.items()):
        # the span the earliest new change lands in (or the one ending at it): every change
        # before t0 in it reported its state and reason, so the spans are re-derived from it as
        # it stands plus the changes from t0 on, whatever the span's length (a machine that
        # repeats "running" every minute for a week is not re-read for a week on each append)
        landed = conn.exec_driver_sql(
            _sql(
                store,
                'SELECT start, state, reason FROM state_spans WHERE machine = ? AND ("end" IS '
                'NULL OR "end" >= ?) ORDER BY start LIMIT 1',
            ),
            (machine, _bind_time(store, t0)),
        ).first()
        first = stored_time(landed[0]) if landed is not None else None
        seed = None
        if landed is not None and first is not None and first <= t0:
            seed = (first, str(landed[1]), str(landed[2] or ""))
        since = seed[0] if seed is not None else t0
        conn.exec_driver_sql(
            _sql(store, "DELETE FROM state_spans WHERE machine = ? AND start >= ?"),
            (machine, _bind_time(store, since)),
        )
        changes = conn.exec_driver_sql(
            _sql(
                store,
                "SELECT seq, id, ts, body FROM events WHERE machine = ? AND stream = 'state' "
                "AND ts >= ? "
                "ORDER BY ts, id",
            ),
            (machine, _bind_time(store, t0)),
        ).all()
        spans = _spans(changes, skipped, seed)
        if spans:
            conn.exec_driver_sql(
                _sql(
                    store,
                    'INSERT INTO state_spans (machine, start, "end", state, reason, inside_s) '
                    "VALUES (?, ?, ?, ?, ?, ?)",
                ),
                [
                    (
                        machine,
                        _bind_time(store, a),
                        None if b is None else _bind_time(store, b),
                        state,
                        reason,
                        0.0 if b is None else calendars.inside_seconds(machine, a, b),
                    )
                    for a, b, state, reason in spans
                ],
            )
    if skipped:  # a change re-read for a later span is named once
        conn.exec_driver_sql(
            _sql(
                store,
                "INSERT INTO view_skipped (seq, event_id, reason) VALUES (?, ?, ?) "
                "ON CONFLICT (seq) DO NOTHING",
            ),
            [(s.seq, s.event_id, s.reason[:500]) for s in skipped],
        )
    return skipped


# ---------------------------------------------------------------------------- energy, material


def _project_energy(
    store: EventStore, conn: Connection, lower: int, upper: int, calendars: _Calendars
) -> list[SkippedEvent]:
    """Re-derive the intervals of every meter with readings in ``(lower, upper]`` from its last
    reading before the earliest new one (a late reading splits the interval it lands in), and move
    their energy in ``energy_hourly``: the old intervals' hour parts out, the new ones' in."""
    skipped: list[SkippedEvent] = []
    earliest: dict[tuple[str, str], dt.datetime] = {}
    for seq, event_id, ts, machine, body in conn.exec_driver_sql(
        _sql(
            store,
            "SELECT seq, id, ts, machine, body FROM events "
            "WHERE seq > ? AND seq <= ? AND stream = 'energy'",
        ),
        (lower, upper),
    ):
        try:
            carrier, _, _ = _reading_fields(body)
        except (ValueError, TypeError) as exc:
            skipped.append(SkippedEvent(int(seq), str(event_id), str(exc)))
            continue
        try:
            when = _event_time(ts)
        except ValueError as exc:
            skipped.append(SkippedEvent(int(seq), str(event_id), str(exc)))
            continue
        if (machine, carrier) not in earliest or when < earliest[(machine, carrier)]:
            earliest[(machine, carrier)] = when
    for (machine, carrier), t0 in sorted(earliest.items()):
        zone = calendars.zone(machine)
        since = _reading_before(store, conn, machine, carrier, t0) or t0
        bound = (machine, carrier, _bind_time(store, since))
        moved: dict[dt.datetime, list[Any]] = {}
        for a, b, unit, milli in conn.exec_driver_sql(
            _sql(
                store,
                'SELECT start, "end", unit, milli FROM meter_intervals '
                "WHERE machine = ? AND carrier = ? AND start >= ?",
            ),
            bound,
        ):
            began, ended = stored_time(a), stored_time(b)
            assert began is not None and ended is not None
            for hour, part in _hour_parts(began, ended, -int(milli), zone).items():
                moved.setdefault(hour, [unit, 0])[1] += part
        conn.exec_driver_sql(
            _sql(
                store,
                "DELETE FROM meter_intervals WHERE machine = ? AND carrier = ? AND start >= ?",
            ),
            bound,
        )
        readings: list[tuple[dt.datetime, int]] = []
        unit = ""
        for seq, event_id, ts, body in conn.exec_driver_sql(
            _sql(
                store,
                "SELECT seq, id, ts, body FROM events WHERE machine = ? AND stream = 'energy' "
                "AND ts >= ? ORDER BY ts, id",
            ),
            (machine, _bind_time(store, since)),
        ):
            try:
                found, value, unit_of = _reading_fields(body)
                when = _event_time(ts)
            except (ValueError, TypeError) as exc:
                skipped.append(SkippedEvent(int(seq), str(event_id), str(exc)))
                continue
            if found == carrier:
                readings.append((when, to_milli(value)))
                unit = unit_of
        intervals, _ = meter_intervals(readings)  # a backward step: a reset (see docs)
        rows = []
        for ((_, v0), (_, v1)), interval in zip(
            itertools.pairwise(readings), intervals, strict=True
        ):
            rows.append(
                (
                    machine,
                    carrier,
                    _bind_time(store, interval.start),
                    _bind_time(store, interval.end),
                    unit,
                    interval.milli,
                    "reset" if v1 < v0 else "",
                )
            )
            for hour, part in _hour_parts(
                interval.start, interval.end, interval.milli, zone
            ).items():
                moved.setdefault(hour, [unit, 0])[1] += part
                moved[hour][0] = unit
        if rows:
            conn.exec_driver_sql(
                _sql(
                    store,
                    'INSERT INTO meter_intervals (machine, carrier, start, "end", unit, milli, '
                    "anomaly) VALUES (?, ?, ?, ?, ?, ?, ?)",
                ),
                rows,
            )
        changes = [
            (machine, carrier, _bind_time(store, hour), unit_of, milli)
            for hour, (unit_of, milli) in sorted(moved.items())
            if milli
        ]
        if changes:
            conn.exec_driver_sql(
                _sql(
                    store,
                    "INSERT INTO energy_hourly (machine, carrier, hour, unit, milli) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (machine, carrier, hour) DO UPDATE SET "
                    "milli = energy_hourly.milli + excluded.milli, unit = excluded.unit",
                ),
                changes,
            )
            conn.exec_driver_sql(
                _sql(
                    store,
                    "DELETE FROM energy_hourly WHERE machine = ? AND carrier = ? AND milli = 0",
                ),
                (machine, carrier),
            )
    _record_skipped_once(store, conn, skipped)
    return skipped


def _reading_before(
    store: EventStore, conn: Connection, machine: str, carrier: str, t0: dt.datetime
) -> dt.datetime | None:
    """The time of the meter's last reading before ``t0`` (where its re-derivation begins).

    Found from the stored intervals (an index look-up, however long the meter's history): the
    last interval to begin before ``t0`` ends at that reading when it ends before ``t0``, else
    begins at it. A meter with no interval yet (one reading so far) is looked up in the log."""
    found = conn.exec_driver_sql(
        _sql(
            store,
            'SELECT start, "end" FROM meter_intervals WHERE machine = ? AND carrier = ? '
            "AND start < ? ORDER BY start DESC LIMIT 1",
        ),
        (machine, carrier, _bind_time(store, t0)),
    ).first()
    if found is not None:
        began, ended = stored_time(found[0]), stored_time(found[1])
        assert began is not None and ended is not None
        return ended if ended < t0 else began
    table = schema.events
    named = table.c.body["carrier"].as_string()
    query = select(func.max(table.c.ts)).where(
        table.c.machine == machine,
        table.c.stream == "energy",
        table.c.ts < t0.astimezone(dt.UTC),
        named.is_(None) if carrier == _ELECTRICITY else named == carrier,
    )
    return stored_time(conn.scalar(query))


_ELECTRICITY = "electricity"


def _reading_fields(body: Any) -> tuple[str, float, str]:
    """(carrier, cumulative value, unit) of a meter reading's stored body; ValueError when it
    is not readable. Electricity (no carrier) is read in kWh."""
    data = json.loads(body) if isinstance(body, str | bytes) else body
    if not isinstance(data, dict):
        raise ValueError("body is not a JSON object")
    carrier: Any = data.get("carrier")
    value: Any = data.get("kwh") if carrier is None else data.get("quantity")
    unit: Any = "kWh" if carrier is None else data.get("unit")
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ValueError(f"reading is not a number ({value!r})")
    if carrier is not None and (not isinstance(carrier, str) or not 0 < len(carrier) <= 32):
        raise ValueError(f"carrier is not a carrier name ({carrier!r})")
    if not isinstance(unit, str) or not 0 < len(unit) <= 64:
        raise ValueError(f"unit is not a unit ({unit!r})")
    return carrier or _ELECTRICITY, float(value), unit


def _hour_parts(
    start: dt.datetime, end: dt.datetime, milli: int, zone: zoneinfo.ZoneInfo
) -> dict[dt.datetime, int]:
    """An interval's energy split over the site hours it spans by time (exactly, as the carbon
    accounting splits an interval at a period's edge); a zero-length one goes to its hour."""
    if end <= start:
        return {site_hour(end, zone): milli}
    first = site_hour(start, zone)
    if end <= first + _HOUR:  # the common case: readings minutes apart, within one hour
        return {first: milli}
    weights: dict[dt.datetime, Any] = {}
    hour = first
    while hour < end:
        share = overlap_s(start, end, hour, hour + _HOUR)
        if share:
            weights[hour] = share
        hour += _HOUR
    return apportion(milli, weights)


def _project_materials(
    store: EventStore, conn: Connection, lower: int, upper: int, calendars: _Calendars
) -> list[SkippedEvent]:
    """Add the material consumed in ``(lower, upper]`` to its machine × order × site hour."""
    skipped: list[SkippedEvent] = []
    sums: dict[tuple[str, dt.datetime, str, str, str], int] = {}
    for seq, event_id, ts, machine, body in conn.exec_driver_sql(
        _sql(
            store,
            "SELECT seq, id, ts, machine, body FROM events "
            "WHERE seq > ? AND seq <= ? AND stream = 'material' ORDER BY seq",
        ),
        (lower, upper),
    ):
        try:
            material, qty, unit, order = _material_fields(body)
            when = _event_time(ts)
        except (ValueError, TypeError) as exc:
            skipped.append(SkippedEvent(int(seq), str(event_id), str(exc)))
            continue
        key = (machine, site_hour(when, calendars.zone(machine)), order, material, unit)
        sums[key] = sums.get(key, 0) + qty
    if sums:
        conn.exec_driver_sql(
            _sql(
                store,
                "INSERT INTO material_hourly (machine, hour, order_id, material, unit, milli) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (machine, hour, order_id, material, unit) "
                "DO UPDATE SET milli = material_hourly.milli + excluded.milli",
            ),
            [
                (machine, _bind_time(store, hour), order, material, unit, milli)
                for (machine, hour, order, material, unit), milli in sorted(sums.items())
            ],
        )
    _record_skipped_once(store, conn, skipped)
    return skipped


def _material_fields(body: Any) -> tuple[str, int, str, str]:
    """(material, quantity in milli-units, unit, order or '') of a consumption's stored body."""
    data = json.loads(body) if isinstance(body, str | bytes) else body
    if not isinstance(data, dict):
        raise ValueError("body is not a JSON object")
    material: Any = data.get("material")
    qty: Any = data.get("qty")
    unit: Any = data.get("unit")
    order: Any = data.get("order") or ""
    if not isinstance(qty, int | float) or isinstance(qty, bool) or not math.isfinite(qty):
        raise ValueError(f"qty is not a number ({qty!r})")
    for name, text in (("material", material), ("unit", unit), ("order", order)):
        if not isinstance(text, str) or len(text) > 64:
            raise ValueError(f"{name} is not a label ({text!r})")
    if not material or not unit:
        raise ValueError("material and unit are required")
    return material, _milli(float(qty)), unit, order


def _milli(value: float) -> int:
    """A quantity as whole milli-units, rounded half away from zero."""
    scaled = abs(value) * 1000
    return int(math.copysign(math.floor(scaled + 0.5), value))


def _record_skipped_once(
    store: EventStore, conn: Connection, skipped: Sequence[SkippedEvent]
) -> None:
    if skipped:  # an event re-read by a later re-derivation is named once
        conn.exec_driver_sql(
            _sql(
                store,
                "INSERT INTO view_skipped (seq, event_id, reason) VALUES (?, ?, ?) "
                "ON CONFLICT (seq) DO NOTHING",
            ),
            [(s.seq, s.event_id, s.reason[:500]) for s in skipped],
        )


def _state_fields(body: Any) -> tuple[str, str]:
    """(state, reason or '') of a state change's stored body; ValueError when unreadable."""
    data = json.loads(body) if isinstance(body, str | bytes) else body
    if not isinstance(data, dict):
        raise ValueError("body is not a JSON object")
    state: Any = data.get("state")
    reason: Any = data.get("reason") or ""
    if not isinstance(state, str) or not 0 < len(state) <= 16:
        raise ValueError(f"state is not a state name ({state!r})")
    if not isinstance(reason, str) or len(reason) > 64:
        raise ValueError(f"reason is not a reason code ({reason!r})")
    return state, reason


def _spans(
    changes: Sequence[Any],
    skipped: list[SkippedEvent],
    seed: tuple[dt.datetime, str, str] | None = None,
) -> list[tuple[dt.datetime, dt.datetime | None, str, str]]:
    """(start, end or None while open, state, reason) from state changes in (ts, id) order, going
    on from ``seed`` (start, state, reason: the span the changes before the first one left open);
    a repeated report of the same state and reason does not start a new span. A change that
    cannot be read is named in ``skipped`` and the spans go on without it."""
    spans: list[tuple[dt.datetime, dt.datetime | None, str, str]] = []
    current: tuple[dt.datetime, str, str] | None = seed
    for seq, event_id, ts, body in changes:
        try:
            state, reason = _state_fields(body)
            when = _event_time(ts)
        except (ValueError, TypeError) as exc:
            skipped.append(SkippedEvent(int(seq), str(event_id), str(exc)))
            continue
        if current is not None and (current[1], current[2]) == (state, reason):
            continue
        if current is not None and when > current[0]:
            spans.append((current[0], when, current[1], current[2]))
        elif current is not None:  # same instant: the later change wins
            current = (current[0], state, reason)
            continue
        current = (when, state, reason)
    if current is not None:
        spans.append((current[0], None, current[1], current[2]))
    return spans


def _checkpoint(store: EventStore, conn: Connection) -> tuple[int, int | None]:
    table = schema.view_checkpoints
    now = _bind_time(store, dt.datetime.now(dt.UTC))
    conn.exec_driver_sql(
        _sql(
            store,
            "INSERT INTO view_checkpoints (view, seq, factory_version, updated_at) "
            "VALUES (?, 0, NULL, ?) ON CONFLICT (view) DO NOTHING",
        ),
        (VIEW, now),
    )
    lock = " FOR UPDATE" if store.dialect == "postgresql" else ""
    row = conn.exec_driver_sql(
        _sql(store, f"SELECT seq, factory_version FROM {table.name} WHERE view = ?{lock}"),
        (VIEW,),
    ).one()
    return int(row[0]), (None if row[1] is None else int(row[1]))


def _save_checkpoint(store: EventStore, conn: Connection, seq: int, version: int | None) -> None:
    conn.exec_driver_sql(
        _sql(
            store,
            "UPDATE view_checkpoints SET seq = ?, factory_version = ?, updated_at = ? "
            "WHERE view = ?",
        ),
        (seq, version, _bind_time(store, dt.datetime.now(dt.UTC)), VIEW),
    )


def _select_counts(store: EventStore) -> str:
    return _sql(
        store,
        "SELECT seq, id, ts, machine, body FROM events "
        "WHERE seq > ? AND seq <= ? AND stream = 'count' ORDER BY seq",
    )


_Key = tuple[str, dt.datetime, str, int]


def _project(
    rows: Iterable[Any], calendars: _Calendars
) -> tuple[dict[_Key, list[int]], list[SkippedEvent]]:
    sums: dict[_Key, list[int]] = {}
    skipped: list[SkippedEvent] = []
    for seq, event_id, ts, machine, body in rows:
        try:
            good, scrap, order, operation = _count_fields(body)
            when = _event_time(ts)
        except (ValueError, TypeError) as exc:
            skipped.append(SkippedEvent(int(seq), str(event_id), str(exc)))
            continue
        key = (machine, site_hour(when, calendars.zone(machine)), order, operation)
        cell = sums.get(key)
        if cell is None:
            cell = sums[key] = [0, 0, 0, 0]
        if calendars.inside(machine, when):
            cell[0] += good
            cell[1] += scrap
        else:
            cell[2] += good
            cell[3] += scrap
    return sums, skipped


def _count_fields(body: Any) -> tuple[int, int, str, int]:
    """(good, scrap, order or '', operation or -1) of a count's stored body; ValueError when it
    is not a readable count."""
    data = json.loads(body) if isinstance(body, str | bytes) else body
    if not isinstance(data, dict):
        raise ValueError("body is not a JSON object")
    good: Any = data.get("good")
    scrap: Any = data.get("scrap", 0)
    order: Any = data.get("order")
    operation: Any = data.get("operation")
    if not _is_int(good) or not _is_int(scrap if scrap is not None else 0):
        raise ValueError(f"good/scrap are not integers (good={good!r}, scrap={scrap!r})")
    if order is not None and not isinstance(order, str):
        raise ValueError(f"order is not text ({order!r})")
    if operation is None:
        operation = -1
    elif not _is_int(operation):
        raise ValueError(f"operation is not an integer ({operation!r})")
    return int(good), int(scrap or 0), order or "", int(operation)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _upsert(store: EventStore, conn: Connection, sums: dict[_Key, list[int]]) -> None:
    if not sums:
        return
    statement = _sql(
        store,
        "INSERT INTO production_hourly "
        "(machine, hour, order_id, operation, good, scrap, outside_good, outside_scrap) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (machine, hour, order_id, operation) DO UPDATE SET "
        "good = production_hourly.good + excluded.good, "
        "scrap = production_hourly.scrap + excluded.scrap, "
        "outside_good = production_hourly.outside_good + excluded.outside_good, "
        "outside_scrap = production_hourly.outside_scrap + excluded.outside_scrap",
    )
    conn.exec_driver_sql(
        statement,
        [
            (machine, _bind_time(store, hour), order, operation, *cell)
            for (machine, hour, order, operation), cell in sorted(sums.items())
        ],
    )


def _record_skipped(conn: Connection, skipped: Sequence[SkippedEvent]) -> None:
    if skipped:
        conn.execute(
            schema.view_skipped.insert(),
            [{"seq": s.seq, "event_id": s.event_id, "reason": s.reason[:500]} for s in skipped],
        )


def _sql(store: EventStore, statement: str) -> str:
    """``statement`` with ``?`` marks as the driver wants them (``%s`` for psycopg)."""
    return statement if store.dialect == "sqlite" else statement.replace("?", "%s")


def _bind_time(store: EventStore, value: dt.datetime) -> Any:
    """A time as the driver binds it for SQLAlchemy's DateTime column (text on SQLite)."""
    return sqlite_time(value.astimezone(dt.UTC)) if store.dialect == "sqlite" else value


# ---------------------------------------------------------------------------- reads


def _hour_range(store: EventStore, start: dt.datetime, end: dt.datetime) -> tuple[Any, Any]:
    """Bounds on ``hour`` for the hours that overlap ``[start, end)``: ``start - 1h < hour <
    end``."""
    return _bind_time(store, start - _HOUR), _bind_time(store, end)


def hour_counts(
    store: EventStore,
    start: dt.datetime,
    end: dt.datetime,
    machines: Sequence[str] | None = None,
) -> list[HourCount]:
    """Rows of the hours that overlap ``[start, end)``, of ``machines`` (all when None), in
    hour, machine, order, operation order. Catches the model up first."""
    catch_up(store)
    table = schema.production_hourly
    lower, upper = _hour_range(store, start, end)
    where = "hour > ? AND hour < ?"
    params: list[Any] = [lower, upper]
    if machines is not None:
        if not machines:
            return []
        where += f" AND machine IN ({', '.join('?' * len(machines))})"
        params += list(machines)
    statement = _sql(
        store,
        "SELECT machine, hour, order_id, operation, good, scrap, outside_good, outside_scrap "
        f"FROM {table.name} WHERE {where} ORDER BY hour, machine, order_id, operation",
    )
    with store.engine.connect() as conn:
        rows = conn.exec_driver_sql(statement, tuple(params)).all()
    out: list[HourCount] = []
    for machine, hour, order, operation, good, scrap, og, os_ in rows:
        when = stored_time(hour)
        assert when is not None
        out.append(
            HourCount(
                machine,
                when,
                order or None,
                None if operation == -1 else int(operation),
                int(good),
                int(scrap),
                int(og),
                int(os_),
            )
        )
    return out


def count_totals(
    store: EventStore,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    machines: Sequence[str] | None = None,
    orders: Sequence[str] | None = None,
) -> list[CountTotal]:
    """Sums per machine, order and operation over the hours overlapping ``[start, end)`` (the
    whole log when both are None), added up in SQL. Catches the model up first."""
    catch_up(store)
    where, params = _range_filter(store, start, end, machines)
    if where is None:
        return []
    if orders is not None:
        if not orders:
            return []
        where += f"{' AND' if where else ' WHERE'} order_id IN ({', '.join('?' * len(orders))})"
        params += list(orders)
    statement = _sql(
        store,
        "SELECT machine, order_id, operation, SUM(good), SUM(scrap), SUM(outside_good), "
        "SUM(outside_scrap) FROM production_hourly"
        + where
        + " GROUP BY machine, order_id, operation ORDER BY machine, order_id, operation",
    )
    with store.engine.connect() as conn:
        rows = conn.exec_driver_sql(statement, tuple(params)).all()
    return [
        CountTotal(
            machine,
            order or None,
            None if operation is None or operation == -1 else int(operation),
            int(good or 0),
            int(scrap or 0),
            int(og or 0),
            int(os_ or 0),
        )
        for machine, order, operation, good, scrap, og, os_ in rows
    ]


@dataclass(frozen=True, slots=True)
class StateTotal:
    """A machine's time in one state and reason within working time, over whole spans."""

    machine: str
    state: str
    reason: str | None
    inside_s: float
    spans: int
    """Spans of this state that reach into working time."""


@dataclass(frozen=True, slots=True)
class EdgeSpan:
    """A span that reaches over the start or end of a range (or is still open): to be clipped."""

    machine: str
    start: dt.datetime
    end: dt.datetime | None
    state: str
    reason: str | None


def state_totals(
    store: EventStore, machines: Sequence[str], start: dt.datetime, end: dt.datetime
) -> tuple[list[StateTotal], list[EdgeSpan]]:
    """Working-time seconds per machine, state and reason of the spans wholly inside
    ``[start, end)`` (added up in SQL), and the spans reaching over its edges, for the caller to
    clip against its working windows. Catches the model up first."""
    catch_up(store)
    if not machines:
        return [], []
    marks = ", ".join("?" * len(machines))
    lower, upper = _bind_time(store, start), _bind_time(store, end)
    inner = _sql(
        store,
        "SELECT machine, state, reason, SUM(inside_s), "
        "SUM(CASE WHEN inside_s > 0 THEN 1 ELSE 0 END) FROM state_spans "
        f'WHERE machine IN ({marks}) AND start >= ? AND "end" IS NOT NULL AND "end" <= ? '
        "GROUP BY machine, state, reason ORDER BY machine, state, reason",
    )
    # spans are contiguous, so only the span holding ``start`` and the one holding ``end`` (or
    # still open) reach over an edge: the last span to begin before each, by index
    edge = _sql(
        store,
        'SELECT machine, start, "end", state, reason FROM state_spans '
        "WHERE machine = ? AND start < ? ORDER BY start DESC LIMIT 1",
    )
    with store.engine.connect() as conn:
        totals = [
            StateTotal(machine, state, reason or None, float(seconds or 0.0), int(n or 0))
            for machine, state, reason, seconds, n in conn.exec_driver_sql(
                inner, (*machines, lower, upper)
            )
        ]
        spans: dict[tuple[str, dt.datetime], EdgeSpan] = {}
        for machine in machines:
            for bound in (lower, upper):
                found = conn.exec_driver_sql(edge, (machine, bound)).first()
                if found is None:
                    continue
                _, a, b, state, reason = found
                began, ended = stored_time(a), None if b is None else stored_time(b)
                assert began is not None
                inner_span = began >= start and ended is not None and ended <= end
                if (ended is not None and ended <= start) or inner_span:
                    continue
                spans[(machine, began)] = EdgeSpan(machine, began, ended, state, reason or None)
    return totals, [spans[key] for key in sorted(spans)]


def spans_between(
    store: EventStore, machines: Sequence[str], start: dt.datetime, end: dt.datetime
) -> dict[str, list[EdgeSpan]]:
    """Per machine, the stored state spans that overlap ``[start, end)``, in time order (not
    clipped; ``end`` None while a span is open). Catches the model up first."""
    catch_up(store)
    out: dict[str, list[EdgeSpan]] = {machine: [] for machine in machines}
    if not machines:
        return out
    statement = _sql(
        store,
        'SELECT machine, start, "end", state, reason FROM state_spans '
        f"WHERE machine IN ({', '.join('?' * len(machines))}) AND start < ? "
        'AND ("end" IS NULL OR "end" > ?) ORDER BY machine, start',
    )
    params = (*machines, _bind_time(store, end), _bind_time(store, start))
    with store.engine.connect() as conn:
        for machine, a, b, state, reason in conn.exec_driver_sql(statement, params):
            began = stored_time(a)
            assert began is not None
            ended = None if b is None else stored_time(b)
            out[machine].append(EdgeSpan(machine, began, ended, state, reason or None))
    return out


@dataclass(frozen=True, slots=True)
class ProductTotal:
    """Units one machine counted for one product's routing step over a range of hours; orders
    whose product has no known routing (or no quantity) stay apart, keyed by order."""

    machine: str
    product: str | None
    """Set for orders of a routed product (``order`` is then None)."""
    order: str | None
    operation: int | None
    good: int
    scrap: int
    outside_good: int
    outside_scrap: int


def product_totals(
    store: EventStore,
    start: dt.datetime,
    end: dt.datetime,
    machines: Sequence[str],
    routed: Sequence[str],
) -> list[ProductTotal]:
    """Sums per machine, product (``routed``: the SKUs with a routing) and operation over the
    hours overlapping ``[start, end)``, joined to the order read model and added up in SQL: one row
    per routing step however many orders ran. Catches the model up first."""
    catch_up(store)
    if not machines:
        return []
    lower, upper = _hour_range(store, start, end)
    skus = ", ".join("?" * len(routed)) if routed else "NULL"
    known = f"o.product IN ({skus}) AND o.quantity > 0"
    # sum per order step first (an index range scan), then fold the orders of each product
    statement = _sql(
        store,
        f"SELECT p.machine, CASE WHEN {known} THEN o.product ELSE '' END, "
        f"CASE WHEN {known} THEN '' ELSE p.order_id END, p.operation, SUM(p.good), "
        "SUM(p.scrap), SUM(p.outside_good), SUM(p.outside_scrap) FROM ("
        "SELECT machine, order_id, operation, SUM(good) AS good, SUM(scrap) AS scrap, "
        "SUM(outside_good) AS outside_good, SUM(outside_scrap) AS outside_scrap "
        "FROM production_hourly "
        f"WHERE hour > ? AND hour < ? AND machine IN ({', '.join('?' * len(machines))}) "
        "GROUP BY machine, order_id, operation) AS p "
        "LEFT JOIN order_status o ON o.order_id = p.order_id "
        "GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4",
    )
    params = (*routed, *routed, lower, upper, *machines)  # marks in the order they appear
    with store.engine.connect() as conn:
        rows = conn.exec_driver_sql(statement, params).all()
    return [
        ProductTotal(
            machine,
            product or None,
            order or None,
            None if operation is None or operation == -1 else int(operation),
            int(good or 0),
            int(scrap or 0),
            int(og or 0),
            int(os_ or 0),
        )
        for machine, product, order, operation, good, scrap, og, os_ in rows
    ]


@dataclass(frozen=True, slots=True)
class EnergyTotal:
    """Energy one meter (machine and carrier) measured over a range of site hours."""

    machine: str
    carrier: str
    """``electricity`` or a fuel carrier."""
    unit: str
    milli: int
    """Whole milli-units of ``unit`` (1 Wh for a kWh meter)."""
    hour: dt.datetime | None = None
    """The site hour (UTC instant it began) for an hourly row; None for a total."""


@dataclass(frozen=True, slots=True)
class MaterialTotal:
    """Material one machine consumed for one order (``None``: none named) over a range of hours."""

    machine: str
    order: str | None
    material: str
    unit: str
    milli: int
    hour: dt.datetime | None = None


def energy_totals(
    store: EventStore,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    machines: Sequence[str] | None = None,
    *,
    hourly: bool = False,
) -> list[EnergyTotal]:
    """Metered energy per machine and carrier (and per site hour when ``hourly``) over the hours
    overlapping ``[start, end)`` (the whole log when both are None), added up in SQL. Catches the
    model up first."""
    catch_up(store)
    where, params = _range_filter(store, start, end, machines)
    if where is None:
        return []
    keys = "machine, carrier, hour" if hourly else "machine, carrier"
    statement = _sql(
        store,
        f"SELECT {keys}, MAX(unit), SUM(milli) FROM energy_hourly{where} "
        f"GROUP BY {keys} ORDER BY {keys}",
    )
    with store.engine.connect() as conn:
        rows = conn.exec_driver_sql(statement, tuple(params)).all()
    return [
        EnergyTotal(
            row[0], row[1], row[-2], int(row[-1] or 0), stored_time(row[2]) if hourly else None
        )
        for row in rows
    ]


def material_totals(
    store: EventStore,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    machines: Sequence[str] | None = None,
    *,
    hourly: bool = False,
) -> list[MaterialTotal]:
    """Material consumed per machine, order, material and unit (and per site hour when
    ``hourly``) over the hours overlapping ``[start, end)`` (the whole log when both are None).
    Catches the model up first."""
    catch_up(store)
    where, params = _range_filter(store, start, end, machines)
    if where is None:
        return []
    keys = "machine, order_id, material, unit" + (", hour" if hourly else "")
    statement = _sql(
        store,
        f"SELECT {keys}, SUM(milli) FROM material_hourly{where} GROUP BY {keys} ORDER BY {keys}",
    )
    with store.engine.connect() as conn:
        rows = conn.exec_driver_sql(statement, tuple(params)).all()
    return [
        MaterialTotal(
            row[0],
            row[1] or None,
            row[2],
            row[3],
            int(row[-1] or 0),
            stored_time(row[4]) if hourly else None,
        )
        for row in rows
    ]


def _range_filter(
    store: EventStore,
    start: dt.datetime | None,
    end: dt.datetime | None,
    machines: Sequence[str] | None,
) -> tuple[str | None, list[Any]]:
    """A ``WHERE`` clause on ``hour`` (the hours overlapping ``[start, end)``) and ``machine``;
    None when ``machines`` is empty (nothing can match)."""
    where: list[str] = []
    params: list[Any] = []
    if start is not None and end is not None:
        lower, upper = _hour_range(store, start, end)
        where.append("hour > ? AND hour < ?")
        params += [lower, upper]
    if machines is not None:
        if not machines:
            return None, []
        where.append(f"machine IN ({', '.join('?' * len(machines))})")
        params += list(machines)
    return (f" WHERE {' AND '.join(where)}" if where else ""), params
