"""Assess a NIFS/RFS application: eligibility, eligible cost, grant, payments — each decision explained.

Every entry of ``reasons`` names the rule it applies, whether it passed, what was found, and the
rule's sources and confidence. Rules that rest only on the 2019 LegCo paper or the 2020 HKPC slides
are applied with the numbers in ``data/nifs.yaml`` unless the application's ``assumptions`` change
them, and each use is flagged in ``warnings``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from microfab.funding.application import Application, BudgetItem, CostCategory
from microfab.funding.rules import RuleBook, SchemeRule, rule_book
from microfab.model.funding import (
    GrantLimits,
    add_months,
    grant_limits,
    interim_max_hkd,
    lasts_more_than,
    money_json,
)

ACTIVE_STATUSES = ("approved", "ongoing")
"""Other projects count toward the concurrency limits in these states (not once completed)."""


def hkd(amount: Decimal | int) -> str:
    """``HK$1,234,567`` or ``HK$1,234.50``."""
    value = money_json(amount)
    if isinstance(value, int):
        return f"HK${value:,}"
    whole, cents = value.split(".")
    return f"HK${int(whole):,}.{cents}"


@dataclass(slots=True)
class Reason:
    rule: SchemeRule
    passed: bool
    detail: str
    blocking: bool = True
    """False for checks that warn but do not decide eligibility."""

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule.id,
            "title": self.rule.title,
            "passed": self.passed,
            "blocking": self.blocking,
            "detail": self.detail,
            "source": self.rule.source_text(),
            "confidence": self.rule.confidence,
            "sources": [s.cite() for s in self.rule.sources],
        }


@dataclass(slots=True)
class ItemDecision:
    index: int
    item: BudgetItem
    eligible: bool
    reason: str = ""
    rule: SchemeRule | None = None

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "index": self.index,
            "item": self.item.item,
            "category": self.item.category.value,
            "amount_hkd": money_json(self.item.amount_hkd),
            "eligible": self.eligible,
        }
        if not self.eligible and self.rule is not None:
            doc |= {"reason": self.reason, "rule": self.rule.id, "source": self.rule.source_text()}
        return doc


@dataclass(slots=True)
class Payment:
    kind: str
    max_hkd: int
    conditions: list[str]
    rule: SchemeRule

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "max_hkd": self.max_hkd,
            "conditions": self.conditions,
            "source": self.rule.source_text(),
        }


@dataclass(slots=True)
class Assessment:
    application: Application
    scheme: str
    version: str
    eligible: bool
    reasons: list[Reason]
    items: list[ItemDecision]
    eligible_cost: Decimal
    limits: GrantLimits
    max_grant_hkd: int
    interim_max_hkd: int
    payments: list[Payment]
    obligations: list[Reason]
    warnings: list[str] = field(default_factory=list)
    rules_from: dict[str, str] = field(default_factory=dict)

    @property
    def total_budget(self) -> Decimal:
        return sum((d.item.amount_hkd for d in self.items), Decimal(0))

    def to_json(self) -> dict[str, Any]:
        return {
            "scheme": self.scheme,
            "version": self.version,
            "as_of": self.application.as_of.isoformat(),
            "company": self.application.company.name,
            "project": self.application.project.title,
            "eligible": self.eligible,
            "reasons": [r.to_json() for r in self.reasons],
            "total_budget_hkd": money_json(self.total_budget),
            "eligible_cost_hkd": money_json(self.eligible_cost),
            "ineligible_items": [d.to_json() for d in self.items if not d.eligible],
            "budget_items": [d.to_json() for d in self.items],
            "grant_limits": {
                "one_third_hkd": self.limits.by_ratio_hkd,
                "project_cap_hkd": self.limits.project_cap_hkd,
                "company_remaining_hkd": self.limits.company_remaining_hkd,
                "limited_by": self.limits.limited_by,
            },
            "grant_if_eligible_hkd": self.limits.grant_hkd,
            "max_grant_hkd": self.max_grant_hkd,
            "company_contribution_hkd": money_json(
                self.eligible_cost - self.max_grant_hkd if self.eligible else self.eligible_cost
            ),
            "company_pays_total_hkd": money_json(self.total_budget - self.max_grant_hkd),
            "interim_payment_max_hkd": self.interim_max_hkd,
            "payments": [p.to_json() for p in self.payments],
            "obligations": [
                {"rule": o.rule.id, "detail": o.detail, "source": o.rule.source_text()}
                for o in self.obligations
            ],
            "warnings": self.warnings,
            "rules_from": self.rules_from,
        }


def assess(application: Application, book: RuleBook | None = None) -> Assessment:
    """Apply the rules of the application's scheme version and explain every decision."""
    book = book or rule_book()
    version = book.version(application.scheme)
    company, project = application.company, application.project
    assume = application.assumptions
    reasons: list[Reason] = []
    warnings: list[str] = []

    def flag_weak(rule: SchemeRule, what: str) -> None:
        warnings.append(
            f"{what} rests on rule '{rule.id}' ({rule.source_text()}); it is configurable under "
            "'assumptions:' — check the current ITC Guide to Application"
        )

    if not version.in_force(application.as_of):
        until = version.effective_to.isoformat() if version.effective_to else "now"
        warnings.append(
            f"{version.title}: in force {version.effective_from} to {until}, but as_of is "
            f"{application.as_of}; the {version.code} rules are applied as asked"
        )

    # ---------------------------------------------------------------- applicant and project
    rule = book.rule("applicant_incorporated_hk")
    ordinance = company.companies_ordinance
    ok = company.incorporated_in_hk and (ordinance is None or "622" in ordinance)
    detail = (
        f"{company.name}: incorporated in Hong Kong"
        if company.incorporated_in_hk
        else f"{company.name}: not incorporated in Hong Kong"
    )
    if ordinance is not None:
        detail += f", under {ordinance}" + ("" if "622" in ordinance else " (not Cap. 622)")
    reasons.append(Reason(rule, ok, detail))

    rule = book.rule("new_line_in_hk")
    ok = project.in_hong_kong and project.new_production_line
    missing = [
        text
        for flag, text in (
            (project.in_hong_kong, "the line is not in Hong Kong"),
            (project.new_production_line, "the project is not a new production line"),
        )
        if not flag
    ]
    detail = "a new production line in Hong Kong" if ok else "; ".join(missing)
    if not project.new_production_line:
        detail += (
            " (existing-line upgrades: see the Manufacturing and Production Line Upgrade "
            "Support Pilot Scheme, `microfab funding match`)"
        )
    reasons.append(Reason(rule, ok, detail))

    rule = book.rule("smart_line")
    threshold = Decimal(str(rule.params["smart_share_above"]))
    features = [f.value for f in project.smart_features]
    ok = project.smart_line_share > threshold and bool(features)
    detail = (
        f"smart share {project.smart_line_share} "
        f"{'>' if project.smart_line_share > threshold else '≤'} {threshold}; "
        f"features: {', '.join(features) or 'none named'}"
    )
    reasons.append(Reason(rule, ok, detail))

    # ---------------------------------------------------------------- concurrency
    rule = book.rule(version.concurrency_rule)
    active = [p for p in application.other_projects if p.status in ACTIVE_STATUSES]
    committed = sum((p.approved_grant_hkd for p in active), Decimal(0))
    if version.company_total_cap_hkd is None:
        ok = len(active) < version.max_active_projects
        detail = f"{len(active)} other project(s) approved or ongoing" + (
            "" if ok else "; RFS allows a new project only after the current one is completed"
        )
    else:
        remaining = Decimal(version.company_total_cap_hkd) - committed
        ok = len(active) < version.max_active_projects and remaining > 0
        detail = (
            f"{len(active)} other project(s) approved or ongoing (at most "
            f"{version.max_active_projects - 1} allowed with this one); their grants "
            f"{hkd(committed)} of the {hkd(version.company_total_cap_hkd)} company total, "
            f"{hkd(max(remaining, Decimal(0)))} left"
        )
    project_cap_hkd = int(book.rule("cap_per_project").params["amount_hkd"])
    for i, p in enumerate(application.other_projects):
        if p.approved_grant_hkd > project_cap_hkd:
            warnings.append(
                f"other_projects[{i}] approved grant {hkd(p.approved_grant_hkd)} is above the "
                f"per-project cap {hkd(project_cap_hkd)}; check that record"
            )
    completed = [p for p in application.other_projects if p.status == "completed"]
    if completed:
        detail += f"; {len(completed)} completed project(s) do not count"
    reasons.append(Reason(rule, ok, detail))

    # ---------------------------------------------------------------- budget items
    double = book.rule("no_double_funding")
    double_on = bool(double.params.get("apply", True))
    if assume.no_double_funding is not None:
        double_on = assume.no_double_funding
    eligible_rules = (book.rule("eligible_costs"), book.rule("training_costs"))
    ineligible_rule = book.rule("ineligible_costs")
    items: list[ItemDecision] = []
    for index, item in enumerate(application.budget):
        category_rule = next(
            (r for r in eligible_rules if item.category.value in r.params["categories"]), None
        )
        if category_rule is None:
            why = (
                "general operating expense (rent, salaries, maintenance, insurance)"
                if item.category is CostCategory.OPERATING
                else "not in an eligible cost category; move it to one if it is"
            )
            items.append(ItemDecision(index, item, False, why, ineligible_rule))
        elif item.other_government_funding and double_on:
            items.append(
                ItemDecision(
                    index, item, False, "already funded by another government scheme", double
                )
            )
        else:
            items.append(ItemDecision(index, item, True))
            if category_rule.confidence != "confirmed_official":
                warnings.append(
                    f"budget[{index}] {item.item!r}: {item.category.value} counts as eligible "
                    f"under rule '{category_rule.id}' ({category_rule.source_text()})"
                )
    eligible_cost = sum((d.item.amount_hkd for d in items if d.eligible), Decimal(0))
    removed = [d for d in items if not d.eligible]
    rule = book.rule("eligible_costs")
    detail = f"eligible cost {hkd(eligible_cost)} of budget {hkd(sum((i.amount_hkd for i in application.budget), Decimal(0)))}"
    if removed:
        detail += f"; {len(removed)} item(s) removed: " + ", ".join(
            f"[{d.index}] {d.item.item} ({d.reason})" for d in removed
        )
    reasons.append(Reason(rule, eligible_cost > 0, detail))
    flagged = [d for d in items if d.item.other_government_funding]
    reasons.append(
        Reason(
            double,
            not (double_on and flagged),
            (
                f"{len(flagged)} item(s) funded by another government scheme"
                + (" removed" if double_on else " kept: rule switched off by assumptions")
            )
            if flagged
            else "no item marked as funded by another government scheme",
            blocking=False,
        )
    )
    if flagged:
        flag_weak(double, "removing double-funded items" if double_on else "keeping them")

    rule = book.rule("itemised_budget")
    bare = [(i, it) for i, it in enumerate(application.budget) if not it.justification.strip()]
    for i, it in bare:
        warnings.append(
            f"budget[{i}] {it.item!r} has no justification; the assessment asks for an itemised "
            f"budget with justification ({rule.source_text()})"
        )
    reasons.append(
        Reason(
            rule,
            not bare,
            "every item justified" if not bare else f"{len(bare)} item(s) without justification",
            blocking=False,
        )
    )

    rule = book.rule("duration")
    months = int(rule.params["months"])
    normal_end = add_months(project.start, months)
    ok = project.end <= normal_end
    reasons.append(
        Reason(
            rule,
            ok,
            f"{project.start} to {project.end}"
            + ("" if ok else f": longer than {months} months (normal end {normal_end})"),
            blocking=False,
        )
    )
    if not ok:
        warnings.append(
            f"the project runs past {normal_end}; projects normally finish within {months} months "
            f"({rule.source_text()}) — justify the longer period"
        )

    # ---------------------------------------------------------------- grant
    eligible = all(r.passed for r in reasons if r.blocking)
    ratio = book.rule("funding_ratio")
    cap = book.rule("cap_per_project")
    limits = grant_limits(
        eligible_cost,
        government=int(ratio.params["government"]),
        company=int(ratio.params["company"]),
        project_cap_hkd=int(cap.params["amount_hkd"]),
        company_total_cap_hkd=version.company_total_cap_hkd,
        other_active_grants=committed,
    )
    grant = limits.grant_hkd if eligible else 0
    binding = {
        "one_third": f"one-third of {hkd(eligible_cost)} = {hkd(limits.by_ratio_hkd)}",
        "project_cap": f"the per-project cap {hkd(limits.project_cap_hkd)}",
        "company_total": f"what is left of the company total, {hkd(limits.company_remaining_hkd or 0)}",
    }[limits.limited_by]
    reasons.append(
        Reason(
            cap,
            True,
            f"grant {hkd(limits.grant_hkd)} (floored to whole dollars), limited by {binding}"
            + ("" if eligible else "; not payable: the application is not eligible"),
            blocking=False,
        )
    )

    # ---------------------------------------------------------------- payments
    interim_rule = book.rule("interim_payment")
    interim_on = bool(interim_rule.params.get("apply", True))
    if assume.interim_payment is not None:
        interim_on = assume.interim_payment
    share = Decimal(str(interim_rule.params["share"]))
    if assume.interim_share is not None:
        share = assume.interim_share
    after = int(interim_rule.params["after_months"])
    long_enough = lasts_more_than(project.start, project.end, after)
    interim = interim_max_hkd(grant, share) if (interim_on and long_enough and eligible) else 0
    reasons.append(
        Reason(
            interim_rule,
            long_enough,
            (
                f"ends {project.end}, later than {add_months(project.start, after)} "
                f"(start + {after} months): one interim payment of at most {share:.0%} "
                f"= {hkd(interim)}"
                if long_enough
                else f"ends {project.end}, not later than {add_months(project.start, after)} "
                f"(start + {after} months): no interim payment"
            )
            + ("" if interim_on else "; rule switched off by assumptions"),
            blocking=False,
        )
    )
    if long_enough and interim_on:
        flag_weak(interim_rule, "the interim payment")
    final_rule = book.rule("final_payment")
    payments: list[Payment] = []
    if eligible:
        if interim:
            payments.append(
                Payment(
                    "interim",
                    interim,
                    [
                        f"after {add_months(project.start, after)}: progress report and audited "
                        "accounts accepted",
                        "reimburses eligible spending: at most one-third of what has been spent",
                    ],
                    interim_rule,
                )
            )
        payments.append(
            Payment(
                "final",
                grant - interim,
                [
                    f"after completion (planned {project.end}): final report and audited "
                    "accounts accepted",
                    "reimbursement: at most one-third of the eligible cost actually spent, "
                    "less any interim payment",
                ],
                final_rule,
            )
        )

    # ---------------------------------------------------------------- obligations
    obligations = []
    transfer = book.rule("no_transfer")
    years = assume.no_transfer_years
    if years is None:
        years = int(transfer.params["years"])
    obligations.append(
        Reason(
            transfer,
            True,
            f"the line may not be transferred or moved out of Hong Kong for {years} years after "
            f"completion (until about {_plus_years(project.end, years)}) without approval; "
            "clawback; statutory charge registered",
            blocking=False,
        )
    )
    benefit = book.rule("benefit_reporting")
    obligations.append(
        Reason(
            benefit,
            True,
            "after completion report the line's turnover and the new jobs and their types "
            "(`microfab funding report benefit`)",
            blocking=False,
        )
    )
    return Assessment(
        application=application,
        scheme=version.code,
        version=version.version,
        eligible=eligible,
        reasons=reasons,
        items=items,
        eligible_cost=eligible_cost,
        limits=limits,
        max_grant_hkd=grant,
        interim_max_hkd=interim,
        payments=payments,
        obligations=obligations,
        warnings=warnings,
        rules_from=book.derived_from,
    )


def _plus_years(day: dt.date, years: int) -> dt.date:
    return add_months(day, 12 * years)
