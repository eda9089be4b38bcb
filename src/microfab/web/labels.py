"""Every word the dashboard shows, in English and Traditional Chinese (Hong Kong).

Pages carry both: ``t("good")`` renders ``<span class="en">Good</span><span class="zh"
lang="zh-Hant-HK">良品</span>`` and the language toggle shows one of them (no reload). Charts
get the same pairs as JSON (:func:`chart_labels`).
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from typing import Any

from markupsafe import Markup

from microfab.console import STATE_ZH
from microfab.funding.zh import zh as funding_zh
from microfab.track.dashboard import STATE_EN

LABELS: dict[str, tuple[str, str]] = {
    "title": ("Shop floor", "車間"),
    "overview": ("Line overview", "生產線總覽"),
    "orders": ("Orders", "工單"),
    "oee": ("OEE", "設備綜合效率"),
    "downtime": ("Downtime", "停機"),
    "trends": ("Trends", "趨勢"),
    "operator": ("Operator", "操作員"),
    "report": ("Shift report", "班次報告"),
    "api": ("API", "API"),
    "queued": ("Queued", "排隊中"),
    "in_progress": ("In progress", "生產中"),
    "done": ("Done", "已完成"),
    "late": ("Late", "逾期"),
    "due": ("Due", "交期"),
    "good": ("Good", "良品"),
    "scrap": ("Scrap", "廢品"),
    "today": ("today", "今日"),
    "since": ("since", "自"),
    "order": ("Order", "工單"),
    "no_order": ("no order", "無工單"),
    "product": ("Product", "產品"),
    "quantity": ("Qty", "數量"),
    "machine": ("Machine", "機器"),
    "line": ("Line", "生產線"),
    "availability": ("Availability", "可用率"),
    "performance": ("Performance", "表現指數"),
    "quality": ("Quality", "質量指數"),
    "output": ("Output", "產量"),
    "outside_note": (
        "Tiles and line output count every unit made; OEE counts working time only, so {n} "
        "units counted outside working time are not in it.",
        "機器計數及生產線產量包括所有件數；OEE 只計工作時間，{n} 件在非工作時間計數，不計入 OEE。",
    ),
    "output_per_hour": ("Output per hour (line)", "每小時產量（生產線）"),
    "oee_per_shift": ("OEE per shift (line)", "每班次設備綜合效率（生產線）"),
    "pareto": ("Downtime Pareto, today", "今日停機柏拉圖"),
    "lost": ("Lost", "損失"),
    "stops": ("Stops", "次數"),
    "share": ("Share", "佔比"),
    "cumulative": ("Cumulative", "累計"),
    "reason": ("Reason", "原因"),
    "state": ("State", "狀態"),
    "minutes": ("minutes", "分鐘"),
    "units": ("units", "件"),
    "live": ("live", "即時"),
    "offline_conn": ("reconnecting…", "重新連線中…"),
    "clock": ("Plant clock", "工廠時間"),
    "no_stops": ("No downtime in working time today.", "今日工作時間內沒有停機。"),
    "no_orders": ("none", "沒有"),
    "no_data": ("No data yet", "暫無數據"),
    "period_today": ("Today so far", "今日至今"),
    "operator_pick": ("Choose a machine", "選擇機器"),
    "unexplained": ("Stops without a reason", "未說明原因的停機"),
    "all_explained": ("Every stop has a reason.", "所有停機均已說明原因。"),
    "give_reason": ("Save reason", "儲存原因"),
    "enter_counts": ("Enter counts", "輸入數量"),
    "enter_counts_help": (
        "For a machine with no connection, or units it missed.",
        "適用於未連線的機器，或機器漏計的數量。",
    ),
    "save_counts": ("Save counts", "儲存數量"),
    "correct_count": ("Correct a count", "更正數量"),
    "correct_help": (
        "Type what the count should have been; the original stays and a correction is added.",
        "輸入正確數量；原紀錄保留，另加一筆更正紀錄。",
    ),
    "save_correction": ("Save correction", "儲存更正"),
    "reported": ("reported", "原報"),
    "now_counts": ("now", "現為"),
    "by": ("Your name", "你的名字"),
    "entered_by": ("by", "輸入者"),
    "time": ("Time", "時間"),
    "operation": ("Step", "工序"),
    "recent_entries": ("Recent entries by people", "最近的人手輸入"),
    "no_entries": ("No entries yet.", "暫無紀錄。"),
    "saved": ("Saved.", "已儲存。"),
    "saved_again": ("Already saved (sent twice).", "已儲存（重複提交）。"),
    "error": ("Not saved", "未能儲存"),
    "back": ("Back", "返回"),
    "dashboard": ("Dashboard", "儀表板"),
    "shift": ("Shift", "班次"),
    "day": ("Day", "日期"),
    "period": ("Period", "時段"),
    "print": ("Print", "列印"),
    "pdf": ("PDF", "PDF"),
    "line_total": ("line", "生產線"),
    "planned_busy": ("Planned busy", "計劃運作時間"),
    "run": ("Run", "運行時間"),
    "total": ("Total", "總數"),
    "orders_in_shift": ("Orders worked on", "本班次處理的工單"),
    "operator_entries": ("Operator entries", "人手輸入紀錄"),
    "signature": ("Shift leader", "班組長"),
    "what": ("What", "內容"),
    "correction": ("correction", "更正"),
    "manual_count": ("counts entered", "人手計數"),
    "reason_given": ("reason given", "補填原因"),
    "duration": ("Duration", "持續"),
    "ongoing": ("ongoing", "進行中"),
    "language": ("中文", "English"),
    "no_factory": ("No factory model yet", "尚未設定工廠模型"),
    "error_title": ("Something went wrong", "發生錯誤"),
    "reliability": ("Reliability", "可靠性"),
    "failures": ("Failures", "故障次數"),
    # work orders: the form and the order page
    "new_order": ("New order", "新增工單"),
    "new_order_help": (
        "A custom order: the product, one choice per option, how many and by when.",
        "訂製工單：產品、每個選項各選一項、數量及交期。",
    ),
    "no_products": (
        "The factory model has no products yet; add them to the factory file and apply it.",
        "工廠模型尚未有產品；請在工廠檔案加入產品後套用。",
    ),
    "options": ("Options", "選項"),
    "quantity_long": ("Quantity", "數量"),
    "priority": ("Priority", "優先次序"),
    "most_urgent": ("most urgent", "最緊急"),
    "least_urgent": ("least urgent", "最不緊急"),
    "order_id": ("Order id", "工單編號"),
    "automatic": ("automatic", "自動編號"),
    "release_now": ("Release to the floor now", "即時發放到車間"),
    "create_order": ("Create order", "建立工單"),
    "release": ("Release", "發放"),
    "cancel": ("Cancel order", "取消工單"),
    "confirm_cancel": ("Yes, cancel this order", "確定取消此工單"),
    "status_created": ("Created", "已建立"),
    "status_released": ("Released", "已發放"),
    "status_in_progress": ("In progress", "生產中"),
    "status_completed": ("Completed", "已完成"),
    "status_cancelled": ("Cancelled", "已取消"),
    "status_unknown": ("Unknown", "不明"),
    "done_created": ("Order created.", "工單已建立。"),
    "done_released": ("Order released to the floor.", "工單已發放到車間。"),
    "done_cancelled": ("Order cancelled.", "工單已取消。"),
    "progress": ("Progress", "進度"),
    "expected": ("Expected done", "預計完成"),
    "created": ("Created", "建立時間"),
    "released": ("Released", "發放時間"),
    "started": ("Started", "開始"),
    "completed": ("Completed", "完成"),
    "steps": ("Routing steps", "工序"),
    "planned_units": ("Planned", "計劃數量"),
    "plan": ("Plan", "排程"),
    "actual": ("Actual", "實際"),
    "now": ("now", "現在"),
    "running": ("running", "進行中"),
    "setup_s": ("setup", "換線"),
    "gantt": ("Plan vs actual, per machine", "各機器計劃與實際"),
    "gantt_help": (
        "Light bars: the plan; dark bars: what the events say; red: a late order; "
        "thin bars under the actual: stops.",
        "淺色：計劃；深色：事件記錄的實際生產；紅色：逾期工單；實際下方細條：停機。",
    ),
    "replan": ("Re-plan", "重新排程"),
    "replan_help": (
        "Plans every open order again from the plant clock; started work stays where it runs.",
        "由工廠時間起重新排程所有未完成工單；已開始的工序保持不變。",
    ),
    "time_limit": ("Time limit", "時間上限"),
    "seconds": ("s", "秒"),
    "repair": ("Few changes (repair the plan)", "盡量少改動（修補現有計劃）"),
    "machine_out": ("Machine out of action", "停用機器"),
    "out_for": ("for", "時長"),
    "none_out": ("none", "沒有"),
    "replanned": ("Re-planned.", "已重新排程。"),
    "no_plan": (
        "No plan yet: press Re-plan, or run 'microfab plan schedule'.",
        "尚未有計劃：請按「重新排程」，或執行 'microfab plan schedule'。",
    ),
    "planned_orders": ("Planned orders", "已排程工單"),
    "planned_start": ("Planned start", "計劃開始"),
    "planned_end": ("Planned end", "計劃完成"),
    "late_by": ("Late by", "逾期"),
    "warnings": ("Warnings", "警告"),
    "plan_status": ("Status", "狀態"),
    "solved_in": ("solved in", "求解時間"),
    # carbon panel
    "carbon": ("Energy and carbon", "能源及碳排放"),
    "finished_units": ("Finished units", "完成件數"),
    "kwh_per_unit": ("kWh/unit", "每件千瓦時"),
    "kgco2e_per_unit": ("kgCO2e/unit", "每件碳排放（kgCO2e）"),
    "carbon_scope": ("Counted", "計算範圍"),
    "scope_all": ("Scope 1 + 2 + upstream", "範圍一 + 二 + 上游"),
    "scope_energy": ("Scope 1 + 2 only", "只計範圍一 + 二"),
    "idle_waste": ("Idle energy waste", "閒置能源浪費"),
    "idle_waste_help": (
        "standby kWh, and what switching off would have saved",
        "待機耗電，及關機可節省的電量",
    ),
    "standby_kwh": ("Standby kWh", "待機千瓦時"),
    "avoidable_kwh": ("Avoidable kWh", "可避免千瓦時"),
    "carbon_notes": ("Missing data and factor notes", "缺漏數據及排放因子備註"),
    "carbon_settings": ("Carbon settings", "碳排放設定"),
    "none_given": ("none given", "未提供"),
    # funding pages
    "funding": ("Funding", "資助"),
    "funding_project": ("Project", "項目"),
    "funding_evidence": ("Smart-line evidence", "智能生產線證明"),
    "funding_match": ("Scheme matcher", "資助計劃配對"),
    "budget_vs_spend": ("Budget vs spend", "預算與支出"),
    "budget_item": ("Budget item", "預算項目"),
    "category": ("Category", "類別"),
    "approved": ("Approved HK$", "核准港元"),
    "spent": ("Spent HK$", "已支出港元"),
    "remaining": ("Remaining HK$", "餘額港元"),
    "claims": ("Payments and claims", "付款及申索"),
    "deadlines": ("Deadlines", "限期"),
    "criterion": ("Criterion", "準則"),
    "evidence": ("Evidence", "證明"),
    "source": ("Source", "來源"),
    "no_evidence": ("no evidence yet", "暫無證明"),
    "no_ledger": ("No ledger file", "沒有帳目檔案"),
    "printable": ("Printable", "可列印"),
    "company_profile": ("Company profile (YAML)", "公司資料（YAML）"),
    "match_submit": ("Find schemes", "尋找資助計劃"),
    "match_help": (
        "Tell us about the company and the project; the matcher ranks the schemes it could apply "
        "to, with the reason for each.",
        "填寫公司及項目資料；配對工具會排列可申請的資助計劃，並列出每項的理由。",
    ),
    "company_name": ("Company name", "公司名稱"),
    "founded": ("Founded (year)", "成立年份"),
    "sector": ("Sector", "行業"),
    "as_of": ("as of", "截至"),
    "company_facts": ("The company", "公司"),
    "incorporated_in_hk": ("Incorporated in Hong Kong", "在香港註冊成立"),
    "sme": ("SME", "中小企"),
    "listed": ("Listed", "上市公司"),
    "stages": ("What the funding is for", "資助用途"),
    "stage_startup": ("Start-up", "初創"),
    "stage_rd": ("R&D", "研發"),
    "stage_business_expansion": ("Business expansion", "業務擴展"),
    "stage_technology_application": ("Technology application", "技術應用"),
    "stage_production": ("Production", "生產"),
    "stage_training": ("Training", "培訓"),
    "stage_loan": ("Loan", "貸款"),
    "purpose": ("Project purpose", "項目目的"),
    "project_cost": ("Project cost HK$", "項目成本（港元）"),
    "keywords": ("Keywords (comma-separated)", "關鍵字（以逗號分隔）"),
    "new_line": ("A new production line (not an upgrade)", "新生產線（並非升級現有生產線）"),
    "paste_profile": ("Paste a profile (YAML)", "貼上公司資料（YAML）"),
    "upload_profile": ("or upload a file", "或上載檔案"),
    "schemes_best_first": ("schemes, best first", "個資助計劃，最合適的排先"),
    "fits": ("fits", "符合"),
    "grant": ("grant", "資助額"),
    "progress_report": ("progress report", "進度報告"),
    "final_report": ("final report", "總結報告"),
    "benefit_report": ("benefit report", "效益報告"),
    "evidence_annex": ("evidence annex", "證明附件"),
    "invoices": ("invoices", "發票"),
    "not_reimbursable": ("not reimbursable", "不獲發還"),
    "eligible_spend": ("eligible spend", "合資格開支"),
    "claim_kind": ("Payment", "付款"),
    "earliest": ("Earliest", "最早"),
    "max_hkd": ("Max HK$", "上限港元"),
    "received_hkd": ("Received HK$", "已收港元"),
    "conditions": ("Conditions", "條件"),
    "due_date": ("Due", "限期"),
    "days_left": ("Days left", "尚餘日數"),
    "deadline_done": ("done", "已完成"),
    "deadline_open": ("open", "未定日期"),
    "deadline_overdue": ("overdue", "已逾期"),
    "deadline_due_soon": ("due soon", "即將到期"),
    "deadline_upcoming": ("upcoming", "未到期"),
    "evidence_evidenced": ("evidenced", "有證明"),
    "evidence_partial": ("partial", "部分證明"),
    "machines_meet": ("machines meet the smart criteria", "部機器符合智能準則"),
    "smart_share": (
        'share {share}; NIFS asks for "the whole or most of the line", above 0.5',
        "比例 {share}；新型工業化資助計劃要求「整條或大部分生產線」，即高於 0.5",
    ),
    "scheme_status": ("status", "狀態"),
    "ratio": ("ratio", "資助比例"),
    "cap_per_project": ("cap per project", "每項目上限"),
    "cap": ("cap", "上限"),
    "cap_total": ("total", "總額"),
    "estimate": ("estimate", "估算"),
    "does_not_fit": ("does not fit", "不符合"),
    "problems": ("Problems in the file", "檔案問題"),
    "sign_in": ("Sign in", "登入"),
    "sign_out": ("Sign out", "登出"),
    "user_name": ("User name", "用戶名稱"),
    "password": ("Password", "密碼"),
    "signed_in_as": ("Signed in as", "已登入："),
    # alerts and quality
    "alerts": ("Alerts", "警報"),
    "acknowledge": ("Acknowledge", "確認"),
    "close_alert": ("Close", "關閉"),
    "acknowledged_by": ("acknowledged by", "已確認："),
    "sev_critical": ("critical", "嚴重"),
    "sev_warning": ("warning", "警告"),
    "sev_info": ("info", "資訊"),
    "quality_page": ("Quality", "品質"),
    "spc_chart": ("Control chart", "管制圖"),
    "characteristic": ("Characteristic", "特性"),
    "show": ("Show", "顯示"),
    "lsl": ("LSL", "規格下限"),
    "usl": ("USL", "規格上限"),
    "centre_line": ("Centre line", "中心線"),
    "control_limits": ("Control limits", "管制界限"),
    "out_of_control": ("Out of control", "失控"),
    "capability": ("Capability", "製程能力"),
    "machine_health": ("Machine health and remaining useful life", "設備健康及剩餘壽命"),
    "health": ("Health", "健康指數"),
    "rul": ("RUL", "剩餘壽命"),
    "recommendation": ("Recommendation", "建議"),
    "anomaly_alerts": ("Recent anomaly alerts", "最近異常警報"),
    "no_anomalies": ("no anomaly alerts", "沒有異常警報"),
    "baseline_until": ("baseline until", "基線截至"),
    "sd": ("sd", "個標準差"),
    "spread": ("spread", "波動"),
    "trend": ("trend", "趨勢"),
    "sd_per_h": ("sd/h", "標準差／小時"),
    "frozen": ("frozen", "讀數凍結"),
    "no_ledger_help": (
        "Start the server with the project's ledger to see budget vs spend, payments and "
        "deadlines:",
        "請以項目帳目檔案啟動伺服器，以查看預算與支出、付款及限期：",
    ),
    "example_format": ("example and format", "範例及格式"),
    "without_ledger": ("These work without it", "以下毋須帳目檔案"),
    "defect_pareto": ("Defects by product and machine", "按產品及機器劃分的缺陷"),
    "defect_class": ("Defect", "缺陷"),
    "inspected": ("Inspected", "已檢查"),
    "failed": ("Failed", "不合格"),
    "no_inspections": ("no inspection results", "沒有檢查結果"),
    "login_intro": (
        "Sign in with your own user; ask the admin for one.",
        "請以你自己的用戶登入；如未有用戶，請向管理員申請。",
    ),
    # funding pages, complete 中文 (issue 16): the smart-line criteria, the evidence definition
    "criterion_iot": ("IoT", "物聯網連接"),
    "criterion_real_time_data": ("real-time data", "實時數據"),
    "criterion_data_analytics": ("data analytics", "數據分析"),
    "criterion_advanced_hmi": ("advanced HMI", "先進人機介面"),
    "criterion_ai_ml": ("AI/ML", "人工智能／機器學習"),
    "criterion_robotics": ("robotics", "機械人"),
    "definition": ("Definition", "定義"),
    # vision inspection (AI 品檢, issue 18): the quality page's latest judged images
    "vision_latest_images": ("Latest inspection images", "最新檢查影像"),
    "vision_no_images": ("no judged images yet", "暫無已判定的影像"),
    "vision_verdict_pass": ("good", "合格"),
    "vision_verdict_fail": ("defect", "缺陷"),
    # plant assistant (assist/): the dashboard's chat box
    "ask_title": ("Ask the plant", "問廠房"),
    "ask_help": (
        "OEE, output, downtime, late orders, WIP, carbon, energy, alerts, machine health, "
        "funding evidence — in English or Chinese. Numbers come from microfab's own figures.",
        "OEE、產量、停機、延誤訂單、在製品、碳排放、用電、警報、機器健康、資助證明——可用中文或英文問。"
        "數字全部來自 microfab 自己的數據。",
    ),
    "ask_placeholder": (
        "e.g. Which machine lost the most time this week?",
        "例如：昨日一號線OEE幾多？",
    ),
    "ask_send": ("Ask", "發問"),
    "ask_source": ("Source", "來源"),
    "ask_view": ("view", "查看"),
    "ask_failed": ("The assistant did not answer; try again.", "助手未能回答，請再試。"),
    # HQ over several sites (issue 20): /hq and /hq/{site}
    "hq_page": ("HQ", "總部"),
    "hq_sites": ("Sites today", "各廠今日"),
    "hq_today_note": ("each in its own time zone", "按各廠所在時區"),
    "hq_no_sites": ("No site to show", "沒有可顯示的廠房"),
    "hq_received": ("Last data received", "最後收到數據"),
    "hq_lag": ("Lag", "延遲"),
    "hq_late_orders": ("Late orders", "逾期工單"),
    "hq_alerts": ("Open alerts", "未處理警報"),
    "hq_co2_per_unit": ("kgCO2e per unit", "每件碳排放 (kgCO2e)"),
    "hq_group": ("Group (sites)", "集團（廠房數）"),
    "hq_grid_factor": ("Grid emission factor", "電網排放因子"),
    "hq_backlog": ("Waiting at the site", "廠內待傳"),
    # maintenance and safety (issue 21): the maintenance board, work order, technician and
    # safety pages
    "mt_nav": ("Maintenance", "維修保養"),
    "sf_nav": ("Safety", "安全"),
    "maintenance": ("Maintenance", "維修保養"),
    "mt_board": ("Maintenance board", "維修保養看板"),
    "mt_order": ("Work order", "維修工單"),
    "mt_new": ("New work order", "新維修工單"),
    "mt_technician": ("My jobs", "我的維修工作"),
    "mt_machine": ("Machine", "機器"),
    "mt_time": ("Time", "時間"),
    "mt_kind": ("Kind", "類別"),
    "mt_kind_corrective": ("Corrective", "故障維修"),
    "mt_kind_predictive": ("Predictive", "預測性保養"),
    "mt_kind_preventive": ("Preventive", "預防性保養"),
    "mt_source": ("From", "來源"),
    "mt_source_manual": ("Entered by hand", "人手輸入"),
    "mt_source_alert": ("Alert", "警報"),
    "mt_source_machine_down": ("Machine down", "機器停機"),
    "mt_source_health": ("Health index", "健康指數"),
    "mt_source_plan": ("Preventive plan", "保養計劃"),
    "mt_state_requested": ("Requested", "已申請"),
    "mt_state_scheduled": ("Scheduled", "已排期"),
    "mt_state_in_progress": ("Being worked on", "維修中"),
    "mt_state_done": ("Finished", "已完成"),
    "mt_state_cancelled": ("Withdrawn", "已撤回"),
    "mt_priority": ("Priority", "優先次序"),
    "mt_problem": ("Problem", "問題"),
    "mt_cause": ("Cause code", "成因代碼"),
    "mt_actions": ("Actions taken", "已採取行動"),
    "mt_result": ("Result", "結果"),
    "mt_reason": ("Reason", "原因"),
    "mt_technician_name": ("Technician", "技術員"),
    "mt_requested": ("Requested at", "申請時間"),
    "mt_window": ("Window", "維修時段"),
    "mt_started": ("Started", "開始時間"),
    "mt_finished": ("Finished at", "完成時間"),
    "mt_labour": ("Labour (min)", "工時（分鐘）"),
    "mt_cost": ("Cost (HK$)", "費用（港元）"),
    "mt_parts": ("Spare parts", "備用零件"),
    "mt_part": ("Part", "零件"),
    "mt_qty": ("Quantity", "數量"),
    "mt_on_hand": ("On hand", "現有庫存"),
    "mt_min_stock": ("Minimum", "最低庫存"),
    "mt_low": ("Below minimum", "低於最低庫存"),
    "mt_photos": ("Photos", "相片"),
    "mt_add_photo": ("Photo", "相片"),
    "mt_upload": ("Add photo", "加入相片"),
    "mt_schedule": ("Schedule", "排期"),
    "mt_start": ("Start job", "開始工作"),
    "mt_finish": ("Finish job", "完成工作"),
    "mt_cancel": ("Withdraw", "撤回"),
    "mt_issue": ("Issue parts", "領用零件"),
    "mt_create": ("Create", "建立"),
    "mt_saved": ("Saved.", "已儲存。"),
    "mt_none": ("None.", "沒有。"),
    "mt_recent": ("Recently closed", "最近完結"),
    "mt_from_alert": ("Work order", "建立維修工單"),
    "mt_open_alerts": ("Open alerts", "未處理警報"),
    "mt_due": ("Preventive maintenance due", "預防性保養到期"),
    "mt_no_plans": ("No preventive plans yet.", "尚未有保養計劃。"),
    "mt_plan": ("Plan", "保養計劃"),
    "mt_basis": ("Basis", "依據"),
    "mt_basis_calendar": ("Calendar", "日曆"),
    "mt_basis_run_hours": ("Run hours", "運行時數"),
    "mt_basis_cycles": ("Cycles", "生產次數"),
    "mt_basis_condition": ("Condition", "狀態監測"),
    "mt_due_at": ("Due", "到期"),
    "mt_due_in_hours": ("Hours left", "剩餘小時"),
    "mt_due_in_cycles": ("Cycles left", "剩餘次數"),
    "mt_overdue": ("Overdue", "已逾期"),
    "mt_reliability": ("Reliability", "可靠性"),
    "mt_failures": ("Failures", "故障次數"),
    "mt_mtbf": ("MTBF (h)", "平均故障間隔（小時）"),
    "mt_mttr": ("MTTR (h)", "平均修復時間（小時）"),
    "mt_planned_share": ("Planned", "計劃性"),
    "mt_unplanned_share": ("Unplanned", "非計劃性"),
    "sf_page": ("Safety", "安全"),
    "sf_days": ("Days since the last lost-time incident", "距上次損失工時事故日數"),
    "sf_none_recorded": ("none recorded", "未有記錄"),
    "sf_events": ("Safety events", "安全事件"),
    "sf_no_events": ("No safety events.", "沒有安全事件。"),
    "sf_kind": ("Event", "事件"),
    "sf_kind_estop_pressed": ("Emergency stop pressed", "按下緊急停止掣"),
    "sf_kind_estop_released": ("Emergency stop released", "緊急停止已解除"),
    "sf_kind_light_curtain": ("Light curtain interrupted", "光幕被遮斷"),
    "sf_kind_area_scanner": ("Area scanner intrusion", "區域掃描器偵測到人員"),
    "sf_kind_guard_open": ("Guard opened while running", "運行中打開防護門"),
    "sf_kind_person_in_zone": ("Person in the danger zone", "危險區域有人"),
    "sf_kind_gas_limit": ("Gas limit exceeded", "氣體超出限值"),
    "sf_kind_temperature_limit": ("Temperature limit exceeded", "溫度超出限值"),
    "sf_severity": ("Severity", "嚴重程度"),
    "sf_sev_info": ("Information", "資訊"),
    "sf_sev_warning": ("Warning", "警告"),
    "sf_sev_critical": ("Critical", "嚴重"),
    "sf_zone": ("Zone", "區域"),
    "sf_register": ("Incidents and near misses", "事故及險失登記冊"),
    "sf_no_incidents": ("Nothing registered.", "沒有記錄。"),
    "sf_report": ("Report an incident or near miss", "報告事故或險失"),
    "sf_type": ("Type", "類型"),
    "sf_incident": ("Incident", "事故"),
    "sf_near_miss": ("Near miss", "險失"),
    "sf_what": ("What happened", "發生甚麼事"),
    "sf_where": ("Where", "地點"),
    "sf_reported_by": ("Reported by", "報告人"),
    "sf_injury": ("Someone was injured", "有人受傷"),
    "sf_yes": ("Injury", "受傷"),
    "sf_lost_time": ("Lost working time", "損失工時"),
    "sf_occurred": ("When", "發生時間"),
    "sf_actions": ("Actions taken", "跟進行動"),
    "sf_state": ("Status", "狀態"),
    "sf_state_reported": ("Reported", "已報告"),
    "sf_state_investigating": ("Under investigation", "調查中"),
    "sf_state_closed": ("Closed", "已結案"),
    "sf_close": ("Close", "結案"),
    "sf_submit": ("Report", "提交報告"),
    # stock: materials and inventory (issue 17)
    "stock_page": ("Stock", "庫存"),
    "stock_by_location": ("Stock by location", "按位置劃分的庫存"),
    "stock_low": ("Low stock", "低庫存"),
    "stock_expiring": ("Expiring lots", "即將過期批次"),
    "stock_suggestions": ("Purchase suggestions", "採購建議"),
    "stock_tasks": ("Transfer tasks", "搬運任務"),
    "stock_item": ("Item", "物料"),
    "stock_lot": ("Lot", "批次"),
    "stock_location": ("Location", "位置"),
    "stock_qty": ("Quantity", "數量"),
    "stock_unit": ("Unit", "單位"),
    "stock_on_hand": ("On hand", "現有"),
    "stock_available": ("Available", "可用"),
    "stock_reserved": ("Reserved", "已預留"),
    "stock_quarantine": ("Quarantine", "隔離"),
    "stock_reorder_point": ("Reorder point", "再訂購點"),
    "stock_safety": ("Safety stock", "安全庫存"),
    "stock_expiry": ("Expiry", "到期"),
    "stock_days_left": ("Days left", "剩餘日數"),
    "stock_supplier": ("Supplier", "供應商"),
    "stock_order_by": ("Order by", "最遲訂購日"),
    "stock_arrives": ("Arrives", "預計到貨"),
    "stock_cost": ("Cost HK$", "成本（港元）"),
    "stock_from": ("From", "由"),
    "stock_to": ("To", "至"),
    "stock_none": ("nothing here", "沒有資料"),
    "stock_task_board": ("Task board", "任務看板"),
    "stock_status": ("Status", "狀態"),
    "stock_agv": ("AGV or person", "AGV／人員"),
    "task_assigned": ("assigned", "已指派"),
    "task_acknowledged": ("acknowledged", "已確認"),
    "task_started": ("started", "已開始"),
    "task_done": ("done", "已完成"),
    "task_failed": ("failed", "失敗"),
}

UNTRANSLATED = frozenset({"api", "pdf", "language"})
"""Catalogue keys written the same in both languages (abbreviations), or on purpose in the other
language (the toggle names the language it switches to)."""


def pair(en: str, zh: str) -> Markup:
    """Both languages; the page shows one."""
    if not zh or zh == en:
        return Markup('<span class="both">{}</span>').format(en)
    return Markup('<span class="en">{}</span><span class="zh" lang="zh-Hant-HK">{}</span>').format(
        en, zh
    )


def t(key: str) -> Markup:
    en, zh = LABELS[key]
    return pair(en, zh)


def label_or(key: str, fallback: str) -> Markup:
    """The catalogue's words for ``key``, or ``fallback`` as it is (a value the catalogue does
    not name yet, marked ``data-untranslated`` for tests/test_pages_zh.py)."""
    if key in LABELS:
        return t(key)
    return Markup('<span class="both" data-untranslated="label">{}</span>').format(fallback)


def text_en(key: str) -> str:
    return LABELS[key][0]


def text_zh(key: str) -> str:
    return LABELS[key][1]


def state_label(state: str | None) -> Markup:
    key = state or "nodata"
    return pair(STATE_EN.get(key, key), STATE_ZH.get(key, "暫無數據" if key == "nodata" else ""))


def status_words() -> dict[str, str]:
    """Machine states and order statuses as stored (``micro_stop``, ``in_progress``), each as
    both languages in plain text, for the printable reports: ``Micro-stop 小停``."""
    words = {state: f"{STATE_EN[state]} {zh}" for state, zh in STATE_ZH.items()}
    for status in ("created", "released", "in_progress", "completed", "cancelled"):
        words.setdefault(status, text(f"status_{status}"))
    words["unknown"] = text("status_unknown")
    return words


MESSAGES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(en), zh)
    for en, zh in (
        # carbon panel (microfab.green): its message and notes
        (
            r"^no production between (?P<a>.+?) and (?P<b>.+?): (?P<x>\S+ \S+) of shared "
            r"(?P<s>\S+) has no order to go to \(allocation by (?P<r>\w+)\); choose a period "
            r"in which orders finished units$",
            "{a} 至 {b} 期間沒有生產：共用的 {s}（{x}）沒有工單可分攤（按 {r} 分攤）；"
            "請選擇有工單完成件數的時段",
        ),
        (
            r"^no finished units of (?P<p>.+?) between (?P<a>.+?) and (?P<b>.+?)(?P<rest>[:;].*)?$",
            "{a} 至 {b} 期間沒有 {p} 的完成件數",
        ),
        (
            r"^No carbon settings file: ",
            "沒有碳排放設定檔：沒有物料排放因子，所以每件碳排放只計範圍一 + 二（不含上游物料）。"
            "請以 --carbon-settings FILE 啟動伺服器（docs/green.md）。",
        ),
        (
            r"^(?P<k>\S+): no factor for (?P<y>\d+); used the latest earlier year, (?P<z>\d+)$",
            "{k}：沒有 {y} 年的排放因子；改用之前最近的 {z} 年",
        ),
        (
            r"^(?P<k>\S+) \((?P<y>\d+)\) is recorded as CO2 only, not CO2e$",
            "{k}（{y}）只記錄二氧化碳（CO2），並非二氧化碳當量（CO2e）",
        ),
        (
            r"^materials without an emission factor, left out of upstream: (?P<m>.+)$",
            "沒有排放因子的物料，未計入上游排放：{m}",
        ),
        (
            r"^(?P<k>\S+) \((?P<y>\d+)\) is (?P<q>[\w -]+): (?P<c>.+)$",
            "{k}（{y}）數據質素：{q}：{c}",
        ),
        # control charts (microfab.model.spc)
        (
            r"^the baseline has (?P<n>\d+) (?P<w>\w+); control limits need at least (?P<k>\d+) "
            r"\((?P<d>\d+) more\)$",
            "基線只有 {n} 個{w}；計算管制界限最少需要 {k} 個（尚欠 {d} 個）",
        ),
        # machine health (microfab.quality.maintenance)
        (
            r"^(?P<m>\S+): the healthy baseline has (?P<n>\d+) running readings; health needs "
            r"at least (?P<k>\d+) \((?P<d>\d+) more\)$",
            "{m}：健康基線只有 {n} 個運行讀數；計算健康指數最少需要 {k} 個（尚欠 {d} 個）",
        ),
        (
            r"^(?P<m>\S+): (?P<n>\d+) running readings; health needs at least (?P<k>\d+) "
            r"\((?P<d>\d+) more\)$",
            "{m}：只有 {n} 個運行讀數；計算健康指數最少需要 {k} 個（尚欠 {d} 個）",
        ),
        (
            r"^(?P<m>\S+): (?P<n>\d+) running readings after the baseline; health needs at least "
            r"(?P<k>\d+) \((?P<d>\d+) more\)$",
            "{m}：基線之後有 {n} 個運行讀數；計算健康指數最少需要 {k} 個（尚欠 {d} 個）",
        ),
        (
            r"^(?P<m>\S+): no metric has enough readings for health$",
            "{m}：沒有指標有足夠讀數計算健康指數",
        ),
        (
            r"^check the (?P<x>\S+) sensor of (?P<m>\S+): its reading has not changed "
            r"\(spread (?P<p>\S+) of normal\)$",
            "檢查 {m} 的 {x} 感測器：讀數沒有變化（波動只有正常的 {p}）",
        ),
        (
            r"^plan maintenance of (?P<m>\S+) within (?P<h>.+?): (?P<x>\S+) is (?P<sd>\S+) sd "
            r"(?P<dir>above|below) its healthy level and moving (?P<v>\S+) sd/h toward the "
            r"failure level \((?P<f>\S+) sd\)$",
            "請於 {h} 內安排 {m} 保養：{x} {dir}健康水平 {sd} 個標準差，並以每小時 {v} 個標準差"
            "趨向故障水平（{f} 個標準差）",
        ),
        (
            r"^inspect (?P<m>\S+): (?P<x>\S+) is (?P<sd>\S+) sd (?P<dir>above|below) its "
            r"healthy level \(no steady trend\)$",
            "檢查 {m}：{x} {dir}健康水平 {sd} 個標準差（沒有穩定趨勢）",
        ),
        (
            r"^(?P<m>\S+) is healthy: no metric is far from its healthy level or trending away$",
            "{m} 健康：沒有指標遠離健康水平或有偏離趨勢",
        ),
    )
)
"""Sentences the domain writes in English (carbon notes, health messages), each with its Chinese:
a pattern for the English and the Chinese with the same named parts."""

WORDS_IN_MESSAGES = {
    "above": "高於",
    "below": "低於",
    "subgroups": "子組",
    "points": "數據點",
    "values": "數值",
}


def message(sentence: str, zone: zoneinfo.ZoneInfo | None = None) -> Markup:
    """A sentence from the domain in both languages (:data:`MESSAGES`), its stored times in
    site time; a sentence the catalogue does not know shows as it is, marked
    ``data-untranslated`` (tests/test_pages_zh.py finds it)."""
    en = sentence if zone is None else str(in_site_time(sentence, zone))
    for pattern, zh in MESSAGES:
        found = pattern.match(en)
        if found:
            parts = {
                k: WORDS_IN_MESSAGES.get(v or "", v or "") for k, v in found.groupdict().items()
            }
            return pair(en, zh.format(**parts))
    funding = funding_zh(en)  # the funding sentences' catalogue (microfab.funding.zh)
    if funding is not None:
        return pair(en, funding)
    return Markup('<span class="both" data-untranslated="message">{}</span>').format(en)


ISO_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:Z|[+-]\d\d:\d\d)")
"""A stored time as text (``2026-11-23T07:26:51.514Z``), which a page never shows as such."""


def site_time(value: str | dt.datetime, zone: zoneinfo.ZoneInfo) -> str:
    """A time as the site's clock shows it: ``2026-11-23 15:26`` (seconds only when not zero)."""
    when = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(value)
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    local = when.astimezone(zone)
    return local.strftime("%Y-%m-%d %H:%M:%S" if local.second else "%Y-%m-%d %H:%M")


