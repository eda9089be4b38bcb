"""A PACT v3 ProductFootprint from a microfab carbon footprint (our own data model of it).

microfab writes the ``ProductFootprint`` data type of the PACT Technical Specifications v3.0.3
(WBCSD Partnership for Carbon Transparency) as JSON. The model below is microfab's own
implementation of that data type; the specification files themselves are not shipped.

Notice (PACT licence §3.2): this module and the documents it writes are a derivative work that
uses and implements information in the *PACT Technical Specifications* (data model and API for
the exchange of product carbon footprints), whose owner and rightholder is the World Business
Council for Sustainable Development (WBCSD). Section 5 of that licence, reproduced in full:

5. Disclaimer of Warranties and Limitation of Liability.

5.1 Licensor offers, provides, makes available, and licenses the Licensed Material, and grants the
license and Licensed Rights, "as is" and "as available" without any representations or
warranties, express or implied.  Licensor hereby disclaims all representations and warranties,
express, implied, statutory, or otherwise, under any law, including, without limitation, all
representations and warranties of title, merchantability, fitness for a particular purpose,
non-infringement, absence of latent or other defects, accuracy, or the presence or absence of
errors, whether or not known or discoverable. Where disclaimers of warranties are limited by
applicable law, this disclaimer applies to the greatest extent not limited by such applicable law.

5.2 In no event will Licensor be liable to User or any other person, under contract, negligence,
willful misconduct, other tort, property, intellectual property, or other cause or legal theory
any legal theory or otherwise, for any direct, indirect, special, incidental, consequential,
punitive, exemplary, liquidated, or other losses, costs, expenses, attorneys' or legal fees or
costs, or damages of any kind anywhere, under any law, arising or related to this License, any
Licensed Right, the Licensed Material, any Derivative, and/or any part thereof or any Use, even if
Licensor has been advised of the possibility of such losses, costs, expenses, attorneys' or legal
fees or costs, or damages of any kind anywhere. Where the exclusion or limitation of liability is
limited by applicable law, this exclusion and limitation of liability applies to the greatest
extent not limited by such applicable law.

5.3 The disclaimer of representations and warranties and the exclusion and limitation of
liability under Sections 5.1 and 5.2 shall be interpreted in a manner that, to the extent
possible, most closely approximates an absolute disclaimer and waiver of all liability.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from microfab.green.footprint import CarbonFootprint
from microfab.green.settings import CarbonSettings
from microfab.model.events import format_ts
from microfab.model.factory import Factory

SPEC_VERSION = "3.0.3"
PACT_NOTICE = (
    "PACT: this document follows the PACT Technical Specifications v3 (data model), owned by the "
    "World Business Council for Sustainable Development (WBCSD); microfab implements the data "
    "model itself. The WBCSD licence's disclaimer (section 5) is reproduced in docs/green.md."
)

DecimalText = str
"""A decimal as PACT writes it: a string such as "0.384" (no exponent)."""


class _Pact(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class EmissionFactorSource(_Pact):
    name: str = Field(min_length=1)
    version: str = Field(min_length=1)


class DataQualityIndicators(_Pact):
    technological_dqr: DecimalText = Field(alias="technologicalDQR")
    geographical_dqr: DecimalText = Field(alias="geographicalDQR")
    temporal_dqr: DecimalText = Field(alias="temporalDQR")


class PactCarbonFootprint(_Pact):
    """PACT ``CarbonFootprint`` (the fields microfab fills)."""

    declared_unit_of_measurement: Literal["piece", "kilogram"] = Field(
        alias="declaredUnitOfMeasurement"
    )
    declared_unit_amount: DecimalText = Field(alias="declaredUnitAmount")
    product_mass_per_declared_unit: DecimalText = Field(alias="productMassPerDeclaredUnit")
    reference_period_start: str = Field(alias="referencePeriodStart")
    reference_period_end: str = Field(alias="referencePeriodEnd")
    geography_country: str = Field(alias="geographyCountry", pattern=r"^[A-Z]{2}$")
    boundary_processes_description: str = Field(alias="boundaryProcessesDescription")
    pcf_excluding_biogenic_uptake: DecimalText = Field(alias="pcfExcludingBiogenicUptake")
    pcf_including_biogenic_uptake: DecimalText = Field(alias="pcfIncludingBiogenicUptake")
    fossil_ghg_emissions: DecimalText = Field(alias="fossilGhgEmissions")
    fossil_carbon_content: DecimalText = Field(alias="fossilCarbonContent")
    packaging_emissions_included: bool = Field(alias="packagingEmissionsIncluded")
    ipcc_characterization_factors: list[str] = Field(alias="ipccCharacterizationFactors")
    cross_sectoral_standards: list[str] = Field(alias="crossSectoralStandards")
    exempted_emissions_percent: DecimalText = Field(alias="exemptedEmissionsPercent")
    exempted_emissions_description: str = Field(alias="exemptedEmissionsDescription")
    allocation_rules_description: str = Field(alias="allocationRulesDescription")
    secondary_emission_factor_sources: list[EmissionFactorSource] | None = Field(
        default=None, alias="secondaryEmissionFactorSources"
    )
    primary_data_share: DecimalText = Field(alias="primaryDataShare")
    dqi: DataQualityIndicators | None = None


class ProductFootprint(_Pact):
    """PACT ``ProductFootprint``."""

    id: str
    spec_version: str = Field(default=SPEC_VERSION, alias="specVersion")
    created: str
    status: Literal["Active", "Deprecated"] = "Active"
    company_name: str = Field(alias="companyName", min_length=1)
    company_ids: list[str] = Field(alias="companyIds", min_length=1)
    product_description: str = Field(alias="productDescription")
    product_ids: list[str] = Field(alias="productIds", min_length=1)
    product_classifications: list[str] | None = Field(default=None, alias="productClassifications")
    product_name_company: str = Field(alias="productNameCompany", min_length=1)
    comment: str
    pcf: PactCarbonFootprint

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True)


def decimal_text(value: float, places: int = 6) -> DecimalText:
    """``value`` as PACT decimal text, rounded to ``places`` and without trailing zeros."""
    exact = Decimal(repr(value)).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)
    text = format(exact, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "company"


def company_ids(factory: Factory, settings: CarbonSettings) -> list[str]:
    """The settings' company URNs, else one made from the Business Registration number or name."""
    if settings.company_ids:
        return list(settings.company_ids)
    company = factory.company
    if company.br_number:
        return [f"urn:microfab:company:hk-br:{company.br_number}"]
    return [f"urn:microfab:company:{_slug(company.name)}"]


