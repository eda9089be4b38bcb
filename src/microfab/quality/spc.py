"""Control charts of stored characteristics: ``MACHINE:METRIC`` telemetry or ``MACHINE:scrap``.

A *characteristic* names what is charted:

- ``MACHINE:METRIC`` — a telemetry metric (e.g. ``imm-1:melt_temp_c``): consecutive readings are
  grouped into subgroups of ``subgroup`` values for X̄-R / X̄-S, or charted one by one (I-MR);
  only readings taken while the machine ran count, unless asked otherwise;
- ``MACHINE:scrap`` — the machine's count events summed per ``period``: a p chart of the fraction
  scrapped (scrap / (good + scrap)), or a u chart of scrap per unit;
- ``MACHINE:defects`` — an inspection station's ``inspection`` events per ``period``: a p chart of
  the fraction failed (the defect rate of a vision model's verdicts).

``MACHINE`` is a machine id or its full path. Limits come from the first ``baseline`` subgroups;
every later point is judged against them. :func:`spc_report` returns the JSON document that
``microfab spc --json`` prints and the dashboard can draw.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from microfab.errors import InputError, NotFoundError
from microfab.model.events import format_ts
from microfab.model.factory import Factory, MachineRef
from microfab.model.oee import RUNNING
from microfab.model.spc import (
    CHART_KINDS,
    Capability,
    ChartKind,
    ChartSeries,
    ControlChart,
    Limits,
    RuleSet,
    capability,
    imr_chart,
    p_chart,
    u_chart,
    xbar_r_chart,
    xbar_s_chart,
)
from microfab.store.event_store import EventStore
from microfab.store.production import part_counts
from microfab.store.quality import (
    Sample,
    metric_names,
    metric_samples,
    state_changes,
    stream_span,
)

RUNNING_STATES = frozenset({RUNNING, "setup", "micro_stop"})
"""States in which telemetry describes the process at work."""

SCRAP = "scrap"
"""The metric name that charts scrap from count events instead of a telemetry metric."""
DEFECTS = "defects"
"""The metric name that charts the share of failed ``inspection`` events (a vision station's
defect rate) per ``period``: a p chart of failed / inspected."""


@dataclass(frozen=True, slots=True)
class Characteristic:
    """What a chart plots: one metric of one machine."""

    machine: MachineRef
    metric: str

    @property
    def name(self) -> str:
        return f"{self.machine.machine.id}:{self.metric}"

    @property
    def is_attribute(self) -> bool:
        return self.metric in (SCRAP, DEFECTS)


def find_machine(factory: Factory, machine: str) -> MachineRef:
    """A machine by id or full path; NotFoundError naming the choices otherwise."""
    refs = factory.machines()
    chosen = [r for r in refs if machine in (r.path, r.machine.id)]
    if not chosen:
        known = ", ".join(r.machine.id for r in refs)
        raise NotFoundError(f"no machine '{machine}' in the factory (machines: {known})")
    if len(chosen) > 1:
        raise NotFoundError(
            f"machine id '{machine}' is ambiguous; give its path: "
            + ", ".join(r.path for r in chosen)
        )
    return chosen[0]


def parse_characteristic(factory: Factory, text: str) -> Characteristic:
    machine, sep, metric = text.rpartition(":")
    if not sep or not machine or not metric:
        raise InputError(
            f"'{text}' is not a characteristic; write MACHINE:METRIC, e.g. imm-1:melt_temp_c, "
            "MACHINE:scrap or MACHINE:defects"
        )
    return Characteristic(find_machine(factory, machine), metric)


@dataclass(frozen=True, slots=True)
class Point:
    """One plotted point: the subgroup's time span and size."""

    start: dt.datetime
    end: dt.datetime
    n: int


