"""Smart-line evidence for a NIFS/RFS application, from the factory model and the stored data.

Per line and per criterion (IoT, real-time data, data analytics, advanced HMI, AI/ML, robotics)
it reports what microfab can show, and says so when it can show nothing: a criterion without
evidence is reported as ``no_evidence`` (or ``not_measured`` without a database), never invented.

Per machine, a machine *meets the criteria* when it is connected (its events are stored) and its
data feeds analytics (OEE is computed from it) or it is a robot or AGV. Energy meters are not
production machines and are left out of the line's share. The definitions are in docs/funding.md.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from microfab.model.factory import Factory, MachineKind, MachineRef
from microfab.store.event_store import EventStore
from microfab.store.vision import DetectorUse, ModelUse

ROBOT_KINDS = (MachineKind.ROBOT_ARM, MachineKind.AGV)
REALTIME_LIMIT_S = 10.0
"""Median ingest delay (event time → stored) at or under which a machine's data counts as real time."""
CLOCK_SUSPECT_S = 3600.0
"""A median delay beyond ±1 h means the event times are not wall-clock (a simulated run or a
device clock far off): latency cannot be measured from such data."""
CRITERIA = ("iot", "real_time_data", "data_analytics", "advanced_hmi", "ai_ml", "robotics")


@dataclass(frozen=True, slots=True)
class StoreFacts:
    """What the store says about the machines (gathered by :func:`gather_store_facts`)."""

    source: str
    streams: dict[str, dict[str, tuple[int, dt.datetime, dt.datetime]]]
    """machine path -> stream -> (events, first ts, last ts)"""
    delays: dict[str, list[float]]
    """machine path -> ingest delays (s) of its newest events"""
    operator_entries: dict[str, int]
    dead_letters: int
    unknown_machines: int
    line_oee: dict[str, dict[str, Any]] = field(default_factory=dict)
    """line path -> OEE row (``level=line``) over the stored period"""
    models_used: list[ModelUse] = field(default_factory=list)
    """inspections judged by a vision model, per machine, model and version"""
    model_cards: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    """(model, version) -> the card a station registered"""
    detector_alerts: list[DetectorUse] = field(default_factory=list)
    """alerts the telemetry anomaly detector raised, per machine"""


@dataclass(slots=True)
class MachineEvidence:
    ref: MachineRef
    criteria: dict[str, bool | None]
    events: int = 0
    events_per_hour: float | None = None
    streams: list[str] = field(default_factory=list)
    median_delay_s: float | None = None

    @property
    def smart(self) -> bool:
        c = self.criteria
        return bool(c["iot"]) and (bool(c["data_analytics"]) or bool(c["robotics"]))

    def to_json(self) -> dict[str, Any]:
        return {
            "machine": self.ref.path,
            "name": self.ref.machine.name,
            "kind": self.ref.machine.kind.value,
            "criteria": self.criteria,
            "meets_criteria": self.smart,
            "events": self.events,
            "events_per_hour": self.events_per_hour,
            "streams": self.streams,
            "median_ingest_delay_s": self.median_delay_s,
        }


@dataclass(slots=True)
class CriterionEvidence:
    criterion: str
    status: str
    """``evidenced``, ``partial``, ``no_evidence`` or ``not_measured``."""
    evidence: list[str]

    def to_json(self) -> dict[str, Any]:
        return {"criterion": self.criterion, "status": self.status, "evidence": self.evidence}


@dataclass(slots=True)
class LineEvidence:
    path: str
    name: str
    machines: list[MachineEvidence]
    criteria: list[CriterionEvidence]

    @property
    def share(self) -> Fraction:
        if not self.machines:
            return Fraction(0)
        return Fraction(sum(m.smart for m in self.machines), len(self.machines))

    def to_json(self) -> dict[str, Any]:
        share = self.share
        return {
            "line": self.path,
            "name": self.name,
            "machines_counted": len(self.machines),
            "machines_meeting_criteria": sum(m.smart for m in self.machines),
            "smart_line_share": round(float(share), 4),
            "smart_line_share_fraction": f"{share.numerator}/{share.denominator}",
            "criteria": [c.to_json() for c in self.criteria],
            "machines": [m.to_json() for m in self.machines],
        }


@dataclass(slots=True)
class SmartLineEvidence:
    company: str
    source: str
    lines: list[LineEvidence]
    notes: list[str]

    def to_json(self) -> dict[str, Any]:
        return {
            "company": self.company,
            "source": self.source,
            "definition": (
                "a machine meets the criteria when it is connected (its events are stored) and "
                "its data feeds analytics (OEE) or it is a robot/AGV; energy meters are not counted"
            ),
            "lines": [ln.to_json() for ln in self.lines],
            "notes": self.notes,
        }


