"""Alerts: rules evaluated over the store, deduplicated and held off, stored, acknowledged, closed.

Rules (a YAML file, :func:`load_alert_rules`) are of five kinds:

- ``threshold``: a telemetry metric of a machine above ``above`` and/or below ``below`` for
  ``confirm`` readings in a row (readings taken while the machine ran, by default);
- ``spc``: a control-chart rule fired on a characteristic (``imm-1:cycle_s``, ``imm-2:scrap``)
  after its baseline, as ``microfab spc`` charts it;
- ``anomaly``: the telemetry anomaly detector of :mod:`microfab.quality.anomaly`;
- ``ccp``: a HACCP critical limit missed by a batch (:mod:`microfab.quality.haccp`);
- ``machine_down``: a machine down (``unplanned_stop`` by default) longer than ``minutes``.

:func:`run_alert_rules` evaluates every rule over the stored events, and turns the findings into
alerts by :func:`microfab.model.alerts.decide`: one open alert per rule, machine and cause
(repeats are counted into it), no re-raise within ``hold_off_min`` of a close. An alert stays
open (latched) until someone closes it; :func:`acknowledge_alert` and :func:`close_alert` record
who and when, in the alert and in the audit log. :func:`open_alerts` is what the dashboard's
banner shows. Delivery (MQTT, webhook, e-mail) is in :mod:`microfab.quality.alert_delivery`.
"""

from __future__ import annotations

import bisect
import datetime as dt
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from microfab.errors import InputError, MicrofabError, NotFoundError
from microfab.model.alerts import AlertFinding, AlertState, Decision, decide
from microfab.model.alerts import excursions as find_excursions
from microfab.model.alerts import stops as find_stops
from microfab.model.events import format_ts
from microfab.model.factory import Factory
from microfab.model.located_yaml import Loc, load_located_file
from microfab.model.spc import NotEnoughBaseline
from microfab.store.alerts import (
    StoredAlert,
    alert_state,
    fold_into,
    get_alert,
    insert_alert,
    latest_alert,
    list_alerts,
    set_alert_state,
)
from microfab.store.audit import append_audit
from microfab.store.event_store import EventStore

RUNNING_STATES = frozenset({"running", "setup", "micro_stop"})

Severity = Literal["info", "warning", "critical"]
RuleId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: RuleId
    severity: Severity = "warning"


class ThresholdRule(_Rule):
    """A metric beyond a fixed limit."""

    kind: Literal["threshold"]
    machine: str
    metric: str
    above: float | None = None
    below: float | None = None
    confirm: int = Field(1, ge=1, le=1000)
    running_only: bool = True


class SpcRule(_Rule):
    """A control-chart rule fired after the baseline."""

    kind: Literal["spc"]
    characteristic: str
    rule_set: Literal["western-electric", "nelson"] = "western-electric"
    rules: list[int] | None = None
    """Only these run-rule numbers raise an alert [default: every rule of the rule set]."""
    dispersion: bool = True
    """Whether the range / sd / moving-range chart beyond its limits raises an alert too."""
    subgroup: int = Field(5, ge=1, le=25)
    baseline: int = Field(25, ge=2)


class AnomalyRule(_Rule):
    """The telemetry anomaly detector."""

    kind: Literal["anomaly"]
    machines: list[str] | None = None
    baseline_h: float = Field(24.0, gt=0)
    false_alarms_per_day: float = Field(0.1, gt=0, le=1000)


class CcpRule(_Rule):
    """A HACCP critical limit missed by a batch."""

    kind: Literal["ccp"]
    severity: Severity = "critical"
    haccp: str
    """The HACCP limits file, relative to the rules file."""


class MachineDownRule(_Rule):
    """A machine down for longer than ``minutes``."""

    kind: Literal["machine_down"]
    minutes: float = Field(gt=0)
    machines: list[str] | None = None
    states: list[str] = Field(default_factory=lambda: ["unplanned_stop"])


AlertRule = Annotated[
    ThresholdRule | SpcRule | AnomalyRule | CcpRule | MachineDownRule,
    Field(discriminator="kind"),
]
RULE_KINDS = frozenset({"threshold", "spc", "anomaly", "ccp", "machine_down"})


class MqttDelivery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    broker: str
    username: str | None = None


AlertEvent = Literal["raised", "acknowledged", "closed"]
ALL_EVENTS: tuple[AlertEvent, ...] = ("raised", "acknowledged", "closed")


class WebhookDelivery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    url: Annotated[str, Field(pattern=r"^https?://")]
    events: list[AlertEvent] = Field(default_factory=lambda: list(ALL_EVENTS))