def spc_report(
    store: EventStore,
    factory: Factory,
    characteristic: str,
    *,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    chart: ChartKind | None = None,
    subgroup: int = 5,
    period_s: float = 3600.0,
    baseline: int = 25,
    rules: RuleSet = "western-electric",
    lsl: float | None = None,
    usl: float | None = None,
    running_only: bool = True,
) -> dict[str, Any]:
    """Chart a stored characteristic; the JSON document of ``microfab spc --json``.

    Telemetry read while the machine was not running (idle, stopped, in a break) describes no
    process output and is left out unless ``running_only`` is False."""
    what = parse_characteristic(factory, characteristic)
    if chart is not None and chart not in CHART_KINDS:
        raise InputError(f"chart '{chart}' is not one of {', '.join(CHART_KINDS)}")
    if baseline < 2:
        raise InputError(f"--baseline {baseline} is too small; give at least 2 subgroups")
    if what.is_attribute:
        kind: ChartKind = chart or "p"
        if kind not in ("p", "u"):
            raise InputError(f"scrap is counted, not measured: use --chart p or u, not {kind}")
        if lsl is not None or usl is not None:
            raise InputError("spec limits (--lsl/--usl) apply to measured metrics, not to scrap")
        result, points = _attribute_chart(store, what, kind, start, end, period_s, baseline, rules)
        values: list[float] = []
    else:
        kind = chart or ("imr" if subgroup == 1 else "xbar-r")
        if kind in ("p", "u"):
            raise InputError(
                f"a {kind} chart counts scrap; chart {what.machine.machine.id}:scrap instead"
            )
        if kind == "imr":
            subgroup = 1
        elif not 2 <= subgroup <= 25:
            raise InputError(f"--subgroup {subgroup}: X̄ charts take 2 to 25 values per subgroup")
        result, points, values = _variables_chart(
            store, what, kind, start, end, subgroup, baseline, rules, running_only
        )
    return _document(what, result, points, values, lsl, usl, subgroup)


def _variables_chart(
    store: EventStore,
    what: Characteristic,
    kind: ChartKind,
    start: dt.datetime | None,
    end: dt.datetime | None,
    subgroup: int,
    baseline: int,
    rules: RuleSet,
    running_only: bool,
) -> tuple[ControlChart, list[Point], list[float]]:
    samples = metric_samples(store, what.machine.path, what.metric, start, end)
    if running_only:
        samples = _while_running(store, what.machine.path, samples, end)
    if not samples:
        names = metric_names(store, what.machine.path)
        raise NotFoundError(
            f"no readings of '{what.metric}' from {what.machine.machine.id} "
            + ("taken while it ran " if running_only else "")
            + "in this period"
            + (f"; its metrics are: {', '.join(names)}" if names else "; it reported no telemetry")
        )
    whole = len(samples) // subgroup * subgroup
    samples = samples[:whole]
    groups = [samples[i : i + subgroup] for i in range(0, whole, subgroup)]
    points = [Point(g[0].ts, g[-1].ts, len(g)) for g in groups]
    m = min(baseline, len(groups))
    if kind == "imr":
        result = imr_chart([s.value for s in samples], min(baseline, len(samples)), rules=rules)
    else:
        data = [[s.value for s in g] for g in groups]
        build = xbar_r_chart if kind == "xbar-r" else xbar_s_chart
        result = build(data, m, rules=rules)
    baseline_values = [s.value for g in groups[:m] for s in g]
    return result, points, baseline_values


def _while_running(
    store: EventStore, machine: str, samples: list[Sample], end: dt.datetime | None
) -> list[Sample]:
    """The samples taken while the machine was in a running state (by its state changes)."""
    changes = state_changes(store, [machine], None, end)
    times = [ts for _, ts, _, _ in changes]
    kept = []
    for sample in samples:
        i = bisect.bisect_right(times, sample.ts) - 1
        if i >= 0 and changes[i][2] in RUNNING_STATES:
            kept.append(sample)
    return kept