def gather_store_facts(store: EventStore, factory: Factory) -> StoreFacts:
    """Read what the evidence needs from an open :class:`~microfab.store.EventStore`."""
    from microfab.store.funding import ingest_delays, operator_entries, stream_activity
    from microfab.track.oee import oee_rows

    streams: dict[str, dict[str, tuple[int, dt.datetime, dt.datetime]]] = defaultdict(dict)
    for row in stream_activity(store):
        streams[row.machine][row.stream] = (row.events, row.first_ts, row.last_ts)
    delays: dict[str, list[float]] = defaultdict(list)
    for d in ingest_delays(store):
        delays[d.machine].append(d.seconds)
    line_oee = {row.line: row.to_json() for row in oee_rows(store, factory, level="line")}
    from microfab.store.vision import anomaly_alert_use, model_use, registered_models

    cards = {(r.model, r.version): r.card for r in registered_models(store)}
    return StoreFacts(
        source=f"store {store.display_url}",
        streams=dict(streams),
        delays=dict(delays),
        operator_entries=operator_entries(store),
        dead_letters=store.dead_letter_count(),
        unknown_machines=len(store.unknown_machines()),
        line_oee=line_oee,
        models_used=model_use(store),
        model_cards=cards,
        detector_alerts=anomaly_alert_use(store),
    )


def smart_line_evidence(
    factory: Factory,
    facts: StoreFacts | None,
    *,
    source: str = "",
    line: str | None = None,
    realtime_limit_s: float = REALTIME_LIMIT_S,
) -> SmartLineEvidence:
    """Evidence per line (all lines, or the one named by id or path)."""
    groups: dict[str, list[MachineRef]] = {}
    for ref in factory.machines():
        path = f"{ref.site.id}/{ref.area.id}/{ref.line.id}"
        if line is not None and line not in (path, ref.line.id):
            continue
        groups.setdefault(path, []).append(ref)
    if line is not None and not groups:
        from microfab.errors import NotFoundError

        known = ", ".join(
            sorted({f"{r.site.id}/{r.area.id}/{r.line.id}" for r in factory.machines()})
        )
        raise NotFoundError(f"no line '{line}' in the factory (lines: {known})")
    routed = {m for p in factory.products for op in p.routing for m in op.machines}
    lines = [_line(path, refs, facts, routed, realtime_limit_s) for path, refs in groups.items()]
    notes = []
    if facts is None:
        notes.append(
            "no database given: only the factory model was read; give --db to measure "
            "connectivity, latency and OEE from stored data"
        )
    else:
        notes.append(
            f"{facts.dead_letters} message(s) rejected into dead letters (kept with the reason, "
            "`microfab deadletters list`); "
            f"{facts.unknown_machines} machine path(s) sent data but are not in the factory model"
        )
    return SmartLineEvidence(
        company=factory.company.name,
        source=facts.source if facts is not None else source,
        lines=lines,
        notes=notes,
    )


def _line(
    path: str,
    refs: list[MachineRef],
    facts: StoreFacts | None,
    routed: set[str],
    realtime_limit_s: float,
) -> LineEvidence:
    counted = [r for r in refs if r.machine.kind is not MachineKind.ENERGY_METER]
    machines: list[MachineEvidence] = []
    clock_suspect = False
    for ref in counted:
        analysable = ref.machine.ideal_cycle_s is not None or ref.machine.id in routed
        robot = ref.machine.kind in ROBOT_KINDS
        if facts is None:
            criteria: dict[str, bool | None] = {
                "iot": None,
                "real_time_data": None,
                "data_analytics": None,
                "advanced_hmi": None,
                "ai_ml": None,
                "robotics": robot,
            }
            machines.append(MachineEvidence(ref, criteria))
            continue
        streams = facts.streams.get(ref.path, {})
        events = sum(n for n, _, _ in streams.values())
        rate = None
        if streams:
            first = min(a for _, a, _ in streams.values())
            last = max(b for _, _, b in streams.values())
            hours = (last - first).total_seconds() / 3600
            rate = round(events / hours, 1) if hours > 0 else None
        delays = facts.delays.get(ref.path, [])
        median = statistics.median(delays) if delays else None
        suspect = median is not None and abs(median) > CLOCK_SUSPECT_S
        clock_suspect = clock_suspect or suspect
        # up to 1 s negative is clock skew between the device and the server, not a fault
        realtime = None if median is None or suspect else -1.0 <= median <= realtime_limit_s
        criteria = {
            "iot": events > 0,
            "real_time_data": realtime,
            "data_analytics": analysable and "state" in streams and "count" in streams,
            "advanced_hmi": None,
            "ai_ml": True
            if any(u.machine == ref.path and u.inspections for u in facts.models_used)
            else None,
            "robotics": robot,
        }
        machines.append(
            MachineEvidence(
                ref,
                criteria,
                events=events,
                events_per_hour=rate,
                streams=sorted(streams),
                median_delay_s=round(median, 3) if median is not None else None,
            )
        )
    criteria_rows = [
        _iot(machines, facts),
        _realtime(machines, facts, clock_suspect, realtime_limit_s),
        _analytics(path, machines, facts),
        _hmi(refs, facts),
        _ai(refs, facts),
        _robotics(machines, facts),
    ]
    return LineEvidence(path, refs[0].line.name or refs[0].line.id, machines, criteria_rows)


