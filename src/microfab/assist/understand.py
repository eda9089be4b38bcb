"""A question → one tool with typed arguments, or a reason to decline it (rules, no model).

Each intent is groups of words in English, written Chinese and Cantonese; an intent fits when a
word of every group is in the question and its score is the number of words found. The best
intent wins; a tie between two, or no fit at all, is declined with the closest supported
questions (rapidfuzz over the tools' examples). Names come from
:class:`~microfab.assist.entities.FactoryNames`, periods from :mod:`~microfab.assist.periods`.
A name-like word that is in no factory model ("press-9") declines the question: an answer about
something else would be a guessed number.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from dataclasses import dataclass, field
from typing import Any

from rapidfuzz import fuzz, process

from microfab.assist.entities import FactoryNames, Found
from microfab.assist.periods import Window, default_today, find_period, period_kinds, resolve
from microfab.assist.tools import TOOLS, Tool

Groups = tuple[tuple[str, ...], ...]

DOWN_WORDS = ("downtime", "down time", "down", "stop", "stopped", "stops", "stoppage", "breakdown",
              "breakdowns", "lost time", "lost", "lose", "failure", "failures", "停機", "停咗",
              "停低", "壞機", "壞咗", "死機", "停線", "故障", "停", "損失", "壞")  # fmt: skip
WHICH_MACHINE = ("which machine", "what machine", "which station", "worst machine", "邊部機",
                 "邊架機", "邊台機", "邊部", "邊架", "哪台", "哪部", "哪一部", "哪個機", "邊個機",
                 "邊一部")  # fmt: skip

EACH_MACHINE = ("each machine", "every machine", "per machine", "all machines", "by machine",
                "每部機", "每架機", "每台機", "各機", "逐部機")  # fmt: skip

NOT_KNOWN = ("cost", "costs", "price", "prices", "profit", "profitable", "revenue", "sales",
             "salary", "salaries", "wage", "wages", "money", "tomorrow", "next week",
             "next month", "next year", "forecast", "predict", "will be", "幾錢", "成本", "電費",
             "價錢", "利潤", "營業額", "人工", "薪金", "聽日", "明日", "明天", "下星期",
             "下個禮拜", "下個月", "明年", "預測")  # fmt: skip
"""Words of questions the plant's records cannot answer: money, people, the future."""
JOINERS = (" and ", " & ", " plus ", "同埋", "同", "及", "和", "以及", "仲有")
"""Words joining two questions in one ("OEE and downtime")."""
TOPIC = {"output": "oee", "worst_machine": "downtime", "energy": "carbon",
         "funding_assessment": "funding_evidence", "order_status": "orders",
         "open_orders": "orders", "late_orders": "orders"}  # fmt: skip
"""Intents that are one topic for telling two questions in one apart."""

INTENTS: dict[str, Groups] = {
    "oee": (
        ("oee", "overall equipment effectiveness", "設備綜合效率", "綜合效率", "availability",
         "efficient",
         "performance rate", "可用率", "稼動率", "efficiency", "效率", "嘅表現", "表現點"),
    ),
    "output": (
        ("made", "make", "produce", "produced", "production count", "output", "good units",
         "boxes", "meals", "units did", "units were", "生產咗", "生產了", "產量", "出咗",
         "做咗", "整咗", "做了", "良品", "幾多件", "幾多盒", "出貨量", "生產量"),
    ),
    "downtime": (
        DOWN_WORDS,
        ("reason", "reasons", "why", "cause", "causes", "pareto", "原因", "點解", "咩事",
         "乜嘢事", "為什麼", "how long", "幾耐", "多久", "top", "biggest", "largest", "main"),
    ),
    "worst_machine": (WHICH_MACHINE, DOWN_WORDS),
    "machine_state": (
        ("right now", "now", "currently", "at the moment", "而家", "依家", "宜家", "現在", "目前",
         "is running", "running?"),
        ("running", "down", "stopped", "state", "status", "idle", "停咗", "行緊", "開緊", "狀態",
         "壞咗", "停機", "停緊", "運行"),
    ),
    "late_orders": (
        ("late", "overdue", "behind schedule", "delayed", "past due", "delay", "遲", "延誤",
         "逾期", "趕唔切", "脫期", "延遲"),
    ),
    "order_status": (
        ("progress", "status", "how far", "done", "finish", "finished", "complete", "completed",
         "when will", "進度", "狀態", "做到邊", "幾時", "完成", "做完", "點樣", "how is"),
    ),
    "open_orders": (
        ("open orders", "all orders", "all the orders", "the orders", "orders", "全部單",
         "所有單", "所有訂單", "全部訂單", "未完成", "啲單", "張單", "訂單"),
        ("finish", "finished", "complete", "completed", "done", "when", "幾時", "完成", "做完",
         "how many", "幾多張", "open", "in progress", "做緊", "未完成"),
    ),
    "plan": (
        ("plan", "planned", "schedule", "scheduled", "排程", "排期", "計劃", "生產計劃", "排產"),
    ),
    "wip": (
        ("wip", "work in progress", "work-in-progress", "units in progress", "units are in progress",
         "in progress at", "在製品", "半成品", "在製"),
    ),
    "carbon": (
        ("carbon", "co2", "co2e", "kgco2e", "emission", "emissions", "footprint", "ghg", "碳", "排放",
         "碳足跡", "碳足印"),
    ),
    "energy": (
        ("energy", "electricity", "power use", "power used", "kwh", "用電", "耗電", "能源",
         "幾多電", "度電", "電量", "用咗幾多電", "電力"),
    ),
    "alerts": (
        ("alert", "alerts", "alarm", "alarms", "warning", "warnings", "警報", "警告", "報警",
         "警示"),
    ),
    "health": (
        ("health", "healthy", "rul", "remaining useful life", "maintenance", "maintain", "wear",
         "健康", "保養", "維修", "壽命", "磨損", "維護"),
    ),
    "spc": (
        ("spc", "control chart", "in control", "out of control", "control limits", "受控", "失控",
         "控制圖", "管制圖", "受唔受控"),
    ),
    "funding_evidence": (
        ("smart line", "smart-line", "smart production line", "evidence", "criteria",
         "智能生產線", "證明", "準則", "智能化"),
    ),
    "funding_assessment": (
        ("eligible", "eligibility", "nifs", "rfs", "grant", "funding", "subsidy", "資助",
         "合資格", "申請", "新型工業化", "資格", "津貼", "資助計劃"),
    ),
    "stock": (
        ("stock", "inventory", "expiring", "expiry", "expire", "lots", "庫存", "存貨", "到期",
         "貨倉", "倉存", "批次"),
    ),
}  # fmt: skip
"""Intent → groups of words (one of each group must be in the question)."""

