"""Companies, users and groups."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.orm import Mapped, mapped_column

from billing_api.models.base import Base, CreatedAtMixin, IdMixin, pg_enum, utcnow


class UserStatus(enum.StrEnum):
    active = "active"
    deactivated = "deactivated"


class AccountType(enum.StrEnum):
    standard = "standard"
    company_admin = "company_admin"
    support = "support"


class UserKind(enum.StrEnum):
    member = "member"
    invited = "invited"


class Company(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "company"

    name: Mapped[str] = mapped_column(String(200), nullable=False)
    parent_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("company.id", ondelete="RESTRICT"), index=True
    )
    time_zone: Mapped[str] = mapped_column(String(64), nullable=False, server_default="UTC", default="UTC")
    billing_segregation_enabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    billing_segregation_enabled_by: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("app_user.id", ondelete="SET NULL", use_alter=True)
    )
    # The code systems the company's people bill in (values of ServiceCodeSystem / DiagnosisCodeSystem). Null:
    # never set, and every system is accepted, with the five characters lines took before code systems.
    service_code_systems: Mapped[list[str] | None] = mapped_column(ARRAY(String(10)))
    diagnosis_code_systems: Mapped[list[str] | None] = mapped_column(ARRAY(String(10)))
    # Access reviews: a grant unused for longer than `access_review_dormant_days` is dormant; a provider whose
    # access was last attested longer than `access_review_interval_days` ago (or never) is overdue.
    access_review_dormant_days: Mapped[int] = mapped_column(Integer, nullable=False, default=90, server_default="90")
    access_review_interval_days: Mapped[int] = mapped_column(Integer, nullable=False, default=90,
                                                             server_default="90")

    __table_args__ = (
        CheckConstraint("parent_id IS NULL OR parent_id <> id", name="not_own_parent"),
        CheckConstraint("service_code_systems <@ ARRAY['cpt', 'hcpcs', 'ohip', 'ahcip', 'msp']::varchar[]",
                        name="service_code_systems_known"),
        CheckConstraint("diagnosis_code_systems <@ ARRAY['icd10cm', 'ohip_dx']::varchar[]",
                        name="diagnosis_code_systems_known"),
        CheckConstraint("access_review_dormant_days BETWEEN 7 AND 730", name="access_review_dormant_days_range"),
        CheckConstraint("access_review_interval_days BETWEEN 7 AND 366", name="access_review_interval_days_range"),
    )

    @property
    def billing_segregation_enabled(self) -> bool:
        return self.billing_segregation_enabled_at is not None


class User(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "app_user"

    company_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("company.id", ondelete="RESTRICT"), nullable=False
    )
    email: Mapped[str] = mapped_column(String(320), nullable=False)
    username: Mapped[str] = mapped_column(String(64), nullable=False)
    display_name: Mapped[str] = mapped_column(String(200), nullable=False)
    password_hash: Mapped[str | None] = mapped_column(Text)
    status: Mapped[UserStatus] = mapped_column(
        pg_enum(UserStatus, "user_status"), nullable=False, default=UserStatus.active
    )
    account_type: Mapped[AccountType] = mapped_column(
        pg_enum(AccountType, "account_type"), nullable=False, default=AccountType.standard
    )
    kind: Mapped[UserKind] = mapped_column(pg_enum(UserKind, "user_kind"), nullable=False, default=UserKind.member)
    is_provider: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    billing_number: Mapped[str | None] = mapped_column(String(32))
    # Direct permissions (admin ones such as users:edit_others, and role permissions).
    permissions: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False, default=list, server_default="{}")
    # Bumped on deactivation and password change: tokens carrying an older version stop working.
    token_version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now(), default=utcnow, onupdate=utcnow
    )
    deactivated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        # Case-insensitive uniqueness: "Ann@x.org" and "ann@x.org" are one person.
        Index("uq_app_user_email_lower", func.lower(email), unique=True),
        Index("uq_app_user_username_lower", func.lower(username), unique=True),
        Index("ix_app_user_company_created", "company_id", "created_at", "id"),
        CheckConstraint("NOT is_provider OR billing_number IS NOT NULL", name="provider_has_billing_number"),
    )


class Group(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "user_group"

    company_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("company.id", ondelete="RESTRICT"), nullable=False
    )
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    # The group's role: permissions every active member inherits.
    permissions: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False, default=list, server_default="{}")

    __table_args__ = (
        Index("uq_user_group_company_name_lower", "company_id", func.lower(name), unique=True),
    )


class GroupMember(Base):
    __tablename__ = "group_member"

    group_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("user_group.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("app_user.id", ondelete="CASCADE"), primary_key=True
    )

    # "Which groups is this user in" is asked on every authorization decision.
    __table_args__ = (Index("ix_group_member_user", "user_id", "group_id"),)
