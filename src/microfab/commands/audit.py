"""``microfab audit …``: list the audit log, print its anchor, verify its hash chain."""

from __future__ import annotations

from typing import Annotated

import typer

from microfab.commands.common import DbOption, JsonOption, err, out, print_json
from microfab.errors import MicrofabError
from microfab.store import open_store
from microfab.store.audit import audit_anchor, audit_records, parse_anchor, verify_audit

audit_app = typer.Typer(
    help="The append-only, hash-chained audit log of changes 審計記錄.", no_args_is_help=True
)


class AuditVerifyError(MicrofabError):
    """``audit verify`` found the log tampered with (exit 1, after the findings)."""

    key = "audit_tampered"


@audit_app.command("list")
def audit_list(
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="Newest N records")] = 50,
    target: Annotated[
        str | None,
        typer.Option("--target", help="Only records about this, e.g. user:may.chan"),
    ] = None,
    action: Annotated[
        str | None,
        typer.Option("--action", help="Only actions starting with this, e.g. orders."),
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show the newest audit records (who, when, what, before → after)."""
    with open_store(db) as store:
        records = audit_records(
            store, limit=limit, newest_first=True, target=target, action_prefix=action
        )
    records.reverse()
    if as_json:
        print_json([r.to_dict() for r in records])
        return
    if not records:
        out.print("the audit log is empty")
        return
    for r in records:
        out.print(
            f"{r.seq:>5}  {r.at.strftime('%Y-%m-%d %H:%M:%S')}Z  {r.actor}  {r.action}  {r.target}",
            highlight=False,
        )
        if r.before is not None:
            out.print(f"       before {r.before}", highlight=False)
        if r.after is not None:
            out.print(f"       after  {r.after}", highlight=False)


@audit_app.command("anchor")
def audit_anchor_command(db: DbOption = None) -> None:
    """Print the chain head SEQ:HASH; keep it elsewhere and pass it to 'audit verify --anchor'."""
    with open_store(db) as store:
        anchor = audit_anchor(store)
    if anchor is None:
        out.print("the audit log is empty: no anchor yet")
        return
    print(anchor)


@audit_app.command("verify")
def audit_verify(
    anchor: Annotated[
        str | None,
        typer.Option(
            "--anchor",
            help="SEQ:HASH printed earlier by 'microfab audit anchor': also detects deleted records",
            show_default=False,
        ),
    ] = None,
    db: DbOption = None,
) -> None:
    """Recompute the hash chain; name every edited or deleted record and exit 1 if any."""
    parsed = None if anchor is None else parse_anchor(anchor)
    with open_store(db) as store:
        report = verify_audit(store, parsed)
    if report.ok:
        head = "empty log" if report.head is None else f"head {report.head}"
        checked = " and the anchor" if parsed is not None else ""
        out.print(f"audit log intact: {report.records} records{checked} verified; {head}")
        return
    for problem in report.problems:
        err.print(problem.message, highlight=False)
    raise AuditVerifyError(
        f"audit log tampered: {len(report.problems)} problem(s) in {report.records} records"
    )
