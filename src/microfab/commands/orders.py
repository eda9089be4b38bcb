"""``microfab orders …`` (create, release, cancel, list, show, wip) and ``microfab trace ORDER``.

The commands parse options and print; the work is in :mod:`microfab.track.orders` and
:mod:`microfab.track.genealogy`, which the REST API calls too. Times are shown in site time.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table

from microfab.commands.common import DbOption, JsonOption, out, print_json, stored_factory
from microfab.errors import InputError
from microfab.model.factory import Factory
from microfab.model.orders import (
    DEFAULT_PRIORITY,
    WorkOrderRequest,
    check_request,
    find_product,
    parse_due,
)
from microfab.track.genealogy import OrderTrace, trace_order
from microfab.track.orders import (
    STATUSES,
    OrderChange,
    WipReport,
    WorkOrderView,
    cancel_order,
    create_order,
    get_order,
    list_orders,
    release_order,
    wip,
)

orders_app = typer.Typer(
    help="Work orders 工單: create, release, cancel, list, show, work in progress.",
    no_args_is_help=True,
)

OrderArgument = Annotated[
    str, typer.Argument(help="Work-order id, e.g. WO261123-001", metavar="ORDER")
]

PlanOption = Annotated[
    Path,
    typer.Option(
        "--plan",
        help="Plan file whose planned ends are the open orders' expected completions, as on "
        "the dashboard (none there: estimated from progress)",
    ),
]


def _plan(path: Path) -> dict[str, Any] | None:
    from microfab.plan.plan_file import read_plan_file

    return read_plan_file(path)


STATUS_ZH = {
    "created": "已建立",
    "released": "已下達",
    "in_progress": "生產中",
    "completed": "已完成",
    "cancelled": "已取消",
}


# ---------------------------------------------------------------------------- commands


@orders_app.command("create")
def orders_create(
    product: Annotated[
        str, typer.Argument(help="Product SKU, as in the factory file", metavar="PRODUCT")
    ],
    quantity: Annotated[
        int, typer.Option("--quantity", "-q", help="Units to make (at least 1)", show_default=False)
    ],
    option: Annotated[
        list[str] | None,
        typer.Option(
            "--option",
            "-o",
            help="Variant choice NAME=CHOICE (e.g. portion=large), one per option of the "
            "product; repeat it, or separate with commas",
            show_default=False,
        ),
    ] = None,
    due: Annotated[
        str | None,
        typer.Option(
            "--due",
            help="Due time: 2026-11-25T17:00 (site time), with an offset, or a date alone "
            "(the end of that day)",
            show_default=False,
        ),
    ] = None,
    priority: Annotated[
        int, typer.Option("--priority", "-p", help="1 (most urgent) to 9")
    ] = DEFAULT_PRIORITY,
    order: Annotated[
        str | None,
        typer.Option(
            "--id",
            help="Order id \\[default: the next WOyymmdd-nnn of the day]; give it to make a "
            "retried command safe",
            show_default=False,
        ),
    ] = None,
    release: Annotated[
        bool, typer.Option("--release", help="Release it to the floor at once")
    ] = False,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a work order 建立工單 for a product, its variant options, quantity and due time."""
    from microfab.store import open_store

    request = WorkOrderRequest(
        order=order,
        product=product,
        options=_options(option or []),
        quantity=quantity,
        priority=priority,
    )
    with open_store(db) as store:
        factory = stored_factory(store)
        check_request(factory, request)  # every other field first, then the due time
        if due is not None:
            zone = _product_zone(factory, product)
            request = request.model_copy(update={"due": parse_due(due, zone)})
        change = create_order(store, factory, request, release=release)
    if as_json:
        print_json(change.to_json())
        return
    view = change.view
    zone = _zone(factory)
    what = f"{view.quantity:,} × {view.product}"
    if view.options:
        what += " (" + ", ".join(f"{k}={v}" for k, v in view.options.items()) + ")"
    due_text = f", due {_long(view.due, zone)}" if view.due else ""
    if change.stored:
        done = "created and released" if release else "created"
        out.print(
            f"{done} {view.order}: {what}{due_text}, priority {view.priority}", highlight=False
        )
    else:
        out.print(
            f"{view.order} already exists with these details ({what}{due_text}, status "
            f"{view.status}); nothing stored",
            highlight=False,
        )


