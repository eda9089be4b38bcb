"""Grant and payment arithmetic of funding schemes: exact Hong Kong dollars, never binary floats.

Money is :class:`decimal.Decimal` with at most two decimal places (cents); every grant or payment
is floored to a whole Hong Kong dollar. Pure: no I/O, no rules data (the numbers are arguments).
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal, InvalidOperation

CENT = Decimal("0.01")


def to_money(value: object) -> Decimal:
    """An amount in HK$ from an int, a Decimal or decimal text; ValueError for floats or junk."""
    if isinstance(value, bool | float):
        raise ValueError("write money as an integer or a quoted decimal, not a binary float")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, Decimal):
        amount = value
    elif isinstance(value, str):
        try:
            amount = Decimal(value.strip().replace(",", ""))
        except InvalidOperation:
            raise ValueError(f"{value!r} is not an amount in HK$") from None
    else:
        raise ValueError(f"{value!r} is not an amount in HK$")
    if not amount.is_finite():
        raise ValueError(f"{value!r} is not a finite amount")
    if amount != amount.quantize(CENT, rounding=ROUND_FLOOR):
        raise ValueError(f"{value} has more than two decimal places (HK$ cents)")
    return amount


def floor_dollars(amount: Decimal) -> int:
    """Whole Hong Kong dollars, rounded down."""
    return int(amount.to_integral_value(rounding=ROUND_FLOOR))


def share_floor(amount: Decimal, numerator: int, denominator: int) -> int:
    """``amount × numerator / denominator`` floored to whole dollars, in exact integer cents."""
    if denominator <= 0 or numerator < 0:
        raise ValueError("a share needs numerator >= 0 and denominator > 0")
    cents = int((amount * 100).to_integral_value(rounding=ROUND_FLOOR))
    return (cents * numerator) // (denominator * 100)


def money_json(amount: Decimal | int) -> int | str:
    """An amount for JSON: an int when whole, else a decimal string with two places."""
    if isinstance(amount, int):
        return amount
    if amount == amount.to_integral_value():
        return int(amount)
    return str(amount.quantize(CENT))


def add_months(day: dt.date, months: int) -> dt.date:
    """``day`` plus calendar months; the day is clipped to the month's end (Jan 31 + 1 = Feb 28/29)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def lasts_more_than(start: dt.date, end: dt.date, months: int) -> bool:
    """True when ``end`` is later than ``start`` plus ``months`` calendar months."""
    return end > add_months(start, months)


@dataclass(frozen=True, slots=True)
class GrantLimits:
    """The three limits on a grant and the one that binds."""

    by_ratio_hkd: int
    """``eligible cost × government / (government + company)``, floored."""
    project_cap_hkd: int
    company_remaining_hkd: int | None
    """What is left of the company's total cap after its other active projects (None: no cap)."""

    @property
    def grant_hkd(self) -> int:
        limits = [self.by_ratio_hkd, self.project_cap_hkd]
        if self.company_remaining_hkd is not None:
            limits.append(max(self.company_remaining_hkd, 0))
        return min(limits)

    @property
    def limited_by(self) -> str:
        """``one_third`` (the ratio), ``project_cap`` or ``company_total``; ties go to the first."""
        grant = self.grant_hkd
        if self.by_ratio_hkd == grant:
            return "one_third"
        if self.project_cap_hkd == grant:
            return "project_cap"
        return "company_total"


def grant_limits(
    eligible_cost: Decimal,
    *,
    government: int,
    company: int,
    project_cap_hkd: int,
    company_total_cap_hkd: int | None,
    other_active_grants: Decimal,
) -> GrantLimits:
    """The grant for an eligible cost under a ratio, a per-project cap and a company total cap."""
    remaining = None
    if company_total_cap_hkd is not None:
        remaining = floor_dollars(Decimal(company_total_cap_hkd) - other_active_grants)
    return GrantLimits(
        by_ratio_hkd=share_floor(eligible_cost, government, government + company),
        project_cap_hkd=project_cap_hkd,
        company_remaining_hkd=remaining,
    )


def interim_max_hkd(grant_hkd: int, share: Decimal) -> int:
    """The most an interim payment may be: ``share`` of the approved grant, floored."""
    return floor_dollars(Decimal(grant_hkd) * share)
