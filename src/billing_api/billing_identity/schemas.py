from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from billing_api.schemas import NOT_BLANK, InputModel, ReadModel, example

# Bounds only: the rules of each number are the service's (billing_identity/numbers.py), with their own codes.
Number = Annotated[str, StringConstraints(min_length=1, max_length=20)]
Province = Literal["ON", "AB", "BC"]
Credentials = Annotated[str, StringConstraints(min_length=1, max_length=40, pattern=r"^[A-Za-z][A-Za-z0-9 .,/()&'-]*$")]
LegalName = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=NOT_BLANK)]
AddressLine = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=NOT_BLANK)]
Phone = Annotated[str, StringConstraints(min_length=1, max_length=25)]


class ProviderBillingIdentityUpdate(InputModel):
    """The whole identity: a field left out or null is not set (a PUT replaces everything)."""

    model_config = example(npi="1234567893", province="ON", provincial_billing_number="123456", credentials="MD",
                           taxonomy_code="207Q00000X")

    npi: Number | None = Field(default=None, description=(
        "US National Provider Identifier: ten digits, the last a check digit (Luhn over 80840 and the first "
        "nine). 422 `npi_format`, `npi_check_digit`."))
    province: Province | None = Field(default=None, description=(
        "The province whose plan issued `provincial_billing_number`; set both or neither (422 "
        "`province_required`, `provincial_billing_number_required`)."))
    provincial_billing_number: Number | None = Field(default=None, description=(
        "ON: the six-digit OHIP billing number. AB: the nine-digit Alberta Health practitioner id (1234-56789 is "
        "stored as 123456789). BC: the five-character MSP practitioner number. 422 "
        "`provincial_billing_number_format`."))
    credentials: Credentials | None = Field(default=None, description="As printed after the name: MD, LCSW, RP.")
    taxonomy_code: Number | None = Field(default=None, description=(
        "NUCC provider taxonomy code, which some US payers require with the NPI (207Q00000X). 422 "
        "`taxonomy_code_format`."))


class ProviderBillingIdentityRead(ReadModel):
    provider_id: uuid.UUID
    npi: str | None
    province: Province | None
    provincial_billing_number: str | None
    credentials: str | None
    taxonomy_code: str | None
    updated_at: datetime | None = Field(description="null: never saved.")
    updated_by: uuid.UUID | None


class CompanyBillingIdentityUpdate(InputModel):
    """The whole identity: a field left out or null is not set (a PUT replaces everything)."""

    model_config = example(legal_name="Maple Therapy Group LLC", tax_id="12-3456789",
                           address_lines=["100 Main St, Suite 4", "Denver, CO 80202"], phone="+1 303 555 0100",
                           place_of_service="11")

    legal_name: LegalName | None = Field(default=None, description="The name claims and superbills bill under.")
    tax_id: Number | None = Field(default=None, description=(
        "US EIN, nine digits: 12-3456789 (also accepted without the hyphen; stored with it). 422 `tax_id_format`, "
        "`tax_id_prefix` (a prefix the IRS assigns to no one)."))
    business_number: Number | None = Field(default=None, description=(
        "Canadian CRA business number: nine digits with a check digit, optionally a program account (RC, RM, RP, "
        "RR, RT or RZ and four digits): 123456782 RT0001, stored without spaces. 422 `business_number_format`, "
        "`business_number_check_digit`, `business_number_program`."))
    address_lines: list[AddressLine] = Field(default_factory=list, max_length=4,
                                             description="As printed, top to bottom.")
    phone: Phone | None = Field(default=None, description="10 to 15 digits. 422 `phone_format`.")
    place_of_service: Number | None = Field(default=None, description=(
        "The CMS place-of-service code documents use unless told otherwise: 11 office, 02 or 10 telehealth. "
        "422 `place_of_service_format`, `place_of_service_unknown`."))


class CompanyBillingIdentityRead(ReadModel):
    company_id: uuid.UUID
    legal_name: str | None
    tax_id: str | None
    business_number: str | None
    address_lines: list[str]
    phone: str | None
    place_of_service: str | None
    place_of_service_name: str | None = Field(description="The code's name in the CMS code set.")
    updated_at: datetime | None = Field(description="null: never saved.")
    updated_by: uuid.UUID | None
