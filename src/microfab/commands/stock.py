"""``microfab stock …``: receive, issue, move, count, adjust; on hand, ledger, expiry, reorder."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from microfab.commands.common import DbOption, JsonOption, out, print_json, stored_factory
from microfab.errors import InputError
from microfab.model.factory import Factory
from microfab.model.timerange import parse_time

stock_app = typer.Typer(
    help="Materials and inventory 物料及庫存: stock by lot and location, replenishment.",
    no_args_is_help=True,
)

ItemArg = Annotated[str, typer.Argument(help="Item code (SKU) of the item master")]
QtyArg = Annotated[float, typer.Argument(help="Quantity, in --unit (default the stock unit)")]
UnitOpt = Annotated[
    str | None, typer.Option("--unit", help="Unit of the quantity: kg, g, carton … \\[stock unit]")
]
LotOpt = Annotated[str | None, typer.Option("--lot", help="Lot (batch) number")]
IdOpt = Annotated[
    str | None, typer.Option("--id", help="Event id (idempotency key) \\[default: a new one]")
]
TsOpt = Annotated[
    str | None,
    typer.Option("--ts", help="When it happened (site time or with an offset) \\[default: now]"),
]
ByOpt = Annotated[str | None, typer.Option("--by", help="Who: an operator, AGV or robot id")]
RefOpt = Annotated[str | None, typer.Option("--ref", help="Purchase order, delivery note, task")]
AtOpt = Annotated[
    str | None,
    typer.Option("--at", help="As at this time (site time or with an offset) \\[default: now]"),
]
PoOpt = Annotated[
    Path | None,
    typer.Option("--purchase-orders", help="Open purchase orders CSV: po,item,qty,unit,due"),
]


def _time(factory: Factory, text: str | None, option: str) -> dt.datetime | None:
    return parse_time(text, factory.sites[0].zone, field=option) if text else None


def _enter(db: str | None, values: dict[str, str | None], as_json: bool) -> None:
    from microfab.model.events import event_to_dict
    from microfab.stock.moves import enter_move
    from microfab.store import open_store

    with open_store(db) as store:
        factory = stored_factory(store)
        ts = _time(factory, values.get("ts"), "--ts")
        values = {**values, "ts": None if ts is None else ts.isoformat()}
        values["id"] = values.get("id") or f"stock-{uuid.uuid4().hex[:16]}"
        event, stored = enter_move(store, factory, values)
    if as_json:
        print_json({"stored": stored, "event": None if event is None else event_to_dict(event)})
        return
    if event is None or not stored:
        out.print(f"{values['id']} is already stored; nothing stored", highlight=False)
        return
    where = " → ".join(p for p in (event.from_location, event.to_location) if p)
    amount = "" if event.kind.value in ("quarantine", "release") else f" {event.qty:g} {event.unit}"
    out.print(
        f"{event.kind.value} {event.id}: {event.item}"
        + (f" lot {event.lot}" if event.lot else "")
        + f"{amount} {where}".rstrip(),
        highlight=False,
    )


@stock_app.command("receive")
def receive(
    item: ItemArg,
    qty: QtyArg,
    to: Annotated[str, typer.Option("--to", help="Location received into")],
    unit: UnitOpt = None,
    lot: LotOpt = None,
    expiry: Annotated[
        str | None, typer.Option("--expiry", help="Lot expiry \\[default: shelf life]")
    ] = None,
    supplier: Annotated[str | None, typer.Option("--supplier")] = None,
    cost: Annotated[float | None, typer.Option("--cost", help="HK$ per stock unit")] = None,
    order: Annotated[
        str | None, typer.Option("--order", help="Work order it was made by (production)")
    ] = None,
    ref: RefOpt = None,
    event_id: IdOpt = None,
    ts: TsOpt = None,
    by: ByOpt = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Receive stock from a supplier (or from production) into a location."""
    _enter(
        db,
        {
            "id": event_id,
            "ts": ts,
            "kind": "receipt",
            "item": item,
            "lot": lot,
            "qty": str(qty),
            "unit": unit,
            "to": to,
            "ref": ref,
            "supplier": supplier,
            "expiry": expiry,
            "cost_hkd": None if cost is None else str(cost),
            "order": order,
            "by": by,
        },
        as_json,
    )


