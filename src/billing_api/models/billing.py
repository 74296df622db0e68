"""Patients, visits, encounters and bills."""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from billing_api.models.base import Base, CreatedAtMixin, IdMixin, pg_enum, utcnow


class Coverage(enum.StrEnum):
    insured = "insured"
    private = "private"


class BillStatus(enum.StrEnum):
    draft = "draft"
    submitted = "submitted"
    paid = "paid"
    void = "void"


class BillSource(enum.StrEnum):
    manual = "manual"
    automation = "automation"


class ServiceCodeSystem(enum.StrEnum):
    """The schedule a service line's code comes from (each system's rule: billing_api/codes/rules.py)."""

    cpt = "cpt"
    hcpcs = "hcpcs"
    ohip = "ohip"
    ahcip = "ahcip"
    msp = "msp"
    # Five characters [0-9A-Z] of no known system: what lines held before code systems, kept as they were.
    legacy = "legacy"


class DiagnosisCodeSystem(enum.StrEnum):
    icd10cm = "icd10cm"
    ohip_dx = "ohip_dx"


# The systems whose codes the deprecated `cpt_code` field shows (and, on input, can name).
CPT_CODE_SYSTEMS = frozenset({ServiceCodeSystem.cpt, ServiceCodeSystem.hcpcs, ServiceCodeSystem.legacy})


def _diagnoses_column() -> Mapped[list[dict]]:
    # [{"code_system", "code"}, ...] in order (lines point to them by position, from 1). In the row itself: the bill
    # page reads them with the bill, with no join, and nothing ever looks a bill up by diagnosis.
    return mapped_column(JSONB, nullable=False, default=list, server_default=text("'[]'::jsonb"))


_DIAGNOSES_CHECK = "jsonb_typeof(diagnoses) = 'array' AND jsonb_array_length(diagnoses) <= 12"


def _company_fk() -> Mapped[uuid.UUID]:
    return mapped_column(UUID(as_uuid=True), ForeignKey("company.id", ondelete="RESTRICT"), nullable=False)


class Patient(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "patient"

    company_id: Mapped[uuid.UUID] = _company_fk()
    first_name: Mapped[str] = mapped_column(String(100), nullable=False)
    last_name: Mapped[str] = mapped_column(String(100), nullable=False)
    date_of_birth: Mapped[date | None] = mapped_column(Date)
    # The payer of record: the nightly run's bills name it (insured), or are the patient's own (private).
    payer_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), ForeignKey("payer.id", ondelete="RESTRICT"))

    __table_args__ = (
        Index("ix_patient_company_created", "company_id", "created_at", "id"),
        Index("ix_patient_payer", "payer_id", postgresql_where=text("payer_id IS NOT NULL")),
    )


class Visit(IdMixin, CreatedAtMixin, Base):
    """An appointment."""

    __tablename__ = "visit"

    company_id: Mapped[uuid.UUID] = _company_fk()
    patient_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("patient.id", ondelete="RESTRICT"), nullable=False, index=True
    )
    provider_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("app_user.id", ondelete="RESTRICT"), nullable=False
    )
    scheduled_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)

    __table_args__ = (Index("ix_visit_company_scheduled", "company_id", "scheduled_at", "id"),)


class Encounter(IdMixin, CreatedAtMixin, Base):
    """A session: what was done for a patient on a date, with its service lines."""

    __tablename__ = "encounter"

    company_id: Mapped[uuid.UUID] = _company_fk()
    patient_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("patient.id", ondelete="RESTRICT"), nullable=False, index=True
    )
    provider_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("app_user.id", ondelete="RESTRICT"), nullable=False, index=True
    )
    visit_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("visit.id", ondelete="RESTRICT"), index=True
    )
    service_date: Mapped[date] = mapped_column(Date, nullable=False)
    # Imported from another system: may lack codes, and automation never picks it up.
    imported: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    diagnoses: Mapped[list[dict]] = _diagnoses_column()

    __table_args__ = (CheckConstraint(_DIAGNOSES_CHECK, name="diagnoses_at_most_12"),)


