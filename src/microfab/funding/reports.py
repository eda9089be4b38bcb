"""Printable funding documents: the evidence annex and the report drafts, as page data.

Each function builds the document's sections from the JSON of a domain result (an assessment, a
ledger review, the smart-line evidence) and renders them with the reports layer's
``funding.html`` template, a page that stands alone (A4 print CSS inline) so it can be opened,
printed from a browser, or printed to PDF (:func:`microfab.reports.print_pdf`). They are drafts:
the company checks and signs what it submits.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from microfab.funding.zh import zh
from microfab.reports import render

_CJK = re.compile(r"[\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef]")
_WORD = re.compile(r"[A-Za-z]{2,}")


def _wordy(text: str) -> bool:
    """English words and no Chinese: a sentence that needs its Chinese beside it."""
    return bool(_WORD.search(text)) and not _CJK.search(text)


@dataclass(frozen=True, slots=True)
class Paragraph:
    """A paragraph of plain text."""

    kind: ClassVar[str] = "paragraph"
    text: str


@dataclass(frozen=True, slots=True)
class Table:
    """A table; columns whose index is in ``numeric`` are right-aligned; those in ``said`` hold
    microfab's own words (sentences, statuses), shown with their Chinese."""

    kind: ClassVar[str] = "table"
    headers: Sequence[str]
    rows: list[Sequence[object]]
    numeric: Sequence[int] = ()
    said: Sequence[int] = ()


@dataclass(frozen=True, slots=True)
class Bullets:
    """A bullet list ("none" when empty)."""

    kind: ClassVar[str] = "bullets"
    items: list[object]


Block = Paragraph | Table | Bullets


@dataclass(frozen=True, slots=True)
class Section:
    """A heading and what follows it."""

    heading: str
    blocks: list[Block] = field(default_factory=list)


def money(value: int | str | None) -> str:
    """``1,234,567`` or ``1,234.50``; empty for None."""
    if value is None:
        return ""
    if isinstance(value, int):
        return f"{value:,}"
    whole, _, cents = value.partition(".")
    return f"{int(whole):,}.{cents}" if cents else f"{int(whole):,}"


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[object]],
    numeric: Sequence[int] = (),
    said: Sequence[int] = (),
) -> Table:
    return Table(headers, list(rows), numeric, said)


def bullets(items: Iterable[object]) -> Bullets:
    return Bullets(list(items))


def page(title: str, meta: str, sections: Sequence[Section], footer: str = "") -> str:
    """A whole HTML document: title, a meta line, the sections, a footer."""
    return render(
        "funding.html",
        title=title,
        meta=meta,
        sections=sections,
        footer=footer,
        zh=zh,
        has_cjk=lambda text: bool(_CJK.search(text)),
        wordy=_wordy,
    )


def evidence_html(doc: dict[str, Any]) -> str:
    """The smart-line evidence annex (from ``SmartLineEvidence.to_json()``)."""
    sections: list[Section] = []
    for ln in doc["lines"]:
        summary = Paragraph(
            f"{ln['machines_meeting_criteria']} of {ln['machines_counted']} machines meet the "
            f"criteria: smart-line share {ln['smart_line_share']:.2f} "
            f"({ln['smart_line_share_fraction']}). Definition: {doc['definition']}."
        )
        criteria = table(
            ["criterion", "status", "evidence"],
            [(c["criterion"], c["status"], " · ".join(c["evidence"])) for c in ln["criteria"]],
            said=(0, 1, 2),
        )
        machines = table(
            ["machine", "kind", "events", "events/h", "ingest delay (s)", "meets criteria"],
            [
                (
                    m["machine"].rsplit("/", 1)[-1],
                    m["kind"],
                    f"{m['events']:,}",
                    m["events_per_hour"] if m["events_per_hour"] is not None else "—",
                    m["median_ingest_delay_s"] if m["median_ingest_delay_s"] is not None else "—",
                    "yes" if m["meets_criteria"] else "no",
                )
                for m in ln["machines"]
            ],
            numeric=(2, 3, 4),
            said=(5,),
        )
        sections.append(Section(f"Line {ln['line']} {ln['name']}", [summary, criteria, machines]))
    sections.append(Section("Notes", [bullets(doc["notes"])]))
    return page(
        "Smart production line evidence 智能生產線證明 (annex)",
        f"{doc['company']} · {doc['source']}",
        sections,
        "A criterion without evidence is reported as such; microfab does not infer one.",
    )


