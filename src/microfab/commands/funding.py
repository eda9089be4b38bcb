"""``microfab funding …``: NIFS/RFS assessment, smart-line evidence, scheme matcher, ledger, reports.

- ``funding assess APPLICATION.yaml``: eligibility, eligible cost, grant and payments, explained;
- ``funding evidence``: the smart-line criteria proved from the factory model and stored data;
- ``funding match COMPANY.yaml``: other schemes ranked against a company profile;
- ``funding ledger LEDGER.yaml``: budget vs spend, warnings, deadlines and the claim schedule;
- ``funding report KIND LEDGER.yaml``: progress, final or benefit report draft (HTML, PDF).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from microfab.commands.common import DbOption, JsonOption, err, out, print_json, stored_factory
from microfab.errors import InputError
from microfab.funding.reports import assessment_html, evidence_html
from microfab.model.located_yaml import read_file
from microfab.reports import print_pdf

HtmlOption = Annotated[
    Path | None, typer.Option("--html", help="Also write a printable HTML page here")
]
PdfOption = Annotated[
    Path | None, typer.Option("--pdf", help="Also print the page to PDF here (headless chromium)")
]

funding_app = typer.Typer(
    help="Funding 資助: NIFS/RFS assessment, smart-line evidence, ledger, reports, scheme matcher.",
    no_args_is_help=True,
)


@funding_app.command("assess")
def assess_command(
    application: Annotated[
        Path, typer.Argument(help="Application file (YAML), see docs/funding.md")
    ],
    html: HtmlOption = None,
    pdf: PdfOption = None,
    as_json: JsonOption = False,
) -> None:
    """Check an application against the NIFS/RFS rules: eligibility, grant, payments 資助評估."""
    from microfab.funding.application import parse_application
    from microfab.funding.assess import assess

    parsed = parse_application(read_file(application, "funding application"), str(application))
    result = assess(parsed)
    document = result.to_json()
    _write_pages(html, pdf, lambda: assessment_html(document))
    if as_json:
        print_json(document)
        return
    _print_assessment(document)


def _print_assessment(doc: dict[str, Any]) -> None:
    verdict = "ELIGIBLE 符合資格" if doc["eligible"] else "NOT ELIGIBLE 不符合資格"
    out.print(f"{doc['scheme']} ({doc['version']}) · {doc['company']} · {doc['project']}")
    out.print(f"{verdict} as of {doc['as_of']}")
    table = Table(title="Rules 規則")
    for name in ("rule", "passed", "detail", "source"):
        table.add_column(name, overflow="fold")
    for r in doc["reasons"]:
        mark = "yes" if r["passed"] else ("NO" if r["blocking"] else "warn")
        table.add_row(r["rule"], mark, r["detail"], r["source"])
    out.print(table)
    money = Table(title="Grant 資助額 (HK$)")
    money.add_column("", overflow="fold")
    money.add_column("HK$", justify="right", overflow="fold")
    for label, key in (
        ("total budget", "total_budget_hkd"),
        ("eligible cost", "eligible_cost_hkd"),
        ("max grant", "max_grant_hkd"),
        ("company contribution (eligible cost − grant)", "company_contribution_hkd"),
        ("interim payment max", "interim_payment_max_hkd"),
    ):
        money.add_row(label, _money(doc[key]))
    money.caption = f"grant limited by {doc['grant_limits']['limited_by']}"
    out.print(money)
    for p in doc["payments"]:
        out.print(
            f"payment {p['kind']}: up to HK${_money(p['max_hkd'])} — {'; '.join(p['conditions'])}"
        )
    for item in doc["ineligible_items"]:
        out.print(
            f"removed: budget[{item['index']}] {item['item']} — {item['reason']} ({item['source']})"
        )
    for w in doc["warnings"]:
        out.print(f"warning: {w}")


def _money(value: int | str) -> str:
    if isinstance(value, int):
        return f"{value:,}"
    whole, cents = value.split(".")
    return f"{int(whole):,}.{cents}"


@funding_app.command("evidence")
def evidence_command(
    factory_file: Annotated[
        Path | None,
        typer.Option(
            "--factory",
            help="Factory file to read instead of the store's factory model; without --db, "
            "only the model is read",
        ),
    ] = None,
    db: DbOption = None,
    line: Annotated[
        str | None, typer.Option("--line", help="Line id or path \\[default: all]")
    ] = None,
    html: HtmlOption = None,
    pdf: PdfOption = None,
    as_json: JsonOption = False,
) -> None:
    """Smart-line evidence 智能生產線證明 per criterion, from the factory model and stored data."""
    from microfab.funding.evidence import gather_store_facts, smart_line_evidence

    factory = None
    source = ""
    if factory_file is not None:
        from microfab.model.factory_file import load_factory

        factory = load_factory(factory_file)
        source = f"factory file {factory_file}"
    if factory_file is not None and db is None:
        assert factory is not None
        result = smart_line_evidence(factory, None, source=source, line=line)
    else:
        from microfab.store import open_store

        with open_store(db) as store:
            if factory is None:
                factory = stored_factory(store)
            facts = gather_store_facts(store, factory)
        result = smart_line_evidence(factory, facts, line=line)
    document = result.to_json()
    _write_pages(html, pdf, lambda: evidence_html(document))
    if as_json:
        print_json(document)
        return
    out.print(f"{document['company']} · {document['source']}")
    for ln in document["lines"]:
        table = Table(
            title=f"{ln['line']} {ln['name']}: {ln['machines_meeting_criteria']} of "
            f"{ln['machines_counted']} machines meet the criteria (share "
            f"{ln['smart_line_share']:.2f})"
        )
        for name in ("criterion", "status", "evidence"):
            table.add_column(name, overflow="fold")
        for c in ln["criteria"]:
            table.add_row(c["criterion"], c["status"], "\n".join(c["evidence"]))
        out.print(table)
    for note in document["notes"]:
        out.print(f"note: {note}")


def _write_pages(html: Path | None, pdf: Path | None, render: Callable[[], str]) -> None:
    """Write the page as HTML and/or print it to PDF (headless chromium)."""
    if html is None and pdf is None:
        return
    text = render()
    if html is not None:
        html.write_text(text, encoding="utf-8")
        err.print(f"wrote {html}")
    if pdf is not None:
        pdf.write_bytes(print_pdf(text))
        err.print(f"wrote {pdf}")


@funding_app.command("match")
def match_command(
    company: Annotated[Path, typer.Argument(help="Company profile (YAML), see docs/funding.md")],
    show: Annotated[int, typer.Option("--top", help="How many schemes to show in the table")] = 12,
    as_json: JsonOption = False,
) -> None:
    """Rank Hong Kong funding schemes 資助計劃 against a company profile, with reasons."""
    from microfab.funding.matcher import match_schemes, parse_profile

    profile = parse_profile(read_file(company, "company profile"), str(company))
    matches = [m.to_json() for m in match_schemes(profile)]
    if as_json:
        print_json(
            {
                "as_of": profile.as_of.isoformat(),
                "company": profile.company.name,
                "schemes": matches,
            }
        )
        return
    table = Table(title=f"Schemes for {profile.company.name} as of {profile.as_of}")
    for name in ("scheme", "fits", "ratio", "cap HK$", "up to HK$", "why"):
        table.add_column(name, overflow="fold")
    for m in matches[:show]:
        cap = m["cap_per_project_hkd"] or m["cap_total_hkd"]
        why = "; ".join(r["detail"] for r in m["reasons"] if r["passed"] is not True) or "; ".join(
            r["detail"] for r in m["reasons"][:3]
        )
        table.add_row(
            f"{m['name']} {m['name_zh']}".strip(),
            "yes" if m["fits"] else "no",
            m["ratio"] or "—",
            f"{cap:,}" if isinstance(cap, int) else "—",
            f"{m['estimate_hkd']:,}" if m["estimate_hkd"] is not None else "—",
            why,
        )
    out.print(table)
    out.print(
        f"{sum(m['fits'] for m in matches)} of {len(matches)} schemes fit; --json for every reason and source"
    )


AsOfOption = Annotated[
    str | None,
    typer.Option(
        "--as-of", help="Date of the position, YYYY-MM-DD \\[default: today]", show_default=False
    ),
]


def _as_of(value: str | None) -> dt.date:
    if value is None:
        return dt.date.today()
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise InputError(f"--as-of {value!r} is not a date; write YYYY-MM-DD") from None


@funding_app.command("ledger")
def ledger_command(
    ledger_file: Annotated[Path, typer.Argument(help="Ledger file (YAML), see docs/funding.md")],
    as_of: AsOfOption = None,
    as_json: JsonOption = False,
) -> None:
    """Budget vs spend, warnings, deadlines and the claim schedule of a project 項目賬目."""
    from microfab.funding.ledger import parse_ledger, review_ledger

    ledger = parse_ledger(read_file(ledger_file, "funding ledger"), str(ledger_file))
    review = review_ledger(ledger, _as_of(as_of)).to_json()
    if as_json:
        print_json(review)
        return
    out.print(
        f"{review['scheme']} {review['reference']} · {review['company']} · {review['project']}"
    )
    items = Table(title=f"Budget vs spend 預算及開支 on {review['as_of']} (HK$)")
    for name in ("id", "item", "approved", "spent", "remaining", "invoices"):
        items.add_column(
            name,
            justify="right" if name in ("approved", "spent", "remaining", "invoices") else "left",
        )
    for i in review["items"]:
        items.add_row(
            i["id"],
            i["item"] + ("" if i["reimbursable"] else " (not reimbursable)"),
            _money(i["approved_hkd"]),
            _money(i["spent_hkd"]) + (" !" if i["overspent"] else ""),
            _money(i["remaining_hkd"]),
            str(i["invoices"]),
        )
    items.caption = (
        f"spent {_money(review['spent_hkd'])} of {_money(review['approved_budget_hkd'])}; "
        f"reimbursable spend {_money(review['eligible_spend_hkd'])}; "
        f"grant {_money(review['approved_grant_hkd'])}"
    )
    out.print(items)
    claims = Table(title="Claim schedule 申領時間表 (HK$)")
    for name in ("claim", "earliest", "max", "received", "conditions"):
        claims.add_column(name, overflow="fold")
    for c in review["claims"]:
        claims.add_row(
            c["kind"],
            c["earliest"] or "",
            _money(c["max_hkd"]),
            _money(c["received_hkd"]),
            "; ".join(c["conditions"]),
        )
    out.print(claims)
    dates = Table(title="Deadlines 期限")
    for name in ("deadline", "due", "days", "status"):
        dates.add_column(name, overflow="fold")
    for d in review["deadlines"]:
        dates.add_row(
            d["what"],
            d["due"] or "—",
            "" if d["days_left"] is None else str(d["days_left"]),
            d["status"],
        )
    out.print(dates)
    for w in review["warnings"]:
        out.print(f"warning: {w}")


@funding_app.command("report")
def report_command(
    kind: Annotated[str, typer.Argument(help="progress, final or benefit")],
    ledger_file: Annotated[Path, typer.Argument(help="Ledger file (YAML)")],
    as_of: AsOfOption = None,
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            help="Database URL to read the line's evidence (final) and output (benefit) from "
            "\\[default: none; the report says what is missing]",
            show_default=False,
        ),
    ] = None,
    html: HtmlOption = None,
    pdf: PdfOption = None,
) -> None:
    """Draft the progress, final or benefit report 報告 as HTML (and PDF)."""
    from microfab.funding.ledger import parse_ledger, review_ledger
    from microfab.funding.reports import (
        benefit_report_html,
        final_report_html,
        progress_report_html,
    )

    if kind not in ("progress", "final", "benefit"):
        raise typer.BadParameter(
            f"'{kind}' is not one of progress, final, benefit", param_hint="KIND"
        )
    ledger = parse_ledger(read_file(ledger_file, "funding ledger"), str(ledger_file))
    review = review_ledger(ledger, _as_of(as_of)).to_json()
    evidence: dict[str, Any] | None = None
    output: dict[str, Any] | None = None
    if db is not None and kind in ("final", "benefit"):
        from microfab.funding.benefit import line_output
        from microfab.funding.evidence import gather_store_facts, smart_line_evidence
        from microfab.store import open_store

        line = ledger.project.line
        with open_store(db) as store:
            factory = stored_factory(store)
            if kind == "final":
                facts = gather_store_facts(store, factory)
                evidence = smart_line_evidence(factory, facts, line=line).to_json()
            elif line is not None:
                output = line_output(store, factory, line).to_json()
    if html is None and pdf is None:
        html = Path(f"funding-{kind}-report.html")
    if kind == "progress":
        text = progress_report_html(review, ledger)
    elif kind == "final":
        text = final_report_html(review, ledger, evidence)
    else:
        text = benefit_report_html(review, ledger, output)
    _write_pages(html, pdf, lambda: text)
