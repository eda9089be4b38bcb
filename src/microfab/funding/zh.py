"""中文 for the funding sentences: the ledger review's warnings, claim conditions and deadlines,
the smart-line evidence, and the report drafts' own words.

The funding code writes its sentences in English (they are also the CLI's and the JSON's);
:data:`SENTENCES` gives each sentence kind a pattern and its Chinese with the same named parts,
:data:`WORDS` the single words and table headings. The web catalogue
(:data:`microfab.web.labels.MESSAGES`) takes :data:`SENTENCES` in, so the funding pages show
both languages through it; the report drafts (:mod:`microfab.funding.reports`) put the Chinese
beside each English sentence with :func:`zh`. A part named ``t_…`` is itself a sentence and is
translated in turn (``overdue: {t_what} (due …)``), and the sentence is known only when its
parts are. Names from the ledger file (projects, budget
items, suppliers, milestones) are the company's words and stay as written.
"""

from __future__ import annotations

import re

SENTENCES: tuple[tuple[str, str], ...] = (
    # ledger review (microfab.funding.ledger): warnings
    (
        r"^(?P<id>\S+) '(?P<item>.+)': spent (?P<s>HK\$[\d,.]+) of (?P<a>HK\$[\d,.]+) approved — "
        r"overspent by (?P<o>HK\$[\d,.]+) \(the excess is not reimbursed\)$",
        "{id}「{item}」：已支出 {s}，核准 {a}，超支 {o}（超出部分不獲發還）",
    ),
    (
        r"^expenditures\[(?P<i>\d+)\] (?P<inv>\S+): (?P<amt>HK\$[\d,.]+) on (?P<b>\S+) "
        r"\((?P<cat>[^)]+)\) is not reimbursable \((?P<src>.+)\)$",
        "開支[{i}] {inv}：{b}（{cat}）的 {amt} 不獲發還（{src}）",
    ),
    (
        r"^expenditures\[(?P<i>\d+)\] (?P<inv>\S+) dated (?P<d>\S+) is outside the project "
        r"period (?P<a>\S+) to (?P<b>\S+)$",
        "開支[{i}] {inv}（日期 {d}）不在項目期 {a} 至 {b} 內",
    ),
    (
        r"^expenditures\[(?P<i>\d+)\] (?P<inv>\S+) is dated after (?P<d>\S+)$",
        "開支[{i}] {inv} 的日期在 {d} 之後",
    ),
    (
        r"^the approved grant (?P<g>HK\$[\d,.]+) is more than one-third of the approved budget "
        r"(?P<b>HK\$[\d,.]+); check the ledger$",
        "核准資助 {g} 多於核准預算 {b} 的三分之一；請檢查帳目",
    ),
    (
        r"^interim payments received (?P<x>HK\$[\d,.]+) exceed the interim maximum "
        r"(?P<y>HK\$[\d,.]+)$",
        "已收中期付款 {x} 超過中期付款上限 {y}",
    ),
    (r"^overdue: (?P<t_what>.+) \(due (?P<d>\S+)\)$", "逾期：{t_what}（限期 {d}）"),
    # ledger review: claim conditions
    (
        r"^from (?P<d>\S+): progress report and audited accounts accepted$",
        "{d} 起：進度報告及經審計帳目獲接納",
    ),
    (
        r"^at most (?P<p>\S+) of the approved grant and one-third of eligible spend so far$",
        "最多為核准資助的 {p}，亦不多於至今合資格開支的三分之一",
    ),
    (
        r"^after completion: final report and audited accounts accepted$",
        "項目完成後：完成報告及經審計帳目獲接納",
    ),
    (
        r"^one-third of eligible spend \((?P<x>HK\$[\d,.]+)\) capped by the grant "
        r"(?P<g>HK\$[\d,.]+), less interim payments received \((?P<y>HK\$[\d,.]+)\)$",
        "合資格開支（{x}）的三分之一，上限為資助額 {g}，減去已收中期付款（{y}）",
    ),
    # ledger review: deadlines
    (
        r"^progress report and audited accounts for the interim payment may be submitted$",
        "可提交中期付款的進度報告及經審計帳目",
    ),
    (r"^project end \(normally within 24 months\)$", "項目完結（一般在 24 個月內）"),
    (
        r"^final report and audited accounts \(after completion; the date is set in the "
        r"funding agreement\)$",
        "完成報告及經審計帳目（項目完成後提交；日期按資助協議）",
    ),
    (r"^milestone: (?P<name>.+)$", "里程碑：{name}"),
    (
        r"^end of the (?P<n>\d+)-year no-transfer period \(from completion (?P<d>\S+)\)$",
        "{n} 年不得轉讓期完結（由完成日期 {d} 起計）",
    ),
    (
        r"^end of the (?P<n>\d+)-year no-transfer period \(from the planned end (?P<d>\S+)\)$",
        "{n} 年不得轉讓期完結（由計劃完結日期 {d} 起計）",
    ),
    # smart-line evidence (microfab.funding.evidence)
    (
        r"^a machine meets the criteria when it is connected \(its events are stored\) and its "
        r"data feeds analytics \(OEE\) or it is a robot/AGV; energy meters are not counted$",
        "機器已連接（其事件已儲存），而其數據用於分析（OEE）或機器是機械人／AGV，即符合準則；"
        "能源錶不計算在內",
    ),
    (
        r"^no database given: only the factory model was read; give --db to measure "
        r"connectivity, latency and OEE from stored data$",
        "未提供資料庫：只讀取了工廠模型；請以 --db 從已儲存數據量度連接、延遲及 OEE",
    ),
    (
        r"^(?P<n>[\d,]+) message\(s\) rejected into dead letters \(kept with the reason, "
        r"`microfab deadletters list`\)$",
        "{n} 則訊息被拒收並存入死信（連同原因保存，`microfab deadletters list`）",
    ),
    (
        r"^(?P<n>[\d,]+) machine path\(s\) sent data but are not in the factory model$",
        "{n} 個機器路徑有傳送數據，但不在工廠模型內",
    ),
    (
        r"^connector mapping in the factory model: (?P<x>.+)$",
        "工廠模型內的連接器對應：{x}",
    ),
    (r"^no stored data read$", "未讀取已儲存數據"),
    (
        r"^(?P<a>\d+) of (?P<b>\d+) machines send data: (?P<x>.+)$",
        "{b} 部機器中有 {a} 部傳送數據：{x}",
    ),
    (
        r"^(?P<m>\S+): (?P<n>[\d,]+) events \((?P<s>[^)]*)\), (?P<r>\S+) events/h$",
        "{m}：{n} 個事件（{s}），每小時 {r} 個事件",
    ),
    (
        r"^median delay from event time to storage is (?P<x>\S+) s on (?P<m>\S+): the event times "
        r"are not wall-clock \(a simulated run or a device clock far off\), so latency cannot be "
        r"measured from this data$",
        "{m} 由事件時間至儲存的延遲中位數為 {x} 秒：事件時間不是實際時間（模擬運行或設備時鐘"
        "偏差很大），因此無法以這些數據量度延遲",
    ),
    (r"^(?P<m>\S+): median ingest delay (?P<x>\S+) s$", "{m}：接收延遲中位數 {x} 秒"),
    (r"^no recent events to measure$", "沒有近期事件可量度"),
    (
        r"^(?P<a>\d+) of (?P<b>\d+) machines within (?P<x>\S+) s \(median, newest events\)$",
        "{b} 部機器中有 {a} 部在 {x} 秒內（中位數，最新事件）",
    ),
    (
        r"^SPC: control charts and capability are available \(`microfab spc`\); whether they "
        r"are used is not recorded$",
        "SPC：提供管制圖及製程能力分析（`microfab spc`）；是否有使用並無記錄",
    ),
    (
        r"^SPC: no evidence \(statistical process control is not in this microfab version\)$",
        "SPC：沒有證明（此 microfab 版本沒有統計製程管制）",
    ),
    (
        r"^OEE computed from the data of (?P<a>\d+) of (?P<b>\d+) machines: (?P<x>.+)$",
        "以 {b} 部機器中 {a} 部的數據計算 OEE：{x}",
    ),
    (
        r"^line OEE (?P<o>\S+) \(A (?P<a>\S+), P (?P<p>\S+), Q (?P<q>\S+)\) from (?P<f>.+?) to "
        r"(?P<t>.+?); `(?P<c>[^`]+)`$",
        "生產線 OEE {o}（可用率 {a}，表現指數 {p}，質量指數 {q}），{f} 至 {t}；`{c}`",
    ),
    (
        r"^this microfab version serves a live dashboard \(tiles, order board, OEE, downtime "
        r"Pareto\), operator pages and a shift report: `microfab serve` \(docs/dashboard.md\)$",
        "此 microfab 版本提供即時儀表板（機器狀態、工單看板、OEE、停機柏拉圖）、操作員頁面及"
        "班次報告：`microfab serve`（docs/dashboard.md）",
    ),
    (
        r"^(?P<n>[\d,]+) operator entr(y|ies) stored from this line$",
        "此生產線已儲存 {n} 項操作員輸入",
    ),
    (
        r"^no AI/ML model in use is recorded in microfab or in the factory model$",
        "microfab 及工廠模型均沒有記錄使用中的人工智能／機器學習模型",
    ),
    (
        r"^telemetry anomaly detection is available \(`microfab anomalies`\); whether it is "
        r"used, and whether it counts as AI/ML, is not recorded$",
        "提供遙測數據異常偵測（`microfab anomalies`）；是否有使用、是否算作人工智能／機器學習，"
        "並無記錄",
    ),
    (
        r"^vision inspection machines \((?P<x>[^)]+)\) may use one: attach the supplier's "
        r"documentation$",
        "視覺檢測機器（{x}）或有使用：請附上供應商文件",
    ),
    (r"^no robot_arm or agv in the line$", "生產線上沒有機械臂或 AGV"),
    (
        r"^(?P<n>\d+) robot\(s\)/AGV\(s\) in the factory model: (?P<x>.+)$",
        "工廠模型內有 {n} 部機械人／AGV：{x}",
    ),
    (r"^(?P<m>\S+) \((?P<k>\w+)\): (?P<n>[\d,]+) events stored$", "{m}（{k}）：已儲存 {n} 個事件"),
    # the report drafts (microfab.funding.reports)
    (
        r"^(?P<a>\d+) of (?P<b>\d+) machines meet the criteria: smart-line share (?P<s>\S+) "
        r"\((?P<f>\S+)\)\. Definition: (?P<t_d>.+)\.$",
        "{b} 部機器中有 {a} 部符合準則：智能生產線比例 {s}（{f}）。定義：{t_d}。",
    ),
    (
        r"^Approved budget (?P<a>HK\$[\d,.]+); spent (?P<b>HK\$[\d,.]+); reimbursable spend "
        r"(?P<c>HK\$[\d,.]+); approved grant (?P<d>HK\$[\d,.]+)\.$",
        "核准預算 {a}；已支出 {b}；可發還開支 {c}；核准資助 {d}。",
    ),
    (
        r"^Line (?P<l>\S+), output counted at its bottleneck (?P<b>\S*), (?P<f>.+?) to (?P<t>.+?): "
        r"(?P<n>[\d,]+) good units, turnover (?P<x>HK\$[\d,.]+) \(incomplete: some prices are "
        r"missing\)\.$",
        "生產線 {l}，產量以瓶頸工序 {b} 計算，{f} 至 {t}：良品 {n} 件，營業額 {x}（不完整："
        "部分產品沒有價格）。",
    ),
    (
        r"^Line (?P<l>\S+), output counted at its bottleneck (?P<b>\S*), (?P<f>.+?) to (?P<t>.+?): "
        r"(?P<n>[\d,]+) good units, turnover (?P<x>HK\$[\d,.]+)\.$",
        "生產線 {l}，產量以瓶頸工序 {b} 計算，{f} 至 {t}：良品 {n} 件，營業額 {x}。",
    ),
    (r"^(?P<n>\d+) new job\(s\)\.$", "新增 {n} 個職位。"),
    (r"^(?P<t_what>.+): until (?P<d>\S+) \((?P<s>.+)\)$", "{t_what}：至 {d}（{s}）"),
    (r"^not included: give --db to read the stored data$", "未包括：請以 --db 讀取已儲存數據"),
    (r"^not included: give --db and project\.line$", "未包括：請提供 --db 及 project.line"),
    (
        r"^A criterion without evidence is reported as such; microfab does not infer one\.$",
        "沒有證明的準則照實列出；microfab 不會推斷證明。",
    ),
    (
        r"^Attach the audited accounts\. Rule sources: see docs/funding\.md\.$",
        "請附上經審計帳目。規則來源：見 docs/funding.md。",
    ),
    (
        r"^Figures come from the events microfab stored; check them against the company's "
        r"accounts\.$",
        "數字來自 microfab 儲存的事件；請與公司帳目核對。",
    ),
    (
        r"^DRAFT prepared by microfab — check every figure before submission$",
        "草稿，由 microfab 編製 — 提交前請核對每個數字",
    ),
    (r"^Line (?P<l>[\w.-]+/[\w./-]+) (?P<n>.+)$", "生產線 {l} {n}"),
    (
        r"^Smart-line evidence: (?P<l>\S+) \(share (?P<s>\S+)\)$",
        "智能生產線證明：{l}（比例 {s}）",
    ),
    (r"^(?P<l>.+) \(not reimbursable\)$", "{l}（不獲發還）"),
    (r"^(?P<a>[\d,.]+) ⚠ overspent$", "{a} ⚠ 超支"),
    # the report drafts' meta lines
    (
        r"^(?P<c>.+) · (?P<s>\S+) (?P<r>\S+) · project (?P<a>\S+) to (?P<b>\S+) · position on "
        r"(?P<d>\S+)$",
        "{c} · {s} {r} · 項目期 {a} 至 {b} · 截至 {d} 的狀況",
    ),
    (
        r"^(?P<c>.+) · (?P<s>\S+) (?P<r>\S+) · project (?P<a>\S+) to (?P<b>\S+) · as of "
        r"(?P<d>\S+)$",
        "{c} · {s} {r} · 項目期 {a} 至 {b} · 截至 {d}",
    ),
    (r"^(?P<c>.+) · (?P<s>\S+) (?P<r>\S+) · as of (?P<d>\S+)$", "{c} · {s} {r} · 截至 {d}"),
    (r"^(?P<c>.+) · store (?P<u>\S+)$", "{c} · 數據庫 {u}"),
    # cells that join sentences: evidence with " · ", conditions with "; "
    (r"^(?P<t_a>.+?) · (?P<t_b>.+)$", "{t_a} · {t_b}"),
    (r"^(?P<t_a>[^;]+); (?P<t_b>.+)$", "{t_a}；{t_b}"),
)
"""Each funding sentence kind: a pattern for the English and the Chinese, same named parts."""

