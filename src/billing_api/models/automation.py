"""Billing automation: settings at two levels, cards and billing contacts, documents, runs and AutoPay charges."""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from billing_api.models.base import Base, CreatedAtMixin, IdMixin, pg_enum, utcnow


class BillCreation(enum.StrEnum):
    manual = "manual"
    daily = "daily"
    monthly = "monthly"


class DocumentKind(enum.StrEnum):
    bill = "bill"
    superbill = "superbill"
    statement = "statement"


class ShareState(enum.StrEnum):
    not_shared = "not_shared"
    scheduled = "scheduled"
    shared = "shared"


class AutomationStage(enum.StrEnum):
    bills = "bills"
    autopay = "autopay"
    superbills = "superbills"
    statements = "statements"


class ChargeStatus(enum.StrEnum):
    succeeded = "succeeded"
    declined = "declined"


def _company_fk() -> Mapped[uuid.UUID]:
    return mapped_column(UUID(as_uuid=True), ForeignKey("company.id", ondelete="CASCADE"), nullable=False)


def _patient_fk(**kwargs: Any) -> Mapped[uuid.UUID]:
    return mapped_column(UUID(as_uuid=True), ForeignKey("patient.id", ondelete="CASCADE"), nullable=False, **kwargs)


class CompanyBillingAutomation(Base):
    """Account-level settings: bill creation (company only), superbill day, sharing defaults, AutoPay."""

    __tablename__ = "company_billing_automation"

    company_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("company.id", ondelete="CASCADE"), primary_key=True
    )
    bill_creation: Mapped[BillCreation] = mapped_column(
        pg_enum(BillCreation, "bill_creation_mode"), nullable=False, default=BillCreation.manual
    )
    superbill_day: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    share_bills: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    bill_delay_minutes: Mapped[int] = mapped_column(Integer, nullable=False, default=60)
    share_superbills: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    superbill_delay_minutes: Mapped[int] = mapped_column(Integer, nullable=False, default=60)
    share_statements: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    statement_delay_minutes: Mapped[int] = mapped_column(Integer, nullable=False, default=60)
    autopay_enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now(), default=utcnow, onupdate=utcnow
    )

    __table_args__ = (
        CheckConstraint("superbill_day BETWEEN 1 AND 28", name="superbill_day_range"),
        CheckConstraint("bill_delay_minutes >= 0 AND superbill_delay_minutes >= 0 AND statement_delay_minutes >= 0",
                        name="delays_not_negative"),
    )


class BillingContact(IdMixin, CreatedAtMixin, Base):
    """Another person who pays for a patient; their own AutoPay setting governs the patient's AutoPay."""

    __tablename__ = "billing_contact"

    company_id: Mapped[uuid.UUID] = _company_fk()
    patient_id: Mapped[uuid.UUID] = _patient_fk(unique=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    email: Mapped[str | None] = mapped_column(String(320))
    autopay_enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)


class PatientBillingSettings(Base):
    """Client-level settings: what actually happens for this patient (bill creation is company-level only)."""

    __tablename__ = "patient_billing_settings"

    patient_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("patient.id", ondelete="CASCADE"), primary_key=True
    )
    company_id: Mapped[uuid.UUID] = _company_fk()
    superbills_enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    share_bills: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    bill_delay_minutes: Mapped[int] = mapped_column(Integer, nullable=False, default=60)
    share_superbills: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    superbill_delay_minutes: Mapped[int] = mapped_column(Integer, nullable=False, default=60)
    share_statements: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    statement_delay_minutes: Mapped[int] = mapped_column(Integer, nullable=False, default=60)
    autopay_enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    notice_email: Mapped[str | None] = mapped_column(String(320))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now(), default=utcnow, onupdate=utcnow
    )

    __table_args__ = (Index("ix_patient_billing_settings_company", "company_id", "patient_id"),)


class PaymentCard(IdMixin, CreatedAtMixin, Base):
    """A card on file: a gateway token, never the number. Valid = active and not expired."""

    __tablename__ = "payment_card"

    company_id: Mapped[uuid.UUID] = _company_fk()
    patient_id: Mapped[uuid.UUID] = _patient_fk(index=True)
    token: Mapped[str] = mapped_column(String(100), nullable=False)
    brand: Mapped[str] = mapped_column(String(30), nullable=False)
    last4: Mapped[str] = mapped_column(String(4), nullable=False)
    exp_month: Mapped[int] = mapped_column(Integer, nullable=False)
    exp_year: Mapped[int] = mapped_column(Integer, nullable=False)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)

    __table_args__ = (CheckConstraint("exp_month BETWEEN 1 AND 12", name="exp_month_range"),)


