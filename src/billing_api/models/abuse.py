"""Abuse limits: failed sign-in and password-confirmation attempts, counted per account and per client address."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from billing_api.models.base import Base


class FailureCounter(Base):
    """Failures of one account (`scope` account: a user id, or `login:<name>` for a login no account has, so an
    unknown name locks exactly like a real one) or of one client address (`scope` address), in a window that
    starts at the first failure. Reaching the limit sets `locked_until` to the window's end."""

    __tablename__ = "failure_counter"

    scope: Mapped[str] = mapped_column(String(16), primary_key=True)
    key: Mapped[str] = mapped_column(String(400), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, nullable=False)
    window_started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint("scope IN ('account', 'address')", name="scope"),
        CheckConstraint("failures >= 0", name="failures_not_negative"),
    )
