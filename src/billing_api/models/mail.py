"""The transactional outbox: email written in the same transaction as what it announces, sent later."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from billing_api.models.base import Base, CreatedAtMixin, IdMixin, pg_enum


class OutboxStatus(enum.StrEnum):
    queued = "queued"        # waiting for its (next) attempt at `next_attempt_at`
    sent = "sent"
    failed = "failed"        # refused for good, or out of attempts
    cancelled = "cancelled"  # superseded (a resend) or withdrawn (a cancelled invitation) before it went


class OutboxMessage(IdMixin, CreatedAtMixin, Base):
    """One email to send. The bodies are rendered at send time from `template` and `context`;
    a secret the message carries (an invitation token) is never stored: `secret_nonce` lets the sender
    derive it with the server's key, and is erased once the message is sent or given up."""

    __tablename__ = "mail_outbox"

    template: Mapped[str] = mapped_column(String(50), nullable=False)
    to_address: Mapped[str] = mapped_column(String(320), nullable=False)
    context: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, default=dict, server_default="{}")
    secret_nonce: Mapped[str | None] = mapped_column(String(100))
    invitation_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("invitation.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[OutboxStatus] = mapped_column(
        pg_enum(OutboxStatus, "mail_outbox_status"), nullable=False, default=OutboxStatus.queued
    )
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False,
                                                      server_default=func.now())
    last_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        # The sender's queue: only queued rows, in the order they fall due.
        Index("ix_mail_outbox_due", "next_attempt_at", postgresql_where=text("status = 'queued'")),
    )
