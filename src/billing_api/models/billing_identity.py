"""What a claim or superbill names besides the bill: the provider's identity numbers and the practice's."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, String, Text, func
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.orm import Mapped, mapped_column

from billing_api.models.base import Base, utcnow


class ProviderBillingIdentity(Base):
    """One provider's numbers. Absent row: nothing set yet. Values are stored as the service normalised them
    (billing_identity/numbers.py): the checks below only keep out what no save can write."""

    __tablename__ = "provider_billing_identity"

    provider_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("app_user.id", ondelete="CASCADE"), primary_key=True
    )
    npi: Mapped[str | None] = mapped_column(String(10))
    province: Mapped[str | None] = mapped_column(String(2))
    provincial_billing_number: Mapped[str | None] = mapped_column(String(9))
    credentials: Mapped[str | None] = mapped_column(String(40))
    taxonomy_code: Mapped[str | None] = mapped_column(String(10))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now(), default=utcnow, onupdate=utcnow
    )
    updated_by: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("app_user.id", ondelete="SET NULL")
    )

    __table_args__ = (
        CheckConstraint("npi ~ '^[0-9]{10}$'", name="npi_ten_digits"),
        CheckConstraint("province IN ('ON', 'AB', 'BC')", name="province_known"),
        # A provincial number means nothing without its province, and the other way round.
        CheckConstraint("(province IS NULL) = (provincial_billing_number IS NULL)", name="number_with_province"),
    )


class CompanyBillingIdentity(Base):
    """One practice's billing name, tax numbers, address, phone and default place of service."""

    __tablename__ = "company_billing_identity"

    company_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("company.id", ondelete="CASCADE"), primary_key=True
    )
    legal_name: Mapped[str | None] = mapped_column(String(200))
    tax_id: Mapped[str | None] = mapped_column(String(10))
    business_number: Mapped[str | None] = mapped_column(String(15))
    address_lines: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False, default=list,
                                                     server_default="{}")
    phone: Mapped[str | None] = mapped_column(String(25))
    place_of_service: Mapped[str | None] = mapped_column(String(2))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now(), default=utcnow, onupdate=utcnow
    )
    updated_by: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("app_user.id", ondelete="SET NULL")
    )

    __table_args__ = (
        CheckConstraint("tax_id ~ '^[0-9]{2}-[0-9]{7}$'", name="tax_id_shape"),
        CheckConstraint("business_number ~ '^[0-9]{9}([A-Z]{2}[0-9]{4})?$'", name="business_number_shape"),
        CheckConstraint("place_of_service ~ '^[0-9]{2}$'", name="place_of_service_two_digits"),
    )
