"""HQ's roll-up: each site's figures of its day and the group's, from the read models.

Per site (in the site's own time zone, "today" ending at the site's newest event, as the site's
own dashboard reckons it): the freshness of its data at HQ (newest event, when it was stored, the
transport lag), the backlog its uplink last reported (events waiting at the site and for how
long: a cut link shows here), OEE (line OEE weighted by planned busy time), good and scrap, late open orders,
open alerts, metered electricity and its kgCO2e by the site's grid factor
(``grid_factor`` in the factory file, else its Hong Kong power company's), and kgCO2e per good
unit. The group's figures add the sites' up (OEE weighted by planned busy time again).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any

from microfab.green.factors import FactorTable, load_factors
from microfab.hq.registry import only_sites
from microfab.model.factory import Factory, Site
from microfab.store import EventStore
from microfab.store.alerts import list_alerts
from microfab.store.hq import UplinkReport, freshness, uplink_reports
from microfab.store.production_views import energy_totals
from microfab.track.oee import oee_rows
from microfab.track.orders import list_orders


@dataclass(frozen=True, slots=True)
class SiteFigures:
    """One site's tile at HQ."""

    site: str
    name: str
    timezone: str
    currency: str
    newest_event: dt.datetime | None
    received: dt.datetime | None
    lag_s: float | None
    day_start: dt.datetime | None
    oee: float | None
    planned_busy_s: float
    good: int
    scrap: int
    late_orders: int
    open_alerts: int
    kwh: float
    kgco2e: float | None
    kgco2e_per_unit: float | None
    grid_factor: str
    grid_factor_year: int | None
    uplink_lag_events: int | None = None
    """Events waiting at the site, as its uplink last reported (None: it never reported)."""
    uplink_lag_s: float | None = None
    uplink_reported: dt.datetime | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("newest_event", "received", "day_start", "uplink_reported"):
            value = data[key]
            data[key] = None if value is None else value.isoformat().replace("+00:00", "Z")
        return data


@dataclass(frozen=True, slots=True)
class GroupFigures:
    """The group's figures: the sites added up."""

    sites: list[SiteFigures]
    oee: float | None
    good: int
    scrap: int
    late_orders: int
    open_alerts: int
    kwh: float
    kgco2e: float | None
    kgco2e_per_unit: float | None

    def to_json(self) -> dict[str, Any]:
        return {
            "group": {
                "oee": self.oee,
                "good": self.good,
                "scrap": self.scrap,
                "late_orders": self.late_orders,
                "open_alerts": self.open_alerts,
                "kwh": self.kwh,
                "kgco2e": self.kgco2e,
                "kgco2e_per_unit": self.kgco2e_per_unit,
            },
            "sites": [s.to_json() for s in self.sites],
        }


def grid_factor_key(site: Site) -> str:
    return site.grid_factor or f"electricity/{site.electricity_supplier.value}"


