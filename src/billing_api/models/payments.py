"""Payments recorded against bills (invoices). SQL that joins them with bills lives in bills/repository/ledger.py."""

from __future__ import annotations

import enum
import uuid

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from billing_api.models.base import Base, CreatedAtMixin, IdMixin, pg_enum


class PaymentMethod(enum.StrEnum):
    card = "card"
    cash = "cash"
    cheque = "cheque"
    bank_transfer = "bank_transfer"
    insurer = "insurer"
    other = "other"


class Payment(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "payment"

    bill_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("bill.id", ondelete="RESTRICT"), nullable=False
    )
    amount_cents: Mapped[int] = mapped_column(Integer, nullable=False)
    method: Mapped[PaymentMethod] = mapped_column(pg_enum(PaymentMethod, "payment_method"), nullable=False)
    reference: Mapped[str | None] = mapped_column(String(100))
    recorded_by: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("app_user.id", ondelete="SET NULL")
    )

    __table_args__ = (
        CheckConstraint("amount_cents > 0", name="amount_positive"),
        Index("ix_payment_bill_created", "bill_id", "created_at", "id"),
    )
