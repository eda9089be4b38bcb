"""Dependencies the routes and pages share: the app's :class:`~microfab.track.plant.Plant`, its
:class:`~microfab.green.carbon_panel.CarbonPanel` and the signed-in
:class:`~microfab.model.identity.Principal` (set by :class:`microfab.http.auth.AccessGate`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from microfab.green.carbon_panel import CarbonPanel
from microfab.model.identity import Principal
from microfab.track.plant import Plant


def get_plant(request: Request) -> Plant:
    plant = request.app.state.plant
    assert isinstance(plant, Plant)
    return plant


def get_carbon_panel(request: Request) -> CarbonPanel:
    """The dashboard's carbon figures, kept up to date in the background."""
    panel = request.app.state.carbon
    assert isinstance(panel, CarbonPanel)
    return panel


def get_principal(request: Request) -> Principal:
    """Who is calling; the gate has already refused anyone else on a non-public route."""
    principal = getattr(request.state, "principal", None)
    assert isinstance(principal, Principal), "a route needing a principal is declared public"
    return principal


PlantDep = Annotated[Plant, Depends(get_plant)]
CarbonPanelDep = Annotated[CarbonPanel, Depends(get_carbon_panel)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
