"""What integrators rely on: idempotency keys of retried writes, and the durable events feed."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, ForeignKey, Identity, Index, Integer, String, Text, text
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from billing_api.models.base import Base, CreatedAtMixin, IdMixin, utcnow

# The writing transaction's id as a number: the feed orders events by it (see events/repository.py).
CURRENT_TRANSACTION = text("((pg_current_xact_id())::text)::bigint")


class IdempotencyKey(CreatedAtMixin, Base):
    """One caller's key of one write and the answer it got. Written in the transaction of the write, so a
    failed request leaves no key behind."""

    __tablename__ = "idempotency_key"

    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("app_user.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    # sha256 of method, path, query and the canonical JSON body: the same key with another request is refused.
    request_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    status_code: Mapped[int] = mapped_column(Integer, nullable=False)
    media_type: Mapped[str | None] = mapped_column(String(100))
    response_body: Mapped[str] = mapped_column(Text, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)

    __table_args__ = (Index("ix_idempotency_key_expires_at", "expires_at"),)


class IntegrationEvent(IdMixin, Base):
    """Something that happened, for integrators polling `GET /v1/events`. Written in the transaction of the
    change; never updated, never deleted."""

    __tablename__ = "integration_event"

    position: Mapped[int] = mapped_column(BigInteger, Identity(), nullable=False)
    transaction_id: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default=CURRENT_TRANSACTION)
    type: Mapped[str] = mapped_column(String(64), nullable=False)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    company_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("company.id", ondelete="RESTRICT"), nullable=False
    )
    # Set on events about a provider's bills: they are seen by whoever may view that provider's bills in
    # `company_id` (the bill scope). Null on company-level events, seen by the company's administrators.
    provider_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("app_user.id", ondelete="RESTRICT")
    )
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)

    __table_args__ = (Index("ix_integration_event_feed", "transaction_id", "position"),)
