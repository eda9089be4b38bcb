"""The assistant's tools: typed, read-only wrappers around microfab's own services.

Each tool names the permission it needs (:class:`~microfab.model.identity.Permission`), takes
typed arguments (line, machine, product, order and a window as ``from``/``to`` text in site
time, the forms ``--from``/``--to`` and the API take) and calls the same service, with the same
window rules, as the view its answer links to — so the numbers are the view's numbers (one
number, one truth; ``tests/test_assist.py`` compares them). Every value's ``name`` is the key
the linked view shows it under (``oee``, ``availability``, ``good``, ``kgco2e_per_unit`` …),
with ``:target`` added when the view has one row per machine, reason or product.

No tool writes anything or builds SQL. Stock and expiring lots come with ``stock/``: register
their tools in :data:`STOCK_TOOLS` (see the note there).
"""

from __future__ import annotations

import datetime as dt
import functools
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from microfab.assist.answer import Period, Value
from microfab.errors import InputError
from microfab.model.events import format_ts
from microfab.model.factory import Factory
from microfab.model.identity import Permission
from microfab.model.timerange import parse_time
from microfab.reports.render import duration, percent
from microfab.settings import load_settings
from microfab.track.dashboard import reason_names
from microfab.track.oee import downtime_pareto, oee_rows, select_lines
from microfab.track.orders import OPEN, get_order, list_orders, wip
from microfab.track.plant import Plant
from microfab.track.windows import data_window


@dataclass(slots=True)
class Context:
    """What every tool reads: the plant (store, factory, plant clock) and optional files."""

    plant: Plant
    factory: Factory
    now: dt.datetime
    carbon_settings: Path | None = None
    funding_application: Path | None = None
    plan_file: Path | None = None
    """The plan file (``microfab plan schedule`` writes it; the app's ``plan_file``)."""

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return self.plant.zone(self.factory)


@dataclass(slots=True)
class Result:
    """What a tool found: values, sentences in both languages, the period and the view."""

    values: list[Value]
    en: str
    zh: str
    link: str | None
    period: Period = field(default_factory=lambda: Period(None, None))


@dataclass(frozen=True, slots=True)
class Tool:
    name: str
    permission: Permission
    run: Callable[[Context, dict[str, Any]], Result]
    en: str
    """What it answers (English), for the list of supported questions."""
    zh: str
    examples_en: tuple[str, ...] = ()
    examples_zh: tuple[str, ...] = ()
    takes: tuple[str, ...] = field(default=())
    """The arguments it takes: line, machine, product, order, period."""
    needs: tuple[str, ...] = field(default=())
    """The arguments it cannot answer without."""
    default_period: bool = True
    """Today when no period is said (else: all the stored data)."""


# ---------------------------------------------------------------------------- helpers


def _link(path: str, **query: str | None) -> str:
    given = {k: v for k, v in query.items() if v is not None}
    return path + ("?" + urlencode(given) if given else "")


def _times(ctx: Context, args: dict[str, Any]) -> Period:
    start = parse_time(args["from"], ctx.zone) if args.get("from") else None
    end = parse_time(args["to"], ctx.zone) if args.get("to") else None
    return Period(
        start.astimezone(ctx.zone) if start else None, end.astimezone(ctx.zone) if end else None
    )


def _when(args: dict[str, Any], zh: bool) -> str:
    label = args.get("_label_zh" if zh else "_label_en")
    if label:
        return str(label)
    if zh:
        return f"{args.get('from', '')} 至 {args.get('to', '')}"
    return f"{args.get('from', '')} to {args.get('to', '')}"


def _short(path: str | None) -> str:
    return "" if path is None else path.rsplit("/", 1)[-1]


def _window(ctx: Context, line: str | None, args: dict[str, Any]) -> tuple[Any, Any]:
    """The window as ``GET /api/v1/oee`` and ``/downtime`` take it (tracking._window)."""
    zone = ctx.plant.line(line, ctx.factory).site_zone if line else ctx.zone
    return data_window(
        ctx.plant.store,
        ctx.factory,
        line,
        args.get("from"),
        args.get("to"),
        zone,
        max_days=load_settings().max_query_days,
    )


def _lines(ctx: Context, args: dict[str, Any]) -> list[str]:
    """The line paths a question is about: the one named, else every producing line."""
    if args.get("line"):
        return [str(args["line"])]
    return [
        f"{refs[0].site.id}/{refs[0].area.id}/{refs[0].line.id}"
        for refs in select_lines(ctx.factory, None)
    ]


# ---------------------------------------------------------------------------- OEE and output