class EmailDelivery(BaseModel):
    """E-mail over SMTP; ``host``, ``port`` and ``user`` yield to ``MICROFAB_SMTP_HOST``,
    ``MICROFAB_SMTP_PORT`` and ``MICROFAB_SMTP_USER``; the password comes only from
    ``MICROFAB_SMTP_PASSWORD``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    to: list[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")]] = Field(min_length=1)
    sender: Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")] = "microfab@localhost"
    host: str = "localhost"
    port: int = Field(25, ge=1, le=65535)
    user: str | None = None
    starttls: bool = False
    min_severity: Severity = "warning"


class Delivery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    mqtt: MqttDelivery | None = None
    webhooks: list[WebhookDelivery] = Field(default_factory=list)
    email: EmailDelivery | None = None


class AlertRules(BaseModel):
    """An alert rules file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    hold_off_min: float = Field(60.0, ge=0)
    """No re-raise of a rule, machine and cause within this long after its alert was closed."""
    rules: list[AlertRule] = Field(min_length=1)
    delivery: Delivery = Field(default_factory=Delivery)
    folder: Path = Field(default=Path("."), exclude=True)
    """Where the file is (relative paths in it are read from here)."""


def _check(rules: AlertRules) -> list[tuple[Loc, str]]:
    faults: list[tuple[Loc, str]] = []
    seen: set[str] = set()
    for i, rule in enumerate(rules.rules):
        if rule.id in seen:
            faults.append((("rules", i, "id"), f"rule id '{rule.id}' is used twice"))
        seen.add(rule.id)
        if isinstance(rule, ThresholdRule):
            if rule.above is None and rule.below is None:
                faults.append((("rules", i), "a threshold needs 'above', 'below' or both"))
            elif rule.above is not None and rule.below is not None and rule.below >= rule.above:
                faults.append((("rules", i, "below"), "'below' must be less than 'above'"))
        if isinstance(rule, SpcRule) and rule.rules is not None:
            bad = [r for r in rule.rules if not 1 <= r <= 9]
            if bad:
                faults.append((("rules", i, "rules"), f"run rules are numbered 1–9, not {bad}"))
        if isinstance(rule, SpcRule) and ":" not in rule.characteristic:
            faults.append(
                (("rules", i, "characteristic"), "write MACHINE:METRIC, e.g. imm-1:cycle_s")
            )
    return faults


def load_alert_rules(path: Path) -> AlertRules:
    """Read an alert rules file; LocatedFileError (exit 2) names the line of every fault."""
    parsed = load_located_file(
        path,
        AlertRules,
        what="alert rules",
        expected="'rules' (a list)",
        tags=RULE_KINDS,
        check=_check,
    )
    return parsed.model_copy(update={"folder": path.parent})


# ---------------------------------------------------------------------------- evaluation


@dataclass(slots=True)
class RuleOutcome:
    """What one rule found: findings, or a note saying why it could not be evaluated."""

    rule: str
    findings: list[AlertFinding] = field(default_factory=list)
    note: str | None = None


def _machine_path(factory: Factory, machine: str) -> str:
    from microfab.quality.spc import find_machine

    return find_machine(factory, machine).path


def _machine_paths(factory: Factory, machines: list[str] | None) -> list[str]:
    if machines is None:
        return [ref.path for ref in factory.machines()]
    return [_machine_path(factory, m) for m in machines]


