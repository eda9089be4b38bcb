"""A NIFS/RFS application file (YAML) as validated models: company, project, budget, other projects.

Extra fields are allowed (and ignored). Amounts are integers or decimals in HK$; floats in the
YAML are read from their text as decimals. See docs/funding.md and docs/examples/.
"""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, field_validator

from microfab.funding.located import load_located
from microfab.model.funding import to_money


def _money(value: object) -> Decimal:
    amount = to_money(value)
    if amount < 0:
        raise ValueError(f"{amount} is negative; give an amount of 0 or more")
    return amount


Money = Annotated[Decimal, BeforeValidator(_money)]
"""A non-negative amount in HK$ (integer or decimal with at most two places)."""


class CostCategory(enum.StrEnum):
    MACHINERY = "machinery"
    INSTALLATION = "installation"
    COMMISSIONING = "commissioning"
    CONSULTANT = "consultant"
    TRAINING = "training"
    OPERATING = "operating"
    OTHER = "other"


class SmartFeature(enum.StrEnum):
    """The smart-manufacturing criteria named by the scheme."""

    IOT = "iot"
    REAL_TIME_DATA = "real_time_data"
    DATA_ANALYTICS = "data_analytics"
    ADVANCED_HMI = "advanced_hmi"
    AI_ML = "ai_ml"
    ROBOTICS = "robotics"


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class ApplicantCompany(_Open):
    name: str = Field(min_length=1)
    incorporated_in_hk: bool
    companies_ordinance: str | None = None


class ProjectPlan(_Open):
    title: str = Field(min_length=1)
    in_hong_kong: bool
    new_production_line: bool
    start: dt.date
    end: dt.date
    smart_features: list[SmartFeature] = Field(default_factory=list)
    smart_line_share: Decimal = Field(ge=0, le=1)

    @field_validator("end")
    @classmethod
    def _after_start(cls, value: dt.date, info: ValidationInfo) -> dt.date:
        start = info.data.get("start")
        if isinstance(start, dt.date) and value <= start:
            raise ValueError(f"end {value} is not after start {start}; give a later end date")
        return value


class BudgetItem(_Open):
    item: str = Field(min_length=1)
    category: CostCategory
    amount_hkd: Money
    justification: str = ""
    other_government_funding: bool = False


ProjectStatus = Literal["applied", "approved", "ongoing", "completed", "withdrawn", "terminated"]


class OtherProject(_Open):
    scheme: Literal["NIFS", "RFS"]
    status: ProjectStatus
    approved_grant_hkd: Money = Decimal(0)
    title: str = ""


class Assumptions(_Open):
    """Numbers of rules that rest only on the 2019 LegCo paper / 2020 HKPC slides (configurable)."""

    interim_payment: bool | None = None
    interim_share: Decimal | None = Field(default=None, ge=0, le=1)
    no_double_funding: bool | None = None
    no_transfer_years: int | None = Field(default=None, ge=0, le=50)


class Application(_Open):
    scheme: Literal["NIFS", "RFS"]
    as_of: dt.date
    company: ApplicantCompany
    project: ProjectPlan
    budget: list[BudgetItem] = Field(min_length=1)
    other_projects: list[OtherProject] = Field(default_factory=list)
    assumptions: Assumptions = Field(default_factory=Assumptions)


def parse_application(text: str, filename: str = "application.yaml") -> Application:
    """Validate an application file's text; FundingFileError names file, line and field."""
    return load_located(
        text, filename, Application, expected="scheme, as_of, company, project, budget"
    )