def assessment_html(doc: dict[str, Any]) -> str:
    """An assessment (``Assessment.to_json()``) as a page: rules, budget, grant, payments."""
    verdict = "eligible" if doc["eligible"] else "NOT eligible"
    rules = table(
        ["rule", "passed", "detail", "source"],
        [
            (
                r["rule"],
                "yes" if r["passed"] else ("NO" if r["blocking"] else "warning"),
                r["detail"],
                r["source"],
            )
            for r in doc["reasons"]
        ],
    )
    budget = table(
        ["#", "item", "category", "HK$", "eligible", "why not"],
        [
            (
                i["index"],
                i["item"],
                i["category"],
                money(i["amount_hkd"]),
                "yes" if i["eligible"] else "no",
                i.get("reason", ""),
            )
            for i in doc["budget_items"]
        ],
        numeric=(0, 3),
    )
    grant = table(
        ["", "HK$"],
        [
            ("total budget", money(doc["total_budget_hkd"])),
            ("eligible cost", money(doc["eligible_cost_hkd"])),
            (
                f"max grant (limited by {doc['grant_limits']['limited_by']})",
                money(doc["max_grant_hkd"]),
            ),
            ("company contribution", money(doc["company_contribution_hkd"])),
            ("interim payment max", money(doc["interim_payment_max_hkd"])),
        ],
        numeric=(1,),
    )
    payments = table(
        ["payment", "max HK$", "conditions", "source"],
        [
            (p["kind"], money(p["max_hkd"]), "; ".join(p["conditions"]), p["source"])
            for p in doc["payments"]
        ],
        numeric=(1,),
    )
    return page(
        f"{doc['scheme']} assessment: {doc['project']}",
        f"{doc['company']} · {verdict} as of {doc['as_of']} · rules {doc['version']}",
        [
            Section("Rules", [rules]),
            Section("Budget", [budget]),
            Section("Grant", [grant]),
            Section("Payments", [payments]),
            Section("Warnings", [bullets(doc["warnings"])]),
        ],
        f"Rules derived from {doc['rules_from'].get('file', '')} compiled {doc['rules_from'].get('compiled', '')}.",
    )


def _ledger_sections(review: dict[str, Any]) -> list[Section]:
    items = table(
        ["id", "item", "category", "approved HK$", "spent HK$", "remaining HK$", "invoices"],
        [
            (
                i["id"],
                i["item"] + ("" if i["reimbursable"] else " (not reimbursable)"),
                i["category"],
                money(i["approved_hkd"]),
                money(i["spent_hkd"]) + (" ⚠ overspent" if i["overspent"] else ""),
                money(i["remaining_hkd"]),
                i["invoices"],
            )
            for i in review["items"]
        ],
        numeric=(3, 4, 5, 6),
        said=(4,),
    )
    totals = Paragraph(
        f"Approved budget HK${money(review['approved_budget_hkd'])}; spent "
        f"HK${money(review['spent_hkd'])}; reimbursable spend HK${money(review['eligible_spend_hkd'])}; "
        f"approved grant HK${money(review['approved_grant_hkd'])}."
    )
    claims = table(
        [
            "claim",
            "earliest",
            "eligible spend HK$",
            "max HK$",
            "received HK$",
            "conditions",
            "source",
        ],
        [
            (
                c["kind"],
                c["earliest"] or "",
                money(c["eligible_spend_hkd"]),
                money(c["max_hkd"]),
                money(c["received_hkd"]),
                "; ".join(c["conditions"]),
                c["source"],
            )
            for c in review["claims"]
        ],
        numeric=(2, 3, 4),
        said=(0, 5),
    )
    deadlines = table(
        ["deadline", "due", "days left", "status", "source"],
        [
            (
                d["what"],
                d["due"] or "—",
                d["days_left"] if d["days_left"] is not None else "—",
                d["status"],
                d["source"],
            )
            for d in review["deadlines"]
        ],
        numeric=(2,),
        said=(0, 3),
    )
    return [
        Section("Budget and spending 預算及開支", [totals, items]),
        Section("Claims 申領", [claims]),
        Section("Milestones and deadlines", [deadlines]),
        Section("Warnings", [bullets(review["warnings"])]),
    ]


