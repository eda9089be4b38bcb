"""Stock: item master and locations, the stock ledger and its read model, bad input, import."""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from microfab.cli import app
from microfab.connect.decode import decode_message
from microfab.connect.topics import encode, event_topic
from microfab.errors import FactoryFileError, InputError, LocatedFileError
from microfab.model.events import StockMove, event_from_dict
from microfab.model.factory import Factory
from microfab.model.factory_file import parse_factory
from microfab.model.materials import UnitError
from microfab.stock.inventory import expiring, fefo, item_stock
from microfab.stock.kanban import transfer_tasks
from microfab.stock.moves import check_moves, enter_move
from microfab.store import EventStore
from microfab.store.stock import ledger, lots, on_hand

DATA = Path(__file__).parent / "data"
MACHINE = "kt/stores/stock/desk/microfab"
T0 = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


def stock_factory() -> Factory:
    return parse_factory((DATA / "factory-stock.yaml").read_text(encoding="utf-8"))


def move(id_: str, hours: float, kind: str, **fields: object) -> StockMove:
    return StockMove.model_validate(
        {
            "id": id_,
            "ts": T0 + dt.timedelta(hours=hours),
            "machine": MACHINE,
            "kind": kind,
            "unit": "kg",
            **fields,
        }
    )


# ---------------------------------------------------------------------------- the factory model


def test_item_master_and_locations_are_read_from_the_factory_file() -> None:
    factory = stock_factory()
    rice = factory.item("RICE-JASMINE")
    assert rice.to_stock(2, "bag") == 50
    assert rice.to_stock(500, "g") == pytest.approx(0.5)
    assert factory.item("TRAY-1C").to_stock(3, "carton") == 72
    with pytest.raises(UnitError, match="'l' does not convert to RICE-JASMINE's stock unit kg"):
        rice.to_stock(1, "l")
    places = factory.stock_locations()
    assert list(places)[:4] == ["wh", "receiving", "zone-a", "bin-a1"]
    assert places["cold-1"].storage.value == "chilled"
    assert places["ls-1"].kanban[0].source == "bin-a1"


@pytest.mark.parametrize(
    ("old", "new", "where", "message"),
    [
        (
            "{item: RICE-JASMINE, min: 5, max: 20, source: bin-a1}",
            "{item: RICE-BASMATI, min: 5, max: 20, source: bin-a1}",
            "locations[1].kanban[0].item",
            "'RICE-BASMATI' is not an item of this factory",
        ),
        (
            "{item: RICE-JASMINE, min: 5, max: 20, source: bin-a1}",
            "{item: RICE-JASMINE, min: 5, max: 20, source: bin-z9}",
            "locations[1].kanban[0].source",
            "'bin-z9' is not a location id",
        ),
        (
            "{id: bin-a2, kind: bin}",
            "{id: bin-a1, kind: bin}",
            "locations[0].children[1].children[1].id",
            "location id 'bin-a1' is used twice",
        ),
        (
            "    unit: kg\n    units: {bag: 25}",
            "    unit: kgs\n    units: {bag: 25}",
            "items[0].unit",
            "'kgs' is not a unit pint knows",
        ),
        ("    line: line1", "    line: line9", "locations[1].line", "'line9' is not a line id"),
    ],
)
def test_bad_items_and_locations_are_located(old: str, new: str, where: str, message: str) -> None:
    text = (DATA / "factory-stock.yaml").read_text(encoding="utf-8")
    assert old in text
    bad = text.replace(old, new, 1)
    line = next(n for n, row in enumerate(bad.splitlines(), 1) if new.splitlines()[-1] in row)
    with pytest.raises(FactoryFileError) as caught:
        parse_factory(bad, "factory.yaml")
    problem = caught.value.problems[0]
    assert problem.startswith("factory.yaml:")
    assert f" {where}: " in problem and message in problem
    assert abs(int(problem.split(":")[1].split()[0]) - line) <= 1


# ---------------------------------------------------------------------------- events and MQTT