STOCK_INTENTS = {"stock"}
"""Intents whose tools are not here yet (stock/ lands them in tools.STOCK_TOOLS)."""

_ACT = (
    r"cancel|release|create|modify|change|set|update|insert|remove|reset|restart|stop|start|"
    r"send|e-?mail|post|kill|execute|run|add|approve|acknowledge|ack|close|write|apply|replan|"
    r"re-plan"
)
REFUSE = re.compile(
    r"ignore (?:all |any |your |the |previous |prior |above |my )*(?:rules|instructions|prompts?)"
    r"|\bdisregard\b|system prompt|\byou are now\b|\bpretend\b|jailbreak|developer mode"
    r"|\b(?:delete|drop|truncate|erase|wipe|shut ?down|reboot|sudo|rm -rf)\b"
    r"|^\s*(?:please\s+|pls\s+|now\s+)?(?:" + _ACT + r")\b"
    r"|\b(?:please|can you|could you|would you|i want you to|go and)\s+(?:" + _ACT + r")\b"
    r"|select\s+\*|;\s*--|<script|\{\{|\$\{"
    r"|忽略|無視|扮演|刪除|删除|取消|釋放|修改|更改|清除|關機|重啟|停止部機|開機|新增訂單|落單"
    r"|執行|發送|幫我(?:停|開|改|刪|落|取消|釋放|關)",
    re.IGNORECASE,
)
"""Prompt injection and requests to act: the assistant only reads, so these are refused."""

CJK = re.compile(r"[\u3400-\u9fff]")


@dataclass(slots=True)
class Intent:
    """The tool chosen for a question and its arguments."""

    tool: str
    arguments: dict[str, Any]
    labels: tuple[str, str] = ("", "")
    """The period as said in English and Chinese ("yesterday (Mon 23/11)", "昨日（23/11）")."""


@dataclass(slots=True)
class Decline:
    reason: str
    """unsupported, ambiguous, unknown_name, refused, stock."""
    en: str
    zh: str
    suggestions: list[str] = field(default_factory=list)


def is_chinese(text: str) -> bool:
    return CJK.search(text) is not None


def _has(word: str, q: str) -> bool:
    if not word.isascii():
        return word in q
    return re.search(r"(?<![a-z0-9])" + re.escape(word) + r"(?![a-z0-9])", q) is not None


def scores(q: str) -> dict[str, int]:
    """Intent → how many of its words the (lower-case) question holds, for the intents that fit."""
    out: dict[str, int] = {}
    for name, groups in INTENTS.items():
        hits = [sum(1 for w in group if _has(w, q)) for group in groups]
        if all(hits):
            out[name] = sum(hits)
    return out


def suggestions(question: str, zh: bool, limit: int = 3) -> list[str]:
    """The supported example questions closest to ``question``."""
    examples = [e for t in TOOLS.values() for e in (t.examples_zh if zh else t.examples_en)]
    found = process.extract(question, examples, scorer=fuzz.token_set_ratio, limit=limit)
    return [text for text, _score, _i in found]


