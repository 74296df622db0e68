from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Annotated

from pydantic import Field, StringConstraints

from billing_api.schemas import NOT_BLANK, InputModel, Page, ReadModel, example

RecordName = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=NOT_BLANK)]
Address = Annotated[str, StringConstraints(min_length=1, max_length=500)]
PayerCode = Annotated[str, StringConstraints(min_length=1, max_length=50, pattern=r"^[A-Za-z0-9._-]+$")]
Npi = Annotated[str, StringConstraints(max_length=10, pattern=r"^[0-9]{10}$")]


class PayerCreate(InputModel):
    model_config = example(name="Medicare Part B", payer_code="04412", address="PO Box 1, Denver CO")

    name: RecordName = Field(description="Unique within the company (case-insensitive).")
    payer_code: PayerCode | None = Field(default=None, description="The payer's id at the clearinghouse.")
    address: Address | None = None


class PayerUpdate(InputModel):
    model_config = example(payer_code="04413")

    name: RecordName | None = None
    payer_code: PayerCode | None = Field(default=None, description="null clears it.")
    address: Address | None = Field(default=None, description="null clears it.")


class PayerRead(ReadModel):
    id: uuid.UUID
    company_id: uuid.UUID
    name: str
    payer_code: str | None
    address: str | None
    copied_from_id: uuid.UUID | None = Field(description="The parent-level payer this one is a copy of.")
    created_at: datetime
    updated_at: datetime


class PayerPage(Page[PayerRead]):
    pass


class FacilityCreate(InputModel):
    model_config = example(name="West EMS Station 1", npi="1234567893", address="1 Station Rd, Denver CO")

    name: RecordName = Field(description="Unique within the company (case-insensitive).")
    npi: Npi | None = Field(default=None, description="The facility's National Provider Identifier (10 digits).")
    address: Address | None = None


class FacilityUpdate(InputModel):
    model_config = example(address="2 Station Rd, Denver CO")

    name: RecordName | None = None
    npi: Npi | None = Field(default=None, description="null clears it.")
    address: Address | None = Field(default=None, description="null clears it.")


class FacilityRead(ReadModel):
    id: uuid.UUID
    company_id: uuid.UUID
    name: str
    npi: str | None
    address: str | None
    copied_from_id: uuid.UUID | None = Field(description="The parent-level facility this one is a copy of.")
    created_at: datetime
    updated_at: datetime


class FacilityPage(Page[FacilityRead]):
    pass


class CopyRequest(InputModel):
    model_config = example(company_ids=["5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9"])

    company_ids: list[uuid.UUID] = Field(min_length=1, max_length=1000,
                                         description="Child companies of the record's company.")


class CopyStatus(enum.StrEnum):
    copied = "copied"
    already_present = "already_present"


class CopyOutcome(ReadModel):
    company_id: uuid.UUID
    status: CopyStatus = Field(description="`copied` now, or `already_present` (copied before; not duplicated).")
    id: uuid.UUID = Field(description="The copy in that company.")


class CopyResult(ReadModel):
    """All or nothing: either every named child has the copy afterwards, or nothing was written."""

    source_id: uuid.UUID
    items: list[CopyOutcome]