def _attribute_chart(
    store: EventStore,
    what: Characteristic,
    kind: ChartKind,
    start: dt.datetime | None,
    end: dt.datetime | None,
    period_s: float,
    baseline: int,
    rules: RuleSet,
) -> tuple[ControlChart, list[Point]]:
    if period_s <= 0 or not math.isfinite(period_s):
        raise InputError("--period must be a positive duration, e.g. 1h")
    stream = "inspection" if what.metric == DEFECTS else "count"
    span = stream_span(store, what.machine.path, stream)
    if span is None:
        if stream == "inspection":
            raise NotFoundError(f"{what.machine.machine.id} has no inspection results to chart")
        raise NotFoundError(f"{what.machine.machine.id} has no count events to chart scrap from")
    first = start or span[0]
    last = end or span[1] + dt.timedelta(milliseconds=1)
    buckets: dict[int, list[int]] = {}
    if stream == "inspection":  # each inspection is one unit judged, failed or not
        from microfab.store.quality import inspection_rows

        for judged in inspection_rows(store, first, last):
            if judged.machine != what.machine.path:
                continue
            bucket = buckets.setdefault(
                int((judged.ts - first).total_seconds() // period_s), [0, 0]
            )
            bucket[0] += 1
            bucket[1] += 0 if judged.passed else 1
    counts = part_counts(store, [what.machine.path], first, last) if stream == "count" else []
    for row in counts:  # corrections (signed) fall into the period of what they correct
        index = int((row.ts - first).total_seconds() // period_s)
        bucket = buckets.setdefault(index, [0, 0])
        bucket[0] += row.good + row.scrap
        bucket[1] += row.scrap
    keys = [k for k in sorted(buckets) if buckets[k][0] > 0]
    points = [
        Point(
            first + dt.timedelta(seconds=k * period_s),
            first + dt.timedelta(seconds=(k + 1) * period_s),
            buckets[k][0],
        )
        for k in keys
    ]
    sizes = [buckets[k][0] for k in keys]
    scrap = [max(0, buckets[k][1]) for k in keys]
    m = min(baseline, len(keys))
    build = p_chart if kind == "p" else u_chart
    return build(scrap, sizes, m, rules=rules), points


def _limits(limits: Limits) -> dict[str, float]:
    return {"center": limits.center, "lower": limits.lower, "upper": limits.upper}


def _series_rules(series: ChartSeries | None, count: int) -> list[list[int]]:
    found: list[list[int]] = [[] for _ in range(count)]
    if series is not None:
        for v in series.violations:
            if v.index < count:
                found[v.index].append(v.rule)
    return found


def _document(
    what: Characteristic,
    result: ControlChart,
    points: Sequence[Point],
    baseline_values: Sequence[float],
    lsl: float | None,
    usl: float | None,
    subgroup: int,
) -> dict[str, Any]:
    main = result.main
    disp = result.dispersion
    count = len(main.values)
    if result.kind == "imr":  # individual values: one point per reading
        spans = [(p.start, p.end) for p in points]
    else:
        spans = [(p.start, p.end) for p in points][:count]
    main_rules = _series_rules(main, count)
    disp_rules = _series_rules(disp, count)
    rows = []
    for i in range(count):
        row: dict[str, Any] = {
            "index": i,
            "from": format_ts(spans[i][0]),
            "to": format_ts(spans[i][1]),
            "baseline": i < result.baseline,
            "value": main.values[i],
            "lower": main.limits[i].lower,
            "upper": main.limits[i].upper,
            "rules": sorted(set(main_rules[i])),
        }
        if result.kind in ("p", "u"):
            row["n"] = points[i].n
        if disp is not None:
            j = i - 1 if result.kind == "imr" else i
            row["dispersion"] = disp.values[j] if 0 <= j < len(disp.values) else None
            row["dispersion_rules"] = sorted(set(disp_rules[i]))
        rows.append(row)
    cap: Capability | None = None
    if lsl is not None or usl is not None:
        cap = capability(baseline_values, lsl=lsl, usl=usl, sigma_within=result.sigma_within)
    return {
        "characteristic": what.name,
        "machine": what.machine.path,
        "metric": what.metric,
        "chart": result.kind,
        "subgroup_size": subgroup if result.kind in ("xbar-r", "xbar-s") else 1,
        "baseline_points": result.baseline,
        "limits": {
            main.name: _limits(main.limits[0]),
            **({disp.name: _limits(disp.limits[0])} if disp is not None else {}),
        },
        "sigma_within": result.sigma_within,
        "points": rows,
        "out_of_control": [i for i in result.out_of_control if i < count],
        "capability": None if cap is None else capability_json(cap),
    }


def capability_json(cap: Capability) -> dict[str, Any]:
    def ci(interval: Any) -> list[float] | None:
        return None if interval is None else [interval.low, interval.high]

    return {
        "n": cap.n,
        "mean": cap.mean,
        "sigma_within": cap.sigma_within,
        "sigma_overall": cap.sigma_overall,
        "lsl": cap.lsl,
        "usl": cap.usl,
        "confidence": cap.confidence,
        "cp": cap.cp,
        "cpk": cap.cpk,
        "pp": cap.pp,
        "ppk": cap.ppk,
        "cp_ci": ci(cap.cp_ci),
        "cpk_ci": ci(cap.cpk_ci),
        "pp_ci": ci(cap.pp_ci),
        "ppk_ci": ci(cap.ppk_ci),
    }
