"""Rank the funding schemes of the catalogue against a company profile and need, with reasons.

Each scheme gets a verdict (``fits`` or not), a score for the order, and the reasons — status,
stage, sector, new vs existing line, company age, listing, incorporation, minimum project cost,
keywords — each citing the catalogue's sources. The grant estimate uses the scheme's ratio and cap
when both are known, floored to whole dollars. The catalogue is ``data/catalogue.yaml``.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from microfab.funding.application import Money
from microfab.funding.located import load_located
from microfab.funding.rules import catalogue_data
from microfab.model.funding import share_floor

OPEN = ("open",)
STOP_WORDS = frozenset({"with", "from", "that", "this", "into", "line", "lines", "their", "for"})
CLOSED_PREFIXES = ("closed", "merged")


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class CompanyFacts(_Open):
    name: str = Field(min_length=1)
    incorporated_in_hk: bool = True
    listed: bool = False
    sme: bool = True
    founded: int | None = Field(default=None, ge=1800, le=2100)
    sector: str = ""


class FundingNeed(_Open):
    stages: list[str] = Field(min_length=1)
    purpose: str = ""
    new_line: bool | None = None
    project_cost_hkd: Money | None = None
    keywords: list[str] = Field(default_factory=list)


class CompanyProfile(_Open):
    as_of: dt.date
    company: CompanyFacts
    need: FundingNeed


def parse_profile(text: str, filename: str = "company.yaml") -> CompanyProfile:
    """Validate a company profile file; FundingFileError names file, line and field."""
    profile = load_located(text, filename, CompanyProfile, expected="as_of, company, need")
    stages = catalogue_data().get("stage_vocabulary") or [
        "startup",
        "R&D",
        "business_expansion",
        "technology_application",
        "production",
        "training",
        "loan",
    ]
    unknown = [s for s in profile.need.stages if s not in stages]
    if unknown:
        from microfab.errors import FundingFileError

        raise FundingFileError(
            [f"{filename}: need.stages: {unknown[0]!r} is not one of {', '.join(stages)}"]
        )
    return profile


@dataclass(slots=True)
class MatchReason:
    passed: bool | None
    """True fits, False rules the scheme out, None is a caution."""
    detail: str
    sources: list[str] = field(default_factory=list)
    confidence: str = ""
    origin: str = ""
    """Which field of the catalogue the reason rests on, when it has no source ids of its own."""

    def to_json(self) -> dict[str, Any]:
        if self.sources:
            source = f"{', '.join(self.sources)} ({self.confidence})"
        else:
            source = f"catalogue field '{self.origin}' (compiled from the reference's sources)"
        return {"passed": self.passed, "detail": self.detail, "source": source}


@dataclass(slots=True)
class SchemeMatch:
    scheme: dict[str, Any]
    reasons: list[MatchReason]
    score: int
    estimate_hkd: int | None

    @property
    def fits(self) -> bool:
        return all(r.passed is not False for r in self.reasons)

    def to_json(self) -> dict[str, Any]:
        s = self.scheme
        ratio = s.get("funding_ratio") or {}
        cap = s.get("cap_per_project") or {}
        total = s.get("cap_total") or {}
        return {
            "id": s["id"],
            "name": s["name"],
            "name_zh": s["name_zh"],
            "fits": self.fits,
            "score": self.score,
            "status": s["status_code"],
            "ratio": ratio.get("text"),
            "cap_per_project_hkd": cap.get("amount_hkd"),
            "cap_total_hkd": total.get("amount_hkd"),
            "cap_text": cap.get("text") or cap.get("formula") or total.get("text"),
            "estimate_hkd": self.estimate_hkd,
            "reasons": [r.to_json() for r in self.reasons],
        }


def match_schemes(profile: CompanyProfile) -> list[SchemeMatch]:
    """Every scheme of the catalogue, fitting ones first, then by score."""
    matches = [_match(s, profile) for s in catalogue_data()["schemes"]]
    return sorted(matches, key=lambda m: (not m.fits, -m.score, m.scheme["id"]))


def _match(s: dict[str, Any], profile: CompanyProfile) -> SchemeMatch:
    company, need = profile.company, profile.need
    reasons: list[MatchReason] = []
    score = 0

    def add(
        passed: bool | None,
        detail: str,
        block: dict[str, Any] | str | None,
        points: int = 0,
    ) -> None:
        nonlocal score
        score += points
        if isinstance(block, str) or block is None:
            reasons.append(MatchReason(passed, detail, origin=block or "id"))
            return
        reasons.append(
            MatchReason(
                passed, detail, list(block.get("sources", [])), str(block.get("confidence", ""))
            )
        )

    status, status_block = s["status_code"], s.get("status")
    if status in OPEN:
        add(True, "open for applications", status_block, 3)
    elif status.startswith(CLOSED_PREFIXES):
        add(False, f"not open: {status_block['rule'] if status_block else status}", status_block)
    else:
        add(
            None,
            f"status {status}: {status_block['rule'] if status_block else 'check'}",
            status_block,
            -2,
        )

    common = [st for st in s["stage"] if st in need.stages]
    if common:
        add(True, f"stage fits: {', '.join(common)}", "stage", 3 * len(common))
    else:
        add(False, f"for {', '.join(s['stage'])}, not {', '.join(need.stages)}", "stage")

    if s["sectors"]:
        sector = company.sector.strip().lower().replace(" ", "_")
        if sector in s["sectors"]:
            add(True, f"sector {sector} is covered", "sectors", 2)
        else:
            add(
                False,
                f"only for {', '.join(s['sectors'])} (sector tag by microfab, confidence inference)",
                "sectors",
            )

    purpose = s["purpose"]
    if need.new_line is True and "EXISTING" in purpose:
        add(False, "for EXISTING lines; your need is a new line", "purpose")
    elif need.new_line is False and "NEW " in purpose:
        add(False, "for NEW lines; your need is an existing line", "purpose")
    elif need.new_line is not None and ("EXISTING" in purpose or "NEW " in purpose):
        add(True, "new/existing line as the scheme intends", "purpose", 2)

    for rule in s["eligibility"]:
        text = rule["rule"]
        ages = [int(n) for n in re.findall(r"<= ?(\d+) years?", text)]
        if ages and company.founded is not None and re.search(r"old|incorporated|registered", text):
            age = profile.as_of.year - company.founded
            limit = max(ages)
            add(age <= limit, f"company about {age} years old; scheme: {limit} years or less", rule)
        if re.search(r"non-listed|not listed", text) and company.listed:
            add(False, "for non-listed companies only", rule)
        if "Cap. 622" in text and "Cap. 310" not in text and not company.incorporated_in_hk:
            add(False, "applicant must be incorporated in Hong Kong (Cap. 622)", rule)
        if re.search(r"\bSMEs?\b", text) and not company.sme and "non-listed" not in text:
            add(None, "written for SMEs; check the size limit", rule)

    minimums = [
        (int(n) * 1_000_000, rule)
        for rule in s["eligibility"]
        for n in re.findall(r"minimum total project cost HK\$(\d+)M", rule["rule"])
    ]
    if minimums and need.project_cost_hkd is not None:
        least, rule = min(minimums, key=lambda pair: pair[0])
        add(
            need.project_cost_hkd >= least,
            f"minimum project cost HK${least:,} (latest rule); yours HK${need.project_cost_hkd:,.0f}",
            rule,
        )

    words = [
        w.lower().strip(".,;:()")
        for w in [*need.keywords, *need.purpose.split()]
        if len(w) > 3 and w.lower() not in STOP_WORDS
    ]
    haystack = " ".join(
        [purpose, *(r["rule"] for r in s["eligibility"]), *(r["rule"] for r in s["eligible_costs"])]
    ).lower()
    hits = sorted({w for w in words if w in haystack})
    if hits:
        add(True, f"mentions {', '.join(hits[:6])}", "purpose, eligibility", min(len(hits), 3))

    estimate = _estimate(s, need.project_cost_hkd)
    if estimate is not None:
        ratio = s["funding_ratio"]
        add(
            True,
            f"at {ratio['government']}:{ratio['company']} and its cap, up to HK${estimate:,} for "
            f"a HK${need.project_cost_hkd:,.0f} project",
            ratio,
        )
    return SchemeMatch(s, reasons, score, estimate)


def _estimate(s: dict[str, Any], cost: Decimal | None) -> int | None:
    ratio = s.get("funding_ratio") or {}
    gov, com = ratio.get("government"), ratio.get("company")
    caps = [
        c["amount_hkd"]
        for c in (s.get("cap_per_project"), s.get("cap_total"))
        if c and c.get("amount_hkd") is not None
    ]
    if cost is None or not isinstance(gov, int) or not isinstance(com, int) or not caps:
        return None
    return min(share_floor(cost, gov, gov + com), *(int(c) for c in caps))
