"""Abuse limits: sign-in failure counters

Failed logins and password confirmations, counted per account and per client address (models/abuse.py).

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "failure_counter",
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=400), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("scope IN ('account', 'address')", name=op.f("ck_failure_counter_scope")),
        sa.CheckConstraint("failures >= 0", name=op.f("ck_failure_counter_failures_not_negative")),
        sa.PrimaryKeyConstraint("scope", "key", name=op.f("pk_failure_counter")),
    )


def downgrade() -> None:
    op.drop_table("failure_counter")
