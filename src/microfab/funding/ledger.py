"""The funding project ledger: approved budget, expenditures, milestones, deadlines and claims.

The ledger is a YAML file the company keeps beside its invoices (see docs/funding.md for why a file
and not database tables): every expenditure names its budget item, invoice, date, supplier and
amount. :func:`review_ledger` adds it up per item and warns on overspend, spend on ineligible
items or outside the project period, overdue milestones and deadlines, and drafts the claim
schedule (reimbursement of one-third of eligible spend, capped by the approved grant).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from microfab.funding.application import CostCategory, Money
from microfab.funding.assess import hkd
from microfab.funding.located import Loc, load_located
from microfab.funding.rules import RuleBook, SchemeRule, rule_book
from microfab.model.funding import (
    add_months,
    interim_max_hkd,
    lasts_more_than,
    money_json,
    share_floor,
)

NOT_REIMBURSABLE = (CostCategory.OPERATING, CostCategory.OTHER)


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class LedgerProject(_Open):
    title: str = Field(min_length=1)
    company: str = Field(min_length=1)
    reference: str = ""
    start: dt.date
    end: dt.date
    approved_on: dt.date | None = None
    approved_grant_hkd: Money
    completed_on: dt.date | None = None
    line: str | None = Field(default=None, description="The line's id or path in the factory model")

    @field_validator("end")
    @classmethod
    def _after_start(cls, value: dt.date, info: ValidationInfo) -> dt.date:
        start = info.data.get("start")
        if isinstance(start, dt.date) and value <= start:
            raise ValueError(f"end {value} is not after start {start}; give a later end date")
        return value


class LedgerBudgetItem(_Open):
    id: str = Field(min_length=1)
    item: str = Field(min_length=1)
    category: CostCategory
    approved_hkd: Money


class Expenditure(_Open):
    budget: str = Field(min_length=1)
    date: dt.date
    invoice: str = Field(min_length=1)
    supplier: str = Field(min_length=1)
    amount_hkd: Money
    note: str = ""


class Milestone(_Open):
    name: str = Field(min_length=1)
    due: dt.date
    done: dt.date | None = None


class PaymentReceived(_Open):
    kind: Literal["interim", "final"]
    date: dt.date
    amount_hkd: Money


class Job(_Open):
    type: str = Field(min_length=1)
    count: int = Field(ge=0)


class Benefit(_Open):
    jobs: list[Job] = Field(default_factory=list)
    turnover_hkd: Money | None = None


class LedgerAssumptions(_Open):
    interim_payment: bool | None = None
    interim_share: Decimal | None = Field(default=None, ge=0, le=1)
    no_transfer_years: int | None = Field(default=None, ge=0, le=50)


class Ledger(_Open):
    scheme: Literal["NIFS", "RFS"]
    project: LedgerProject
    budget: list[LedgerBudgetItem] = Field(min_length=1)
    expenditures: list[Expenditure] = Field(default_factory=list)
    milestones: list[Milestone] = Field(default_factory=list)
    payments_received: list[PaymentReceived] = Field(default_factory=list)
    benefit: Benefit = Field(default_factory=Benefit)
    assumptions: LedgerAssumptions = Field(default_factory=LedgerAssumptions)


def _cross_check(ledger: Ledger) -> list[tuple[Loc, str]]:
    faults: list[tuple[Loc, str]] = []
    seen: set[str] = set()
    for i, b in enumerate(ledger.budget):
        if b.id in seen:
            faults.append((("budget", i, "id"), f"budget item id {b.id!r} is used twice"))
        seen.add(b.id)
    for i, e in enumerate(ledger.expenditures):
        if e.budget not in seen:
            faults.append(
                (
                    ("expenditures", i, "budget"),
                    f"{e.budget!r} is not a budget item id (ids: {', '.join(sorted(seen))})",
                )
            )
    return faults


def parse_ledger(text: str, filename: str = "ledger.yaml") -> Ledger:
    """Validate a ledger file; FundingFileError names file, line and field."""
    return load_located(
        text, filename, Ledger, expected="scheme, project, budget, expenditures", check=_cross_check
    )


@dataclass(slots=True)
class ItemBalance:
    item: LedgerBudgetItem
    spent: Decimal
    invoices: int

    @property
    def remaining(self) -> Decimal:
        return self.item.approved_hkd - self.spent

    @property
    def reimbursable(self) -> bool:
        return self.item.category not in NOT_REIMBURSABLE

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.item.id,
            "item": self.item.item,
            "category": self.item.category.value,
            "approved_hkd": money_json(self.item.approved_hkd),
            "spent_hkd": money_json(self.spent),
            "remaining_hkd": money_json(self.remaining),
            "invoices": self.invoices,
            "reimbursable": self.reimbursable,
            "overspent": self.spent > self.item.approved_hkd,
        }


@dataclass(slots=True)
class Deadline:
    what: str
    due: dt.date | None
    status: str
    """``done``, ``overdue``, ``due_soon`` (within 30 days), ``upcoming`` or ``open`` (no date)."""
    source: str = ""

    def to_json(self, as_of: dt.date) -> dict[str, Any]:
        return {
            "what": self.what,
            "due": self.due.isoformat() if self.due else None,
            "days_left": (self.due - as_of).days if self.due else None,
            "status": self.status,
            "source": self.source,
        }


@dataclass(slots=True)
class Claim:
    kind: str
    earliest: dt.date | None
    eligible_spend_hkd: Decimal
    max_hkd: int
    received_hkd: Decimal
    conditions: list[str]
    source: str

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "earliest": self.earliest.isoformat() if self.earliest else None,
            "eligible_spend_hkd": money_json(self.eligible_spend_hkd),
            "max_hkd": self.max_hkd,
            "received_hkd": money_json(self.received_hkd),
            "conditions": self.conditions,
            "source": self.source,
        }


@dataclass(slots=True)
class LedgerReview:
    ledger: Ledger
    as_of: dt.date
    balances: list[ItemBalance]
    deadlines: list[Deadline]
    claims: list[Claim]
    warnings: list[str] = field(default_factory=list)

    @property
    def approved(self) -> Decimal:
        return sum((b.item.approved_hkd for b in self.balances), Decimal(0))

    @property
    def spent(self) -> Decimal:
        return sum((b.spent for b in self.balances), Decimal(0))

    @property
    def eligible_spend(self) -> Decimal:
        """Reimbursable spend: eligible items only, each capped at its approved amount."""
        return sum(
            (min(b.spent, b.item.approved_hkd) for b in self.balances if b.reimbursable),
            Decimal(0),
        )

    def to_json(self) -> dict[str, Any]:
        p = self.ledger.project
        return {
            "scheme": self.ledger.scheme,
            "project": p.title,
            "company": p.company,
            "reference": p.reference,
            "as_of": self.as_of.isoformat(),
            "period": {"start": p.start.isoformat(), "end": p.end.isoformat()},
            "approved_grant_hkd": money_json(p.approved_grant_hkd),
            "approved_budget_hkd": money_json(self.approved),
            "spent_hkd": money_json(self.spent),
            "eligible_spend_hkd": money_json(self.eligible_spend),
            "items": [b.to_json() for b in self.balances],
            "claims": [c.to_json() for c in self.claims],
            "deadlines": [d.to_json(self.as_of) for d in self.deadlines],
            "warnings": self.warnings,
        }


def review_ledger(ledger: Ledger, as_of: dt.date, book: RuleBook | None = None) -> LedgerReview:
    """Budget vs spend, warnings, deadlines and the claim schedule on ``as_of``."""
    book = book or rule_book()
    p = ledger.project
    warnings: list[str] = []
    balances = {b.id: ItemBalance(b, Decimal(0), 0) for b in ledger.budget}
    for i, e in enumerate(ledger.expenditures):
        balance = balances[e.budget]
        balance.spent += e.amount_hkd
        balance.invoices += 1
        if not balance.reimbursable:
            warnings.append(
                f"expenditures[{i}] {e.invoice}: {hkd(e.amount_hkd)} on {e.budget} "
                f"({balance.item.category.value}) is not reimbursable "
                f"({book.rule('ineligible_costs').source_text()})"
            )
        if not p.start <= e.date <= (p.completed_on or p.end):
            warnings.append(
                f"expenditures[{i}] {e.invoice} dated {e.date} is outside the project period "
                f"{p.start} to {p.completed_on or p.end}"
            )
        if e.date > as_of:
            warnings.append(f"expenditures[{i}] {e.invoice} is dated after {as_of}")
    for b in balances.values():
        if b.spent > b.item.approved_hkd:
            warnings.append(
                f"{b.item.id} {b.item.item!r}: spent {hkd(b.spent)} of {hkd(b.item.approved_hkd)} "
                f"approved — overspent by {hkd(b.spent - b.item.approved_hkd)} (the excess is not "
                "reimbursed)"
            )
    approved_budget = sum((b.approved_hkd for b in ledger.budget), Decimal(0))
    ratio = book.rule("funding_ratio")
    gov, com = int(ratio.params["government"]), int(ratio.params["company"])
    if share_floor(approved_budget, gov, gov + com) < p.approved_grant_hkd:
        warnings.append(
            f"the approved grant {hkd(p.approved_grant_hkd)} is more than one-third of the "
            f"approved budget {hkd(approved_budget)}; check the ledger"
        )

    interim_rule = book.rule("interim_payment")
    interim_on = bool(interim_rule.params.get("apply", True))
    if ledger.assumptions.interim_payment is not None:
        interim_on = ledger.assumptions.interim_payment
    share = Decimal(str(interim_rule.params["share"]))
    if ledger.assumptions.interim_share is not None:
        share = ledger.assumptions.interim_share
    after = int(interim_rule.params["after_months"])
    interim_from = add_months(p.start, after)
    grant = int(p.approved_grant_hkd)

    def eligible_until(day: dt.date) -> Decimal:
        spent: dict[str, Decimal] = {}
        for e in ledger.expenditures:
            if e.date <= day:
                spent[e.budget] = spent.get(e.budget, Decimal(0)) + e.amount_hkd
        return sum(
            (
                min(amount, balances[k].item.approved_hkd)
                for k, amount in spent.items()
                if balances[k].reimbursable
            ),
            Decimal(0),
        )

    received = {
        kind: sum((r.amount_hkd for r in ledger.payments_received if r.kind == kind), Decimal(0))
        for kind in ("interim", "final")
    }
    claims: list[Claim] = []
    interim_max = 0
    if interim_on and lasts_more_than(p.start, p.end, after):
        basis = eligible_until(min(as_of, p.end))
        interim_max = min(interim_max_hkd(grant, share), share_floor(basis, gov, gov + com))
        claims.append(
            Claim(
                "interim",
                interim_from,
                basis,
                interim_max,
                received["interim"],
                [
                    f"from {interim_from}: progress report and audited accounts accepted",
                    f"at most {share:.0%} of the approved grant and one-third of eligible spend "
                    "so far",
                ],
                interim_rule.source_text(),
            )
        )
    final_rule = book.rule("final_payment")
    review_stub = LedgerReview(ledger, as_of, list(balances.values()), [], [])
    total = min(grant, share_floor(review_stub.eligible_spend, gov, gov + com))
    paid_interim = max(received["interim"], Decimal(0))
    claims.append(
        Claim(
            "final",
            p.completed_on or p.end,
            review_stub.eligible_spend,
            max(int(Decimal(total) - paid_interim), 0),
            received["final"],
            [
                "after completion: final report and audited accounts accepted",
                f"one-third of eligible spend ({hkd(review_stub.eligible_spend)}) capped by the "
                f"grant {hkd(grant)}, less interim payments received ({hkd(paid_interim)})",
            ],
            final_rule.source_text(),
        )
    )
    if received["interim"] > interim_max and interim_max:
        warnings.append(
            f"interim payments received {hkd(received['interim'])} exceed the interim maximum "
            f"{hkd(interim_max)}"
        )

    deadlines = _deadlines(ledger, as_of, book, interim_from if interim_on else None, after)
    for d in deadlines:
        if d.status == "overdue":
            warnings.append(f"overdue: {d.what} (due {d.due})")
    return LedgerReview(ledger, as_of, list(balances.values()), deadlines, claims, warnings)


def _status(due: dt.date | None, done: bool, as_of: dt.date) -> str:
    if done:
        return "done"
    if due is None:
        return "open"
    if due < as_of:
        return "overdue"
    return "due_soon" if (due - as_of).days <= 30 else "upcoming"


def _deadlines(
    ledger: Ledger,
    as_of: dt.date,
    book: RuleBook,
    interim_from: dt.date | None,
    after: int,
) -> list[Deadline]:
    p = ledger.project
    rows: list[Deadline] = []
    interim_rule = book.rule("interim_payment")
    if interim_from is not None and lasts_more_than(p.start, p.end, after):
        got = any(r.kind == "interim" for r in ledger.payments_received)
        rows.append(
            Deadline(
                "progress report and audited accounts for the interim payment may be submitted",
                interim_from,
                "done" if got else ("open" if as_of >= interim_from else "upcoming"),
                interim_rule.source_text(),
            )
        )
    duration: SchemeRule = book.rule("duration")
    rows.append(
        Deadline(
            "project end (normally within 24 months)",
            p.end,
            _status(p.end, p.completed_on is not None, as_of),
            duration.source_text(),
        )
    )
    final_done = any(r.kind == "final" for r in ledger.payments_received)
    rows.append(
        Deadline(
            "final report and audited accounts (after completion; the date is set in the "
            "funding agreement)",
            None,
            "done" if final_done else "open",
            book.rule("final_payment").source_text(),
        )
    )
    for m in ledger.milestones:
        rows.append(
            Deadline(f"milestone: {m.name}", m.due, _status(m.due, m.done is not None, as_of))
        )
    transfer = book.rule("no_transfer")
    years = ledger.assumptions.no_transfer_years
    if years is None:
        years = int(transfer.params["years"])
    base = p.completed_on or p.end
    end = add_months(base, 12 * years)
    rows.append(
        Deadline(
            f"end of the {years}-year no-transfer period (from "
            f"{'completion' if p.completed_on else 'the planned end'} {base})",
            end,
            "ended" if end < as_of else "upcoming",
            transfer.source_text(),
        )
    )
    return rows
