"""Materials-aware planning: an order waits for its materials; a late delivery moves it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from microfab.model.factory_file import parse_factory
from microfab.model.orders import WorkOrderRequest
from microfab.plan.live import open_orders, plan_open_orders
from microfab.stock.material_plan import OrderNeed, plan_materials
from microfab.stock.moves import enter_move
from microfab.stock.reorder import read_purchase_orders
from microfab.store import EventStore
from microfab.track.orders import create_order, list_orders

DATA = Path(__file__).parent / "data"
HK = dt.timezone(dt.timedelta(hours=8))
START = dt.datetime(2026, 12, 7, 8, 0, tzinfo=HK)  # Monday 08:00


def _plan(store: EventStore, tmp_path: Path, due: str) -> tuple[list[str], dt.datetime]:
    factory = store.factory()[1]  # type: ignore[index]
    po_file = tmp_path / f"po-{due[:10]}.csv"
    po_file.write_text(
        f"po,item,qty,unit,due,supplier\nPO-9,RICE-JASMINE,1,bag,{due},golden-grain\n",
        encoding="utf-8",
    )
    views = list_orders(store, factory, now=START)
    needs = [
        OrderNeed(o.order, o.product, o.quantity, o.priority, o.due) for o in open_orders(views)
    ]
    check = plan_materials(
        store, factory, needs, now=START, purchase_orders=read_purchase_orders(po_file, factory)
    )
    planned = plan_open_orders(
        factory, views, start=START, time_limit=5, workers=1, materials=check.ready
    )
    first = min(
        dt.datetime.fromisoformat(op["start"])
        for op in planned.document["operations"]
        if op["order"] == "WO-9"
    )
    return [s.text(HK) for s in check.shortages], first


def test_a_late_delivery_moves_the_operation_and_names_the_shortage(
    store: EventStore, tmp_path: Path
) -> None:
    factory = parse_factory((DATA / "factory-stock.yaml").read_text(encoding="utf-8"))
    store.apply_factory(factory, "factory-stock.yaml")
    for values in (
        {"id": "r1", "kind": "receipt", "item": "RICE-JASMINE", "lot": "R1", "qty": "7.5",
         "to": "bin-a1"},
        {"id": "r2", "kind": "receipt", "item": "TRAY-1C", "qty": "200", "to": "bin-a1"},
    ):  # fmt: skip
        enter_move(store, factory, {"ts": "2026-12-07T07:00:00+08:00", **values})
    request = WorkOrderRequest(order="WO-9", product="BRKT-1", quantity=100)  # 20 kg of rice
    create_order(store, factory, request, release=True)

    on_time, start_on_time = _plan(store, tmp_path, "2026-12-08T09:00")
    assert on_time == ["RICE-JASMINE short 12.5 kg until Tue 09:00"]
    # the delivery at 09:00, then 15 minutes to the line-side buffer of line1
    assert start_on_time == dt.datetime(2026, 12, 8, 9, 15, tzinfo=HK)

    late, start_late = _plan(store, tmp_path, "2026-12-09T14:00")
    assert late == ["RICE-JASMINE short 12.5 kg until Wed 14:00"]
    assert start_late == dt.datetime(2026, 12, 9, 14, 15, tzinfo=HK)

    # with the rice on hand the order need not wait
    enter_move(store, factory, {"id": "r3", "ts": "2026-12-07T07:30:00+08:00",
                                "kind": "receipt", "item": "RICE-JASMINE", "lot": "R2",
                                "qty": "12.5", "to": "bin-a1"})  # fmt: skip
    none, start_now = _plan(store, tmp_path, "2026-12-09T14:00")
    assert none == [] and start_now == START


def test_plan_check_materials_finds_steps_that_start_before_their_materials(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path}/store.db"  # a CLI test: the store is not its subject
    import json

    from typer.testing import CliRunner

    from microfab.cli import app

    runner = CliRunner()
    env = {"MICROFAB_DB": db_url}
    plan = str(tmp_path / "plan.json")
    on_time = tmp_path / "po.csv"
    on_time.write_text(
        "po,item,qty,unit,due\nPO-9,RICE-JASMINE,1,bag,2026-12-08T09:00\n", encoding="utf-8"
    )
    late = tmp_path / "po-late.csv"
    late.write_text(
        "po,item,qty,unit,due\nPO-9,RICE-JASMINE,1,bag,2026-12-09T14:00\n", encoding="utf-8"
    )
    for args in (
        ["factory", "apply", str(DATA / "factory-stock.yaml")],
        ["stock", "receive", "RICE-JASMINE", "7.5", "--lot", "R1", "--to", "bin-a1",
         "--ts", "2026-12-07T07:00"],
        ["stock", "receive", "TRAY-1C", "200", "--to", "bin-a1", "--ts", "2026-12-07T07:00"],
        ["orders", "create", "BRKT-1", "-q", "100", "--id", "WO-9", "--release"],
        ["plan", "schedule", "--start", "2026-12-07T08:00", "--purchase-orders", str(on_time),
         "--time-limit", "2", "--workers", "1", "--out", plan],
    ):  # fmt: skip
        result = runner.invoke(app, args, env=env)
        assert result.exit_code == 0, result.output
    assert "shortage: WO-9: RICE-JASMINE short 12.5 kg until Tue 09:00" in result.stderr
    good = runner.invoke(
        app, ["plan", "check-materials", "--plan", plan, "--purchase-orders", str(on_time),
              "--json"], env=env,
    )  # fmt: skip
    assert good.exit_code == 0 and json.loads(good.stdout)["feasible"] is True
    # the delivery slips a day: the plan made for Tuesday no longer holds
    bad = runner.invoke(
        app, ["plan", "check-materials", "--plan", plan, "--purchase-orders", str(late),
              "--json"], env=env,
    )  # fmt: skip
    assert bad.exit_code == 1
    found = json.loads(bad.stdout)
    assert found["shortages"][0]["message"] == "RICE-JASMINE short 12.5 kg until Wed 14:00"
    assert len(found["violations"]) == 2
    # plan check --plan checks the materials too, beside the maintenance windows
    checked = runner.invoke(
        app, ["plan", "check", "--plan", plan, "--purchase-orders", str(late), "--json"], env=env
    )
    assert checked.exit_code == 1
    answer = json.loads(checked.stdout)
    assert answer["feasible"] is False
    assert [v["kind"] for v in answer["violations"]] == ["materials", "materials"]
    assert [v["message"] for v in answer["violations"]] == found["violations"]
    assert answer["shortages"] == found["shortages"]
    fine = runner.invoke(
        app, ["plan", "check", "--plan", plan, "--purchase-orders", str(on_time)], env=env
    )
    assert fine.exit_code == 0
    assert "every step after its materials are at the line" in fine.stdout
    assert (
        found["violations"][0]
        == "WO-9 Machine: starts 2026-12-08T09:15:00+08:00 before its materials are at the line (2026-12-09T14:15:00+08:00)"
    )
