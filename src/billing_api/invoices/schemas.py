"""Billing reports, invoices and payments: what the role presets' reports:generate, invoices:view and
invoices:pay permissions open."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from billing_api.models import BillStatus, Coverage, PaymentMethod
from billing_api.schemas import InputModel, Page, ReadModel, example, json_int

Payer = Literal["insurer", "patient"]

PAYER_NOTE = (
    "The payer class, from the coverage: an `insured` bill is owed by an `insurer` (its `payer_id`), a "
    "`private` one by the `patient`."
)
PAYER_ID_NOTE = (
    "The insurer: a payer of the bill's company. Null for the patient, and for insured bills recorded before "
    "bills named a payer."
)


class Totals(ReadModel):
    bill_count: int
    total_cents: int = Field(description="Sum of the bills' totals.")
    paid_cents: int = Field(description="What has been paid: total minus balance.")
    balance_cents: int = Field(description="What is still owed.")


class StatusTotals(Totals):
    status: BillStatus


class CoverageTotals(Totals):
    coverage: Coverage


class PayerTotals(Totals):
    """One payer's bills: an insurer (by `payer_id`), or the patients themselves."""

    payer: Payer = Field(description=PAYER_NOTE)
    payer_id: uuid.UUID | None = Field(description=PAYER_ID_NOTE)
    payer_name: str | None = Field(description="The payer's name; null for the patient.")


class SummaryCell(Totals):
    """One combination of status and coverage (and so payer)."""

    status: BillStatus
    coverage: Coverage
    payer: Payer = Field(description=PAYER_NOTE)


class PatientTotals(Totals):
    """A patient's bills in the period. Patient names and dates of birth are personal health information:
    anyone holding `reports:generate` on the provider sees them (the preset's documented trade-off)."""

    patient_id: uuid.UUID
    first_name: str
    last_name: str
    date_of_birth: date | None


class BillingSummary(ReadModel):
    """Totals of one provider's bills whose service date falls in [`date_from`, `date_to`], by status, coverage
    and payer, with one line per patient. **Contains patient names and dates of birth.**"""

    provider_id: uuid.UUID
    provider_name: str
    date_from: date
    date_to: date
    generated_at: datetime
    totals: Totals
    by_status: list[StatusTotals]
    by_coverage: list[CoverageTotals]
    by_payer: list[PayerTotals] = Field(
        description="Per payer: each insurer by name, then insured bills that name no payer (recorded before "
                    "bills named one), then the patients' own (private) bills.")
    cells: list[SummaryCell] = Field(description="Every status and coverage combination that has bills.")
    patients: list[PatientTotals] = Field(description="Per patient, by name. Personal health information.")


class PaymentRead(ReadModel):
    id: uuid.UUID
    bill_id: uuid.UUID
    amount_cents: int
    method: PaymentMethod
    reference: str | None
    recorded_by: uuid.UUID | None
    created_at: datetime


class InvoiceRead(ReadModel):
    """A submitted (or paid) bill as an invoice: what it totals, what was paid, what is still owed."""

    bill_id: uuid.UUID
    provider_id: uuid.UUID
    company_id: uuid.UUID
    patient_id: uuid.UUID
    patient_name: str
    coverage: Coverage
    payer: Payer = Field(description=PAYER_NOTE)
    payer_id: uuid.UUID | None = Field(description=PAYER_ID_NOTE)
    payer_name: str | None = Field(description="The payer's name; null for the patient.")
    status: BillStatus = Field(description="`submitted` while something is owed, `paid` at a zero balance.")
    service_date: date
    submitted_at: datetime | None
    total_cents: int
    paid_cents: int
    balance_cents: int
    payments: list[PaymentRead] = Field(description="Oldest first.")
    created_at: datetime


class InvoicePage(Page[InvoiceRead]):
    pass


Reference = Annotated[str, StringConstraints(min_length=1, max_length=100)]


class PaymentCreate(InputModel):
    model_config = example(amount_cents=9500, method="cheque", reference="cheque 1042")

    amount_cents: json_int(gt=0, le=100_000_000, description="More than 0 and at most the balance.")
    method: PaymentMethod
    reference: Reference | None = Field(default=None, description="A cheque number or a transaction id, say.")


class PaymentResult(ReadModel):
    payment: PaymentRead
    invoice: InvoiceRead = Field(description="The bill after the payment: its new balance and status.")
