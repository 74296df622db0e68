from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, func
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from billing_api.models.audit import ChainMixin
from billing_api.models.base import Base, IdMixin, utcnow


# The partitions of `access_log` (one per month, and the default): the database's, made by access_log_partition().
PARTITION_NAME = re.compile(r"access_log_(y\d{4}m\d{2}|default)")


def is_partition(name: str | None) -> bool:
    return name is not None and PARTITION_NAME.fullmatch(name) is not None


class AccessLogEntry(IdMixin, ChainMixin, Base):
    """One read of billing data (PHIPA s.10.1, HIPAA 164.312(b)): who read, on whose behalf (`grants`: for each
    provider and company shown, every rule or list entry that granted it), which providers and patients, when,
    from where, through which route. One row per request, written in the read's own transaction. Append-only
    and hash-chained like the audit events. Partitioned by month of `created_at` (UTC; migration
    access_log_partitions), hence the key (id, created_at) and a chain index that cannot be unique."""

    __tablename__ = "access_log"

    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), primary_key=True, server_default=func.now(), default=utcnow
    )

    actor_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("app_user.id", ondelete="RESTRICT"), nullable=False
    )
    route: Mapped[str] = mapped_column(String(200), nullable=False)
    surface: Mapped[str] = mapped_column(String(50), nullable=False)
    permission: Mapped[str] = mapped_column(String(50), nullable=False)
    provider_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(UUID(as_uuid=True)), nullable=False)
    patient_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(UUID(as_uuid=True)), nullable=False)
    grants: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, nullable=False)
    record_count: Mapped[int] = mapped_column(Integer, nullable=False)
    client_address: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))

    __table_args__ = (
        Index("ix_access_log_chain", "chain_id", "chain_seq"),
        # "Who saw this patient's billing data": entries whose patient array holds the patient.
        Index("ix_access_log_patient_ids", "patient_ids", postgresql_using="gin"),
        Index("ix_access_log_actor_created", "actor_id", "created_at", "id"),
    )
