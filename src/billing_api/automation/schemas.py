"""Request and response shapes of billing automation."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import Field, StrictBool, StringConstraints

from billing_api.models import AutomationStage, BillCreation, ChargeStatus, DocumentKind, ShareState
from billing_api.schemas import Day, Email, InputModel, Page, ReadModel, example, json_int

Delay = json_int(ge=0, le=10_080, description="Delivery delay after creation, in minutes (max 7 days).")
SuperbillDay = json_int(ge=1, le=28, description="Day of the month superbills are created (1-28).")


class SharingRule(InputModel):
    """Whether a kind of document is shared automatically, and how long after its creation."""

    enabled: StrictBool
    delay_minutes: Delay


class SharingRead(ReadModel):
    enabled: bool
    delay_minutes: int


class CompanyAutomationUpdate(InputModel):
    """The whole account-level settings (PUT)."""

    model_config = example(
        bill_creation="daily", superbill_day=1, bills={"enabled": True, "delay_minutes": 60},
        superbills={"enabled": True, "delay_minutes": 60}, statements={"enabled": False, "delay_minutes": 0},
        autopay_enabled=True,
    )

    bill_creation: BillCreation = Field(description="manual | daily | monthly; company level only.")
    superbill_day: SuperbillDay
    bills: SharingRule = Field(description="Default sharing of bills for new patients.")
    superbills: SharingRule = Field(description="Default sharing of superbills for new patients.")
    statements: SharingRule = Field(description="Default sharing of statements for new patients.")
    autopay_enabled: StrictBool = Field(description="Allows AutoPay to run (each patient must enable it too).")


class CompanyAutomationRead(ReadModel):
    company_id: uuid.UUID
    time_zone: str
    bill_creation: BillCreation
    superbill_day: int
    bills: SharingRead
    superbills: SharingRead
    statements: SharingRead
    autopay_enabled: bool
    updated_at: datetime | None
    warnings: list[str] = Field(default_factory=list, description="Accepted, but worth a second look.")


class ApplyDefaultsResult(ReadModel):
    patients_updated: int


class BillingContactInput(InputModel):
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    email: Email | None = None
    autopay_enabled: StrictBool = False


class BillingContactRead(ReadModel):
    id: uuid.UUID
    name: str
    email: str | None
    autopay_enabled: bool


class PatientSettingsUpdate(InputModel):
    """Only the fields sent change. `billing_contact: null` removes the contact."""

    model_config = example(
        autopay_enabled=True, notice_email="grace@example.com",
        billing_contact={"name": "Grace Hopper", "email": "grace@example.com"},
    )

    superbills_enabled: StrictBool | None = None
    bills: SharingRule | None = None
    superbills: SharingRule | None = None
    statements: SharingRule | None = None
    autopay_enabled: StrictBool | None = None
    notice_email: Email | None = Field(default=None, description="Where 'document shared' notices go "
                                          "(the billing contact's email, when set, wins).")
    billing_contact: BillingContactInput | None = None


class PatientSettingsRead(ReadModel):
    patient_id: uuid.UUID
    company_id: uuid.UUID
    superbills_enabled: bool
    bills: SharingRead
    superbills: SharingRead
    statements: SharingRead
    autopay_enabled: bool
    notice_email: str | None
    billing_contact: BillingContactRead | None
    updated_at: datetime | None
    warnings: list[str] = Field(default_factory=list, description="Accepted, but worth a second look.")


class Automation(ReadModel):
    name: Literal["bill_creation", "superbills", "statements", "share_bills", "share_superbills",
                  "share_statements", "autopay"]
    will_run: bool
    reasons: list[str] = Field(description="Every reason it will not run (stable codes); empty when it runs.")
    detail: dict[str, Any] = Field(default_factory=dict)


class EffectiveSettingsRead(ReadModel):
    patient_id: uuid.UUID
    automations: list[Automation]


class PaymentMethodCreate(InputModel):
    model_config = example(token="tok_success", brand="visa", last4="4242", exp_month=12, exp_year=2030)

    token: Annotated[str, StringConstraints(min_length=1, max_length=100)] = Field(
        description="A card token from the payment gateway (test gateway: tok_success, tok_decline, tok_expired).")
    brand: Annotated[str, StringConstraints(min_length=1, max_length=30)]
    last4: Annotated[str, StringConstraints(max_length=4, pattern=r"^[0-9]{4}$")]
    exp_month: json_int(ge=1, le=12)
    exp_year: json_int(ge=2000, le=2100)


class PaymentMethodRead(ReadModel):
    id: uuid.UUID
    patient_id: uuid.UUID
    brand: str
    last4: str
    exp_month: int
    exp_year: int
    active: bool
    valid: bool = Field(description="Active and not expired (at the company's local date).")
    created_at: datetime


class StatementItemRead(ReadModel):
    """An open bill listed on a statement, as it stood when the statement was made."""

    bill_id: uuid.UUID
    provider_id: uuid.UUID
    service_date: date
    total_cents: int
    balance_cents: int


class SuperbillItemRead(ReadModel):
    """A session listed on a superbill made by hand, as it stood when the superbill was made."""

    encounter_id: uuid.UUID
    provider_id: uuid.UUID
    service_date: date
    imported: bool
    total_cents: int


class DocumentRead(ReadModel):
    id: uuid.UUID
    patient_id: uuid.UUID
    kind: DocumentKind
    bill_id: uuid.UUID | None
    period_start: date | None
    period_end: date | None
    total_cents: int
    share_state: ShareState
    share_at: datetime | None
    shared_at: datetime | None
    created_at: datetime
    items: list[StatementItemRead] = Field(
        default_factory=list, description="A statement's open bills (its `total_cents` is their balance); "
                                          "empty for other kinds.")
    encounters: list[SuperbillItemRead] = Field(
        default_factory=list, description="The sessions a superbill made by hand lists (imported ones included); "
                                          "empty for other kinds and for the nightly run's superbills, which "
                                          "list the period's billable sessions.")
    created_by: uuid.UUID | None = Field(default=None, description="Who made it by hand; null: the nightly run.")


class DocumentPage(Page[DocumentRead]):
    pass


class RunRequest(InputModel):
    model_config = example(date="2026-11-23", stages=["bills", "autopay"])

    date: Day = Field(description="The company's local date of the night to run.")
    stages: list[AutomationStage] | None = Field(default=None, min_length=1, max_length=len(AutomationStage),
                                                  description="Default: every stage the night has, in order.")


class RunRead(ReadModel):
    id: uuid.UUID
    company_id: uuid.UUID
    local_date: date
    stage: AutomationStage
    status: str
    trigger: str
    counts: dict[str, Any]
    errors: list[Any]
    created_at: datetime
    finished_at: datetime | None


class RunResult(ReadModel):
    stage: AutomationStage
    outcome: Literal["completed", "already_run"]
    run: RunRead


class RunResponse(ReadModel):
    local_date: date
    results: list[RunResult]
    documents_shared: int = Field(description="Documents whose share time had come, shared during this call.")


class RunPage(Page[RunRead]):
    pass


class ChargeRead(ReadModel):
    id: uuid.UUID
    bill_id: uuid.UUID
    local_date: date
    amount_cents: int
    status: ChargeStatus
    decline_reason: str | None


class DocumentCreate(InputModel):
    """A superbill or statement made by hand, for a period (one calendar month: the unit of the nightly run's
    once-per-patient-and-period rule) or, for a superbill, for chosen sessions (all in one month, which is then
    its period)."""

    model_config = example(kind="superbill", encounter_ids=["6f1c1f04-3b7e-4a57-9c55-8d3f6a0b2e11"])

    kind: Literal["superbill", "statement"] = Field(description="superbill | statement.")
    period_start: Day | None = Field(default=None, description="The first day of a month (with `period_end`).")
    period_end: Day | None = Field(default=None, description="The last day of the same month.")
    encounter_ids: list[uuid.UUID] | None = Field(
        default=None, min_length=1, max_length=200,
        description="A superbill's chosen sessions (imported ones included), instead of a period.")
