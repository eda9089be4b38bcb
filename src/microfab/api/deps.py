"""Dependencies the routes share: the app's :class:`~microfab.api.plant.Plant`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from microfab.api.plant import Plant


def get_plant(request: Request) -> Plant:
    plant = request.app.state.plant
    assert isinstance(plant, Plant)
    return plant


PlantDep = Annotated[Plant, Depends(get_plant)]
