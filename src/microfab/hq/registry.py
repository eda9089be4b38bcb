"""HQ's group factory model: every site's own factory model, merged into one.

HQ stores the events of several sites in one store, and the read models (working time from each
line's calendar, ideal cycle times) need each site's model. ``microfab hq register FILE`` merges a
site's factory file into HQ's current model (:func:`merge_site`) and applies the result as a new
version:

- the file's sites replace HQ's sites of the same id, or are added;
- a calendar whose id HQ already uses for a different calendar is renamed ``<site>-<id>`` (cut to
  40 characters) in the site's lines, so every site keeps its own shifts and closures;
- products, setup matrices and downtime reason codes are the group's: one the same as HQ's is
  taken once, one that differs under the same id is refused (rename it in the site's file);
- machine ids must stay unique across the group (the routings name them).

:func:`only_sites` narrows a model to some sites (``microfab oee --site S`` at HQ).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from pydantic import ValidationError

from microfab.errors import InputError, NotFoundError
from microfab.model.factory import Factory, Site


def merge_site(group: Factory | None, site_model: Factory) -> Factory:
    """``group`` with ``site_model``'s sites registered (see the module docstring)."""
    if group is None:
        return site_model
    incoming = {s.id for s in site_model.sites}
    calendars = {c.id: c for c in group.calendars}
    renames: dict[str, str] = {}
    for cal in site_model.calendars:
        known = calendars.get(cal.id)
        if known is None or known == cal:
            calendars.setdefault(cal.id, cal)
            continue
        owner = site_model.sites[0].id
        new_id = f"{owner}-{cal.id}"[:40]
        if new_id in calendars and calendars[new_id] != cal:
            raise InputError(
                f"calendar '{cal.id}' differs from HQ's and '{new_id}' is taken too; "
                "give it another id in the site's factory file"
            )
        renames[cal.id] = new_id
        calendars[new_id] = cal.model_copy(update={"id": new_id})
    sites = [s for s in group.sites if s.id not in incoming]
    sites += [_renamed(s, renames) for s in site_model.sites]
    products = _union("product", {p.sku: p for p in group.products}, site_model.products, "sku")
    matrices = dict(group.setup_matrices)
    for name, matrix in site_model.setup_matrices.items():
        if name in matrices and matrices[name] != matrix:
            raise InputError(
                f"setup matrix '{name}' differs from HQ's; rename it in the site's file"
            )
        matrices[name] = matrix
    reasons = group.downtime_reasons.model_copy(
        update={
            "planned": _union(
                "downtime reason",
                {r.code: r for r in group.downtime_reasons.planned},
                site_model.downtime_reasons.planned,
                "code",
            ),
            "unplanned": _union(
                "downtime reason",
                {r.code: r for r in group.downtime_reasons.unplanned},
                site_model.downtime_reasons.unplanned,
                "code",
            ),
        }
    )
    document: dict[str, Any] = {
        **group.model_dump(mode="json"),
        "sites": [s.model_dump(mode="json") for s in sites],
        "calendars": [c.model_dump(mode="json") for c in calendars.values()],
        "products": [p.model_dump(mode="json") for p in products],
        "setup_matrices": matrices,
        "downtime_reasons": reasons.model_dump(mode="json"),
    }
    try:
        return Factory.model_validate(document)
    except ValidationError as exc:
        problem = exc.errors()[0]
        raise InputError(
            f"the sites {', '.join(sorted(incoming))} cannot join HQ's model: {problem['msg']}"
        ) from None


def _renamed(site: Site, renames: dict[str, str]) -> Site:
    if not renames:
        return site
    areas = [
        area.model_copy(
            update={
                "lines": [
                    line.model_copy(update={"calendar": renames.get(line.calendar, line.calendar)})
                    for line in area.lines
                ]
            }
        )
        for area in site.areas
    ]
    return site.model_copy(update={"areas": areas})


def _union(what: str, known: dict[str, Any], incoming: list[Any], key: str) -> list[Any]:
    merged = dict(known)
    for item in incoming:
        name = getattr(item, key)
        if name in merged and merged[name] != item:
            raise InputError(
                f"{what} '{name}' differs from HQ's; give it another id in the site's file"
            )
        merged[name] = item
    return list(merged.values())


def only_sites(factory: Factory, sites: Collection[str]) -> Factory:
    """``factory`` narrowed to ``sites`` (their machines, lines and calendars; the products stay)."""
    chosen = [s for s in factory.sites if s.id in sites]
    missing = sorted(set(sites) - {s.id for s in chosen})
    if missing:
        known = ", ".join(s.id for s in factory.sites)
        raise NotFoundError(f"no site '{missing[0]}' in the factory model (sites: {known})")
    return factory.model_copy(update={"sites": chosen})