def _oee_rows(ctx: Context, args: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
    machine = args.get("machine")
    if machine:
        first, last = _window(ctx, None, args)
        rows = oee_rows(ctx.plant.store, ctx.factory, machine=machine, start=first, end=last)
        link = _link(
            "/api/v1/oee", machine=machine, **{"from": args.get("from"), "to": args.get("to")}
        )
        return [r.to_json() for r in rows], link
    found: list[dict[str, Any]] = []
    links = []
    for line in _lines(ctx, args):
        first, last = _window(ctx, line, args)
        rows = oee_rows(
            ctx.plant.store, ctx.factory, line=line, start=first, end=last, level="line"
        )
        found += [r.to_json() for r in rows]
        links.append(
            _link(
                "/api/v1/oee",
                line=line,
                level="line",
                **{"from": args.get("from"), "to": args.get("to")},
            )
        )
    return found, links[0] if links else _link("/api/v1/oee", level="line")


def _suffix(rows: list[dict[str, Any]], row: dict[str, Any]) -> str:
    return "" if len(rows) == 1 else f":{_short(row['machine'])}"


def run_oee_by_machine(ctx: Context, args: dict[str, Any]) -> Result:
    """Every producing machine's OEE over the period, lowest first ("which machine …")."""
    rows: list[dict[str, Any]] = []
    lines = _lines(ctx, args)
    for line in lines:
        first, last = _window(ctx, line, args)
        rows += [
            r.to_json()
            for r in oee_rows(ctx.plant.store, ctx.factory, line=line, start=first, end=last)
        ]
    link = _link("/api/v1/oee", line=lines[0] if lines else None, **_span(args))
    rated = sorted(
        (r for r in rows if r["oee"] is not None), key=lambda r: (r["oee"], r["machine"])
    )
    values = [Value(f"oee:{_short(r['machine'])}", r["oee"], "ratio") for r in rated]
    if not rated:
        return Result(
            [],
            f"No machine has an OEE {_when(args, False)} (no planned production time with data).",
            f"{_when(args, True)} 沒有機器有 OEE（期間沒有計劃生產時間的數據）。",
            link,
            _times(ctx, args),
        )
    en = ", ".join(f"{_short(r['machine'])} {percent(r['oee'])}" for r in rated)
    zh = "、".join(f"{_short(r['machine'])} {percent(r['oee'])}" for r in rated)
    return Result(
        values,
        f"OEE per machine {_when(args, False)}, lowest first: {en}.",
        f"{_when(args, True)} 各機 OEE（由低至高）：{zh}。",
        link,
        _times(ctx, args),
    )


def _span(args: dict[str, Any]) -> dict[str, str | None]:
    return {"from": args.get("from"), "to": args.get("to")}


def run_oee(ctx: Context, args: dict[str, Any]) -> Result:
    if args.get("by") == "machine":
        return run_oee_by_machine(ctx, args)
    rows, link = _oee_rows(ctx, args)
    values: list[Value] = []
    en: list[str] = []
    zh: list[str] = []
    for row in rows:
        s = _suffix(rows, row)
        for key in ("oee", "availability", "performance", "quality"):
            values.append(Value(f"{key}{s}", row[key], "ratio"))
        name = _short(row["machine"])
        if row["oee"] is None:
            en.append(f"{name}: no OEE (no planned production time with data)")
            zh.append(f"{name}：沒有 OEE（期間沒有計劃生產時間的數據）")
            continue
        en.append(
            f"OEE of {name} {_when(args, False)}: {percent(row['oee'])} (availability "
            f"{percent(row['availability'])}, performance {percent(row['performance'])}, "
            f"quality {percent(row['quality'])})"
        )
        zh.append(
            f"{name} {_when(args, True)} 的 OEE（設備綜合效率）：{percent(row['oee'])}"
            f"（可用率 {percent(row['availability'])}、表現 {percent(row['performance'])}、"
            f"質量 {percent(row['quality'])}）"
        )
    if not rows:
        en.append(f"No production data {_when(args, False)}.")
        zh.append(f"{_when(args, True)} 沒有生產數據。")
    return Result(values, "; ".join(en) + ".", "；".join(zh) + "。", link, _times(ctx, args))


def run_output(ctx: Context, args: dict[str, Any]) -> Result:
    rows, link = _oee_rows(ctx, args)
    values: list[Value] = []
    en: list[str] = []
    zh: list[str] = []
    for row in rows:
        s = _suffix(rows, row)
        name = _short(row["machine"])
        if row["level"] == "line":
            values.append(Value(f"output_good{s}", row["output_good"], "units"))
            values.append(Value(f"scrap{s}", row["scrap"], "units"))
            en.append(
                f"{name} made {row['output_good']:,} good units {_when(args, False)} "
                f"({row['scrap']:,} scrapped)"
            )
            zh.append(
                f"{name} {_when(args, True)} 生產了 {row['output_good']:,} 件良品（報廢 {row['scrap']:,} 件）"
            )
        else:
            values.append(Value(f"good{s}", row["good"], "units"))
            values.append(Value(f"scrap{s}", row["scrap"], "units"))
            en.append(
                f"{name} counted {row['good']:,} good units {_when(args, False)} ({row['scrap']:,} scrapped)"
            )
            zh.append(
                f"{name} {_when(args, True)} 點算了 {row['good']:,} 件良品（報廢 {row['scrap']:,} 件）"
            )
    if not rows:
        en.append(f"No production data {_when(args, False)}")
        zh.append(f"{_when(args, True)} 沒有生產數據")
    return Result(values, "; ".join(en) + ".", "；".join(zh) + "。", link, _times(ctx, args))


# ---------------------------------------------------------------------------- downtime


def _reason_text(names: dict[str, tuple[str, str]], reason: str, zh: bool) -> str:
    pair = names.get(reason, (reason, reason))
    return pair[1] if zh else pair[0]


def run_downtime(ctx: Context, args: dict[str, Any]) -> Result:
    line, machine = args.get("line"), args.get("machine")
    first, last = _window(ctx, line, args)
    rows = [
        r.to_json()
        for r in downtime_pareto(
            ctx.plant.store, ctx.factory, line=line, machine=machine, start=first, end=last
        )
    ]
    names = reason_names(ctx.factory)
    top = rows[:3]
    values = [Value(f"seconds:{r['reason']}", r["seconds"], "s") for r in top]
    values += [Value(f"share:{r['reason']}", r["share"], "ratio") for r in top]
    what = _short(machine) if machine else (_short(line) if line else "")
    what_en, what_zh = what or "the whole plant", what or "全廠"
    link = _link(
        "/api/v1/downtime",
        line=line,
        machine=machine,
        **{"from": args.get("from"), "to": args.get("to")},
    )
    if not rows:
        return Result(
            [],
            f"No downtime recorded for {what_en} {_when(args, False)}.",
            f"{what_zh} {_when(args, True)} 沒有停機記錄。",
            link,
            _times(ctx, args),
        )
    en = ", ".join(
        f"{_reason_text(names, r['reason'], False)} {duration(r['seconds'])} ({percent(r['share'])})"
        for r in top
    )
    zh = "、".join(
        f"{_reason_text(names, r['reason'], True)} {duration(r['seconds'])}（{percent(r['share'])}）"
        for r in top
    )
    return Result(
        values,
        f"Largest downtime reasons for {what_en} {_when(args, False)}: {en}.",
        f"{what_zh} {_when(args, True)} 最大的停機原因：{zh}。",
        link,
        _times(ctx, args),
    )


def run_worst_machine(ctx: Context, args: dict[str, Any]) -> Result:
    line = args.get("line")
    lost: list[tuple[float, str]] = []
    first, last = _window(ctx, None, args)  # as GET /api/v1/downtime?machine=… takes it
    for refs in select_lines(ctx.factory, line):
        for ref in refs:
            rows = downtime_pareto(
                ctx.plant.store, ctx.factory, machine=ref.path, start=first, end=last
            )
            seconds = [r.to_json()["seconds"] for r in rows]
            lost.append((round(sum(seconds), 3), ref.path))
    lost.sort(key=lambda x: (-x[0], x[1]))
    top = [x for x in lost if x[0] > 0][:3]
    if not top:
        return Result(
            [],
            f"No machine lost time {_when(args, False)}.",
            f"{_when(args, True)} 沒有機器停機。",
            _link(
                "/api/v1/downtime", line=line, **{"from": args.get("from"), "to": args.get("to")}
            ),
            _times(ctx, args),
        )
    values = [Value(f"seconds:{_short(path)}", seconds, "s") for seconds, path in top]
    link = _link(
        "/api/v1/downtime", machine=top[0][1], **{"from": args.get("from"), "to": args.get("to")}
    )
    others_en = ", ".join(f"{_short(p)} {duration(s)}" for s, p in top[1:])
    others_zh = "、".join(f"{_short(p)} {duration(s)}" for s, p in top[1:])
    return Result(
        values,
        f"{_short(top[0][1])} lost the most time {_when(args, False)}: {duration(top[0][0])} "
        f"of working time" + (f" (then {others_en})." if others_en else "."),
        f"{_when(args, True)} 停機最多的是 {_short(top[0][1])}：工作時間內損失 {duration(top[0][0])}"
        + (f"（其次 {others_zh}）。" if others_zh else "。"),
        link,
        _times(ctx, args),
    )


# ---------------------------------------------------------------------------- live state


def run_machine_state(ctx: Context, args: dict[str, Any]) -> Result:
    """The machines' state now, from the ``machine_status`` read model (``GET
    /api/v1/machines``, the dashboard's tiles): one machine's, or those not running."""
    from microfab.console import STATE_ZH
    from microfab.track.dashboard import STATE_EN

    status = {s.machine: s for s in ctx.plant.store.machine_status()}
    names = reason_names(ctx.factory)
    machine = args.get("machine")
    refs = [r for r in ctx.factory.machines() if r.machine.produces]
    if machine:
        refs = [r for r in ctx.factory.machines() if r.path == machine]

    def words(path: str, zh: bool) -> str:
        s = status.get(path)
        state = s.state if s and s.state else "nodata"
        said = STATE_ZH.get(state, state) if zh else STATE_EN.get(state, state)
        said_reason = _reason_text(names, s.reason, zh) if s and s.reason else ""
        reason = (f"（{said_reason}）" if zh else f" ({said_reason})") if said_reason else ""
        since = f" since {_site(ctx, format_ts(s.state_ts))}" if s and s.state_ts else ""
        since_zh = f"，自 {_site(ctx, format_ts(s.state_ts))}" if s and s.state_ts else ""
        return f"{_short(path)} {said}{reason}{since_zh if zh else since}"

    if machine:
        s = status.get(machine)
        values = [Value(f"state:{_short(machine)}", s.state if s else None, "state")]
        return Result(
            values,
            words(machine, False) + ".",
            words(machine, True) + "。",
            _link(f"/api/v1/machines/{quote(machine, safe='/')}"),
            _as_of(ctx),
        )
    stopped = [r.path for r in refs if (status.get(r.path) and status[r.path].state) != "running"]
    values = [Value("not_running", len(stopped), "machines")]
    values += [
        Value(f"state:{_short(p)}", status[p].state if p in status else None, "state")
        for p in stopped
    ]
    if not stopped:
        return Result(
            values,
            "Every producing machine is running.",
            "所有生產機器都在運行。",
            "/api/v1/machines",
            _as_of(ctx),
        )
    return Result(
        values,
        f"{len(stopped)} machine(s) not running now: "
        + "; ".join(words(p, False) for p in stopped)
        + ".",
        f"而家有 {len(stopped)} 部機沒有運行：" + "；".join(words(p, True) for p in stopped) + "。",
        "/api/v1/machines",
        _as_of(ctx),
    )


# ---------------------------------------------------------------------------- orders


def _site(ctx: Context, value: str | None) -> str:
    if value is None:
        return "—"
    return dt.datetime.fromisoformat(value).astimezone(ctx.zone).strftime("%d/%m %H:%M")


def _as_of(ctx: Context) -> Period:
    return Period(None, ctx.now.astimezone(ctx.zone))


def run_late_orders(ctx: Context, args: dict[str, Any]) -> Result:
    views = [v.to_json() for v in list_orders(ctx.plant.store, ctx.factory, now=ctx.now, late=True)]
    values = [Value("late_orders", len(views), "orders")]
    link = "/api/v1/orders?late=true"
    if not views:
        return Result(values, "No order is late.", "沒有訂單延誤。", link, _as_of(ctx))
    shown = views[:8]
    en = "; ".join(
        f"{v['order']} ({v['product']}, due {_site(ctx, v['due'])}, expected {_site(ctx, v['expected_completion'])})"
        for v in shown
    )
    zh = "；".join(
        f"{v['order']}（{v['product']}，到期 {_site(ctx, v['due'])}，預計 {_site(ctx, v['expected_completion'])}）"
        for v in shown
    )
    more_en = f" and {len(views) - len(shown)} more" if len(views) > len(shown) else ""
    more_zh = f" 及另外 {len(views) - len(shown)} 張" if len(views) > len(shown) else ""
    return Result(
        values,
        f"{len(views)} order(s) are late: {en}{more_en}.",
        f"有 {len(views)} 張訂單延誤：{zh}{more_zh}。",
        link,
        _as_of(ctx),
    )


def run_order_status(ctx: Context, args: dict[str, Any]) -> Result:
    v = get_order(ctx.plant.store, ctx.factory, str(args["order"]), now=ctx.now).to_json()
    values = [
        Value("status", v["status"], "status"),
        Value("good", v["good"], "units"),
        Value("quantity", v["quantity"], "units"),
        Value("progress", v["progress"], "ratio"),
        Value("expected_completion", v["expected_completion"], "time"),
        Value("late", v["late"], "bool"),
    ]
    late_en = " — late" if v["late"] else ""
    late_zh = "（延誤）" if v["late"] else ""
    return Result(
        values,
        f"{v['order']} ({v['product']}) is {v['status'].replace('_', ' ')}: {v['good']:,} of "
        f"{v['quantity'] or 0:,} good ({percent(v['progress'])}), due {_site(ctx, v['due'])}, "
        f"expected to finish {_site(ctx, v['expected_completion'])}{late_en}.",
        f"{v['order']}（{v['product']}）狀態 {v['status']}：良品 {v['good']:,} / {v['quantity'] or 0:,}"
        f"（{percent(v['progress'])}），到期 {_site(ctx, v['due'])}，預計完成 "
        f"{_site(ctx, v['expected_completion'])}{late_zh}。",
        f"/api/v1/orders/{quote(v['order'], safe='')}",
        _as_of(ctx),
    )


def run_open_orders(ctx: Context, args: dict[str, Any]) -> Result:
    views = [
        v.to_json()
        for v in list_orders(ctx.plant.store, ctx.factory, now=ctx.now)
        if v.status in OPEN
    ]
    expected = [v["expected_completion"] for v in views if v["expected_completion"]]
    last = max(expected, key=lambda t: dt.datetime.fromisoformat(t)) if expected else None
    values = [
        Value("open_orders", len(views), "orders"),
        Value("expected_completion", last, "time"),
    ]
    return Result(
        values,
        f"{len(views)} open order(s) (created, released or in progress); the last is expected "
        f"to finish {_site(ctx, last)} (each order's expected completion from its own pace or "
        "its routing times).",
        f"有 {len(views)} 張未完成訂單（已建立、已下達或生產中）；預計最後一張於 {_site(ctx, last)} 完成。",
        "/api/v1/orders",
        _as_of(ctx),
    )


def run_wip(ctx: Context, args: dict[str, Any]) -> Result:
    report = wip(ctx.plant.store, ctx.factory, now=ctx.now).to_json()
    machine = args.get("machine")
    if machine:
        units = sum(m["units"] for m in report["by_machine"] if m["machine"] == machine)
        values = [Value(f"units:{_short(machine)}", units, "units")]
        return Result(
            values,
            f"{units:,} units are in progress at {_short(machine)}.",
            f"{_short(machine)} 有 {units:,} 件在製品。",
            "/api/v1/wip",
            _as_of(ctx),
        )
    values = [Value("units", report["units"], "units")]
    top = sorted((m for m in report["by_machine"] if m["units"]), key=lambda m: -int(m["units"]))[
        :3
    ]
    where_en = ", ".join(f"{_short(m['machine']) or 'waiting'} {m['units']:,}" for m in top)
    where_zh = "、".join(f"{_short(m['machine']) or '等候機器'} {m['units']:,}" for m in top)
    return Result(
        values,
        f"{report['units']:,} units are in progress" + (f" ({where_en})." if top else "."),
        f"在製品共 {report['units']:,} 件" + (f"（{where_zh}）。" if top else "。"),
        "/api/v1/wip",
        _as_of(ctx),
    )


# ---------------------------------------------------------------------------- carbon and energy


@functools.lru_cache(maxsize=1)
def _shipped_factors() -> Any:
    """The shipped emission factors (the carbon panel's, read once: a packaged file)."""
    from microfab.green.factors import load_factors

    return load_factors()


def _intensity(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    """``GET /api/v1/carbon/intensity?from&to``'s figures (the carbon panel's computation)."""
    from microfab.green.intensity import energy_intensity
    from microfab.green.settings import load_settings as load_carbon_settings

    first, last = ctx.plant.time_range(args.get("from"), args.get("to"), ctx.zone)
    settings = load_carbon_settings(ctx.carbon_settings)
    return energy_intensity(
        ctx.plant.store,
        ctx.factory,
        start=first,
        end=last,
        settings=settings,
        factors=_shipped_factors(),
    ).to_json()


def _carbon_link(args: dict[str, Any]) -> str:
    return _link("/api/v1/carbon/intensity", **{"from": args.get("from"), "to": args.get("to")})


def run_carbon(ctx: Context, args: dict[str, Any]) -> Result:
    doc = _intensity(ctx, args)
    product = args.get("product")
    rows = [r for r in doc["rows"] if product is None or r["product"] == product]
    values: list[Value] = []
    en: list[str] = []
    zh: list[str] = []
    for r in rows:
        s = "" if product else f":{r['product']}"
        values += [
            Value(f"kgco2e_per_unit{s}", r["kgco2e_per_unit"], "kgCO2e/unit"),
            Value(f"kwh_per_unit{s}", r["kwh_per_unit"], "kWh/unit"),
            Value(f"units{s}", r["units"], "units"),
        ]
        upstream = "" if "upstream" not in " ".join(r["flags"]) else " (materials not included)"
        if r["kgco2e_per_unit"] is None:
            en.append(f"{r['product']}: no finished units, so no figure per unit")
            zh.append(f"{r['product']}：沒有成品，所以沒有每件數字")
            continue
        en.append(
            f"{r['product']}: {r['kgco2e_per_unit']} kgCO2e and {r['kwh_per_unit']} kWh per unit "
            f"over {r['units']:,} units{upstream}"
        )
        zh.append(
            f"{r['product']}：每件 {r['kgco2e_per_unit']} kgCO2e、{r['kwh_per_unit']} 度電"
            f"（共 {r['units']:,} 件）"
        )
    if not rows:
        what = product or "any product"
        note = f" ({doc['message']})" if doc.get("message") else ""
        return Result(
            [],
            f"No finished units of {what} {_when(args, False)}, so no carbon per unit{note}.",
            f"{_when(args, True)} 沒有 {product or '任何產品'} 的完成品，所以沒有每件碳排放。",
            _carbon_link(args),
            _times(ctx, args),
        )
    return Result(
        values,
        f"Carbon per unit {_when(args, False)}: " + "; ".join(en) + ".",
        f"{_when(args, True)} 每件碳排放：" + "；".join(zh) + "。",
        _carbon_link(args),
        _times(ctx, args),
    )


def run_carbon_order(ctx: Context, args: dict[str, Any]) -> Result:
    """One order's footprint: ``microfab carbon footprint --order ID --allow-missing`` (over the
    stored data, or the period asked)."""
    from microfab.green.footprint import footprint, orders_of
    from microfab.green.readings import account_period, period_range
    from microfab.green.settings import load_settings as load_carbon_settings

    order = str(args["order"])
    first = parse_time(args["from"], ctx.zone) if args.get("from") else None
    last = parse_time(args["to"], ctx.zone) if args.get("to") else None
    settings = load_carbon_settings(ctx.carbon_settings)
    first, last = period_range(ctx.plant.store, ctx.factory, first, last)
    period = account_period(ctx.plant.store, ctx.factory, settings, first, last)
    orders = orders_of(period, order=order)
    if not orders:
        raise InputError(f"no energy or counts of order {order} are recorded in that period")
    sku = period.orders[orders[0]].product
    fp = footprint(
        period, ctx.factory, settings, _shipped_factors(), orders, sku, allow_missing=True
    )
    doc = fp.to_json()
    values = [
        Value("kgco2e_per_unit", doc["kgco2e_per_unit"], "kgCO2e/unit"),
        Value("total_kgco2e", doc["total_kgco2e"], "kgCO2e"),
        Value("energy_kwh", doc["energy_kwh"], "kWh"),
        Value("units", doc["units"], "units"),
    ]
    span = Period(first.astimezone(ctx.zone), last.astimezone(ctx.zone))
    upstream = " (materials not included)" if doc["upstream_kgco2e"] == 0 else ""
    if doc["kgco2e_per_unit"] is None:
        return Result(
            values,
            f"{order} ({sku}) finished no units {_when(args, False)}, so it has no footprint per "
            f"unit; {doc['energy_kwh']:.3f} kWh were recorded for it.",
            f"{order}（{sku}）{_when(args, True)} 沒有成品，所以沒有每件碳足跡；記錄用電 "
            f"{doc['energy_kwh']:.3f} 度。",
            None,
            span,
        )
    return Result(
        values,
        f"{order} ({sku}): {doc['total_kgco2e']:.3f} kgCO2e in all, {doc['kgco2e_per_unit']} "
        f"kgCO2e per unit over {doc['units']:,} finished units, {doc['energy_kwh']:.3f} kWh"
        f"{upstream} — as `microfab carbon footprint --order {order} --allow-missing` gives it.",
        f"{order}（{sku}）：共 {doc['total_kgco2e']:.3f} kgCO2e，每件 {doc['kgco2e_per_unit']} "
        f"kgCO2e（{doc['units']:,} 件成品），用電 {doc['energy_kwh']:.3f} 度。",
        None,
        span,
    )


def run_energy(ctx: Context, args: dict[str, Any]) -> Result:
    doc = _intensity(ctx, args)
    values = [Value(f"kwh:{r['product']}", r["kwh"], "kWh") for r in doc["rows"]]
    standby = [i for i in doc["idle"] if i["standby_kwh"]]
    values += [
        Value(f"standby_kwh:{_short(i['machine'])}", i["standby_kwh"], "kWh") for i in standby
    ]
    if not doc["rows"] and not standby:
        return Result(
            [],
            f"No energy was recorded {_when(args, False)}.",
            f"{_when(args, True)} 沒有能源記錄。",
            _carbon_link(args),
            _times(ctx, args),
        )
    en = ", ".join(f"{r['product']} {r['kwh']} kWh" for r in doc["rows"])
    zh = "、".join(f"{r['product']} {r['kwh']} 度" for r in doc["rows"])
    idle = sum(i["standby_kwh"] for i in standby)
    return Result(
        values,
        f"Energy for production {_when(args, False)}: {en or 'none'}; machines on standby drew "
        f"{idle:.3f} kWh.",
        f"{_when(args, True)} 生產用電：{zh or '沒有'}；機器待機用電 {idle:.3f} 度。",
        _carbon_link(args),
        _times(ctx, args),
    )


# ---------------------------------------------------------------------------- alerts and health


def run_alerts(ctx: Context, args: dict[str, Any]) -> Result:
    from microfab.store.alerts import list_alerts

    found = [a.to_json() for a in list_alerts(ctx.plant.store, open_only=True, limit=50)]
    values = [Value("open_alerts", len(found), "alerts")]
    if not found:
        return Result(
            values,
            "No alert is open.",
            "沒有未處理的警報。",
            "/api/v1/alerts?state=open",
            _as_of(ctx),
        )
    en = "; ".join(f"{_short(a['machine'])}: {a['message']}" for a in found[:5])
    return Result(
        values,
        f"{len(found)} alert(s) open: {en}.",
        f"有 {len(found)} 個未處理警報：{en}。",
        "/api/v1/alerts?state=open",
        _as_of(ctx),
    )


def run_health(ctx: Context, args: dict[str, Any]) -> Result:
    from microfab.quality.maintenance import health_report

    paths = [ref.path for ref in ctx.factory.machines()]
    report = health_report(ctx.plant.store, paths)
    rows = report["machines"]
    machine = args.get("machine")
    if machine:
        rows = [r for r in rows if r["machine"] == machine]
    rated = [r for r in rows if r["health"] is not None]
    values = [Value(f"health:{_short(r['machine'])}", r["health"], "ratio") for r in rated[:3]]
    values += [Value(f"rul_h:{_short(r['machine'])}", r["rul_h"], "h") for r in rated[:3]]
    if not rated:
        return Result(
            [],
            "Not enough telemetry yet to rate machine health.",
            "遙測數據未夠，未能評估機器健康。",
            "/quality",
            _as_of(ctx),
        )
    worst = rated[0]
    return Result(
        values,
        f"{_short(worst['machine'])} has the lowest health, {percent(worst['health'])}: "
        f"{worst.get('recommendation', '')}.",
        f"健康度最低的是 {_short(worst['machine'])}：{percent(worst['health'])}。",
        "/quality",
        _as_of(ctx),
    )


def run_spc(ctx: Context, args: dict[str, Any]) -> Result:
    """The control chart of a characteristic, as the quality page (and ``microfab spc``) draw
    it with their defaults: points out of control, the centre line, the last point."""
    from microfab.quality.spc import spc_report

    characteristic = str(args["characteristic"])
    doc = spc_report(ctx.plant.store, ctx.factory, characteristic)
    points = doc["points"]
    main = next(iter(doc["limits"]))
    center = doc["limits"][main]["center"]
    out = doc["out_of_control"]
    last = points[-1] if points else None
    values = [
        Value("out_of_control", len(out), "points"),
        Value("points", len(points), "points"),
        Value(f"center:{main}", center, "value"),
    ]
    if last is not None:
        values.append(Value("last_value", last["value"], "value"))
    state_en = "in control" if not out else f"{len(out)} point(s) out of control"
    state_zh = "受控" if not out else f"{len(out)} 點失控"
    recent = (
        "" if not out or last is None or out[-1] != last["index"] else " (including the latest)"
    )
    link = _link("/quality", c=characteristic)
    return Result(
        values,
        f"{characteristic} ({doc['chart']} chart, {len(points)} points): {state_en}{recent}; "
        f"centre line {center:.4g}.",
        f"{characteristic}（{doc['chart']} 控制圖，{len(points)} 點）：{state_zh}；中心線 {center:.4g}。",
        link,
        _as_of(ctx),
    )


# ---------------------------------------------------------------------------- the plan


def run_plan(ctx: Context, args: dict[str, Any]) -> Result:
    """The current plan (``GET /api/v1/plan``): one order's planned start and end, or the plan's
    orders, late ones and when all is done."""
    from microfab.plan.plan_file import PlanFile

    document = PlanFile(ctx.plan_file).require()
    orders = document["orders"]
    order = args.get("order")
    if order:
        row = next((o for o in orders if o["order"] == order), None)
        if row is None:
            raise InputError(f"{order} is not in the current plan (it plans open orders only)")
        values = [
            Value("planned_start", row["planned_start"], "time"),
            Value("planned_end", row["planned_end"], "time"),
            Value("late", row["late"], "bool"),
        ]
        late_en = ", late against its due time" if row["late"] else ", on time"
        late_zh = "，會遲過交期" if row["late"] else "，準時"
        return Result(
            values,
            f"The plan starts {order} at {_site(ctx, row['planned_start'])} and finishes it at "
            f"{_site(ctx, row['planned_end'])} (due {_site(ctx, row['due'])}){late_en}.",
            f"計劃中 {order} 於 {_site(ctx, row['planned_start'])} 開始、"
            f"{_site(ctx, row['planned_end'])} 完成（交期 {_site(ctx, row['due'])}）{late_zh}。",
            "/api/v1/plan",
            _as_of(ctx),
        )
    ends = [o["planned_end"] for o in orders if o.get("planned_end")]
    last = max(ends, key=lambda t: dt.datetime.fromisoformat(t)) if ends else None
    late = sum(1 for o in orders if o["late"])
    values = [
        Value("orders", len(orders), "orders"),
        Value("late", late, "orders"),
        Value("planned_end", last, "time"),
    ]
    return Result(
        values,
        f"The current plan has {len(orders)} order(s), {late} late; all done at "
        f"{_site(ctx, last)}.",
        f"現時計劃有 {len(orders)} 張訂單，{late} 張會遲；全部於 {_site(ctx, last)} 完成。",
        "/api/v1/plan",
        _as_of(ctx),
    )


# ---------------------------------------------------------------------------- funding


def run_funding_evidence(ctx: Context, args: dict[str, Any]) -> Result:
    from microfab.funding.evidence import gather_store_facts, smart_line_evidence

    line = args.get("line")
    facts = gather_store_facts(ctx.plant.store, ctx.factory)
    doc = smart_line_evidence(ctx.factory, facts, line=line).to_json()
    values: list[Value] = []
    en: list[str] = []
    zh: list[str] = []
    for ln in doc["lines"]:
        s = "" if len(doc["lines"]) == 1 else f":{_short(ln['line'])}"
        values += [
            Value(f"smart_line_share{s}", ln["smart_line_share"], "ratio"),
            Value(f"machines_meeting_criteria{s}", ln["machines_meeting_criteria"], "machines"),
            Value(f"machines_counted{s}", ln["machines_counted"], "machines"),
        ]
        en.append(
            f"{_short(ln['line'])}: {ln['machines_meeting_criteria']} of {ln['machines_counted']} "
            f"machines meet the smart-line criteria ({percent(ln['smart_line_share'])})"
        )
        zh.append(
            f"{_short(ln['line'])}：{ln['machines_counted']} 部機中有 "
            f"{ln['machines_meeting_criteria']} 部符合智能生產線準則（{percent(ln['smart_line_share'])}）"
        )
    return Result(
        values,
        "Smart-line evidence from the stored data: " + "; ".join(en) + ".",
        "智能生產線證明（來自已儲存數據）：" + "；".join(zh) + "。",
        _link("/funding/evidence", line=line),
        _as_of(ctx),
    )


def run_funding_assessment(ctx: Context, args: dict[str, Any]) -> Result:
    from microfab.funding.application import parse_application
    from microfab.funding.assess import assess
    from microfab.model.located_yaml import read_file

    path = ctx.funding_application
    if path is None:
        raise InputError(
            "no funding application file is set; give --application FILE (or set "
            "MICROFAB_FUNDING_APPLICATION), or run 'microfab funding assess FILE'"
        )
    doc = assess(parse_application(read_file(path, "funding application"), str(path))).to_json()
    values = [
        Value("eligible", doc["eligible"], "bool"),
        Value("max_grant_hkd", doc["max_grant_hkd"], "HKD"),
        Value("eligible_cost_hkd", doc["eligible_cost_hkd"], "HKD"),
    ]
    failed = [r["detail"] for r in doc["reasons"] if not r["passed"] and r["blocking"]][:3]
    why = ("; not met: " + "; ".join(failed)) if failed else ""
    return Result(
        values,
        f"{doc['scheme']} ({doc['version']}) for '{doc['project']}': "
        + ("eligible" if doc["eligible"] else "not eligible")
        + f", grant up to HK${doc['max_grant_hkd']:,}{why}.",
        f"{doc['scheme']}（{doc['version']}）「{doc['project']}」："
        + ("符合資格" if doc["eligible"] else "不符合資格")
        + f"，資助上限 HK${doc['max_grant_hkd']:,}。",
        "/funding",
        Period(None, None),
    )


# ---------------------------------------------------------------------------- the registry


P = Permission.PLANT_READ
TOOLS: dict[str, Tool] = {
    t.name: t
    for t in [
        Tool(
            "oee",
            P,
            run_oee,
            "OEE of a line or machine for a period",
            "生產線或機器的 OEE",
            (
                "What was the OEE of meal-1 yesterday?",
                "OEE of filler-1 this week",
                "Which machine had the lowest OEE yesterday?",
            ),
            ("昨日一號線OEE幾多？", "今個星期充填機嘅OEE係幾多？", "尋日邊部機OEE最低？"),
            takes=("line", "machine", "by", "period"),
        ),
        Tool(
            "output",
            P,
            run_output,
            "Good units made by a line or machine",
            "良品產量",
            ("How many good units did the line make today?",),
            ("今日出咗幾多貨？",),
            takes=("line", "machine", "period"),
        ),
        Tool(
            "downtime",
            P,
            run_downtime,
            "The largest downtime reasons",
            "最大的停機原因",
            ("What were the top downtime reasons this week?",),
            ("上個禮拜最大嘅停機原因係咩？",),
            takes=("line", "machine", "period"),
        ),
        Tool(
            "worst_machine",
            P,
            run_worst_machine,
            "Which machine lost the most time",
            "邊部機停機最耐",
            ("Which machine lost the most time this week?",),
            ("尋日邊部機停得最耐？",),
            takes=("line", "period"),
        ),
        Tool(
            "machine_state",
            P,
            run_machine_state,
            "Which machines are not running now, or one machine's state",
            "而家邊部機無運行，或某部機的狀態",
            ("Is anything down right now?", "Is filler-1 running now?"),
            ("邊部機而家停咗？",),
            takes=("machine",),
        ),
        Tool(
            "late_orders",
            P,
            run_late_orders,
            "Which orders are late",
            "邊啲訂單延誤",
            ("Which orders are late?",),
            ("有邊啲單遲咗？",),
        ),
        Tool(
            "order_status",
            P,
            run_order_status,
            "Progress and expected completion of an order",
            "訂單進度和預計完成時間",
            ("How far is order WO261123-1?",),
            ("WO261123-1 幾時做完？",),
            takes=("order",),
            needs=("order",),
        ),
        Tool(
            "open_orders",
            P,
            run_open_orders,
            "Open orders and when the last will finish",
            "未完成訂單及預計完成時間",
            ("When will the open orders be finished?",),
            ("所有單幾時做得完？",),
        ),
        Tool(
            "plan",
            P,
            run_plan,
            "The current plan: planned start and end of orders",
            "現時生產計劃：訂單的計劃開始及完成時間",
            ("When does the plan finish everything?",),
            ("個生產計劃幾時做晒？",),
            takes=("order",),
        ),
        Tool(
            "wip",
            P,
            run_wip,
            "Work in progress",
            "在製品數量",
            ("How much work in progress is there?",),
            ("而家有幾多在製品？",),
            takes=("machine",),
        ),
        Tool(
            "carbon",
            P,
            run_carbon,
            "Carbon per unit of a product for a period",
            "產品每件碳排放",
            ("What is the carbon per unit of MEAL-CHK-RICE this month?",),
            ("今個月雞飯每盒碳排放幾多？",),
            takes=("product", "period"),
        ),
        Tool(
            "carbon_order",
            P,
            run_carbon_order,
            "Carbon footprint of a work order",
            "工單的碳足跡",
            ("What is the carbon footprint of order WO26112019-007?",),
            ("WO26112019-007 嘅碳排放係幾多？",),
            takes=("order", "period"),
            needs=("order",),
            default_period=False,
        ),
        Tool(
            "energy",
            P,
            run_energy,
            "Electricity used for production and on standby",
            "生產及待機用電",
            ("How much electricity did we use yesterday?",),
            ("尋日用咗幾多電？",),
            takes=("period",),
        ),
        Tool(
            "alerts",
            P,
            run_alerts,
            "Open alerts",
            "未處理的警報",
            ("Are there any open alerts?",),
            ("而家有冇警報？",),
        ),
        Tool(
            "health",
            P,
            run_health,
            "Machine health and remaining useful life",
            "機器健康及剩餘壽命",
            ("Which machine needs maintenance?",),
            ("邊部機要保養？",),
            takes=("machine",),
        ),
        Tool(
            "spc",
            P,
            run_spc,
            "Whether a machine's measurement is in statistical control (SPC)",
            "機器量度是否受控（統計製程控制）",
            ("Is filler-1's fill mass in control?",),
            ("充填機重量受唔受控？",),
            takes=("machine",),
            needs=("machine",),
        ),
        Tool(
            "funding_evidence",
            Permission.FUNDING_READ,
            run_funding_evidence,
            "Smart-line evidence for NIFS",
            "新型工業化資助的智能生產線證明",
            ("How many machines meet the smart-line criteria?",),
            ("有幾多部機符合智能生產線準則？",),
            takes=("line",),
        ),
        Tool(
            "funding_assessment",
            Permission.FUNDING_READ,
            run_funding_assessment,
            "Eligibility and grant of the funding application",
            "資助申請是否合資格及資助額",
            ("Am I eligible for NIFS with this project?",),
            ("我個項目申唔申請到新型工業化資助？",),
        ),
    ]
}
"""Every tool by name."""

STOCK_TOOLS: dict[str, Tool] = {}
"""Stock levels and expiring lots: ``stock/`` registers its tools here when it lands (a
``Tool`` per read function, permission ``plant.read``), with intents in
:data:`microfab.assist.understand.INTENTS` under the tool's name. Until then a stock question is
declined with a sentence saying so."""


def tool(name: str) -> Tool:
    found = TOOLS.get(name) or STOCK_TOOLS.get(name)
    if found is None:
        raise KeyError(name)
    return found


def run(tool_name: str, ctx: Context, args: dict[str, Any]) -> Result:
    """Run a tool; a microfab error it raises (no data, a window too long) is the caller's to
    turn into a declined answer."""
    return tool(tool_name).run(ctx, args)
