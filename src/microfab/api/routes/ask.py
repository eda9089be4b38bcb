"""``POST /api/v1/ask``: the plant assistant (:mod:`microfab.assist`) for the API and the
dashboard's chat box.

The route needs ``plant.read``; each tool then checks its own permission against the caller
(funding answers need ``funding.read``), so a question never reaches data the caller may not
see. A question the assistant cannot or will not answer is still a 200 answer with ``tool: null``
and no values, never an error page.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from microfab.api.answers import AskAnswer
from microfab.assist.assistant import ask as ask_plant
from microfab.http.deps import CarbonPanelDep, PlantDep, PrincipalDep
from microfab.http.errors import ERROR_RESPONSES
from microfab.settings import load_settings

router = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES, tags=["assistant"])


class Question(BaseModel):
    question: str = Field(
        description="The question in English, Traditional Chinese or Cantonese (the assistant "
        "answers at most 500 characters and refuses longer ones in its answer, up to the "
        "request body limit of 1 MiB)",
    )


@router.post(
    "/ask",
    response_model=AskAnswer,
    summary="Ask the plant a question (the offline assistant)",
)
def ask(
    body: Question,
    request: Request,
    plant: PlantDep,
    panel: CarbonPanelDep,
    principal: PrincipalDep,
) -> dict[str, Any]:
    """The answer as ``microfab ask --json`` prints it: ``answer`` (text), ``values`` (name,
    value, unit; ratios 0–1 with unit ``ratio``), ``tool`` and ``arguments``, ``period`` in site
    time and ``link``, the view with the same figures. Declined: ``tool`` null, ``values`` []."""
    configured = load_settings().funding_application
    answer = ask_plant(
        plant,
        body.question,
        principal=principal,
        carbon_settings=panel.settings_path,
        funding_application=Path(configured) if configured else None,
        plan_file=request.app.state.plan_file.path,
    )
    return answer.to_json()