class AutomatedEncounter(Base):
    """The unique link encounter -> automated bill: an encounter is billed by automation at most once."""

    __tablename__ = "automated_encounter"

    encounter_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("encounter.id", ondelete="CASCADE"), primary_key=True
    )
    bill_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("bill.id", ondelete="CASCADE"), nullable=False, index=True
    )
    company_id: Mapped[uuid.UUID] = _company_fk()
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())


class BillingDocument(IdMixin, CreatedAtMixin, Base):
    """A bill, superbill or statement as the patient sees it, with its share state."""

    __tablename__ = "billing_document"

    company_id: Mapped[uuid.UUID] = _company_fk()
    patient_id: Mapped[uuid.UUID] = _patient_fk()
    kind: Mapped[DocumentKind] = mapped_column(pg_enum(DocumentKind, "document_kind"), nullable=False)
    bill_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("bill.id", ondelete="CASCADE"), unique=True
    )
    period_start: Mapped[date | None] = mapped_column(Date)
    period_end: Mapped[date | None] = mapped_column(Date)
    total_cents: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    share_state: Mapped[ShareState] = mapped_column(
        pg_enum(ShareState, "document_share_state"), nullable=False, default=ShareState.not_shared
    )
    share_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    shared_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Who made it by hand (POST /v1/patients/{id}/documents); NULL: the nightly run.
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("app_user.id", ondelete="SET NULL")
    )

    __table_args__ = (
        Index("ix_billing_document_patient_created", "patient_id", "created_at", "id"),
        Index("ix_billing_document_due", "share_at", postgresql_where=text("share_state = 'scheduled'")),
        Index("uq_billing_document_superbill_period", "patient_id", "period_start", unique=True,
              postgresql_where=text("kind = 'superbill'")),
        Index("uq_billing_document_statement_period", "patient_id", "period_start", unique=True,
              postgresql_where=text("kind = 'statement'")),
    )


class StatementItem(Base):
    """One open bill listed on a statement, as it stood when the statement was made (a statement is a snapshot)."""

    __tablename__ = "statement_item"

    document_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("billing_document.id", ondelete="CASCADE"), primary_key=True
    )
    bill_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("bill.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    provider_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("app_user.id", ondelete="CASCADE"), nullable=False
    )
    service_date: Mapped[date] = mapped_column(Date, nullable=False)
    total_cents: Mapped[int] = mapped_column(Integer, nullable=False)
    balance_cents: Mapped[int] = mapped_column(Integer, nullable=False)


class SuperbillItem(Base):
    """One session listed on a superbill made by hand, as it stood then (the nightly run's superbills list the
    period's billable sessions and have no items)."""

    __tablename__ = "superbill_item"

    document_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("billing_document.id", ondelete="CASCADE"), primary_key=True
    )
    encounter_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("encounter.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    provider_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("app_user.id", ondelete="CASCADE"), nullable=False
    )
    service_date: Mapped[date] = mapped_column(Date, nullable=False)
    imported: Mapped[bool] = mapped_column(Boolean, nullable=False)
    total_cents: Mapped[int] = mapped_column(Integer, nullable=False)


class AutomationRun(IdMixin, CreatedAtMixin, Base):
    """One stage of one night for one company. The unique key is the exactly-once claim."""

    __tablename__ = "automation_run"

    company_id: Mapped[uuid.UUID] = _company_fk()
    local_date: Mapped[date] = mapped_column(Date, nullable=False)
    stage: Mapped[AutomationStage] = mapped_column(pg_enum(AutomationStage, "automation_stage"), nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False, default="completed")
    trigger: Mapped[str] = mapped_column(String(20), nullable=False, default="schedule")
    counts: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, default=dict, server_default="{}")
    errors: Mapped[list[Any]] = mapped_column(JSONB, nullable=False, default=list, server_default="[]")
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        UniqueConstraint("company_id", "local_date", "stage"),
        Index("ix_automation_run_company_date", "company_id", text("local_date DESC"), "stage"),
    )


class AutopayCharge(IdMixin, CreatedAtMixin, Base):
    """One AutoPay attempt on one bill on one night: at most one per (bill, night)."""

    __tablename__ = "autopay_charge"

    company_id: Mapped[uuid.UUID] = _company_fk()
    bill_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("bill.id", ondelete="CASCADE"), nullable=False
    )
    card_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("payment_card.id", ondelete="SET NULL")
    )
    local_date: Mapped[date] = mapped_column(Date, nullable=False)
    amount_cents: Mapped[int] = mapped_column(Integer, nullable=False)
    status: Mapped[ChargeStatus] = mapped_column(pg_enum(ChargeStatus, "autopay_charge_status"), nullable=False)
    decline_reason: Mapped[str | None] = mapped_column(Text)
    gateway_reference: Mapped[str | None] = mapped_column(String(100))
    payment_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("payment.id", ondelete="SET NULL")
    )

    __table_args__ = (UniqueConstraint("bill_id", "local_date"),)