def product_footprint(
    fp: CarbonFootprint,
    factory: Factory,
    settings: CarbonSettings,
    *,
    created: dt.datetime,
) -> ProductFootprint:
    """The PACT document of a product footprint (per piece of product)."""
    product = factory.product(fp.product)
    ids = settings.products.get(fp.product)
    companies = company_ids(factory, settings)
    product_ids = (
        list(ids.ids)
        if ids and ids.ids
        else [f"urn:microfab:product:{_slug(factory.company.name)}:{fp.product}"]
    )
    per_unit = float(fp.per_unit.to("kgCO2e").magnitude)
    secondary = sorted(
        {(c.factor.source, str(c.factor.year)) for c in fp.factors if c.factor.quality != "primary"}
    )
    comment_lines = [
        f"Calculated by microfab from metered energy and production counts of "
        f"{len(fp.orders)} work order(s), {fp.units} unit(s).",
        f"Scope 2 counted {'market' if fp.certificates else 'location'}-based.",
        *(f"Data quality: {flag}" for flag in fp.flags),
        PACT_NOTICE,
    ]
    document = ProductFootprint(
        id=str(
            uuid.uuid5(
                uuid.NAMESPACE_URL,
                f"microfab:{companies[0]}:{fp.product}:{format_ts(fp.start)}:{format_ts(fp.end)}:"
                f"{decimal_text(per_unit)}",
            )
        ),
        created=format_ts(created),
        company_name=factory.company.name,
        company_ids=companies,
        product_description=(ids.description if ids and ids.description else "")
        or f"{product.name or product.sku}, {product.unit_mass_kg:g} kg per piece",
        product_ids=product_ids,
        product_classifications=list(ids.classifications) if ids and ids.classifications else None,
        product_name_company=product.name or product.sku,
        comment="\n".join(comment_lines),
        pcf=PactCarbonFootprint(
            declared_unit_of_measurement="piece",
            declared_unit_amount="1",
            product_mass_per_declared_unit=decimal_text(product.unit_mass_kg),
            reference_period_start=format_ts(fp.start),
            reference_period_end=format_ts(fp.end),
            geography_country="HK",
            boundary_processes_description=(
                "Cradle to gate: purchased materials (bill of materials × material emission "
                "factors), on-site fuel combustion (Scope 1) and purchased electricity (Scope 2) "
                "of the factory's production and facility energy."
            ),
            pcf_excluding_biogenic_uptake=decimal_text(per_unit),
            pcf_including_biogenic_uptake=decimal_text(per_unit),
            fossil_ghg_emissions=decimal_text(per_unit),
            fossil_carbon_content="0",
            packaging_emissions_included=settings.packaging_included,
            ipcc_characterization_factors=list(settings.ipcc_characterization_factors),
            cross_sectoral_standards=["GHGP-Product", "ISO14067"],
            exempted_emissions_percent="0",
            exempted_emissions_description=(
                "Outbound logistics, end of life and packaging beyond the bill of materials are "
                "outside the cradle-to-gate boundary; fossil carbon content is not assessed."
            ),
            allocation_rules_description=(
                "Machine energy goes to the work orders and routing steps whose units the machine "
                "counted in each meter interval (by units); idle intervals by the machine's units "
                f"over the period; facility energy (panels, HVAC, lighting) by {fp.rule} of each "
                "order. Allocated energy adds up exactly to metered energy."
            ),
            secondary_emission_factor_sources=[
                EmissionFactorSource(name=name, version=version) for name, version in secondary
            ]
            or None,
            primary_data_share=decimal_text(fp.primary_data_share * 100, 2),
            dqi=None
            if fp.dqi is None
            else DataQualityIndicators(
                technological_dqr=decimal_text(fp.dqi["technological"], 2),
                geographical_dqr=decimal_text(fp.dqi["geographical"], 2),
                temporal_dqr=decimal_text(fp.dqi["temporal"], 2),
            ),
        ),
    )
    return document