def _names(machines: list[MachineEvidence]) -> str:
    return ", ".join(m.ref.machine.id for m in machines) or "none"


def _iot(machines: list[MachineEvidence], facts: StoreFacts | None) -> CriterionEvidence:
    configured = [
        m.ref.machine.id
        + f" ({', '.join(k for k in ('opcua', 'sparkplug', 'modbus') if getattr(m.ref.machine.connect, k))})"
        for m in machines
        if m.ref.machine.connect is not None
    ]
    lines = []
    if configured:
        lines.append(f"connector mapping in the factory model: {', '.join(configured)}")
    if facts is None:
        return CriterionEvidence("iot", "not_measured", [*lines, "no stored data read"])
    connected = [m for m in machines if m.criteria["iot"]]
    lines.append(f"{len(connected)} of {len(machines)} machines send data: {_names(connected)}")
    for m in connected:
        lines.append(
            f"{m.ref.machine.id}: {m.events:,} events ({', '.join(m.streams)}), "
            f"{m.events_per_hour if m.events_per_hour is not None else '—'} events/h"
        )
    status = _status(len(connected), len(machines))
    return CriterionEvidence("iot", status, lines)


def _realtime(
    machines: list[MachineEvidence], facts: StoreFacts | None, suspect: bool, limit: float
) -> CriterionEvidence:
    if facts is None:
        return CriterionEvidence("real_time_data", "not_measured", ["no stored data read"])
    measured = [m for m in machines if m.median_delay_s is not None]
    if suspect:
        worst = max(measured, key=lambda m: abs(m.median_delay_s or 0))
        return CriterionEvidence(
            "real_time_data",
            "no_evidence",
            [
                f"median delay from event time to storage is {worst.median_delay_s:,.0f} s on "
                f"{worst.ref.machine.id}: the event times are not wall-clock (a simulated run or "
                "a device clock far off), so latency cannot be measured from this data",
            ],
        )
    ok = [m for m in machines if m.criteria["real_time_data"]]
    lines = [f"{m.ref.machine.id}: median ingest delay {m.median_delay_s} s" for m in measured] or [
        "no recent events to measure"
    ]
    lines.insert(
        0, f"{len(ok)} of {len(machines)} machines within {limit:g} s (median, newest events)"
    )
    return CriterionEvidence("real_time_data", _status(len(ok), len(machines)), lines)


def _analytics(
    path: str, machines: list[MachineEvidence], facts: StoreFacts | None
) -> CriterionEvidence:
    spc = (
        "SPC: control charts and capability are available (`microfab spc`); whether they are "
        "used is not recorded"
        if _has_module("microfab.quality.spc")
        else "SPC: no evidence (statistical process control is not in this microfab version)"
    )
    if facts is None:
        return CriterionEvidence("data_analytics", "not_measured", ["no stored data read", spc])
    used = [m for m in machines if m.criteria["data_analytics"]]
    lines = [
        f"OEE computed from the data of {len(used)} of {len(machines)} machines: {_names(used)}"
    ]
    row = facts.line_oee.get(path)
    if row is not None and row.get("oee") is not None:
        lines.append(
            f"line OEE {row['oee']:.1%} (A {row['availability']:.1%}, P {row['performance']:.1%}, "
            f"Q {row['quality']:.1%}) from {row['from']} to {row['to']}; `microfab oee --line {path}`"
        )
    lines.append(spc)
    return CriterionEvidence("data_analytics", _status(len(used), len(machines)), lines)


