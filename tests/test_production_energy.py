"""Energy and material in the production read models (docs/production.md, "Energy and
material"): metered energy per machine × carrier × site hour from cumulative readings by the
carbon accounting's meter rule, material per machine × order × site hour; late readings split the
interval they land in; batches, order of arrival and rebuild give the same rows, on SQLite and
PostgreSQL."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import pytest
from sqlalchemy import text

from conftest import DATA
from microfab.model.carbon import meter_intervals, to_milli
from microfab.model.events import EVENT_ADAPTER, Event
from microfab.model.factory_file import parse_factory
from microfab.store import EventStore
from microfab.store.production_views import energy_totals, rebuild
from microfab.track.production import energy_by_machine, material_by_order

HKT = dt.timezone(dt.timedelta(hours=8))
DAY = dt.date(2026, 11, 23)
CNC1 = "kt/plant/line1/machining/cnc-1"
ROBOT = "kt/plant/line1/machining/robot-1"


def at(hhmm: str) -> dt.datetime:
    hour, minute = (int(x) for x in hhmm.split(":"))
    return dt.datetime.combine(DAY, dt.time(hour, minute), HKT)


READINGS = [("08:30", 100.0), ("09:30", 101.0), ("10:15", 0.25), ("11:00", 1.25)]
"""cnc-1's electricity meter: 1 kWh, then a reset (0.25 kWh counted), then 1 kWh."""
GAS = [("08:00", 50.0), ("10:00", 54.0)]
"""robot-1's towngas meter, MJ: 4 MJ over two hours."""
MATERIAL = [("09:10", CNC1, 2.5, "WO-A"), ("09:50", CNC1, 1.25, "WO-A"), ("10:05", CNC1, 0.5, None)]


def events() -> list[Event]:
    raw: list[dict[str, Any]] = [
        {"id": f"kwh-{n}", "ts": at(t), "machine": CNC1, "stream": "energy", "kwh": v}
        for n, (t, v) in enumerate(READINGS)
    ]
    raw += [
        {
            "id": f"gas-{n}",
            "ts": at(t),
            "machine": ROBOT,
            "stream": "energy",
            "carrier": "towngas",
            "quantity": v,
            "unit": "MJ",
        }
        for n, (t, v) in enumerate(GAS)
    ]
    raw += [
        {
            "id": f"mat-{n}",
            "ts": at(t),
            "machine": machine,
            "stream": "material",
            "material": "steel",
            "qty": qty,
            "unit": "kg",
            **({"order": order} if order else {}),
        }
        for n, (t, machine, qty, order) in enumerate(MATERIAL)
    ]
    return [EVENT_ADAPTER.validate_python(e) for e in raw]


@pytest.fixture
def small(store: EventStore) -> EventStore:
    factory = parse_factory((DATA / "factory-small.yaml").read_text(encoding="utf-8"))
    store.apply_factory(factory, "small.yaml")
    return store


def hourly(store: EventStore) -> list[tuple[str, str, str, str, int]]:
    return [
        (e.machine.rsplit("/", 1)[1], e.carrier, e.unit, f"{e.hour.astimezone(HKT):%H:%M}", e.milli)
        for e in energy_totals(store, hourly=True)
        if e.hour is not None
    ]


def view_rows(store: EventStore) -> dict[str, list[Any]]:
    with store.engine.connect() as conn:
        return {
            table: sorted(tuple(r) for r in conn.execute(text(f"SELECT * FROM {table}")))
            for table in ("meter_intervals", "energy_hourly", "material_hourly")
        }


EXPECTED = [
    # 08:30–09:30, 1 kWh: half in each hour
    ("cnc-1", "electricity", "kWh", "08:00", 500),
    # 09:30–10:15 after a reset, 0.25 kWh by time: 30 of 45 minutes, then 15 (to the Wh) + the
    # 10:15–11:00 kWh, all in the 10:00 hour
    ("cnc-1", "electricity", "kWh", "09:00", 500 + 167),
    ("cnc-1", "electricity", "kWh", "10:00", 83 + 1000),
    ("robot-1", "towngas", "MJ", "08:00", 2000),
    ("robot-1", "towngas", "MJ", "09:00", 2000),
]


def test_energy_and_material_per_hour(small: EventStore) -> None:
    store = small
    store.append(events())
    assert hourly(store) == EXPECTED
    # the same rule as the carbon accounting's meter intervals: a backward step is a reset
    intervals, anomalies = meter_intervals([(at(t), to_milli(v)) for t, v in READINGS])
    (cnc1,) = [e for e in energy_totals(store, machines=[CNC1])]
    assert cnc1.milli == sum(i.milli for i in intervals) == 2250
    assert [a.kind for a in anomalies] == ["reset"]
    # a period reads the hours overlapping it
    (part,) = energy_by_machine(store, at("09:00"), at("11:00"), machines=[CNC1])
    assert part.milli == 667 + 1083
    assert [
        (m.machine, m.order, m.material, m.unit, m.milli) for m in material_by_order(store)
    ] == [
        (CNC1, None, "steel", "kg", 500),
        (CNC1, "WO-A", "steel", "kg", 3750),
    ]
    by_hour = material_by_order(store, hourly=True)
    assert [(m.order, f"{m.hour.astimezone(HKT):%H}", m.milli) for m in by_hour if m.hour] == [
        (None, "10", 500),
        ("WO-A", "09", 3750),
    ]


def test_late_readings_split_their_interval_and_rebuild_agrees(small: EventStore) -> None:
    store = small
    everything = events()
    late = [e for e in everything if e.id == "kwh-1"]
    store.append([e for e in everything if e.id != "kwh-1"])
    # without 09:30: one interval 08:30–10:15 after the reset, 0.25 kWh spread by time
    assert sum(row[4] for row in hourly(store) if row[0] == "cnc-1") == 250 + 1000
    store.append(late)  # a store-and-forward replay hours later
    assert hourly(store) == EXPECTED
    kept = view_rows(store)
    rebuild(store)
    assert view_rows(store) == kept


def test_arrival_order_and_batches_do_not_change_the_rows(small: EventStore) -> None:
    store = small
    shuffled = events()
    random.Random(7).shuffle(shuffled)
    for first in range(0, len(shuffled), 2):
        store.append(shuffled[first : first + 2])
    assert hourly(store) == EXPECTED
    kept = view_rows(store)
    rebuild(store)
    assert view_rows(store) == kept


def test_whole_hours_match_the_carbon_accountings_metered_energy(small: EventStore) -> None:
    from microfab.green.energy import (
        EnergyInputs,
        MeterSeries,
        OrderInfo,
        UnitCount,
        account_energy,
    )

    store = small
    store.append(events())
    for first, last in (("09:00", "11:00"), ("08:00", "10:00"), ("10:00", "12:00")):
        start, end = at(first), at(last)
        inputs = EnergyInputs(
            start=start,
            end=end,
            meters=[
                MeterSeries(
                    CNC1, "electricity", "kWh", "kt", False,
                    [(at(t), to_milli(v)) for t, v in READINGS],
                )
            ],
            spans={},
            counts=[UnitCount(CNC1, start, "WO-A", 10, 1, 0)],
            orders={"WO-A": OrderInfo("WO-A", "BRKT-1", 1.0, 10)},
        )  # fmt: skip
        (metered,) = account_energy(inputs).meters
        (kept,) = energy_totals(store, start, end, machines=[CNC1])
        assert kept.milli == metered.milli, (first, last)
