"""Access reviews: how each grant to a provider's bills is used (rolled up from the access log), attestations,
and the reminders sent for overdue reviews."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import BigInteger, Date, DateTime, ForeignKey, Index, Integer, SmallInteger, String
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from billing_api.models.base import Base, CreatedAtMixin, IdMixin

# A grant's `via_id` when the rule names nothing more than the person (own bills, a list entry naming the user,
# support): a key column cannot be NULL.
NO_VIA = uuid.UUID(int=0)


class AccessUsageRollup(Base):
    """How far each access-log chain has been rolled up: rows with a higher chain_seq are not counted yet.
    A chain's rows are committed in chain_seq order (its lock is held to commit), so nothing ever appears below
    the mark."""

    __tablename__ = "access_usage_rollup"

    chain_id: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger, nullable=False)


class _GrantKey:
    provider_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    # The access log's rule (own_bills, delegation_user, delegation_group, company_wide, company_admin, support)
    # and what it went through: the group, or the company of a company-wide grant, else NO_VIA.
    rule: Mapped[str] = mapped_column(String(32), primary_key=True)
    via_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)


class AccessGrantUse(_GrantKey, Base):
    """The first and last read through one grant (no foreign keys: the log outlives users and groups)."""

    __tablename__ = "access_grant_use"

    first_read_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    last_read_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class AccessGrantUseDay(_GrantKey, Base):
    """Reads through one grant on one UTC day, kept for the review's 90-day counts only."""

    __tablename__ = "access_grant_use_day"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    reads: Mapped[int] = mapped_column(Integer, nullable=False)


class AccessReviewAttestation(IdMixin, CreatedAtMixin, Base):
    """A provider's access confirmed as reviewed, by the provider or a list manager, over one list version."""

    __tablename__ = "access_review_attestation"

    provider_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("app_user.id", ondelete="CASCADE"), nullable=False
    )
    company_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("company.id", ondelete="RESTRICT"), nullable=False
    )
    attested_by: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("app_user.id", ondelete="RESTRICT"), nullable=False
    )
    list_version: Mapped[int] = mapped_column(Integer, nullable=False)
    people: Mapped[int] = mapped_column(Integer, nullable=False)
    dormant_grants: Mapped[int] = mapped_column(Integer, nullable=False)

    __table_args__ = (Index("ix_access_review_attestation_provider", "provider_id", "created_at"),)


class AccessReviewReminder(Base):
    """One overdue-review email per provider and interval: the key is the moment the review fell due and how many
    intervals have passed since, so the worker queues each reminder once whatever the number of workers."""

    __tablename__ = "access_review_reminder"

    provider_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("app_user.id", ondelete="CASCADE"), primary_key=True
    )
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    period: Mapped[int] = mapped_column(Integer, primary_key=True)
    sent_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