def _hmi(refs: list[MachineRef], facts: StoreFacts | None) -> CriterionEvidence:
    lines = [
        "this microfab version serves a live dashboard (tiles, order board, OEE, downtime "
        "Pareto), operator pages and a shift report: `microfab serve` (docs/dashboard.md)"
    ]
    if facts is None:
        return CriterionEvidence("advanced_hmi", "not_measured", lines)
    entries = sum(facts.operator_entries.get(r.path, 0) for r in refs)
    lines.append(f"{entries} operator entr{'y' if entries == 1 else 'ies'} stored from this line")
    return CriterionEvidence("advanced_hmi", "evidenced" if entries else "partial", lines)


def _ai(refs: list[MachineRef], facts: StoreFacts | None = None) -> CriterionEvidence:
    vision = [r.machine.id for r in refs if r.machine.kind is MachineKind.VISION_INSPECTION]
    recorded = _ai_recorded(refs, facts) if facts is not None else []
    if recorded:
        return CriterionEvidence("ai_ml", "evidenced", recorded)
    lines = ["no AI/ML model in use is recorded in microfab or in the factory model"]
    if _has_module("microfab.quality.anomaly"):
        lines.append(
            "telemetry anomaly detection is available (`microfab anomalies`); whether it is used, "
            "and whether it counts as AI/ML, is not recorded"
        )
    if vision:
        lines.append(
            f"vision inspection machines ({', '.join(vision)}) may use one: attach the "
            "supplier's documentation"
        )
    for r in refs:
        if r.machine.inspection_model:
            lines.append(
                f"{r.machine.id} names the model card {r.machine.inspection_model} in the "
                "factory model, but no inspection judged by a model is stored yet"
            )
    return CriterionEvidence("ai_ml", "no_evidence", lines)


def _ai_recorded(refs: list[MachineRef], facts: StoreFacts) -> list[str]:
    """Evidence lines for the AI/ML models that ran on the line's machines (none: empty)."""
    names = {r.path: r.machine.id for r in refs}
    lines: list[str] = []
    for use in facts.models_used:
        if use.machine not in names or not use.inspections:
            continue
        card = facts.model_cards.get((use.model, use.version or ""), None)
        version = f" v{use.version}" if use.version else ""
        task = f" ({card.get('task')})" if card else ""
        lines.append(
            f"vision model {use.model}{version}{task} in use on {names[use.machine]} from "
            f"{use.first_ts:%Y-%m-%d %H:%M} to {use.last_ts:%Y-%m-%d %H:%M} UTC: "
            f"{use.inspections:,} inspections ({use.failed:,} failed), from the stored "
            "inspection events"
        )
        if card is None:
            lines.append(f"model card of {use.model}{version}: not registered in this store")
            continue
        lines.append(f"model card of {use.model}{version}: {card.get('provenance', '—')}")
        metrics = card.get("metrics") or {}
        figures = metrics.get("classes") or {}
        if figures:
            measured = "; ".join(
                f"{name} precision {f.get('precision', 0):.2f} recall {f.get('recall', 0):.2f}"
                for name, f in figures.items()
            )
            lines.append(
                f"measured ({metrics.get('method', 'method not stated')}, "
                f"{metrics.get('images', 0)} images): {measured}"
            )
        else:
            lines.append("measured precision/recall: not stated in the model card")
    for det in facts.detector_alerts:
        if det.machine not in names:
            continue
        lines.append(
            f"telemetry anomaly detector (robust covariance, `microfab anomalies`) raised "
            f"{det.alerts} alert(s) on {names[det.machine]} from {det.first_ts:%Y-%m-%d %H:%M} "
            f"to {det.last_ts:%Y-%m-%d %H:%M} UTC"
        )
    return lines


def _robotics(machines: list[MachineEvidence], facts: StoreFacts | None) -> CriterionEvidence:
    robots = [m for m in machines if m.criteria["robotics"]]
    if not robots:
        return CriterionEvidence("robotics", "no_evidence", ["no robot_arm or agv in the line"])
    lines = [f"{len(robots)} robot(s)/AGV(s) in the factory model: {_names(robots)}"]
    if facts is not None:
        for m in robots:
            lines.append(
                f"{m.ref.machine.id} ({m.ref.machine.kind.value}): {m.events:,} events stored"
            )
    return CriterionEvidence("robotics", "evidenced", lines)


def _has_module(name: str) -> bool:
    """True when this microfab version ships ``name`` (looked up, not imported)."""
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def _status(met: int, total: int) -> str:
    if met == 0:
        return "no_evidence"
    return "evidenced" if met == total else "partial"