def _pick(found: dict[str, int], names: Found, q: str) -> list[str]:
    """The best intents for what the question names (ties left for the caller)."""
    if not found:
        return []
    if names.order is not None:
        # a named order: its status, unless lateness of orders in general is asked
        found = {k: v + (2 if k == "order_status" else 0) for k, v in found.items()}
        found.pop("open_orders", None)
    elif "order_status" in found:
        found.pop("order_status")  # status of which order?
    if names.order is not None and "late_orders" in found:
        found["order_status"] = found.pop("late_orders") + 2  # "is WO… late?": its status
    if "plan" in found and ("behind schedule" in q or "ahead of schedule" in q):
        found.pop("plan")  # lateness, not the plan
    if "plan" in found:  # "when is WO… planned to finish": the plan's time, not the estimate
        found.pop("order_status", None)
        found.pop("open_orders", None)
        found.pop("late_orders", None)
    if "machine_state" in found:  # "now": the live state, not time lost over a period
        for other in ("worst_machine", "downtime", "order_status", "open_orders"):
            found.pop(other, None)
    if "worst_machine" in found:
        found.pop("downtime", None)
        if names.machine is not None:
            found.pop("worst_machine")  # "how long was filler-1 down": its downtime
            found["downtime"] = 1
    if "carbon" in found:
        found.pop("energy", None)  # carbon per unit names kWh too
        if names.order is not None:
            found["carbon_order"] = found.pop("carbon") + 2
            found.pop("order_status", None)
    if "funding_evidence" in found:
        found.pop("funding_assessment", None)
    if "oee" in found:
        found.pop("output", None)
    if "late_orders" in found:
        found.pop("open_orders", None)
    if "wip" in found and "order_status" in found and names.order is None:
        found.pop("order_status")
    if not found:
        return []
    best = max(found.values())
    return sorted(k for k, v in found.items() if v == best)


def understand(
    question: str, names: FactoryNames, now: dt.datetime, zone: zoneinfo.ZoneInfo
) -> Intent | Decline:
    """Turn a question (already checked for length and refusals) into an :class:`Intent`."""
    q = question.lower()
    zh = is_chinese(question)
    found = names.find(question)
    if found.unknown:
        word = found.unknown[0]
        known = ", ".join(names.machine_ids())
        return Decline(
            "unknown_name",
            f"'{word}' is not a machine, line, product or order of this factory, so I have no "
            f"number for it. Machines: {known}.",
            f"「{word}」不是這間廠的機器、生產線、產品或訂單，所以沒有數字。機器：{known}。",
            suggestions(question, zh),
        )
    if any(_has(w, q) for w in NOT_KNOWN):
        return Decline(
            "unsupported",
            "I only have the plant's recorded figures — not costs, prices, staff or forecasts, "
            "and nothing after the plant clock.",
            "我只有廠房已記錄的數字——沒有成本、價錢、人手或預測，亦沒有未來的數字。",
            suggestions(question, zh),
        )
    if len(period_kinds(question)) > 1:
        return Decline(
            "ambiguous",
            "That names more than one period; I answer one period at a time — ask for each.",
            "這個問題提到多於一段時間；我每次只答一段時間，請分開問。",
            suggestions(question, zh),
        )
    found_scores = scores(q)
    picked = _pick(dict(found_scores), found, q)
    if len(picked) == 1 and any(w in q for w in JOINERS):
        topics = {TOPIC.get(k, k) for k in found_scores} | {
            TOPIC.get(k, k) for k, groups in INTENTS.items() if any(_has(w, q) for w in groups[0])
        }
        topics.discard(TOPIC.get(picked[0], picked[0]))
        if topics - {"orders"}:
            picked = sorted({picked[0], *(t for t in topics if t in TOOLS)})
    if not picked:
        return Decline(
            "unsupported",
            "I can't answer that from the plant's data.",
            "我未能用廠房數據回答這個問題。",
            suggestions(question, zh),
        )
    if len(picked) > 1:
        options = [TOOLS[p].en if p in TOOLS else p for p in picked]
        options_zh = [TOOLS[p].zh if p in TOOLS else p for p in picked]
        return Decline(
            "ambiguous",
            "That could mean more than one thing: " + "; ".join(options) + ". Please ask one.",
            "這個問題可以有不同意思：" + "；".join(options_zh) + "。請分開問。",
            [
                e
                for p in picked
                if p in TOOLS
                for e in (TOOLS[p].examples_zh if zh else TOOLS[p].examples_en)
            ][:3],
        )
    name = picked[0]
    if name in STOCK_INTENTS:
        return Decline(
            "stock",
            "Stock levels and expiring lots are not connected to the assistant yet.",
            "庫存及到期批次暫時未接入助手。",
            suggestions(question, zh),
        )
    for kind, options in found.ambiguous:
        if kind in ("machine", "line", "product", "order"):
            return Decline(
                "ambiguous",
                f"Which {kind} do you mean: {', '.join(options)}?",
                f"你指邊個：{'、'.join(options)}？",
                suggestions(question, zh),
            )
    return _arguments(TOOLS[name], found, question, names, now, zone)