def test_stock_events_travel_over_the_mqtt_contract() -> None:
    ev = move(
        "s-1",
        0,
        "transfer",
        item="RICE-JASMINE",
        lot="R1",
        qty=5,
        from_location="bin-a1",
        to_location="ls-1",
        by="agv-1",
    )
    topic = event_topic(ev)
    assert topic == f"microfab/v1/{MACHINE}/stock"
    decoded = decode_message(topic, encode([ev]), received_at=T0)
    assert decoded.dead == [] and decoded.events == [ev]
    bad = decode_message(
        topic,
        b'{"id":"s-2","ts":"2026-12-01T00:00:00Z","kind":"transfer","item":"X",'
        b'"qty":1,"unit":"kg","from_location":"a","to_location":"a"}',
        received_at=T0,
    )
    assert bad.events == []
    assert "a transfer needs two different locations" in bad.dead[0].reason


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"kind": "receipt", "qty": 1}, "a receipt needs 'to_location'"),
        ({"kind": "issue", "qty": 1, "to_location": "a"}, "an issue needs 'from_location'"),
        ({"kind": "receipt", "qty": -1, "to_location": "a"}, "must be > 0"),
        ({"kind": "adjust", "qty": 0, "to_location": "a"}, "non-zero"),
        ({"kind": "quarantine", "qty": 0}, "names the 'lot'"),
    ],
)
def test_stock_event_shape_is_checked(fields: dict[str, object], message: str) -> None:
    data = {
        "id": "x",
        "ts": "2026-12-01T00:00:00Z",
        "machine": MACHINE,
        "stream": "stock",
        "item": "RICE",
        "unit": "kg",
        **fields,
    }
    with pytest.raises(ValueError, match=message):
        event_from_dict(data)


# ---------------------------------------------------------------------------- the read model


def test_late_movements_and_counts_keep_every_balance(store: EventStore) -> None:
    store.append(
        [
            move("a", 1, "receipt", item="RICE", lot="L1", qty=10, to_location="wh"),
            move(
                "b",
                3,
                "transfer",
                item="RICE",
                lot="L1",
                qty=4,
                from_location="wh",
                to_location="ls",
            ),
            move("c", 5, "count", item="RICE", lot="L1", qty=5, to_location="wh"),
        ]
    )
    # a late issue before the count: the count still sets 5; the balances before it move
    store.append([move("d", 2, "issue", item="RICE", lot="L1", qty=1, from_location="wh")])
    assert (
        store.append(
            [move("d", 2, "issue", item="RICE", lot="L1", qty=1, from_location="wh")]
        ).duplicates
        == 1
    )
    now = {(r.location): r.qty for r in on_hand(store)}
    assert now == {"wh": 5.0, "ls": 4.0}
    at_4 = {(r.location): r.qty for r in on_hand(store, at=T0 + dt.timedelta(hours=4))}
    assert at_4 == {"wh": 5.0, "ls": 4.0}  # 10 − 1 − 4
    at_2 = {(r.location): r.qty for r in on_hand(store, at=T0 + dt.timedelta(hours=2))}
    assert at_2 == {"wh": 9.0}
    assert on_hand(store, at=T0) == []
    count_leg = next(leg for leg in ledger(store, location="wh") if leg.kind == "count")
    assert (count_leg.delta, count_leg.balance) == (0.0, 5.0)


KINDS = st.sampled_from(["receipt", "issue", "scrap", "transfer", "adjust"])


@st.composite
def ledgers(draw: st.DrawFn) -> list[StockMove]:
    n = draw(st.integers(min_value=1, max_value=25))
    events = []
    for i in range(n):
        kind = draw(KINDS)
        hours = draw(st.integers(min_value=0, max_value=48))
        lot = draw(st.sampled_from(["L1", "L2"]))
        item = draw(st.sampled_from(["A", "B"]))
        places = draw(st.permutations(["wh", "ls", "cold"]))
        qty = draw(st.integers(min_value=1, max_value=10_000)) / 1000
        fields: dict[str, object] = {"item": item, "lot": lot, "qty": qty}
        if kind == "receipt":
            fields["to_location"] = places[0]
        elif kind in ("issue", "scrap"):
            fields["from_location"] = places[0]
        elif kind == "transfer":
            fields |= {"from_location": places[0], "to_location": places[1]}
        else:
            fields |= {"to_location": places[0], "qty": qty * draw(st.sampled_from([1, -1]))}
        events.append(move(f"e{i:03d}", hours, kind, **fields))
    return events


def _expected(events: list[StockMove], at: dt.datetime | None) -> dict[tuple[str, str, str], int]:
    """receipts − issues − scrap ± transfers ± adjustments, per item × lot × location (micro)."""
    sums: dict[tuple[str, str, str], int] = defaultdict(int)
    for ev in events:
        if at is not None and ev.ts > at:
            continue
        qty = round(ev.qty * 1_000_000)
        if ev.to_location is not None:
            sums[(ev.item, ev.lot or "", ev.to_location)] += qty
        if ev.from_location is not None:
            sums[(ev.item, ev.lot or "", ev.from_location)] -= qty
    return {k: v for k, v in sums.items() if v}