@stock_app.command("issue")
def issue(
    item: ItemArg,
    qty: QtyArg,
    source: Annotated[str, typer.Option("--from", help="Location issued from")],
    order: Annotated[str | None, typer.Option("--order", help="Work order it goes to")] = None,
    unit: UnitOpt = None,
    lot: LotOpt = None,
    scrap: Annotated[bool, typer.Option("--scrap", help="Scrap it instead of issuing")] = False,
    reason: Annotated[str | None, typer.Option("--reason")] = None,
    ref: RefOpt = None,
    event_id: IdOpt = None,
    ts: TsOpt = None,
    by: ByOpt = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Issue stock to a work order (or scrap it with --scrap)."""
    _enter(
        db,
        {
            "id": event_id,
            "ts": ts,
            "kind": "scrap" if scrap else "issue",
            "item": item,
            "lot": lot,
            "qty": str(qty),
            "unit": unit,
            "from": source,
            "order": order,
            "reason": reason,
            "ref": ref,
            "by": by,
        },
        as_json,
    )


@stock_app.command("move")
def move(
    item: ItemArg,
    qty: QtyArg,
    source: Annotated[str, typer.Option("--from", help="Location taken from")],
    to: Annotated[str, typer.Option("--to", help="Location put to")],
    unit: UnitOpt = None,
    lot: LotOpt = None,
    ref: RefOpt = None,
    event_id: IdOpt = None,
    ts: TsOpt = None,
    by: ByOpt = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Transfer stock between locations (by an operator, AGV or robot: --by)."""
    _enter(
        db,
        {
            "id": event_id,
            "ts": ts,
            "kind": "transfer",
            "item": item,
            "lot": lot,
            "qty": str(qty),
            "unit": unit,
            "from": source,
            "to": to,
            "ref": ref,
            "by": by,
        },
        as_json,
    )


@stock_app.command("count")
def count(
    item: ItemArg,
    qty: QtyArg,
    at_location: Annotated[str, typer.Option("--location", help="Location counted")],
    unit: UnitOpt = None,
    lot: LotOpt = None,
    reason: Annotated[str | None, typer.Option("--reason")] = "cycle-count",
    event_id: IdOpt = None,
    ts: TsOpt = None,
    by: ByOpt = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Record a cycle count: the counted quantity becomes the on hand (audited in the ledger)."""
    _enter(
        db,
        {
            "id": event_id,
            "ts": ts,
            "kind": "count",
            "item": item,
            "lot": lot,
            "qty": str(qty),
            "unit": unit,
            "to": at_location,
            "reason": reason,
            "by": by,
        },
        as_json,
    )


@stock_app.command("adjust")
def adjust(
    item: ItemArg,
    qty: Annotated[float, typer.Option("--qty", help="Signed quantity: -2 takes two off")],
    at_location: Annotated[str, typer.Option("--location", help="Location adjusted")],
    reason: Annotated[str, typer.Option("--reason", help="Why (audited)")],
    unit: UnitOpt = None,
    lot: LotOpt = None,
    event_id: IdOpt = None,
    ts: TsOpt = None,
    by: ByOpt = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Adjust on hand by a signed quantity, with a reason."""
    _enter(
        db,
        {
            "id": event_id,
            "ts": ts,
            "kind": "adjust",
            "item": item,
            "lot": lot,
            "qty": str(qty),
            "unit": unit,
            "to": at_location,
            "reason": reason,
            "by": by,
        },
        as_json,
    )


@stock_app.command("quarantine")
def quarantine(
    item: ItemArg,
    lot: Annotated[str, typer.Option("--lot", help="Lot to hold")],
    reason: Annotated[str | None, typer.Option("--reason")] = None,
    release: Annotated[bool, typer.Option("--release", help="Free the lot instead")] = False,
    event_id: IdOpt = None,
    ts: TsOpt = None,
    by: ByOpt = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Hold a lot in quarantine (nothing may be issued from it), or --release it."""
    _enter(
        db,
        {
            "id": event_id,
            "ts": ts,
            "kind": "release" if release else "quarantine",
            "item": item,
            "lot": lot,
            "reason": reason,
            "by": by,
        },
        as_json,
    )


@stock_app.command("on-hand")
def on_hand_command(
    at: AtOpt = None,
    item: Annotated[str | None, typer.Option("--item")] = None,
    location: Annotated[str | None, typer.Option("--location")] = None,
    by_item: Annotated[
        bool, typer.Option("--by-item", help="Per item: on hand, quarantine, reserved, available")
    ] = False,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """On hand by item × lot × location (now, or --at a time); zero rows left out."""
    from microfab.stock.inventory import item_stock, on_hand_json
    from microfab.store import open_store
    from microfab.store.stock import on_hand

    with open_store(db) as store:
        factory = stored_factory(store)
        when = _time(factory, at, "--at")
        if by_item:
            figures = [s.to_json() for s in item_stock(store, factory, at=when)]
            if item is not None:
                figures = [f for f in figures if f["item"] == item]
        else:
            rows = on_hand_json(on_hand(store, at=when, item=item, location=location))
    if by_item:
        if as_json:
            print_json(figures)
            return
        table = Table(title="Stock by item 庫存 (stock units)")
        for name in ("item", "on_hand", "quarantine", "reserved", "available", "unit"):
            table.add_column(name, justify="right" if name not in ("item", "unit") else "left")
        for f in figures:
            table.add_row(
                *(str(f[k]) for k in ("item", "on_hand", "quarantine", "reserved", "available")),
                str(f["unit"]),
            )
        out.print(table)
        return
    if as_json:
        print_json(rows)
        return
    table = Table(title="On hand 現有庫存" + (f" at {at}" if at else ""))
    for name in ("item", "lot", "location", "qty", "unit"):
        table.add_column(name, justify="right" if name == "qty" else "left")
    for r in rows:
        table.add_row(
            str(r["item"]),
            str(r["lot"] or "—"),
            str(r["location"]),
            f"{r['qty']:g}",
            str(r["unit"]),
        )
    out.print(table)


@stock_app.command("ledger")
def ledger_command(
    item: Annotated[str | None, typer.Option("--item")] = None,
    lot: Annotated[str | None, typer.Option("--lot")] = None,
    location: Annotated[str | None, typer.Option("--location")] = None,
    order: Annotated[str | None, typer.Option("--order")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1)] = 200,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """The stock ledger: every movement leg with the balance after it."""
    from microfab.model.events import format_ts
    from microfab.store import open_store
    from microfab.store.stock import ledger

    with open_store(db) as store:
        legs = ledger(store, item=item, lot=lot, location=location, order=order, limit=limit)
    rows = [
        {
            "ts": format_ts(leg.ts),
            "id": leg.event_id,
            "kind": leg.kind,
            "item": leg.item,
            "lot": leg.lot,
            "location": leg.location,
            "qty": leg.delta,
            "balance": leg.balance,
            "order": leg.order,
            "ref": leg.ref,
        }
        for leg in legs
    ]
    if as_json:
        print_json(rows)
        return
    table = Table(title="Stock ledger 庫存分類賬")
    for name in ("ts", "id", "kind", "item", "lot", "location", "qty", "balance", "order", "ref"):
        table.add_column(name, justify="right" if name in ("qty", "balance") else "left")
    for r in rows:
        table.add_row(
            *(
                "—" if r[k] is None else f"{r[k]:g}" if isinstance(r[k], float) else str(r[k])
                for k in r
            )
        )
    out.print(table)


@stock_app.command("expiring")
def expiring_command(
    days: Annotated[float, typer.Option("--days", help="Horizon in days")] = 7.0,
    at: AtOpt = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Lots with stock that expire within --days (expired ones first)."""
    from microfab.stock.inventory import expiring
    from microfab.store import open_store

    with open_store(db) as store:
        factory = stored_factory(store)
        when = _time(factory, at, "--at") or dt.datetime.now(dt.UTC)
        found = [e.to_json() for e in expiring(store, at=when, days=days)]
    if as_json:
        print_json(found)
        return
    table = Table(title=f"Expiring within {days:g} days 即將過期")
    names = ("item", "lot", "expiry", "days_left", "qty", "unit", "locations")
    for name in names:
        table.add_column(name)
    for e in found:
        cells = [e[k] for k in names]
        table.add_row(*(", ".join(c) if isinstance(c, list) else str(c) for c in cells))
    out.print(table)


def _reorder_inputs(
    db: str | None, at: str | None, po_file: Path | None
) -> tuple[dt.datetime, list[dict[str, object]], list[dict[str, object]]]:
    from microfab.stock.reorder import purchase_suggestions, read_purchase_orders, reorder_report
    from microfab.store import open_store

    with open_store(db) as store:
        factory = stored_factory(store)
        when = _time(factory, at, "--at") or dt.datetime.now(dt.UTC)
        orders = read_purchase_orders(po_file, factory) if po_file is not None else []
        report = reorder_report(store, factory, at=when, purchase_orders=orders)
        buy = purchase_suggestions(store, factory, at=when, purchase_orders=orders)
    return when, report, buy


@stock_app.command("reorder")
def reorder_command(
    at: AtOpt = None,
    po_file: PoOpt = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Reorder point per item: d̄·L + z·σ_d·√L, safety stock, on hand, on order, suggestion."""
    _, report, _ = _reorder_inputs(db, at, po_file)
    if as_json:
        print_json(report)
        return
    table = Table(title="Reorder points 再訂購點")
    keys = list(report[0]) if report else []
    for name in keys:
        table.add_column(name, justify="left" if name in ("item", "order_by") else "right")
    for r in report:
        table.add_row(*("—" if r[k] is None else str(r[k]) for k in keys))
    out.print(table)


@stock_app.command("suggest")
def suggest_command(
    at: AtOpt = None,
    po_file: PoOpt = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Purchase suggestions (MRP-lite): what to buy, how much (MOQ, packs), order by when."""
    _, _, buy = _reorder_inputs(db, at, po_file)
    if as_json:
        print_json(buy)
        return
    table = Table(title="Purchase suggestions 採購建議")
    keys = list(buy[0]) if buy else ["item", "qty"]
    for name in keys:
        table.add_column(name)
    for r in buy:
        table.add_row(*("—" if r[k] is None else str(r[k]) for k in keys))
    out.print(table)
    if not buy:
        out.print("nothing to buy now", highlight=False)


@stock_app.command("tasks")
def tasks_command(
    assign: Annotated[
        str | None,
        typer.Option(
            "--assign",
            help="Assign the tasks to this AGV (its machine path, e.g. tp/kitchen/meal-1/"
            "transfer/agv-1): stored, and published on microfab/v1/PATH/task with --broker",
        ),
    ] = None,
    broker: Annotated[
        str | None, typer.Option("--broker", help="MQTT broker URL to publish assignments to")
    ] = None,
    board: Annotated[bool, typer.Option("--board", help="The task board: assigned tasks")] = False,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Transfer tasks the line-side kanban rules call for (refill min → max, FEFO picks);
    --assign hands them to an AGV, --board shows where assigned tasks stand."""
    from microfab.stock.agv import assignments, task_board
    from microfab.stock.kanban import transfer_tasks
    from microfab.store import open_store

    with open_store(db) as store:
        if board:
            rows = [r.to_json() for r in task_board(store)]
        else:
            factory = stored_factory(store)
            now = dt.datetime.now(dt.UTC)
            found = transfer_tasks(store, factory, at=now)
            rows = [t.to_json() for t in found]
            if assign is not None:
                events = assignments(found, assign, now=now)
                store.append(events)
                if broker is not None:
                    _publish(broker, events)
    if as_json:
        print_json(rows)
        return
    if board:
        table = Table(title="Task board 搬運任務狀態")
        names: tuple[str, ...] = (
            "task", "agv", "status", "since", "item", "qty", "unit", "from", "to", "reason"
        )  # fmt: skip
    else:
        table = Table(title="Transfer tasks 搬運任務")
        names = ("id", "item", "from", "to", "qty", "unit", "on_hand", "short")
    for name in names:
        table.add_column(name)
    for row in rows:
        table.add_row(*("—" if row[k] is None else str(row[k]) for k in names))
    out.print(table)
    if assign is not None:
        out.print(f"{len(rows)} task(s) assigned to {assign}", highlight=False)


def _publish(broker: str, events: list[Any]) -> None:
    from microfab.commands.mqtt_options import broker_settings
    from microfab.connect.mqtt_publish import MqttPublisher

    publisher = MqttPublisher(broker_settings(broker, None, None, None, "5"))
    try:
        for event in events:
            publisher.publish(event)
        publisher.flush()
    finally:
        publisher.close()


@stock_app.command("backflush")
def backflush_command(db: DbOption = None, as_json: JsonOption = False) -> None:
    """Issue backflushed items (``backflush: true``) from the stored counts × BOM, FEFO from the
    line-side location; running it again stores nothing new."""
    from microfab.stock.backflush import backflush
    from microfab.store import open_store

    with open_store(db) as store:
        done = backflush(store, stored_factory(store))
    if as_json:
        print_json(done.to_json())
        return
    out.print(f"{done.stored} backflushed, {done.ignored} already stored", highlight=False)
    for problem in done.problems:
        out.print(f"skipped: {problem}", highlight=False)


@stock_app.command("import")
def import_command(
    path: Annotated[Path, typer.Argument(help="CSV: id,ts,kind,item,lot,qty,unit,from,to,ref")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Import stock movements: good rows stored, bad rows named file:row:column (exit 2)."""
    from microfab.stock.moves import import_moves
    from microfab.store import open_store

    with open_store(db) as store:
        factory = stored_factory(store)
        result = import_moves(store, factory, path)
    if as_json:
        print_json(result.to_json())
    else:
        out.print(
            f"{result.stored} stored, {result.ignored} ignored (already stored), "
            f"{len(result.problems)} rejected",
            highlight=False,
        )
    if result.problems:
        from microfab.errors import LocatedFileError

        raise LocatedFileError(result.problems)


@stock_app.command("export")
def export_command(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the CSV here \\[default: print]")
    ] = None,
    db: DbOption = None,
) -> None:
    """Every stock movement as an import CSV (id,ts,kind,item,lot,qty,unit,from,to,ref,…)."""
    from microfab.stock.moves import export_rows, write_export
    from microfab.store import open_store

    with open_store(db) as store:
        text = write_export(export_rows(store))
    if output is None:
        print(text, end="")
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write {output}: {exc.strerror or exc}") from None
    out.print(f"wrote {output}", highlight=False)