WORDS: dict[str, str] = {
    # headings of the reports
    "Budget and spending": "預算及開支",
    "Expenditures": "開支明細",
    "Claims": "申領",
    "Milestones and deadlines": "里程碑及限期",
    "Warnings": "警告",
    "Notes": "備註",
    "Obligations": "責任",
    "Output and turnover": "產量及營業額",
    "New jobs": "新職位",
    "Smart-line evidence": "智能生產線證明",
    "Rules": "規則",
    "Budget": "預算",
    "Grant": "資助",
    "Payments": "付款",
    # table headings
    "criterion": "準則",
    "status": "狀態",
    "evidence": "證明",
    "machine": "機器",
    "kind": "類型",
    "events": "事件",
    "events/h": "每小時事件",
    "ingest delay (s)": "接收延遲（秒）",
    "meets criteria": "符合準則",
    "id": "編號",
    "item": "項目",
    "category": "類別",
    "approved HK$": "核准 HK$",
    "spent HK$": "已支出 HK$",
    "remaining HK$": "餘額 HK$",
    "invoices": "發票數目",
    "claim": "申領",
    "earliest": "最早",
    "eligible spend HK$": "合資格開支 HK$",
    "max HK$": "上限 HK$",
    "received HK$": "已收 HK$",
    "conditions": "條件",
    "source": "來源",
    "deadline": "限期",
    "due": "到期",
    "days left": "剩餘日數",
    "date": "日期",
    "invoice": "發票",
    "supplier": "供應商",
    "budget item": "預算項目",
    "note": "備註",
    "product": "產品",
    "name": "名稱",
    "good": "良品",
    "unit price HK$": "單價 HK$",
    "turnover HK$": "營業額 HK$",
    "type": "類型",
    "count": "數目",
    "rule": "規則",
    "passed": "通過",
    "detail": "詳情",
    "eligible": "合資格",
    "why not": "原因",
    "payment": "付款",
    "HK$": "港元",
    # words in cells
    "yes": "是",
    "no": "否",
    "none": "沒有",
    "warning": "警告",
    "evidenced": "有證明",
    "partial": "部分",
    "no_evidence": "沒有證明",
    "not_measured": "未量度",
    "done": "已完成",
    "open": "進行中",
    "upcoming": "未到期",
    "ended": "已完結",
    "overdue": "逾期",
    "due_soon": "即將到期",
    "interim": "中期付款",
    "final": "最終付款",
    "no price recorded": "沒有價格記錄",
    # smart-line criteria
    "iot": "物聯網連接",
    "real_time_data": "實時數據",
    "data_analytics": "數據分析",
    "advanced_hmi": "先進人機介面",
    "ai_ml": "人工智能／機器學習",
    "robotics": "機械人",
    # machine kinds
    "robot_arm": "機械臂",
    "agv": "自動導引車",
    "other": "其他",
}
"""Single words and headings of the funding pages and reports."""

_COMPILED = tuple((re.compile(en), zh_text) for en, zh_text in SENTENCES)


def zh(text: str) -> str | None:
    """The Chinese of a funding sentence or word; None when the catalogue does not know it."""
    if text in WORDS:
        return WORDS[text]
    for pattern, chinese in _COMPILED:
        found = pattern.match(text)
        if found is None:
            continue
        parts = {}
        for name, value in found.groupdict().items():
            value = value or ""
            if name.startswith("t_"):
                inner = zh(value)
                if inner is None:
                    break  # a part the catalogue does not know: try the next pattern
                value = inner
            parts[name] = value
        else:
            return chinese.format(**parts)
    return None


__all__ = ["SENTENCES", "WORDS", "zh"]