def site_figures(
    store: EventStore,
    factory: Factory,
    site_id: str,
    *,
    factors: FactorTable | None = None,
    late_by_site: dict[str, int] | None = None,
    alerts_by_site: dict[str, int] | None = None,
    reports: dict[str, UplinkReport] | None = None,
) -> SiteFigures:
    """One site's figures (see the module docstring)."""
    narrowed = only_sites(factory, [site_id])
    site = narrowed.sites[0]
    paths = [ref.path for ref in narrowed.machines()]
    fresh = freshness(store, paths)
    key = grid_factor_key(site)
    oee = start = None
    busy = 0.0
    good = scrap = 0
    kwh = 0.0
    kg: float | None = None
    year: int | None = None
    if fresh is not None:
        end = fresh.event_ts + dt.timedelta(milliseconds=1)
        local = fresh.event_ts.astimezone(site.zone)
        start = dt.datetime.combine(local.date(), dt.time(0), site.zone).astimezone(dt.UTC)
        rows = oee_rows(store, narrowed, start=start, end=end, by="machine", level="machine")
        weighted = sum((r.figures.oee or 0.0) * r.figures.planned_busy_s for r in rows)
        busy = sum(r.figures.planned_busy_s for r in rows if r.figures.oee is not None)
        oee = weighted / busy if busy else None
        good = sum(r.figures.good for r in rows)
        scrap = sum(r.figures.scrap for r in rows)
        wh = sum(
            t.milli
            for t in energy_totals(store, start, end, paths)
            if t.carrier == "electricity" and t.unit == "kWh"
        )
        kwh = wh / 1000
        choice = (factors or load_factors()).choose(key, local.year)
        if choice is not None:
            kg = kwh * choice.factor.value
            year = choice.factor.year
    if late_by_site is None:
        late_by_site = late_orders(store, factory)
    if alerts_by_site is None:
        alerts_by_site = open_alerts(store)
    report = (uplink_reports(store) if reports is None else reports).get(site.id)
    return SiteFigures(
        site=site.id,
        name=site.name or site.id,
        timezone=site.timezone,
        currency=site.currency,
        newest_event=None if fresh is None else fresh.event_ts,
        received=None if fresh is None else fresh.ingest_ts,
        lag_s=None if fresh is None else round(fresh.lag_s, 3),
        day_start=start,
        oee=None if oee is None else round(oee, 6),
        planned_busy_s=round(busy, 3),
        good=good,
        scrap=scrap,
        late_orders=late_by_site.get(site.id, 0),
        open_alerts=alerts_by_site.get(site.id, 0),
        kwh=round(kwh, 3),
        kgco2e=None if kg is None else round(kg, 3),
        kgco2e_per_unit=None if kg is None or not good else round(kg / good, 6),
        grid_factor=key,
        grid_factor_year=year,
        uplink_lag_events=None if report is None else report.lag_events,
        uplink_lag_s=None if report is None else report.lag_s,
        uplink_reported=None if report is None else report.reported_at,
    )


def late_orders(store: EventStore, factory: Factory) -> dict[str, int]:
    """Open late orders per site (the site of the machine working it, else of its first step)."""
    paths = {ref.machine.id: ref.path for ref in factory.machines()}
    counts: dict[str, int] = {}
    for view in list_orders(store, factory, late=True):
        if not view.open:
            continue
        where = view.machine
        if where is None and view.product is not None:
            try:
                first = factory.product(view.product).routing[0]
                where = paths.get(next(iter(first.machines)))
            except (KeyError, IndexError, StopIteration):
                where = None
        if where is not None:
            site = where.split("/", 1)[0]
            counts[site] = counts.get(site, 0) + 1
    return counts


def open_alerts(store: EventStore) -> dict[str, int]:
    counts: dict[str, int] = {}
    for alert in list_alerts(store, open_only=True):
        counts[alert.site] = counts.get(alert.site, 0) + 1
    return counts


def group_figures(
    store: EventStore, factory: Factory, sites: list[str] | None = None
) -> GroupFigures:
    """Every site's figures (or those of ``sites``, a site manager's) and their sum."""
    factors = load_factors()
    late = late_orders(store, factory)
    alerts = open_alerts(store)
    reports = uplink_reports(store)
    chosen = [s.id for s in factory.sites if sites is None or s.id in sites]
    tiles = [
        site_figures(
            store,
            factory,
            s,
            factors=factors,
            late_by_site=late,
            alerts_by_site=alerts,
            reports=reports,
        )
        for s in chosen
    ]
    busy = sum(t.planned_busy_s for t in tiles if t.oee is not None)
    oee = sum((t.oee or 0.0) * t.planned_busy_s for t in tiles) / busy if busy else None
    known = [t.kgco2e for t in tiles if t.kgco2e is not None]
    kg = sum(known) if known else None
    good = sum(t.good for t in tiles)
    return GroupFigures(
        sites=tiles,
        oee=None if oee is None else round(oee, 6),
        good=good,
        scrap=sum(t.scrap for t in tiles),
        late_orders=sum(t.late_orders for t in tiles),
        open_alerts=sum(t.open_alerts for t in tiles),
        kwh=round(sum(t.kwh for t in tiles), 3),
        kgco2e=None if kg is None else round(kg, 3),
        kgco2e_per_unit=None if kg is None or not good else round(kg / good, 6),
    )