_examples = iter(range(10**6))


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(events=ledgers(), order=st.randoms(use_true_random=False), data=st.data())
def test_on_hand_is_the_sum_of_movements_in_any_order(
    store: EventStore, events: list[StockMove], order: object, data: st.DataObject
) -> None:
    tag = f"x{next(_examples)}-"  # each example its own items in the one store
    events = [ev.model_copy(update={"id": tag + ev.id, "item": tag + ev.item}) for ev in events]
    shuffled = list(events)
    order.shuffle(shuffled)  # type: ignore[attr-defined]
    cut = data.draw(st.integers(min_value=0, max_value=len(shuffled)))
    store.append(shuffled[:cut])
    store.append(shuffled[cut:])
    store.append(shuffled[: cut // 2])  # repeated ids are ignored
    mine = [r for r in on_hand(store) if r.item.startswith(tag)]
    assert {(r.item, r.lot or "", r.location): round(r.qty * 1e6) for r in mine} == _expected(
        events, None
    )
    hours = data.draw(st.integers(min_value=0, max_value=48))
    at = T0 + dt.timedelta(hours=hours)
    then = [r for r in on_hand(store, at=at) if r.item.startswith(tag)]
    assert {(r.item, r.lot or "", r.location): round(r.qty * 1e6) for r in then} == _expected(
        events, at
    )


# ---------------------------------------------------------------------------- bad input


def _apply(store: EventStore) -> Factory:
    factory = stock_factory()
    store.apply_factory(factory, "factory-stock.yaml")
    return factory


def _row(**values: str) -> dict[str, str | None]:
    return {"ts": "2026-12-01T08:00:00+08:00", **values}


def test_bad_movements_are_refused_with_the_field_and_nothing_stored(store: EventStore) -> None:
    factory = _apply(store)
    rows = [
        (
            2,
            _row(
                id="r1",
                kind="receipt",
                item="RICE-JASMINE",
                lot="R1",
                qty="2",
                unit="bag",
                to="bin-a1",
                expiry="2026-12-03",
            ),
        ),
        (3, _row(id="r2", kind="receipt", item="CHICKEN-THIGH", lot="C1", qty="8", to="cold-1")),
        (4, _row(id="q1", kind="quarantine", item="CHICKEN-THIGH", lot="C1")),
        (5, _row(id="x1", kind="receipt", item="NOPE", lot="N", qty="1", to="bin-a1")),
        (6, _row(id="x2", kind="receipt", item="RICE-JASMINE", lot="R1", qty="1", to="bin-z9")),
        (
            7,
            _row(
                id="x3",
                kind="receipt",
                item="RICE-JASMINE",
                lot="R1",
                qty="1",
                unit="pcs",
                to="bin-a1",
            ),
        ),
        (8, _row(id="x4", kind="issue", item="RICE-JASMINE", lot="R1", qty="51", from_="")),
        (
            9,
            _row(
                id="x5", kind="issue", item="RICE-JASMINE", lot="R1", qty="51", **{"from": "bin-a1"}
            ),
        ),
        (
            10,
            _row(
                id="x6", kind="issue", item="CHICKEN-THIGH", lot="C1", qty="1", **{"from": "cold-1"}
            ),
        ),
        (11, _row(id="x7", kind="receipt", item="RICE-JASMINE", qty="1", to="bin-a1")),
        (
            12,
            _row(
                id="ok", kind="issue", item="RICE-JASMINE", lot="R1", qty="50", **{"from": "bin-a1"}
            ),
        ),
    ]
    checked = check_moves(store, factory, rows)
    found = {p.row: (p.column, p.message) for p in checked.problems}
    assert found[5] == ("item", "'NOPE' is not an item of the factory model")
    assert found[6] == ("to", "'bin-z9' is not a location of the factory model")
    assert found[7][0] == "unit" and "does not convert" in found[7][1]
    assert found[8][0] in ("from", "kind") and "'from'" in found[8][1]
    assert found[9][0] == "qty" and "only 50 kg" in found[9][1]
    assert found[10] == ("lot", "lot C1 of CHICKEN-THIGH is quarantined")
    assert found[11] == ("lot", "RICE-JASMINE is lot-tracked: every movement names a lot")
    assert [ev.id for ev in checked.events] == ["r1", "r2", "q1", "ok"]
    store.append(checked.events)
    assert {(r.item, r.location): r.qty for r in on_hand(store)} == {("CHICKEN-THIGH", "cold-1"): 8}
    # the rice lot expires at the start of 3 December (site time): no issue from it after that
    store.append(
        [move("r3", 1, "receipt", item="RICE-JASMINE", lot="R1", qty=5, to_location="bin-a1")]
    )
    late = check_moves(
        store,
        factory,
        [
            (
                2,
                _row(
                    id="late",
                    kind="issue",
                    item="RICE-JASMINE",
                    lot="R1",
                    qty="1",
                    ts="2026-12-05T08:00:00+08:00",
                    **{"from": "bin-a1"},
                ),
            )
        ],
    )
    assert late.problems[0].column == "lot" and "expired 2026-12-02T16:00:00.000Z" in (
        late.problems[0].message
    )
    held = [lot for lot in lots(store) if lot.held]
    assert [(lot.item, lot.lot) for lot in held] == [("CHICKEN-THIGH", "C1")]


def test_quarantine_counts_out_of_available_and_fefo_skips_it(store: EventStore) -> None:
    factory = _apply(store)
    for values in (
        {
            "id": "a",
            "kind": "receipt",
            "item": "RICE-JASMINE",
            "lot": "R-LATE",
            "qty": "40",
            "to": "bin-a1",
            "expiry": "2027-06-01",
        },
        {
            "id": "b",
            "kind": "receipt",
            "item": "RICE-JASMINE",
            "lot": "R-SOON",
            "qty": "30",
            "to": "bin-a2",
            "expiry": "2026-12-10",
        },
        {
            "id": "c",
            "kind": "receipt",
            "item": "RICE-JASMINE",
            "lot": "R-HELD",
            "qty": "5",
            "to": "bin-a1",
            "expiry": "2026-12-05",
        },
        {"id": "d", "kind": "quarantine", "item": "RICE-JASMINE", "lot": "R-HELD"},
    ):
        enter_move(store, factory, _row(**values))
    at = dt.datetime(2026, 12, 2, tzinfo=dt.UTC)
    picks, short = fefo(store, factory, "RICE-JASMINE", 50, at=at)
    assert [(p.lot, p.location, p.qty) for p in picks] == [
        ("R-SOON", "bin-a2", 30),
        ("R-LATE", "bin-a1", 20),
    ]
    assert short == 0
    rice = next(s for s in item_stock(store, factory) if s.item == "RICE-JASMINE")
    assert (rice.on_hand, rice.quarantine, rice.available) == (75, 5, 70)
    soon = expiring(store, at=at, days=10)
    assert [(e.lot, e.days_left) for e in soon] == [("R-HELD", 2.67), ("R-SOON", 7.67)]
    # the line-side buffer is empty: the kanban asks for max (20 kg) from bin-a1, FEFO
    tasks = transfer_tasks(store, factory, at=at)
    assert [(t.item, t.source, t.location, t.qty) for t in tasks] == [
        ("RICE-JASMINE", "bin-a1", "ls-1", 20)
    ]
    assert [(p.lot, p.qty) for p in tasks[0].picks] == [("R-LATE", 20)]


# ---------------------------------------------------------------------------- the CLI


def test_stock_import_stores_good_rows_and_locates_bad_ones(db_url: str, tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"MICROFAB_DB": db_url}
    assert (
        runner.invoke(
            app, ["factory", "apply", str(DATA / "factory-stock.yaml")], env=env
        ).exit_code
        == 0
    )
    moves = tmp_path / "moves.csv"
    moves.write_text(
        "id,ts,kind,item,lot,qty,unit,from,to,ref\n"
        "r-1,2026-12-01T08:00:00+08:00,receipt,RICE-JASMINE,R1,2,bag,,bin-a1,PO-8\n"
        "r-1,2026-12-01T08:00:00+08:00,receipt,RICE-JASMINE,R1,2,bag,,bin-a1,PO-8\n"
        "r-2,2026-12-01T08:05:00+08:00,receipt,RICE-BASMATI,B1,10,kg,,bin-a1,PO-8\n"
        "r-3,2026-12-01T08:10:00+08:00,receipt,RICE-JASMINE,R2,10,l,,bin-a1,PO-8\n"
        "t-1,2026-12-01T09:00:00+08:00,transfer,RICE-JASMINE,R1,10,kg,bin-a1,bin-z9,\n"
        "i-1,2026-12-01T10:00:00+08:00,issue,RICE-JASMINE,R1,60,kg,bin-a1,,WO-1\n"
        "i-2,2026-12-01T10:05:00+08:00,issue,RICE-JASMINE,R1,20000,g,bin-a1,,WO-1\n"
        "c-1,2026-12-01T11:00:00+08:00,count,TRAY-1C,,2,carton,,ls-1,\n",
        encoding="utf-8",
    )
    first = runner.invoke(app, ["stock", "import", str(moves), "--json"], env=env)
    # main() prints each located problem on stderr and exits 2 (the runner hands back the error)
    assert isinstance(first.exception, LocatedFileError) and first.exception.exit_code == 2
    assert first.exception.problems == json.loads(first.stdout)["problems"]
    assert json.loads(first.stdout) == {
        "stored": 3,
        "ignored": 1,
        "problems": [
            f"{moves}:4:4 item: 'RICE-BASMATI' is not an item of the factory model",
            f"{moves}:5:7 unit: unit 'l' does not convert to RICE-JASMINE's stock unit kg",
            f"{moves}:6:9 to: 'bin-z9' is not a location of the factory model",
            f"{moves}:7:6 qty: only 50 kg of RICE-JASMINE lot R1 at bin-a1; taking 60 would "
            "leave it negative",
        ],
    }
    again = runner.invoke(app, ["stock", "import", str(moves), "--json"], env=env)
    assert json.loads(again.stdout)["stored"] == 0 and json.loads(again.stdout)["ignored"] == 4
    shown = runner.invoke(app, ["stock", "on-hand", "--json"], env=env)
    assert json.loads(shown.stdout) == [
        {"item": "RICE-JASMINE", "lot": "R1", "location": "bin-a1", "qty": 30.0, "unit": "kg"},
        {"item": "TRAY-1C", "lot": None, "location": "ls-1", "qty": 48.0, "unit": "pcs"},
    ]
    before = runner.invoke(
        app,
        ["stock", "on-hand", "--json", "--at", "2026-12-01T09:30", "--item", "RICE-JASMINE"],
        env=env,
    )
    assert json.loads(before.stdout)[0]["qty"] == 50.0
    exported = runner.invoke(app, ["stock", "export"], env=env)
    assert exported.stdout.splitlines()[0].startswith("id,ts,kind,item,lot,qty,unit,from,to,ref")
    back = tmp_path / "back.csv"
    back.write_text(exported.stdout, encoding="utf-8")
    replay = runner.invoke(app, ["stock", "import", str(back), "--json"], env=env)
    assert replay.exit_code == 0 and json.loads(replay.stdout) == {
        "stored": 0,
        "ignored": 3,
        "problems": [],
    }
    issued = runner.invoke(
        app, ["stock", "issue", "RICE-JASMINE", "31", "--lot", "R1", "--from", "bin-a1"], env=env
    )
    assert isinstance(issued.exception, InputError) and issued.exception.exit_code == 2
    assert "qty: only 30 kg of RICE-JASMINE lot R1 at bin-a1" in issued.exception.message


def test_backflush_issues_counts_times_bom_once(store: EventStore) -> None:
    from microfab.model.events import OrderEvent, PartCount
    from microfab.stock.backflush import backflush

    factory = _apply(store)
    enter_move(
        store,
        factory,
        _row(id="t1", kind="receipt", item="TRAY-1C", qty="2", unit="carton", to="ls-1"),
    )
    cnc = "kt/plant/line1/machining/cnc-1"
    store.append(
        [
            OrderEvent(
                id="o-1",
                ts=T0,
                machine=cnc,
                order="WO-9",
                event="released",
                product="BRKT-1",
                quantity=100,
            ),
            PartCount(
                id="c-1",
                ts=T0 + dt.timedelta(hours=1),
                machine=cnc,
                good=30,
                scrap=2,
                order="WO-9",
                operation=10,
            ),
            PartCount(
                id="c-2",
                ts=T0 + dt.timedelta(hours=2),
                machine="kt/plant/line1/machining/robot-1",
                good=30,
                order="WO-9",
                operation=20,
            ),
        ]
    )
    first = backflush(store, factory)
    assert (first.stored, first.problems) == (1, [])
    assert backflush(store, factory).to_json() == {"stored": 0, "ignored": 1, "problems": []}
    legs = ledger(store, item="TRAY-1C", kinds=["backflush"])
    assert [(leg.event_id, leg.delta, leg.order, leg.location) for leg in legs] == [
        ("bf-c-1-TRAY-1C", -32.0, "WO-9", "ls-1")
    ]
    tray = next(s for s in item_stock(store, factory) if s.item == "TRAY-1C")
    assert (tray.on_hand, tray.reserved) == (16.0, 68.0)  # 100 trays needed, 32 issued
