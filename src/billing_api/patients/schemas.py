from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

from pydantic import Field, StrictBool, StrictInt, StringConstraints

from billing_api.schemas import InputModel, Page, ReadModel

Name = Annotated[str, StringConstraints(min_length=1, max_length=100)]
CptCode = Annotated[str, StringConstraints(pattern=r"^[0-9A-Z]{5}$")]
Description = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Units = Annotated[StrictInt, Field(ge=1, le=1000)]
FeeCents = Annotated[StrictInt, Field(ge=0, le=10_000_000, description="Fee per unit, in cents.")]


class PatientCreate(InputModel):
    company_id: uuid.UUID
    first_name: Name
    last_name: Name
    date_of_birth: date | None = None


class PatientRead(ReadModel):
    id: uuid.UUID
    company_id: uuid.UUID
    first_name: str
    last_name: str
    date_of_birth: date | None
    created_at: datetime


class PatientPage(Page[PatientRead]):
    pass


class VisitCreate(InputModel):
    patient_id: uuid.UUID
    provider_id: uuid.UUID
    scheduled_at: datetime


class VisitRead(ReadModel):
    id: uuid.UUID
    company_id: uuid.UUID
    patient_id: uuid.UUID
    provider_id: uuid.UUID
    scheduled_at: datetime
    created_at: datetime


class ServiceLineCreate(InputModel):
    cpt_code: CptCode | None = Field(default=None, description="Five characters; imported encounters may lack it.")
    description: Description
    units: Units = 1
    fee_cents: FeeCents


class ServiceLineRead(ReadModel):
    cpt_code: str | None
    description: str
    units: int
    fee_cents: int


class EncounterCreate(InputModel):
    patient_id: uuid.UUID
    provider_id: uuid.UUID
    visit_id: uuid.UUID | None = None
    service_date: date
    imported: StrictBool = False
    lines: list[ServiceLineCreate] = Field(default_factory=list, max_length=100)


class EncounterRead(ReadModel):
    id: uuid.UUID
    company_id: uuid.UUID
    patient_id: uuid.UUID
    provider_id: uuid.UUID
    visit_id: uuid.UUID | None
    service_date: date
    imported: bool
    lines: list[ServiceLineRead]
    created_at: datetime
