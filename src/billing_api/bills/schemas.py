from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import Field

from billing_api.codes.schemas import Diagnoses, DiagnosisRead
from billing_api.models import BillSource, BillStatus, Coverage
from billing_api.patients.schemas import ServiceLineCreate, ServiceLineRead, VisitRead
from billing_api.schemas import Day, InputModel, Page, ReadModel, example


class BillCreate(InputModel):
    model_config = example(
        provider_id="9b1c3c62-5f0e-4f7a-9d55-0a4c1c2b7e01", patient_id="3f2a8e4d-1c6b-4b8e-a2f1-6d0c9e7b5a12",
        coverage="private", service_date="2026-11-20", diagnoses=[{"code_system": "icd10cm", "code": "F41.1"}],
        lines=[
            {"code_system": "cpt", "code": "90837", "modifiers": ["95"], "diagnosis_pointers": [1],
             "description": "Psychotherapy, 60 minutes", "units": 1, "fee_cents": 15000},
        ],
    )

    provider_id: uuid.UUID
    patient_id: uuid.UUID
    encounter_id: uuid.UUID | None = None
    visit_id: uuid.UUID | None = None
    coverage: Coverage
    payer_id: uuid.UUID | None = Field(
        default=None,
        description="Who an `insured` bill is sent to: a payer of the patient's company (a parent company's payer "
                    "once copied down). Defaults to the patient's payer of record. A `private` bill has none: the "
                    "patient pays.",
    )
    service_date: Day | None = Field(default=None, description="Defaults to the encounter's date.")
    diagnoses: Diagnoses | None = Field(default=None, description=(
        "Up to twelve diagnoses, in order; lines point to them by position (from 1). Defaults to the encounter's "
        "diagnoses (none without an encounter)."))
    lines: list[ServiceLineCreate] | None = Field(
        default=None, min_length=1, max_length=100,
        description="Defaults to the encounter's lines (those with a code), with their modifiers and pointers.",
    )


class BillUpdate(InputModel):
    """Only draft bills can be edited."""

    model_config = example(
        service_date="2026-11-21",
        lines=[
            {"code_system": "cpt", "code": "99213", "description": "Office visit, established patient", "units": 2,
             "fee_cents": 9500},
        ],
    )

    coverage: Coverage | None = None
    payer_id: uuid.UUID | None = Field(
        default=None,
        description="A payer of the bill's company, for an `insured` bill. Turning a bill `private` removes its "
                    "payer; turning it `insured` needs one (given here, or the patient's payer of record).",
    )
    service_date: Day | None = None
    diagnoses: Diagnoses | None = Field(default=None, description=(
        "Replaces the diagnoses; the lines (sent with them or kept) must point only to diagnoses that remain."))
    lines: list[ServiceLineCreate] | None = Field(default=None, min_length=1, max_length=100)


class BillRead(ReadModel):
    model_config = example(
        id="0b4f6c1e-8d5a-4e0b-9a57-3c2d1f0e9b7a", company_id="c0a8f1e2-7b3d-4e5f-8a9b-1c2d3e4f5a60",
        provider_id="9b1c3c62-5f0e-4f7a-9d55-0a4c1c2b7e01", patient_id="3f2a8e4d-1c6b-4b8e-a2f1-6d0c9e7b5a12",
        encounter_id=None, visit_id=None, coverage="private", payer_id=None, status="submitted", source="manual",
        service_date="2026-11-20", total_cents=9500, balance_cents=9500,
        diagnoses=[{"code_system": "icd10cm", "code": "F41.1"}],
        lines=[{"code_system": "cpt", "code": "99213", "modifiers": [], "diagnosis_pointers": [1],
                "description": "Office visit, established patient", "units": 1, "fee_cents": 9500,
                "cpt_code": "99213"}],
        created_at="2026-11-20T15:04:05Z", updated_at="2026-11-20T15:10:00Z", submitted_at="2026-11-20T15:10:00Z",
    )

    id: uuid.UUID
    company_id: uuid.UUID
    provider_id: uuid.UUID
    patient_id: uuid.UUID
    encounter_id: uuid.UUID | None
    visit_id: uuid.UUID | None
    coverage: Coverage
    payer_id: uuid.UUID | None = Field(
        description="The payer an `insured` bill is sent to (a payer of the bill's company); null for a `private` "
                    "bill, which the patient pays, and for insured bills recorded before bills named a payer.",
    )
    status: BillStatus
    source: BillSource
    service_date: date
    total_cents: int
    balance_cents: int
    diagnoses: list[DiagnosisRead]
    lines: list[ServiceLineRead]
    created_at: datetime
    updated_at: datetime
    submitted_at: datetime | None


class BillPage(Page[BillRead]):
    pass


class VisitWithBills(VisitRead):
    bills: list[BillRead] = Field(description="The bills of this visit that the caller may see.")


class VisitPage(Page[VisitWithBills]):
    pass