def in_site_time(value: Any, zone: zoneinfo.ZoneInfo) -> Any:
    """``value`` (text, or lists and dicts of it) with every stored time written in site time."""
    if isinstance(value, str):
        return ISO_TIME.sub(lambda m: site_time(m.group(0), zone), value)
    if isinstance(value, list):
        return [in_site_time(v, zone) for v in value]
    if isinstance(value, dict):
        return {k: in_site_time(v, zone) for k, v in value.items()}
    return value


def text(key: str) -> str:
    """Both languages as plain text, for attributes and <option>s: ``Good 良品``."""
    en, zh = LABELS[key]
    return en if en == zh else f"{en} {zh}"


def chart_labels() -> dict[str, dict[str, str]]:
    keys = (
        "availability",
        "performance",
        "quality",
        "oee",
        "lost",
        "cumulative",
        "minutes",
        "output",
        "units",
        "no_data",
        "good",
    )
    return {k: {"en": LABELS[k][0], "zh": LABELS[k][1]} for k in keys}


__all__ = [
    "LABELS",
    "STATE_EN",
    "UNTRANSLATED",
    "chart_labels",
    "in_site_time",
    "label_or",
    "message",
    "pair",
    "site_time",
    "state_label",
    "status_words",
    "t",
    "text",
    "text_en",
    "text_zh",
]