@orders_app.command("import")
def orders_import(
    path: Annotated[
        Path,
        typer.Argument(help="CSV or Excel (.xlsx): order,product,quantity[,due,priority,options]"),
    ],
    release: Annotated[bool, typer.Option("--release", help="Release every order at once")] = False,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Import work orders from a CSV or Excel file 匯入工單; a re-import stores nothing new."""
    from microfab.errors import LocatedFileError
    from microfab.store import open_store
    from microfab.track.order_intake import import_orders

    with open_store(db) as store:
        factory = stored_factory(store)
        intake = import_orders(store, factory, path, release=release)
    if as_json:
        print_json(intake.to_json())
    else:
        out.print(
            f"{len(intake.created)} created, {len(intake.unchanged)} unchanged (already stored), "
            f"{len(intake.problems)} rejected",
            highlight=False,
        )
    if intake.problems:
        raise LocatedFileError(intake.problems)


@orders_app.command("release")
def orders_release(order: OrderArgument, db: DbOption = None, as_json: JsonOption = False) -> None:
    """Release a created order to the shop floor 下達工單."""
    from microfab.store import open_store

    with open_store(db) as store:
        factory = stored_factory(store)
        change = release_order(store, factory, order)
    _report(change, "released", as_json)


@orders_app.command("cancel")
def orders_cancel(order: OrderArgument, db: DbOption = None, as_json: JsonOption = False) -> None:
    """Cancel an order that is not completed 取消工單."""
    from microfab.store import open_store

    with open_store(db) as store:
        factory = stored_factory(store)
        change = cancel_order(store, factory, order)
    _report(change, "cancelled", as_json)


@orders_app.command("list")
def orders_list(
    status: Annotated[
        str | None,
        typer.Option(
            "--status",
            help=f"Only orders of this status: {', '.join(STATUSES)}",
            show_default=False,
        ),
    ] = None,
    late: Annotated[bool, typer.Option("--late", help="Only late orders")] = False,
    plan: PlanOption = Path("plan.json"),
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Work orders with status, progress, expected completion and a late flag 工單列表."""
    from microfab.store import open_store

    document = _plan(plan)
    with open_store(db) as store:
        factory = stored_factory(store)
        views = list_orders(
            store, factory, status=status, late=True if late else None, plan=document
        )
    if as_json:
        print_json([v.to_json() for v in views])
        return
    if not views:
        which = " ".join(w for w in ("late" if late else "", status or "") if w)
        out.print(f"no {which + ' ' if which else ''}work orders", highlight=False)
        return
    zone = _zone(factory)
    table = _table(
        "Work orders 工單",
        **{"order / product": "id"},
        pri="num",
        due="id",
        status="id",
        **{"good/qty": "num"},
        done="num",
        expected="id",
    )
    for v in views:
        table.add_row(
            f"{v.order}\n{v.product or '—'}",
            str(v.priority),
            _short(v.due, zone),
            v.status + ("\nLATE 逾期" if v.late else ""),
            f"{v.good:,}/{_number(v.quantity)}",
            _percent(v.progress),
            _short(v.expected_completion, zone) if v.status != "completed" else "",
        )
    table.caption = _caption(zone, views[0].as_of)
    out.print(table)


@orders_app.command("show")
def orders_show(
    order: OrderArgument,
    plan: PlanOption = Path("plan.json"),
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """One order: details, progress per routing step, WIP, expected completion 工單詳情."""
    from microfab.store import open_store

    document = _plan(plan)
    with open_store(db) as store:
        factory = stored_factory(store)
        view = get_order(store, factory, order, plan=document)
    if as_json:
        print_json(view.to_json())
        return
    zone = _zone(factory)
    for line in _header(view, zone):
        out.print(line, highlight=False)
    table = _table(
        "Routing steps 工序",
        step="num",
        name="text",
        status="id",
        planned="num",
        good="num",
        scrap="num",
        WIP="num",
        machine="text",
        when="id",
    )
    for op in view.operations:
        machines = [m.machine for m in op.machines] or ([op.wip_machine] if op.wip_machine else [])
        table.add_row(
            "—" if op.seq is None else str(op.seq),
            op.name,
            op.status,
            _number(op.planned),
            f"{op.good:,}",
            f"{op.scrap:,}",
            f"{op.wip:,}",
            ", ".join(_machine_id(m) for m in machines) or "—",
            _span(op.started, op.completed, zone),
        )
    table.caption = _caption(zone, view.as_of)
    out.print(table)


@orders_app.command("wip")
def orders_wip(db: DbOption = None, as_json: JsonOption = False) -> None:
    """Work in progress 在製品 of the open orders, per machine and per routing step."""
    from microfab.store import open_store

    with open_store(db) as store:
        factory = stored_factory(store)
        report = wip(store, factory)
    if as_json:
        print_json(report.to_json())
        return
    _wip_tables(report, _zone(factory))


def trace(
    order: Annotated[
        str | None, typer.Argument(help="Work-order id, e.g. WO261123-001", metavar="ORDER")
    ] = None,
    steps: Annotated[
        bool, typer.Option("--steps", help="One row per step and machine instead of per batch")
    ] = False,
    lot: Annotated[
        str | None,
        typer.Option("--lot", help="Recall: the orders a lot went into and what they made"),
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Genealogy 追溯 of an order: per count batch along its route, machine, times, scrap, lots;
    or with --lot, the orders that used a lot (recall)."""
    from microfab.store import open_store

    if (order is None) == (lot is None):
        raise InputError("give an ORDER or --lot LOT")
    if lot is not None:
        from microfab.stock.genealogy import trace_lot

        with open_store(db) as store:
            recall = trace_lot(store, lot)
        if as_json:
            print_json(recall.to_json())
            return
        _lot_tables(recall.to_json())
        return
    assert order is not None
    with open_store(db) as store:
        factory = stored_factory(store)
        found = trace_order(store, factory, order)
    if as_json:
        print_json(found.to_json())
        return
    _trace_tables(found, _zone(factory), steps)


def _lot_tables(recall: dict[str, object]) -> None:
    items = ", ".join(recall["items"]) or "unknown item"  # type: ignore[arg-type]
    out.print(f"Lot 批次 {recall['lot']}: {items}, supplier {recall['supplier'] or '—'}")
    for title, key, columns in (
        (
            "Orders that used it 使用此批次的工單",
            "orders",
            ("order", "item", "qty", "first", "last"),
        ),
        ("Lots made from those orders 製成批次", "made", ("item", "lot", "order", "qty")),
        ("Made from 來源批次", "made_from", ("item", "lot", "order", "qty")),
    ):
        rows: list[dict[str, object]] = recall[key]  # type: ignore[assignment]
        if not rows:
            continue
        table = Table(title=title, box=box.SIMPLE)
        for name in columns:
            table.add_column(name)
        for row in rows:
            table.add_row(*("—" if row[c] is None else str(row[c]) for c in columns))
        out.print(table)


# ---------------------------------------------------------------------------- printing


def _report(change: OrderChange, verb: str, as_json: bool) -> None:
    if as_json:
        print_json(change.to_json())
        return
    view = change.view
    if change.stored:
        out.print(f"{verb} {view.order} (status {view.status})", highlight=False)
    else:
        out.print(
            f"{view.order} is already {view.status}; nothing stored",
            highlight=False,
        )


def _header(view: WorkOrderView, zone: zoneinfo.ZoneInfo) -> list[str]:
    product = view.product or "unknown product"
    if view.product_name:
        product = f"{view.product_name} ({view.product})"
    options = ", ".join(f"{k}={v}" for k, v in view.options.items())
    lines = [f"Work order 工單 {view.order}: {product}" + (f", {options}" if options else "")]
    lines.append(
        f"quantity {_number(view.quantity)} · priority {view.priority} · status {view.status} "
        f"{STATUS_ZH.get(view.status, '')}".rstrip()
    )
    times = [
        (label, when)
        for label, when in (
            ("due", view.due),
            ("created", view.created),
            ("released", view.released),
            ("started", view.started),
            ("completed", view.completed),
            ("cancelled", view.cancelled),
        )
        if when is not None
    ]
    if times:
        lines.append(" · ".join(f"{label} {_long(when, zone)}" for label, when in times))
    lines.append(
        f"progress {_percent(view.progress)} (good / quantity) · work done "
        f"{_percent(view.work_progress)} · good {view.good:,} · scrap {view.scrap:,} · "
        f"WIP {view.wip:,}"
    )
    if view.status == "completed":
        verdict = "completed after its due time" if view.completed_late else "on time"
        lines.append(verdict if view.due else "completed")
    elif view.expected_completion is not None:
        basis = {
            "plan": "the plan's",
            "observed": "at the observed rate",
            "standard": "at routing times",
        }
        text = (
            f"expected completion {_long(view.expected_completion, zone)} "
            f"({basis.get(view.expected_basis or '', '')})"
        )
        lines.append(text + (" · LATE 逾期" if view.late else ""))
    return lines


def _wip_tables(report: WipReport, zone: zoneinfo.ZoneInfo) -> None:
    table = _table("WIP by machine 在製品（按機器）", machine="text", units="num", orders="num")
    for machine, units, orders in report.by_machine():
        table.add_row(
            "(waiting for a machine)" if machine is None else machine, f"{units:,}", str(orders)
        )
    out.print(table)
    steps = _table(
        "WIP by routing step 在製品（按工序）",
        product="text",
        step="num",
        name="text",
        units="num",
        orders="num",
    )
    for product, seq, name, units, orders in report.by_operation():
        steps.add_row(product or "—", str(seq), name, f"{units:,}", str(orders))
    steps.caption = _caption(zone, report.as_of)
    out.print(steps)


def _trace_tables(found: OrderTrace, zone: zoneinfo.ZoneInfo, steps: bool) -> None:
    view = found.order
    for line in _header(view, zone)[:3]:
        out.print(line, highlight=False)
    if steps:
        table = _table(
            "Route 生產路線 (per step and machine)",
            step="num",
            name="text",
            machine="id",
            batches="num",
            start="id",
            end="id",
            good="num",
            scrap="num",
        )
        for s in found.steps():
            table.add_row(
                "—" if s.operation is None else str(s.operation),
                s.operation_name,
                _machine_id(s.machine),
                str(s.batches),
                _stamp(s.start, zone),
                _stamp(s.end, zone, s.start),
                f"{s.good:,}",
                f"{s.scrap:,}",
            )
    else:
        table = _table(
            "Genealogy 追溯 (per count batch)",
            step="num",
            machine="id",
            start="id",
            end="id",
            good="num",
            scrap="num",
            lots="text",
        )
        for b in found.batches:
            table.add_row(
                "—" if b.operation is None else str(b.operation),
                _machine_id(b.machine),
                _stamp(b.start, zone),
                _stamp(b.end, zone, b.start),
                f"{b.good:,}",
                f"{b.scrap:,}",
                "\n".join(lot.lot or f"{lot.material} (no lot)" for lot in b.lots),
            )
    table.caption = f"times in site time ({zone.key})"
    out.print(table)
    lots = _table(
        "Lots 物料批次 (any unit of the order may contain them)",
        material="text",
        lot="text",
        qty="num",
        unit="id",
        step="num",
        machine="id",
    )
    for lot in found.lot_sources():
        lots.add_row(
            lot.material,
            lot.lot or "(no lot)",
            _qty(lot.qty),
            lot.unit,
            "—" if lot.operation is None else str(lot.operation),
            _machine_id(lot.machine),
        )
    if found.unassigned:
        lots.caption = "step —: consumed on a machine that counted nothing for this order"
    out.print(lots)
    for judged in found.inspections:  # inspection stations (docs/vision.md)
        defects = ", ".join(f"{name} {n}" for name, n in judged.defects.items())
        out.print(
            f"inspected 檢查 at {_machine_id(judged.machine)}: {judged.inspected:,}, failed "
            f"{judged.failed:,}" + (f" ({defects})" if defects else ""),
            highlight=False,
        )


# ---------------------------------------------------------------------------- helpers


def _table(title: str, **columns: str) -> Table:
    """A table in the style of these commands: ``num`` columns right-aligned, ``id`` columns
    never wrapped (ids, times), ``text`` columns wrapped to fit the terminal."""
    table = Table(box=box.SIMPLE_HEAD, title=title, pad_edge=False, collapse_padding=True)
    for name, kind in columns.items():
        table.add_column(
            name,
            justify="right" if kind == "num" else "left",
            no_wrap=kind == "num",
            overflow="fold",
        )
    return table


def _options(values: list[str]) -> dict[str, str]:
    chosen: dict[str, str] = {}
    for value in values:
        for item in value.split(","):
            name, sep, code = item.partition("=")
            name, code = name.strip(), code.strip()
            if not sep or not name or not code:
                raise InputError(
                    f"options: '{item}' is not NAME=CHOICE (e.g. --option portion=large)"
                )
            if name in chosen and chosen[name] != code:
                raise InputError(
                    f"options.{name}: chosen twice ('{chosen[name]}' and '{code}'); choose once"
                )
            chosen[name] = code
    return chosen


def _zone(factory: Factory) -> zoneinfo.ZoneInfo:
    return factory.sites[0].zone


def _product_zone(factory: Factory, sku: str) -> zoneinfo.ZoneInfo:
    """Time zone of the site where the product's first step runs."""
    product = find_product(factory, sku)
    first = next(iter(product.routing[0].machines))
    for ref in factory.machines():
        if ref.machine.id == first:
            return ref.site.zone
    return _zone(factory)  # pragma: no cover - the factory checks routing machines


def _short(value: dt.datetime | None, zone: zoneinfo.ZoneInfo) -> str:
    return "" if value is None else value.astimezone(zone).strftime("%m-%d %H:%M")


def _span(start: dt.datetime | None, end: dt.datetime | None, zone: zoneinfo.ZoneInfo) -> str:
    """``11-23 13:30–13:40``: the date once when both ends fall on the same site day."""
    if start is None:
        return "" if end is None else f"–{_short(end, zone)}"
    first = start.astimezone(zone)
    if end is None:
        return f"{first:%m-%d %H:%M}–"
    last = end.astimezone(zone)
    tail = f"{last:%H:%M}" if last.date() == first.date() else f"{last:%m-%d %H:%M}"
    return f"{first:%m-%d %H:%M}–{tail}"


def _long(value: dt.datetime | None, zone: zoneinfo.ZoneInfo) -> str:
    return "" if value is None else value.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def _stamp(
    value: dt.datetime | None, zone: zoneinfo.ZoneInfo, since: dt.datetime | None = None
) -> str:
    """``11-23 08:00:04``; only the time when ``since`` falls on the same site day."""
    if value is None:
        return "?"
    local = value.astimezone(zone)
    if since is not None and since.astimezone(zone).date() == local.date():
        return f"{local:%H:%M:%S}"
    return f"{local:%m-%d %H:%M:%S}"


def _caption(zone: zoneinfo.ZoneInfo, as_of: dt.datetime | None) -> str:
    text = f"times in site time ({zone.key})"
    if as_of is not None:
        text += f", as of {_long(as_of, zone)}"
    return text


def _number(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def _qty(value: float) -> str:
    return f"{value:,.3f}".rstrip("0").rstrip(".")


def _machine_id(path: str) -> str:
    return path.rsplit("/", 1)[-1]
