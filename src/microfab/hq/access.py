"""Which sites a principal sees at HQ: every site with ``plant.read`` (an HQ role), else only
those granted to it (a site manager: ``microfab hq grant user:NAME --site S``)."""

from __future__ import annotations

from microfab.model.factory import Factory
from microfab.model.identity import Permission, Principal
from microfab.store import EventStore
from microfab.store.hq import granted_sites


def visible_sites(store: EventStore, factory: Factory, principal: Principal) -> list[str]:
    """The ids of the sites of ``factory`` that ``principal`` may see, in the model's order."""
    every = [site.id for site in factory.sites]
    if principal.allows(Permission.PLANT_READ):
        return every
    if not principal.allows(Permission.HQ_READ):
        return []
    granted = granted_sites(store, principal.actor)
    return [site for site in every if site in granted]
