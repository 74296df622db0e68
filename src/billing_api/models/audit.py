from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from billing_api.models.base import Base, CreatedAtMixin, IdMixin


class AuditEvent(IdMixin, CreatedAtMixin, Base):
    """Who did what to whom, when, from where. Never updated, never deleted."""

    __tablename__ = "audit_event"

    company_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("company.id", ondelete="RESTRICT")
    )
    actor_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("app_user.id", ondelete="RESTRICT")
    )
    action: Mapped[str] = mapped_column(String(100), nullable=False)
    target_type: Mapped[str | None] = mapped_column(String(50))
    target_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, default=dict, server_default="{}")
    client_address: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_audit_event_actor_action_created", "actor_id", "action", "created_at"),
        Index("ix_audit_event_company_created", "company_id", "created_at", "id"),
        Index("ix_audit_event_target_created", "target_id", "created_at", "id"),
    )
