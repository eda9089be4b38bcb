"""``microfab db rebuild-views``, ``microfab db status`` and ``microfab orders orphans``: the
production read model's upkeep and what it could not place."""

from __future__ import annotations

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from microfab.commands.common import DbOption, JsonOption, err, out, print_json, stored_factory


def db_rebuild_views(db: DbOption = None) -> None:
    """Rebuild the production read model from the event log (safe to run again)."""
    from microfab.store import open_store
    from microfab.store.production_views import rebuild

    with (
        open_store(db) as store,
        Progress(
            TextColumn("rebuilding production views"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
        ) as bar,
    ):
        task = bar.add_task("rebuild", total=store.last_seq() or 1)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        result = rebuild(store, progress=advance)
        bar.update(task, completed=result.seq, total=max(result.seq, 1))
    for skipped in result.skipped:
        err.print(
            f"skipped event #{skipped.seq} ({skipped.event_id}): {skipped.reason}",
            highlight=False,
        )
    out.print(
        f"production views rebuilt: {result.counts:,} counts from {result.events:,} events, "
        f"checkpoint {result.seq:,}"
        + (f", {len(result.skipped):,} unreadable events skipped" if result.skipped else ""),
        highlight=False,
    )


def db_status(db: DbOption = None, as_json: JsonOption = False) -> None:
    """The log's length and how far each read model is behind it."""
    from microfab.store import open_store
    from microfab.store.production_views import skipped_events, view_lag

    with open_store(db) as store:
        lag = view_lag(store)
        skipped = skipped_events(store)
        events = store.count()
    document = {
        "events": events,
        "last_seq": lag.last_seq,
        "views": [
            {
                "view": lag.view,
                "checkpoint": lag.checkpoint,
                "behind": lag.behind,
                "factory_version": lag.factory_version,
                "skipped": [
                    {"seq": s.seq, "event": s.event_id, "reason": s.reason} for s in skipped
                ],
            }
        ],
    }
    if as_json:
        print_json(document)
        return
    out.print(f"{events:,} events, last sequence {lag.last_seq:,}", highlight=False)
    state = "up to date" if lag.behind == 0 else f"behind by {lag.behind:,} events"
    out.print(
        f"{lag.view}: checkpoint {lag.checkpoint:,} ({state}; every read catches it up, or run "
        "'microfab db rebuild-views')"
        + (f"; {len(skipped):,} unreadable events skipped" if skipped else ""),
        highlight=False,
    )


def orders_orphans(db: DbOption = None, as_json: JsonOption = False) -> None:
    """Counts naming an order the store does not know, or an operation outside its routing."""
    from microfab.store import open_store
    from microfab.track.production import orphans

    with open_store(db) as store:
        found = orphans(store, stored_factory(store))
    if as_json:
        print_json([o.to_json() for o in found])
        return
    if not found:
        out.print("no orphan counts: every count names a known order and routing step")
        return
    table = Table("machine", "order", "operation", "good", "scrap", "why")
    for o in found:
        table.add_row(
            o.machine,
            o.order,
            "" if o.operation is None else str(o.operation),
            f"{o.good:,}",
            f"{o.scrap:,}",
            o.why,
        )
    out.print(table)
    out.print("These units still count for their machine (OEE, station counts).", highlight=False)