def _extra_names(tool: Tool, found: Found) -> list[str]:
    """Names the question gives that the tool cannot take (its answer would ignore them)."""
    extra = []
    if found.order is not None and "order" not in tool.takes:
        extra.append(found.order)
    if found.product is not None and "product" not in tool.takes:
        extra.append(found.product)
    if found.machine is not None and "machine" not in tool.takes and tool.name != "worst_machine":
        extra.append(found.machine.machine.id)
    return extra


def _arguments(
    tool: Tool,
    found: Found,
    question: str,
    names: FactoryNames,
    now: dt.datetime,
    zone: zoneinfo.ZoneInfo,
) -> Intent | Decline:
    zh = is_chinese(question)
    args: dict[str, Any] = {}
    extra = _extra_names(tool, found)
    if extra:
        return Decline(
            "unsupported",
            f"{tool.en} is not broken down by {', '.join(extra)}; I won't give a figure that "
            "ignores it.",
            f"「{tool.zh}」不能按 {'、'.join(extra)} 細分；我不會給出忽略它的數字。",
            list(tool.examples_zh if zh else tool.examples_en),
        )
    for need in tool.needs:
        if getattr(found, need) is None:
            return Decline(
                "ambiguous",
                f"Which {need} do you mean? Name it, e.g. '{tool.examples_en[0]}'.",
                f"請講明係邊個{ {'order': '訂單', 'machine': '機器', 'product': '產品', 'line': '生產線'}.get(need, need) }，例如「{tool.examples_zh[0]}」。",
                list(tool.examples_zh if zh else tool.examples_en),
            )
    if tool.name == "spc" and found.machine is not None:
        options = names.characteristic(found.machine, question)
        if len(options) != 1:
            return Decline(
                "ambiguous",
                f"Which measurement of {found.machine.machine.id}: {', '.join(options) or 'none'}?",
                f"{found.machine.machine.id} 的哪一項量度：{'、'.join(options) or '沒有'}？",
                [f"Is {o.replace(':', ' ')} in control?" for o in options[:3]],
            )
        args["characteristic"] = options[0]
        return Intent(tool.name, args)
    if "order" in tool.takes and found.order is not None:
        args["order"] = found.order
    if "product" in tool.takes and found.product is not None:
        args["product"] = found.product
    if "machine" in tool.takes and found.machine is not None:
        args["machine"] = found.machine.path
    q = question.lower()
    if (
        "by" in tool.takes
        and found.machine is None
        and any(_has(w, q) for w in (*WHICH_MACHINE, *EACH_MACHINE))
    ):
        args["by"] = "machine"
    if "line" in tool.takes:
        if found.line is not None:
            args["line"] = found.line.path
        elif found.machine is not None and "machine" in tool.takes:
            pass  # the machine says it
        elif len(names.lines) == 1 and tool.name in ("oee", "output"):
            args["line"] = names.lines[0].path
    word = find_period(question)
    labels = ("", "")
    if "period" in tool.takes:
        calendar = None
        line = found.line or (names.lines[0] if names.lines else None)
        if found.machine is not None:
            line = next(
                (ln for ln in names.lines if found.machine.path.startswith(ln.path + "/")), line
            )
        if line is not None and line.calendar:
            calendar = names.factory.calendar(line.calendar)
        window: Window | None = (
            resolve(word, now, zone, calendar) if word is not None else default_today(now, zone)
        )
        if word is None and not tool.default_period:
            return Intent(tool.name, args, ("over the stored data", "全部已儲存數據"))
        if window is None:
            return Decline(
                "unsupported",
                f"I can't tell which period '{word.text if word else ''}' is here "
                "(no such date or no shift yet).",
                f"我唔知「{word.text if word else ''}」係邊段時間（沒有這個日期或未有更次）。",
                suggestions(question, zh),
            )
        args["from"] = window.start.astimezone(zone).isoformat(timespec="milliseconds")
        args["to"] = window.end.astimezone(zone).isoformat(timespec="milliseconds")
        labels = (window.label_en, window.label_zh)
    elif word is not None and word.kind not in ("today", "this_shift"):
        return Decline(
            "unsupported",
            f"{tool.en} is known as of now only, not for '{word.text}'.",
            f"「{tool.zh}」只有現時的數字，沒有「{word.text}」的。",
            list(tool.examples_zh if zh else tool.examples_en),
        )
    return Intent(tool.name, args, labels)
