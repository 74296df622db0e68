from __future__ import annotations

import uuid
from typing import Any, Protocol

from sqlalchemy import (
    BigInteger,
    FetchedValue,
    ForeignKey,
    Index,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from billing_api.models.base import Base, CreatedAtMixin, IdMixin


class ChainMixin:
    """A link of a hash chain (migration 0010): the database's insert trigger sets all four under the chain's
    transaction-scoped lock, and refuses UPDATE, DELETE and TRUNCATE. `row_hash` = sha256(prev_hash hex ||
    the row's content as JSON), so an altered or removed row breaks every later link of its chain."""

    chain_id: Mapped[int] = mapped_column(SmallInteger, nullable=False, server_default=FetchedValue())
    chain_seq: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default=FetchedValue())
    prev_hash: Mapped[bytes | None] = mapped_column(LargeBinary, server_default=FetchedValue())
    row_hash: Mapped[bytes] = mapped_column(LargeBinary, nullable=False, server_default=FetchedValue())


class ChainHeadRow(Base):
    """The last link of each chain of a chained table, kept by the insert trigger under the chain's lock (migration
    access_log_partitions): the next link's place without a search of a partitioned table."""

    __tablename__ = "chain_head"

    table_name: Mapped[str] = mapped_column(Text, primary_key=True)
    chain_id: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger, nullable=False)
    last_hash: Mapped[bytes | None] = mapped_column(LargeBinary)


class AuditEvent(IdMixin, CreatedAtMixin, ChainMixin, Base):
    """Who did what to whom, when, from where. Never updated, never deleted (the database refuses both)."""

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
        UniqueConstraint("chain_id", "chain_seq"),
        Index("ix_audit_event_actor_action_created", "actor_id", "action", "created_at"),
        Index("ix_audit_event_company_created", "company_id", "created_at", "id"),
        Index("ix_audit_event_target_created", "target_id", "created_at", "id"),
    )


class Caller(Protocol):
    """Who acted, as an event names them (an `auth.principal.Principal`)."""

    @property
    def id(self) -> uuid.UUID: ...

    @property
    def company_id(self) -> uuid.UUID: ...

    @property
    def address(self) -> str | None: ...


# Built here, beside its row, not in the audit package: auth builds the events of its refusals, and a low-level
# package imports no feature package.
def build_event(
    principal: Caller | None,
    action: str,
    *,
    company_id: uuid.UUID | None = None,
    target_type: str | None = None,
    target_id: uuid.UUID | None = None,
    details: dict[str, Any] | None = None,
    address: str | None = None,
) -> AuditEvent:
    return AuditEvent(
        id=uuid.uuid4(),
        company_id=company_id if company_id is not None else (principal.company_id if principal else None),
        actor_id=principal.id if principal else None,
        action=action,
        target_type=target_type,
        target_id=target_id,
        details=details or {},
        client_address=address if address is not None else (principal.address if principal else None),
    )
