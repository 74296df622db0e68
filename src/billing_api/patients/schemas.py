from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

from pydantic import Field, StrictBool, StringConstraints

from billing_api.codes.schemas import (
    SERVICE_SYSTEMS_TEXT, Diagnoses, DiagnosisPointers, DiagnosisRead, Modifiers, ServiceCode,
)
from billing_api.models import ServiceCodeSystem
from billing_api.schemas import NOT_BLANK, Day, InputModel, Moment, Page, ReadModel, example, json_int

PAYER_OF_RECORD = (
    "The patient's payer of record, a payer of the patient's company: an insured bill is sent to it unless the "
    "bill names another, and the nightly run's bills go to it (insured), or, without one, to the patient "
    "(private)."
)
Name = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=NOT_BLANK)]
CptCode = Annotated[str, StringConstraints(max_length=5, pattern=r"^[0-9A-Z]{5}$")]
Description = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=NOT_BLANK)]
Units = json_int(ge=1, le=1000)
FeeCents = json_int(ge=0, le=10_000_000, description="Fee per unit, in cents.")


class PatientCreate(InputModel):
    model_config = example(
        company_id="c0a8f1e2-7b3d-4e5f-8a9b-1c2d3e4f5a60", first_name="Grace", last_name="Hopper",
        date_of_birth="1956-12-09",
    )

    company_id: uuid.UUID
    first_name: Name
    last_name: Name
    date_of_birth: Day | None = None
    payer_id: uuid.UUID | None = Field(default=None, description=PAYER_OF_RECORD)


class PatientUpdate(InputModel):
    model_config = example(payer_id="2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e")

    first_name: Name | None = None
    last_name: Name | None = None
    date_of_birth: Day | None = None
    payer_id: uuid.UUID | None = Field(default=None, description=PAYER_OF_RECORD + " Null removes it.")


class PatientRead(ReadModel):
    id: uuid.UUID
    company_id: uuid.UUID
    first_name: str
    last_name: str
    date_of_birth: date | None
    payer_id: uuid.UUID | None = Field(description=PAYER_OF_RECORD)
    created_at: datetime


class PatientPage(Page[PatientRead]):
    pass


class VisitCreate(InputModel):
    model_config = example(
        patient_id="3f2a8e4d-1c6b-4b8e-a2f1-6d0c9e7b5a12", provider_id="9b1c3c62-5f0e-4f7a-9d55-0a4c1c2b7e01",
        scheduled_at="2026-11-24T14:30:00-05:00",
    )

    patient_id: uuid.UUID
    provider_id: uuid.UUID
    scheduled_at: Moment


class VisitRead(ReadModel):
    id: uuid.UUID
    company_id: uuid.UUID
    patient_id: uuid.UUID
    provider_id: uuid.UUID
    scheduled_at: datetime
    created_at: datetime


class ServiceLineCreate(InputModel):
    code_system: ServiceCodeSystem | None = Field(default=None, description=(
        "The schedule the code comes from: " + SERVICE_SYSTEMS_TEXT + ". Only the company's own systems are "
        "accepted once it has chosen them (`service_code_systems`)."))
    code: ServiceCode | None = Field(default=None, description=(
        "The service code, by its system's rule (422 `service_code_invalid` names the line and the rule). With "
        "`code_system`; imported encounters' lines may have neither."))
    modifiers: Modifiers = Field(default_factory=list, description=(
        "Up to four two-character modifiers (25, 59, GT), for `cpt` and `hcpcs` codes only."))
    diagnosis_pointers: DiagnosisPointers = Field(default_factory=list, description=(
        "The diagnoses this line treats: 1-based positions in the bill's (the encounter's) `diagnoses`, at most "
        "four, each once."))
    cpt_code: CptCode | None = Field(default=None, deprecated=True, description=(
        "Deprecated: send `code_system` and `code`. A CPT (99213) or HCPCS (A0427) code by its shape, else five "
        "characters of no known system (`legacy`); not with `code`."))
    description: Description
    units: Units = 1
    fee_cents: FeeCents


_CPT_CODE_READ = ("Deprecated: read `code_system` and `code`. The code when its system is `cpt`, `hcpcs` or "
                  "`legacy`, else null.")


class ServiceLineRead(ReadModel):
    code_system: ServiceCodeSystem | None
    code: str | None
    modifiers: list[str]
    diagnosis_pointers: list[int] = Field(description="1-based positions in the bill's `diagnoses`.")
    description: str
    units: int
    fee_cents: int
    cpt_code: str | None = Field(deprecated=True, description=_CPT_CODE_READ)


class EncounterLineRead(ReadModel):
    """A service line of an encounter. Its fee is billing information: shown only to callers who may view the
    encounter provider's bills in the encounter's company (the bill scope decides, as for the bills themselves)."""

    code_system: ServiceCodeSystem | None
    code: str | None
    modifiers: list[str]
    diagnosis_pointers: list[int] = Field(description="1-based positions in the encounter's `diagnoses`.")
    description: str
    units: int
    fee_cents: int | None = Field(description=(
        "Fee per unit, in cents. Null when the caller may not view this provider's bills in the encounter's "
        "company: the fee is withheld, the rest of the line is not. Null rather than left out, so that every "
        "line has the same fields and a withheld fee never reads as a fee of 0."))
    cpt_code: str | None = Field(deprecated=True, description=_CPT_CODE_READ)


class EncounterCreate(InputModel):
    model_config = example(
        patient_id="3f2a8e4d-1c6b-4b8e-a2f1-6d0c9e7b5a12", provider_id="9b1c3c62-5f0e-4f7a-9d55-0a4c1c2b7e01",
        visit_id="8c9d0e1f-2a3b-4c5d-8e6f-7a8b9c0d1e2f", service_date="2026-11-20",
        lines=[
            {"code_system": "cpt", "code": "90837", "diagnosis_pointers": [1],
             "description": "Psychotherapy, 60 minutes", "units": 1, "fee_cents": 15000},
        ],
        diagnoses=[{"code_system": "icd10cm", "code": "F41.1"}],
    )

    patient_id: uuid.UUID
    provider_id: uuid.UUID
    visit_id: uuid.UUID | None = None
    service_date: Day
    imported: StrictBool = False
    diagnoses: Diagnoses = Field(default_factory=list, description=(
        "Up to twelve diagnoses, in order; lines point to them by position (from 1)."))
    lines: list[ServiceLineCreate] = Field(default_factory=list, max_length=100)


class EncounterRead(ReadModel):
    id: uuid.UUID
    company_id: uuid.UUID
    patient_id: uuid.UUID
    provider_id: uuid.UUID
    visit_id: uuid.UUID | None
    service_date: date
    imported: bool
    diagnoses: list[DiagnosisRead]
    lines: list[EncounterLineRead] = Field(description=(
        "The service lines in order. Their `fee_cents` are null when the caller may not view the provider's "
        "bills; codes, units and descriptions are shown to everyone who sees the encounter."))
    created_at: datetime