def _expenditure_table(ledger: Any) -> Table:
    return table(
        ["date", "invoice", "supplier", "budget item", "HK$", "note"],
        [
            (
                e.date.isoformat(),
                e.invoice,
                e.supplier,
                e.budget,
                money(_money_json(e.amount_hkd)),
                e.note,
            )
            for e in sorted(ledger.expenditures, key=lambda e: (e.date, e.invoice))
        ],
        numeric=(4,),
    )


def _money_json(amount: Any) -> int | str:
    from microfab.model.funding import money_json

    return money_json(amount)


def progress_report_html(review: dict[str, Any], ledger: Any) -> str:
    """Progress report draft (for the interim payment) from a ledger review."""
    sections = _ledger_sections(review)
    sections.insert(1, Section("Expenditures 開支明細", [_expenditure_table(ledger)]))
    return page(
        f"Progress report 進度報告: {review['project']}",
        f"{review['company']} · {review['scheme']} {review['reference']} · project "
        f"{review['period']['start']} to {review['period']['end']} · position on {review['as_of']}",
        sections,
        "Attach the audited accounts. Rule sources: see docs/funding.md.",
    )


def final_report_html(review: dict[str, Any], ledger: Any, evidence: dict[str, Any] | None) -> str:
    """Final report draft: spending, claims, and the smart-line evidence when a store was read."""
    sections = _ledger_sections(review)
    sections.insert(1, Section("Expenditures 開支明細", [_expenditure_table(ledger)]))
    if evidence is not None:
        for ln in evidence["lines"]:
            sections.append(
                Section(
                    f"Smart-line evidence: {ln['line']} (share {ln['smart_line_share']:.2f})",
                    [
                        table(
                            ["criterion", "status", "evidence"],
                            [
                                (c["criterion"], c["status"], " · ".join(c["evidence"]))
                                for c in ln["criteria"]
                            ],
                            said=(0, 1, 2),
                        )
                    ],
                )
            )
    else:
        sections.append(
            Section(
                "Smart-line evidence",
                [Paragraph("not included: give --db to read the stored data")],
            )
        )
    return page(
        f"Final report 完成報告: {review['project']}",
        f"{review['company']} · {review['scheme']} {review['reference']} · project "
        f"{review['period']['start']} to {review['period']['end']} · as of {review['as_of']}",
        sections,
        "Attach the audited accounts. Rule sources: see docs/funding.md.",
    )


def benefit_report_html(review: dict[str, Any], ledger: Any, output: dict[str, Any] | None) -> str:
    """Benefit report draft: the line's output and turnover, new jobs, the no-transfer period."""
    sections: list[Section] = []
    if output is not None:
        rows = [
            (
                p["product"],
                p["name"],
                f"{p['good']:,}",
                p["unit_price_hkd"] or "—",
                money(p["turnover_hkd"]) if p["turnover_hkd"] is not None else "no price recorded",
            )
            for p in output["products"]
        ]
        text = Paragraph(
            f"Line {output['line']}, output counted at its bottleneck "
            f"{(output['bottleneck'] or '').rsplit('/', 1)[-1]}, {output['from']} to "
            f"{output['to']}: {output['good']:,} good units, turnover "
            f"HK${money(output['turnover_hkd'])}"
            + ("" if output["turnover_complete"] else " (incomplete: some prices are missing)")
            + "."
        )
        sections.append(
            Section(
                "Output and turnover 產量及營業額",
                [
                    text,
                    table(
                        ["product", "name", "good", "unit price HK$", "turnover HK$"],
                        rows,
                        numeric=(2, 3, 4),
                        said=(4,),
                    ),
                ],
            )
        )
    else:
        sections.append(
            Section(
                "Output and turnover",
                [Paragraph("not included: give --db and project.line")],
            )
        )
    jobs = ledger.benefit.jobs
    sections.append(
        Section(
            "New jobs 新職位",
            [
                table(["type", "count"], [(j.type, j.count) for j in jobs], numeric=(1,)),
                Paragraph(f"{sum(j.count for j in jobs)} new job(s)."),
            ],
        )
    )
    transfer = [d for d in review["deadlines"] if "no-transfer" in d["what"]]
    sections.append(
        Section(
            "Obligations",
            [bullets(f"{d['what']}: until {d['due']} ({d['source']})" for d in transfer)],
        )
    )
    return page(
        f"Benefit report 效益報告: {review['project']}",
        f"{review['company']} · {review['scheme']} {review['reference']} · as of {review['as_of']}",
        sections,
        "Figures come from the events microfab stored; check them against the company's accounts.",
    )
