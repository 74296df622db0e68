"""Invitations: how people from outside a provider's practice join the provider's team (delegation list)."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, Integer, String, Text, func, text
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.orm import Mapped, mapped_column

from billing_api.models.base import Base, CreatedAtMixin, IdMixin, pg_enum


class InvitationStatus(enum.StrEnum):
    """`expired` is not stored: a pending invitation past `expires_at` reads as expired."""

    pending = "pending"
    accepted = "accepted"
    cancelled = "cancelled"


class DeliveryStatus(enum.StrEnum):
    queued = "queued"
    sent = "sent"
    failed = "failed"


class Invitation(IdMixin, CreatedAtMixin, Base):
    """One provider inviting one email address to work their billing with a role (or custom permissions).
    The token is never stored: only its SHA-256 (`token_hash`), replaced on every resend."""

    __tablename__ = "invitation"

    provider_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("app_user.id", ondelete="CASCADE"), nullable=False
    )
    # The provider's company when invited: audit and where a brand-new account is created.
    company_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("company.id", ondelete="RESTRICT"), nullable=False
    )
    invited_by: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("app_user.id", ondelete="SET NULL")
    )
    email: Mapped[str] = mapped_column(String(320), nullable=False)
    # The username of the account to create; unused when the email already has an account.
    username: Mapped[str | None] = mapped_column(String(64))
    display_name: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(32), nullable=False)
    permissions: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False)
    status: Mapped[InvitationStatus] = mapped_column(
        pg_enum(InvitationStatus, "invitation_status"), nullable=False, default=InvitationStatus.pending
    )
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    accepted_user_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("app_user.id", ondelete="SET NULL")
    )
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancelled_by: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("app_user.id", ondelete="SET NULL")
    )
    # The email's delivery, as the sender last recorded it (mail/sender.py).
    delivery_status: Mapped[DeliveryStatus] = mapped_column(
        pg_enum(DeliveryStatus, "mail_delivery_status"), nullable=False, default=DeliveryStatus.queued
    )
    delivery_attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    delivery_last_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    delivery_error: Mapped[str | None] = mapped_column(Text)
    delivery_sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint("cardinality(permissions) > 0", name="has_permissions"),
        Index("uq_invitation_token_hash", "token_hash", unique=True),
        # One open invitation per provider and address: a second one is a resend.
        Index("uq_invitation_pending_provider_email", "provider_id", func.lower(email), unique=True,
              postgresql_where=text("status = 'pending'")),
        Index("ix_invitation_provider_created", "provider_id", "created_at", "id"),
        # "Is this username promised to someone by a pending invitation?"
        Index("ix_invitation_pending_username", func.lower(username),
              postgresql_where=text("status = 'pending' AND username IS NOT NULL")),
    )
