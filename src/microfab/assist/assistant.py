"""Ask the plant: bad input refused, the question understood, the caller's permission checked, one
read-only tool run, the answer with its numbers, period, tool, arguments and view.

Nothing here writes: a question that asks for an action ("cancel WO…", "delete …") or tries to
change the rules is refused before it is read for intent. A tool that fails (no data, a window
too long) gives its one-sentence message as a declined answer, never an error page.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from microfab.assist import llm as llm_backend
from microfab.assist.answer import Answer, Period
from microfab.assist.entities import FactoryNames
from microfab.assist.tools import Context, Result, tool
from microfab.assist.tools import run as run_tool
from microfab.assist.understand import (
    REFUSE,
    Decline,
    Intent,
    is_chinese,
    suggestions,
    understand,
)
from microfab.errors import MicrofabError
from microfab.model.factory import Factory
from microfab.model.identity import Principal
from microfab.store.quality import metric_names
from microfab.track.plant import Plant

log = logging.getLogger(__name__)

MAX_QUESTION_CHARS = 500
"""Longer questions are refused (a 10 kB paste is no question)."""
CACHE_SIZE = 128
"""Tool results kept per (store state, tool, arguments): the same question about the same data
gets the same numbers without recomputing them (any new event changes the key)."""

_cache: OrderedDict[tuple[Any, ...], Result] = OrderedDict()
_cache_lock = threading.Lock()


def clear_cache() -> None:
    """Forget the kept tool results (the benchmark times cold answers)."""
    with _cache_lock:
        _cache.clear()


UNCACHED = frozenset({"plan", "funding_assessment"})
"""Tools that read a file, which may change without the store changing."""


def _run_cached(name: str, ctx: Context, args: dict[str, Any]) -> Result:
    if name in UNCACHED:
        return run_tool(name, ctx, args)
    key = (
        id(ctx.plant.store),
        ctx.plant.store.url,
        ctx.plant.store.last_seq(),
        ctx.plant.factory_version(),
        ctx.now,
        name,
        tuple(sorted((k, str(v)) for k, v in args.items())),
        str(ctx.carbon_settings),
        str(ctx.funding_application),
        str(ctx.plan_file),
    )
    with _cache_lock:
        found = _cache.get(key)
        if found is not None:
            _cache.move_to_end(key)
            return found
    result = run_tool(name, ctx, args)
    with _cache_lock:
        _cache[key] = result
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return result


def _declined(question: str, decline: Decline, zh: bool) -> Answer:
    text = decline.zh if zh else decline.en
    if decline.suggestions:
        lead = "你可以問：" if zh else "You can ask:"
        text += "\n" + lead + "\n" + "\n".join(f"• {s}" for s in decline.suggestions)
    return Answer(
        question=question,
        answer=text,
        suggestions=decline.suggestions,
        reason=decline.reason,
    )


def check_question(question: str) -> Decline | None:
    """Empty, too long or asking for an action: the refusal, else None."""
    text = question.strip()
    zh = is_chinese(text)
    if not text:
        return Decline(
            "empty",
            "Ask a question about the plant, e.g. OEE, downtime, late orders or carbon.",
            "請問一個關於廠房的問題，例如 OEE、停機、延誤訂單或碳排放。",
            suggestions("OEE downtime late orders", zh),
        )
    if len(text) > MAX_QUESTION_CHARS:
        return Decline(
            "too_long",
            f"That question is {len(text):,} characters long; ask in at most "
            f"{MAX_QUESTION_CHARS} characters.",
            f"問題太長（{len(text):,} 字元）；請於 {MAX_QUESTION_CHARS} 字元內發問。",
        )
    if REFUSE.search(text):
        return Decline(
            "refused",
            "I only read the plant's figures; I never change, delete or start anything, and my "
            "rules stay as they are.",
            "我只會讀取廠房數據，不會更改、刪除或啟動任何東西，亦不會改變規則。",
            suggestions(text, zh),
        )
    return None


def ask(
    plant: Plant,
    question: str,
    *,
    principal: Principal,
    carbon_settings: Path | None = None,
    funding_application: Path | None = None,
    plan_file: Path | None = None,
    use_llm: bool = True,
) -> Answer:
    """Answer ``question`` for ``principal`` (every tool checks its permission)."""
    text = (question or "").strip()
    shown = text if len(text) <= MAX_QUESTION_CHARS else text[:MAX_QUESTION_CHARS] + "…"
    zh = is_chinese(text)
    refused = check_question(text)
    if refused is not None:
        return _declined(shown, refused, zh)
    try:
        factory = plant.factory()
        now = plant.now()
        names = FactoryNames(
            factory,
            [row.order for row in plant.store.order_status()],
            metrics=lambda path: metric_names(plant.store, path),
        )
    except MicrofabError as exc:
        return _declined(shown, Decline("failed", exc.message, exc.message), zh)
    zone = plant.zone(factory)
    understood = understand(text, names, now, zone)
    if (
        use_llm
        and isinstance(understood, Decline)
        and understood.reason in ("unsupported", "ambiguous")
    ):
        chosen = llm_backend.choose(text, names, now, zone)
        if chosen is not None:
            understood = chosen
    if isinstance(understood, Decline):
        return _declined(shown, understood, zh)
    files = {"carbon_settings": carbon_settings, "funding_application": funding_application}
    return _answer(
        shown, understood, principal, plant, factory, now, zh, files | {"plan_file": plan_file}
    )


def _answer(
    question: str,
    intent: Intent,
    principal: Principal,
    plant: Plant,
    factory: Factory,
    now: dt.datetime,
    zh: bool,
    files: dict[str, Path | None],
) -> Answer:
    found = tool(intent.tool)
    if not principal.allows(found.permission):
        return _declined(
            question,
            Decline(
                "forbidden",
                f"Your role may not see this ({found.en}: needs permission "
                f"{found.permission.value}).",
                f"你的角色無權查看（{found.zh}：需要權限 {found.permission.value}）。",
            ),
            zh,
        )
    ctx = Context(
        plant=plant,
        factory=factory,
        now=now,
        carbon_settings=files["carbon_settings"],
        funding_application=files["funding_application"],
        plan_file=files["plan_file"],
    )
    args = dict(intent.arguments)
    args["_label_en"], args["_label_zh"] = intent.labels
    try:
        result = _run_cached(intent.tool, ctx, args)
    except MicrofabError as exc:
        return _declined(
            question, Decline("failed", exc.message, f"未能取得這個數字：{exc.message}"), zh
        )
    except Exception:  # a fault in a tool is logged and declined, never an error page
        log.exception("assistant tool %s failed for %r", intent.tool, question)
        return _declined(
            question,
            Decline(
                "failed",
                "Something went wrong reading that figure; it is logged. Try another question.",
                "讀取這個數字時出錯，已記錄；請試另一個問題。",
            ),
            zh,
        )
    return Answer(
        question=question,
        answer=result.zh if zh else result.en,
        values=result.values,
        tool=intent.tool,
        arguments=dict(intent.arguments),
        period=result.period if result.period else Period(None, None),
        link=result.link,
    )
