"""Multi-company management: billing customer assignments (which child companies a user or a group's
members reach, rule 3) and the payers and facilities each company keeps (copied down from the parent)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, String, func, text
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from billing_api.models.base import Base, CreatedAtMixin, IdMixin, utcnow


class GroupCompanyAssignment(CreatedAtMixin, Base):
    """A child company of the group's company that every member of the group (role) reaches."""

    __tablename__ = "group_company_assignment"

    group_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("user_group.id", ondelete="CASCADE"), primary_key=True
    )
    company_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("company.id", ondelete="CASCADE"), primary_key=True
    )

    # "Who reaches this company" (the inverse of reach) starts from the company.
    __table_args__ = (Index("ix_group_company_assignment_company", "company_id", "group_id"),)


class UserCompanyAssignment(CreatedAtMixin, Base):
    """A child company of the user's home company assigned to the user directly."""

    __tablename__ = "user_company_assignment"

    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("app_user.id", ondelete="CASCADE"), primary_key=True
    )
    company_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("company.id", ondelete="CASCADE"), primary_key=True
    )

    __table_args__ = (Index("ix_user_company_assignment_company", "company_id", "user_id"),)


class _CompanyRecord(IdMixin, CreatedAtMixin):
    """Columns shared by payers and facilities: a named record of one company, maybe a copy of a
    parent-level one."""

    company_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("company.id", ondelete="RESTRICT"), nullable=False
    )
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    address: Mapped[str | None] = mapped_column(String(500))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now(), default=utcnow, onupdate=utcnow
    )


class Payer(_CompanyRecord, Base):
    """An insurer or other payer that a company bills."""

    __tablename__ = "payer"

    payer_code: Mapped[str | None] = mapped_column(String(50))
    # The parent-level payer this one was copied from (copying again is then a no-op).
    copied_from_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("payer.id", ondelete="SET NULL")
    )

    __table_args__ = (
        Index("uq_payer_company_name_lower", "company_id", func.lower(text("name")), unique=True),
        Index("uq_payer_company_copied_from", "company_id", "copied_from_id", unique=True,
              postgresql_where=text("copied_from_id IS NOT NULL")),
        Index("ix_payer_company_created", "company_id", "created_at", "id"),
        Index("ix_payer_copied_from", "copied_from_id", postgresql_where=text("copied_from_id IS NOT NULL")),
    )


class Facility(_CompanyRecord, Base):
    """A place where services are rendered (a station, a clinic, a hospital)."""

    __tablename__ = "facility"

    npi: Mapped[str | None] = mapped_column(String(10))
    copied_from_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("facility.id", ondelete="SET NULL")
    )

    __table_args__ = (
        Index("uq_facility_company_name_lower", "company_id", func.lower(text("name")), unique=True),
        Index("uq_facility_company_copied_from", "company_id", "copied_from_id", unique=True,
              postgresql_where=text("copied_from_id IS NOT NULL")),
        Index("ix_facility_company_created", "company_id", "created_at", "id"),
        Index("ix_facility_copied_from", "copied_from_id", postgresql_where=text("copied_from_id IS NOT NULL")),
    )
