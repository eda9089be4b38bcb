"""Dependencies the routes share: the app's :class:`~microfab.api.plant.Plant` and the signed-in
:class:`~microfab.model.identity.Principal` (set by :class:`microfab.api.auth.AccessGate`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from microfab.api.plant import Plant
from microfab.model.identity import Principal


def get_plant(request: Request) -> Plant:
    plant = request.app.state.plant
    assert isinstance(plant, Plant)
    return plant


def get_principal(request: Request) -> Principal:
    """Who is calling; the gate has already refused anyone else on a non-public route."""
    principal = getattr(request.state, "principal", None)
    assert isinstance(principal, Principal), "a route needing a principal is declared public"
    return principal


PlantDep = Annotated[Plant, Depends(get_plant)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