def _short(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def _threshold(
    store: EventStore, factory: Factory, rule: ThresholdRule, start: dt.datetime | None, end: Any
) -> list[AlertFinding]:
    from microfab.store.quality import metric_samples, state_changes

    path = _machine_path(factory, rule.machine)
    samples = metric_samples(store, path, rule.metric, start, end)
    if rule.running_only:
        changes = state_changes(store, [path], None, end)
        times = [ts for _, ts, _, _ in changes]
        kept = []
        for s in samples:
            i = bisect.bisect_right(times, s.ts) - 1
            if i >= 0 and changes[i][2] in RUNNING_STATES:
                kept.append(s)
        samples = kept
    limits = " and ".join(
        text
        for text in (
            f"above {rule.above:g}" if rule.above is not None else "",
            f"below {rule.below:g}" if rule.below is not None else "",
        )
        if text
    )
    found = []
    for exc in find_excursions(
        ((s.ts, s.value) for s in samples), above=rule.above, below=rule.below, confirm=rule.confirm
    ):
        found.append(
            AlertFinding(
                rule=rule.id,
                kind=rule.kind,
                severity=rule.severity,
                machine=path,
                cause=rule.metric,
                ts=exc.start,
                last_ts=exc.end,
                message=f"{rule.metric} of {_short(path)} {limits}: {exc.extreme:g}"
                + (f" ({exc.readings} readings in a row)" if exc.readings > 1 else ""),
                details={
                    "metric": rule.metric,
                    "above": rule.above,
                    "below": rule.below,
                    "extreme": exc.extreme,
                    "readings": exc.readings,
                    "until": format_ts(exc.end),
                },
            )
        )
    return found


def _spc(
    store: EventStore, factory: Factory, rule: SpcRule, start: dt.datetime | None, end: Any
) -> list[AlertFinding]:
    from microfab.quality.spc import spc_report

    report = spc_report(
        store,
        factory,
        rule.characteristic,
        start=start,
        end=end,
        subgroup=rule.subgroup,
        baseline=rule.baseline,
        rules=rule.rule_set,
    )
    if report["baseline_points"] >= len(report["points"]):
        raise NotEnoughBaseline(
            f"{rule.characteristic}: all {len(report['points'])} points are in the baseline "
            f"({rule.baseline} wanted); alerts start with the first point after it"
        )
    wanted = set(rule.rules) if rule.rules is not None else None
    flagged: list[tuple[int, list[int], bool]] = []
    for point in report["points"]:
        if point["baseline"]:
            continue
        fired = [r for r in point["rules"] if wanted is None or r in wanted]
        spread = rule.dispersion and bool(point.get("dispersion_rules"))
        if fired or spread:
            flagged.append((point["index"], fired, spread))
    episodes: list[list[tuple[int, list[int], bool]]] = []
    for item in flagged:
        if episodes and item[0] - episodes[-1][-1][0] <= 3:
            episodes[-1].append(item)
        else:
            episodes.append([item])
    points = report["points"]
    main = next(iter(report["limits"].values()))
    found = []
    for run in episodes:
        first, last = points[run[0][0]], points[run[-1][0]]
        fired = sorted({r for _, rs, _ in run for r in rs})
        spread = any(s for _, _, s in run)
        why = [f"rule {r}" for r in fired] + (["spread beyond its limits"] if spread else [])
        found.append(
            AlertFinding(
                rule=rule.id,
                kind=rule.kind,
                severity=rule.severity,
                machine=report["machine"],
                cause=report["metric"],
                ts=_parse(first["to"]),
                last_ts=_parse(last["to"]),
                message=f"{report['characteristic']} out of control ({', '.join(why)}): "
                f"{last['value']:.4g} against limits {main['lower']:.4g} … {main['upper']:.4g}",
                details={
                    "characteristic": report["characteristic"],
                    "chart": report["chart"],
                    "rules": fired,
                    "dispersion": spread,
                    "points": [i for i, _, _ in run],
                    "last_value": last["value"],
                    "limits": main,
                },
            )
        )
    return found


def _anomaly(
    store: EventStore, factory: Factory, rule: AnomalyRule, start: dt.datetime | None, end: Any
) -> tuple[list[AlertFinding], list[str]]:
    from microfab.quality.anomaly import DetectorSettings, anomaly_report

    report = anomaly_report(
        store,
        _machine_paths(factory, rule.machines),
        baseline_s=rule.baseline_h * 3600,
        start=start,
        end=end,
        settings=DetectorSettings(false_alarms_per_day=rule.false_alarms_per_day),
    )
    found, notes = [], []
    for machine in report["machines"]:
        if "note" in machine:
            notes.append(machine["note"])
        for a in machine["alerts"]:
            ev = a["evidence"].get(a["metric"], {})
            ts = _parse(a["ts"])
            found.append(
                AlertFinding(
                    rule=rule.id,
                    kind=rule.kind,
                    severity=rule.severity,
                    machine=machine["machine"],
                    cause=a["metric"],
                    ts=ts,
                    last_ts=ts,
                    message=f"abnormal telemetry on {_short(machine['machine'])}: {a['metric']} "
                    f"moved most (mean {ev.get('shift_sd', 0):+.1f} sd, spread "
                    f"×{ev.get('spread', 1):.2f}); score {a['score']:.1f} > {a['threshold']:.1f}",
                    details={"score": a["score"], "threshold": a["threshold"], **a["evidence"]},
                )
            )
    return found, notes


def _machine_down(
    store: EventStore, factory: Factory, rule: MachineDownRule, start: dt.datetime | None, end: Any
) -> list[AlertFinding]:
    from microfab.store.quality import state_changes

    paths = _machine_paths(factory, rule.machines)
    now = end or store.newest_ts()  # "now" for a stop still going on in stored data
    if now is None:
        return []
    changes = state_changes(store, paths, start, end)
    by_machine: dict[str, list[tuple[dt.datetime, str, str | None]]] = {}
    for machine, ts, state, reason in changes:
        by_machine.setdefault(machine, []).append((ts, state, reason))
    found = []
    for machine, rows in by_machine.items():
        for stop in find_stops(rows, rule.states):
            minutes = stop.minutes(now)
            if minutes <= rule.minutes:
                continue
            cause = stop.reason or stop.state
            ongoing = stop.end is None
            found.append(
                AlertFinding(
                    rule=rule.id,
                    kind=rule.kind,
                    severity=rule.severity,
                    machine=machine,
                    cause=cause,
                    ts=stop.start,
                    last_ts=stop.end or now,
                    message=f"{_short(machine)} {'has been' if ongoing else 'was'} down "
                    f"({stop.state}{', ' + stop.reason if stop.reason else ''}) for "
                    f"{minutes:.0f} min (limit {rule.minutes:g} min)",
                    details={
                        "state": stop.state,
                        "reason": stop.reason,
                        "minutes": round(minutes, 1),
                        "ongoing": ongoing,
                    },
                )
            )
    return found


def _ccp(
    store: EventStore, factory: Factory, rule: CcpRule, folder: Path, start: Any, end: Any
) -> list[AlertFinding]:
    from microfab.quality.haccp import batch_records, load_haccp

    plan = load_haccp(folder / rule.haccp)
    found = []
    for record in batch_records(store, factory, plan, start=start, end=end):
        for dev in record.deviations:
            found.append(
                AlertFinding(
                    rule=rule.id,
                    kind=rule.kind,
                    severity=rule.severity,
                    machine=record.machine,
                    cause=f"{record.order} {dev.limit}",
                    ts=dev.ts,
                    last_ts=dev.ts,
                    message=f"CCP {record.ccp} deviation, batch {record.order}: {dev.message}",
                    details={"ccp": record.ccp, "order": record.order, **dev.to_json()},
                )
            )
    return found


def evaluate_rules(
    store: EventStore,
    factory: Factory,
    rules: AlertRules,
    *,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
) -> list[RuleOutcome]:
    """Every rule over the stored events in ``[start, end)``; a rule that cannot be evaluated
    (too little baseline, an unknown machine) says why in its ``note`` instead of failing."""
    outcomes = []
    for rule in rules.rules:
        outcome = RuleOutcome(rule.id)
        try:
            if isinstance(rule, ThresholdRule):
                outcome.findings = _threshold(store, factory, rule, start, end)
            elif isinstance(rule, SpcRule):
                outcome.findings = _spc(store, factory, rule, start, end)
            elif isinstance(rule, AnomalyRule):
                outcome.findings, notes = _anomaly(store, factory, rule, start, end)
                outcome.note = "; ".join(notes) or None
            elif isinstance(rule, CcpRule):
                outcome.findings = _ccp(store, factory, rule, rules.folder, start, end)
            else:
                outcome.findings = _machine_down(store, factory, rule, start, end)
        except (NotEnoughBaseline, NotFoundError) as exc:
            outcome.note = exc.message
        outcomes.append(outcome)
    return outcomes


def _parse(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


# ---------------------------------------------------------------------------- alerts


@dataclass(slots=True)
class AlertRun:
    """What one evaluation did: alerts raised, repeats folded in, findings held off."""

    raised: list[StoredAlert] = field(default_factory=list)
    updated: int = 0
    held_off: int = 0
    known: int = 0
    notes: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "raised": [a.to_json() for a in self.raised],
            "updated": self.updated,
            "held_off": self.held_off,
            "known": self.known,
            "notes": self.notes,
        }


def apply_findings(
    store: EventStore,
    findings: list[AlertFinding],
    *,
    hold_off: dt.timedelta,
    now: dt.datetime | None = None,
) -> AlertRun:
    """Turn findings (any order) into stored alerts: raise, fold in, or hold off."""
    now = now or dt.datetime.now(dt.UTC)
    run = AlertRun()
    raised_ids = []
    with store.transaction() as conn:
        for finding in sorted(findings, key=lambda f: (f.ts, f.rule, f.machine, f.cause)):
            latest = latest_alert(conn, finding.key)
            decision = decide(finding, latest, now, hold_off)
            if decision == Decision.RAISE:
                alert_id = insert_alert(conn, finding, now)
                if alert_id is None:
                    run.known += 1
                else:
                    raised_ids.append(alert_id)
            elif decision == Decision.UPDATE:
                assert latest is not None
                if fold_into(conn, latest.id, finding):
                    run.updated += 1
                else:
                    run.known += 1
            elif decision == Decision.HELD_OFF:
                run.held_off += 1
            else:
                run.known += 1
    for alert_id in raised_ids:
        alert = get_alert(store, alert_id)
        if alert is not None:
            run.raised.append(alert)
    return run


def run_alert_rules(
    store: EventStore,
    factory: Factory,
    rules: AlertRules,
    *,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    now: dt.datetime | None = None,
) -> AlertRun:
    """Evaluate every rule and store the alerts (delivery is separate: see alert_delivery)."""
    outcomes = evaluate_rules(store, factory, rules, start=start, end=end)
    findings = [f for o in outcomes for f in o.findings]
    run = apply_findings(
        store, findings, hold_off=dt.timedelta(minutes=rules.hold_off_min), now=now
    )
    run.notes = {o.rule: o.note for o in outcomes if o.note}
    return run


class AlertLoop:
    """The rules evaluated over a store every ``every_s`` seconds in a background thread, as
    ``microfab alerts run`` does without delivery: what ``microfab demo`` runs beside the
    simulator, so the banner shows an injected fault's alert while the run goes on.

    :meth:`stop` ends the thread and evaluates once more, so the last events are judged too. A
    run that fails keeps its message in ``error`` and the next one tries again."""

    def __init__(
        self, store: EventStore, factory: Factory, rules: AlertRules, *, every_s: float = 10.0
    ) -> None:
        if not every_s > 0:
            raise InputError("the alert rules need a positive evaluation interval")
        self.store = store
        self.factory = factory
        self.rules = rules
        self.every_s = every_s
        self.runs = 0
        self.raised = 0
        self.error: str | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def run_once(self) -> AlertRun | None:
        """Evaluate every rule now and store the alerts (None when the run failed)."""
        with self._lock:
            try:
                run = run_alert_rules(self.store, self.factory, self.rules)
            except MicrofabError as exc:
                self.error = exc.message
                return None
            self.runs += 1
            self.raised += len(run.raised)
            self.error = None
            return run

    def _loop(self) -> None:
        while not self._stop.wait(self.every_s):
            self.run_once()

    def start(self) -> AlertLoop:
        self._thread = threading.Thread(target=self._loop, name="microfab-alerts", daemon=True)
        self._thread.start()
        return self

    def stop(self, *, final: bool = True) -> AlertRun | None:
        """End the thread; with ``final``, evaluate once more and return that run."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        return self.run_once() if final else None


class AlertStateError(InputError):
    """The alert is not in a state that allows this (closing a closed alert)."""

    key = "alert_state"


def _change_state(
    store: EventStore, alert_id: int, target: AlertState, actor: str, now: dt.datetime | None
) -> StoredAlert:
    at = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    with store.transaction() as conn:
        state = alert_state(conn, alert_id)
        if state is None:
            raise NotFoundError(f"no alert {alert_id}; 'microfab alerts list' shows them")
        if state == AlertState.CLOSED:
            raise AlertStateError(f"alert {alert_id} is closed already")
        if target == AlertState.ACKNOWLEDGED and state == AlertState.ACKNOWLEDGED:
            raise AlertStateError(f"alert {alert_id} is acknowledged already")
        set_alert_state(conn, alert_id, target, actor, at)
        append_audit(
            conn,
            actor=actor,
            action="alerts.acknowledge" if target == AlertState.ACKNOWLEDGED else "alerts.close",
            target=f"alert:{alert_id}",
            before={"state": state.value},
            after={"state": target.value, "by": actor, "at": format_ts(at)},
            at=at,
        )
    found = get_alert(store, alert_id)
    if found is None:  # pragma: no cover - it was just updated
        raise MicrofabError(f"alert {alert_id} vanished")
    return found


def acknowledge_alert(
    store: EventStore, alert_id: int, actor: str, *, now: dt.datetime | None = None
) -> StoredAlert:
    """Mark an alert seen (who and when), with an audit record; it stays on the banner."""
    return _change_state(store, alert_id, AlertState.ACKNOWLEDGED, actor, now)


def close_alert(
    store: EventStore, alert_id: int, actor: str, *, now: dt.datetime | None = None
) -> StoredAlert:
    """Close an alert (who and when), with an audit record; the hold-off starts now."""
    return _change_state(store, alert_id, AlertState.CLOSED, actor, now)


def open_alerts(store: EventStore, limit: int = 20) -> list[dict[str, Any]]:
    """The dashboard banner: alerts not yet closed (open or acknowledged), newest first, as JSON
    (:meth:`StoredAlert.to_json`)."""
    return [a.to_json() for a in list_alerts(store, open_only=True, limit=limit)]