class ServiceLineColumns:
    """What a service line carries, on an encounter and on a bill made from it."""

    position: Mapped[int] = mapped_column(Integer, nullable=False)
    # Both or neither: only an imported encounter's lines may lack a code.
    code_system: Mapped[ServiceCodeSystem | None] = mapped_column(pg_enum(ServiceCodeSystem, "service_code_system"))
    code: Mapped[str | None] = mapped_column(String(10))
    modifiers: Mapped[list[str]] = mapped_column(ARRAY(String(2)), nullable=False, default=list,
                                                 server_default=text("'{}'"))
    # 1-based positions in the bill's (the encounter's) `diagnoses`.
    diagnosis_pointers: Mapped[list[int]] = mapped_column(ARRAY(SmallInteger), nullable=False, default=list,
                                                          server_default=text("'{}'"))
    description: Mapped[str] = mapped_column(String(200), nullable=False)
    units: Mapped[int] = mapped_column(Integer, nullable=False)
    fee_cents: Mapped[int] = mapped_column(Integer, nullable=False)

    @property
    def cpt_code(self) -> str | None:
        """The deprecated field's value: the code, when its system is one `cpt_code` ever held."""
        return self.code if self.code_system in CPT_CODE_SYSTEMS else None

    @declared_attr.directive
    def __table_args__(cls) -> tuple:
        # Built per table: a constraint object belongs to one table only.
        return (
            CheckConstraint("units > 0", name="units_positive"),
            CheckConstraint("fee_cents >= 0", name="fee_not_negative"),
            CheckConstraint("(code IS NULL) = (code_system IS NULL)", name="code_with_system"),
            CheckConstraint("cardinality(modifiers) <= 4", name="modifiers_at_most_4"),
            CheckConstraint("cardinality(diagnosis_pointers) <= 4", name="diagnosis_pointers_at_most_4"),
        )


class EncounterLine(ServiceLineColumns, IdMixin, Base):
    __tablename__ = "encounter_line"

    encounter_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("encounter.id", ondelete="CASCADE"), nullable=False, index=True
    )


class Bill(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "bill"

    company_id: Mapped[uuid.UUID] = _company_fk()
    provider_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("app_user.id", ondelete="RESTRICT"), nullable=False
    )
    patient_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("patient.id", ondelete="RESTRICT"), nullable=False
    )
    encounter_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("encounter.id", ondelete="RESTRICT")
    )
    visit_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), ForeignKey("visit.id", ondelete="RESTRICT"))
    coverage: Mapped[Coverage] = mapped_column(pg_enum(Coverage, "bill_coverage"), nullable=False)
    # Who is billed: a payer of the bill's company for an insured bill, none (the patient) for a private one.
    # Insured bills recorded before bills named a payer have none; every new or edited insured bill names one.
    payer_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), ForeignKey("payer.id", ondelete="RESTRICT"))
    status: Mapped[BillStatus] = mapped_column(
        pg_enum(BillStatus, "bill_status"), nullable=False, default=BillStatus.draft
    )
    source: Mapped[BillSource] = mapped_column(
        pg_enum(BillSource, "bill_source"), nullable=False, default=BillSource.manual
    )
    service_date: Mapped[date] = mapped_column(Date, nullable=False)
    total_cents: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    diagnoses: Mapped[list[dict]] = _diagnoses_column()
    balance_cents: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=text("now()"), default=utcnow, onupdate=utcnow
    )

    __table_args__ = (
        # The dashboard's three access paths (docs/performance.md): per provider, per company, everything.
        Index("ix_bill_provider_created", "provider_id", text("created_at DESC"), text("id DESC")),
        Index("ix_bill_company_created", "company_id", text("created_at DESC"), text("id DESC")),
        # Covering: the `wide` walk filters on provider and company without visiting the table.
        Index("ix_bill_created", text("created_at DESC"), text("id DESC"),
              postgresql_include=["provider_id", "company_id"]),
        Index("ix_bill_patient_created", "patient_id", text("created_at DESC"), text("id DESC")),
        Index("ix_bill_encounter", "encounter_id", postgresql_where=text("encounter_id IS NOT NULL")),
        Index("ix_bill_visit", "visit_id", postgresql_where=text("visit_id IS NOT NULL")),
        Index("ix_bill_payer", "payer_id", postgresql_where=text("payer_id IS NOT NULL")),
        CheckConstraint("total_cents >= 0", name="total_not_negative"),
        CheckConstraint("coverage = 'insured' OR payer_id IS NULL", name="private_bill_has_no_payer"),
        CheckConstraint(_DIAGNOSES_CHECK, name="diagnoses_at_most_12"),
    )


class BillLine(ServiceLineColumns, IdMixin, Base):
    __tablename__ = "bill_line"

    bill_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("bill.id", ondelete="CASCADE"), nullable=False, index=True
    )


class ProviderBillCount(Base):
    """How many bills each provider has in each company, kept exact by triggers on `bill` (migration
    20261124_bill_counts). The dashboard query reads it to choose its access path."""

    __tablename__ = "provider_bill_count"

    provider_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    company_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    bill_count: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)

    __table_args__ = (Index("ix_provider_bill_count_company", "company_id", "bill_count"),)
