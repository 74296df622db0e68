"""What a document shows, as plain frozen values: the renderer reads nothing else, and the service builds these
from the database rows (one function per document kind). Optional fields are sections the renderer leaves out
when they are absent, so a field the rows do not carry yet simply does not show."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum


class DocumentKind(StrEnum):
    bill = "bill"
    superbill = "superbill"
    statement = "statement"


@dataclass(frozen=True)
class PracticeView:
    name: str
    billing_name: str | None = None
    tax_id: str | None = None           # a US practice's EIN
    business_number: str | None = None  # a Canadian practice's
    address: tuple[str, ...] = ()       # lines, in order
    phone: str | None = None
    place_of_service: str | None = None


@dataclass(frozen=True)
class ProviderView:
    name: str
    credentials: str | None = None
    npi: str | None = None
    provincial_billing_number: str | None = None
    province: str | None = None
    billing_number: str | None = None  # the number the practice keeps for the provider today


@dataclass(frozen=True)
class PatientView:
    name: str
    date_of_birth: date | None = None
    account: str | None = None  # the patient's reference in the practice
    bill_to: str | None = None  # another person who pays (a statement's billing contact)


@dataclass(frozen=True)
class PayerView:
    name: str


@dataclass(frozen=True)
class DiagnosisView:
    code_system: str | None
    code: str


@dataclass(frozen=True)
class LineView:
    description: str
    units: int
    fee_cents: int
    code: str | None = None
    code_system: str | None = None
    modifiers: tuple[str, ...] = ()
    diagnosis_pointers: tuple[int, ...] = ()  # 1-based, into the document's diagnoses
    service_date: date | None = None          # a superbill's line names its session's date
    provider: str | None = None               # and, when several treat the patient, its provider

    @property
    def amount_cents(self) -> int:
        return self.units * self.fee_cents


@dataclass(frozen=True)
class StatementItemView:
    reference: str
    service_date: date
    provider: str | None
    total_cents: int
    balance_cents: int

    @property
    def paid_cents(self) -> int:
        return self.total_cents - self.balance_cents


@dataclass(frozen=True)
class DocumentView:
    kind: DocumentKind
    reference: str          # the bill's or document's id, as the API names it
    issued_at: datetime     # the document's own date: the PDF's creation date, never the time of rendering
    practice: PracticeView
    patient: PatientView
    providers: tuple[ProviderView, ...] = ()
    payer: PayerView | None = None
    coverage: str | None = None
    status: str | None = None
    service_date: date | None = None  # a bill's
    period_start: date | None = None  # a superbill's or statement's
    period_end: date | None = None
    diagnoses: tuple[DiagnosisView, ...] = ()
    lines: tuple[LineView, ...] = ()
    items: tuple[StatementItemView, ...] = ()
    total_cents: int = 0
    paid_cents: int = 0
    balance_cents: int = 0
    amount_due_cents: int | None = None  # a statement's
    # A superbill's sessions with providers whose bills the reader may not view: left out, and said so.
    omitted_sessions: int = 0
