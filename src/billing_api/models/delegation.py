"""Per-provider delegation lists: who may work this provider's billing, and with which permissions."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.orm import Mapped, mapped_column

from billing_api.models.base import Base, CreatedAtMixin, IdMixin, utcnow


class DelegationList(Base):
    """One row per provider whose list was ever saved: carries the version for optimistic concurrency."""

    __tablename__ = "delegation_list"

    provider_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("app_user.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    updated_by: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("app_user.id", ondelete="SET NULL")
    )


class DelegationEntry(IdMixin, CreatedAtMixin, Base):
    """A user or a group on a provider's list, with the permissions it grants."""

    __tablename__ = "delegation_entry"

    provider_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("app_user.id", ondelete="CASCADE"), nullable=False
    )
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("app_user.id", ondelete="CASCADE")
    )
    group_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("user_group.id", ondelete="CASCADE")
    )
    role: Mapped[str] = mapped_column(String(32), nullable=False)
    permissions: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # How the entry came to be: saved on the list (`list`) or an accepted invitation (`invitation`, which
    # may name someone from outside the provider's company).
    source: Mapped[str] = mapped_column(String(16), nullable=False, default="list", server_default="list")
    invitation_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("invitation.id", ondelete="SET NULL")
    )

    __table_args__ = (
        CheckConstraint("(user_id IS NULL) <> (group_id IS NULL)", name="user_xor_group"),
        CheckConstraint("source IN ('list', 'invitation')", name="known_source"),
        CheckConstraint("source = 'list' OR user_id IS NOT NULL", name="invitation_names_a_user"),
        CheckConstraint("cardinality(permissions) > 0", name="has_permissions"),
        Index("uq_delegation_entry_provider_user", "provider_id", "user_id", unique=True,
              postgresql_where=text("user_id IS NOT NULL")),
        Index("uq_delegation_entry_provider_group", "provider_id", "group_id", unique=True,
              postgresql_where=text("group_id IS NOT NULL")),
        # "Entries naming this user (or group)": covering, so scope computation never touches the table.
        Index("ix_delegation_entry_user", "user_id", postgresql_include=["provider_id", "permissions", "expires_at"],
              postgresql_where=text("user_id IS NOT NULL")),
        Index("ix_delegation_entry_group", "group_id",
              postgresql_include=["provider_id", "permissions", "expires_at"],
              postgresql_where=text("group_id IS NOT NULL")),
    )
