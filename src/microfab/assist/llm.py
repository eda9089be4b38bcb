"""Optional: an OpenAI-compatible chat endpoint (a local llama.cpp or Ollama server) that chooses
a tool when the rules decline a question as unsupported or ambiguous.

Off unless ``MICROFAB_ASSIST_LLM_URL`` is set. The model only picks a tool name and names
(machine, line, product, order) and a period word; they are matched against the factory model
and resolved by the same code as the offline path, and the numbers come from the tool, verbatim.
Anything the model says that is not one of those is ignored; an unreachable endpoint leaves the
rules' answer standing.
"""

from __future__ import annotations

import datetime as dt
import json
import zoneinfo
from typing import TYPE_CHECKING, Any

import httpx

from microfab.settings import load_settings, secret

if TYPE_CHECKING:
    from microfab.assist.entities import FactoryNames
    from microfab.assist.understand import Decline, Intent

TIMEOUT_S = 20.0


def _prompt(names: FactoryNames) -> str:
    from microfab.assist.tools import TOOLS

    tools = "\n".join(
        f"- {t.name}: {t.en} (takes {', '.join(t.takes) or 'nothing'})" for t in TOOLS.values()
    )
    return (
        "You route questions about a factory to one tool. Reply with JSON only: "
        '{"tool": NAME or null, "machine": ID or null, "line": ID or null, "product": SKU or '
        'null, "order": ID or null, "period": words such as "yesterday" or "this week" or null}. '
        "Never answer with numbers.\nTools:\n"
        + tools
        + f"\nMachines: {', '.join(names.machine_ids())}\n"
        + f"Lines: {', '.join(ln.id for ln in names.lines)}\n"
        + f"Products: {', '.join(p.sku for p in names.products)}"
    )


def _ask_model(question: str, names: FactoryNames) -> dict[str, Any] | None:
    settings = load_settings()
    url = settings.assist_llm_url
    if not url:
        return None
    headers = {}
    key = secret(settings.assist_llm_key)
    if key:
        headers["authorization"] = f"Bearer {key}"
    body = {
        "model": settings.assist_llm_model,
        "temperature": 0,
        "messages": [
            {"role": "system", "content": _prompt(names)},
            {"role": "user", "content": question},
        ],
    }
    try:
        with httpx.Client(timeout=TIMEOUT_S) as client:
            response = client.post(
                url.rstrip("/") + "/chat/completions", json=body, headers=headers
            )
            response.raise_for_status()
            content = response.json()["choices"][0]["message"]["content"]
        start, end = content.index("{"), content.rindex("}") + 1
        parsed = json.loads(content[start:end])
    except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError):
        return None
    return parsed if isinstance(parsed, dict) else None


def choose(
    question: str, names: FactoryNames, now: dt.datetime, zone: zoneinfo.ZoneInfo
) -> Intent | Decline | None:
    """The model's choice, checked and resolved like a typed question; None to keep the rules'."""
    from microfab.assist.tools import TOOLS
    from microfab.assist.understand import _arguments

    choice = _ask_model(question, names)
    if not choice or choice.get("tool") not in TOOLS:
        return None
    words = " ".join(
        str(choice[k]) for k in ("machine", "line", "product", "order", "period") if choice.get(k)
    )
    found = names.find(words)
    if found.unknown or found.ambiguous:
        return None
    return _arguments(TOOLS[str(choice["tool"])], found, words or question, names, now, zone)
