"""Access reviews: usage of each grant rolled up from the access log, attestations, reminders, and each company's
dormancy threshold and review interval (90 days each by default)

Revision ID: access_reviews
Revises: codes
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "access_reviews"
down_revision: str | None = "codes"
branch_labels = None
depends_on = None

SETTINGS = {"access_review_dormant_days": (7, 730), "access_review_interval_days": (7, 366)}


def _grant_key() -> list[sa.Column]:
    return [sa.Column("provider_id", sa.UUID(), nullable=False), sa.Column("user_id", sa.UUID(), nullable=False),
            sa.Column("rule", sa.String(length=32), nullable=False), sa.Column("via_id", sa.UUID(), nullable=False)]


def upgrade() -> None:
    for column, (low, high) in SETTINGS.items():
        op.add_column("company", sa.Column(column, sa.Integer(), server_default="90", nullable=False))
        op.create_check_constraint(op.f(f"ck_company_{column}_range"), "company", f"{column} BETWEEN {low} AND {high}")
    op.create_table(
        "access_usage_rollup",
        sa.Column("chain_id", sa.SmallInteger(), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("chain_id", name=op.f("pk_access_usage_rollup")),
    )
    op.create_table(
        "access_grant_use",
        *_grant_key(),
        sa.Column("first_read_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_read_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("provider_id", "user_id", "rule", "via_id", name=op.f("pk_access_grant_use")),
    )
    op.create_table(
        "access_grant_use_day",
        *_grant_key(),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("reads", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("provider_id", "user_id", "rule", "via_id", "day",
                                name=op.f("pk_access_grant_use_day")),
    )
    op.create_table(
        "access_review_attestation",
        sa.Column("provider_id", sa.UUID(), nullable=False),
        sa.Column("company_id", sa.UUID(), nullable=False),
        sa.Column("attested_by", sa.UUID(), nullable=False),
        sa.Column("list_version", sa.Integer(), nullable=False),
        sa.Column("people", sa.Integer(), nullable=False),
        sa.Column("dormant_grants", sa.Integer(), nullable=False),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["attested_by"], ["app_user.id"],
                                name=op.f("fk_access_review_attestation_attested_by_app_user"), ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["company_id"], ["company.id"],
                                name=op.f("fk_access_review_attestation_company_id_company"), ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["provider_id"], ["app_user.id"],
                                name=op.f("fk_access_review_attestation_provider_id_app_user"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_review_attestation")),
    )
    op.create_index("ix_access_review_attestation_provider", "access_review_attestation",
                    ["provider_id", "created_at"], unique=False)
    op.create_table(
        "access_review_reminder",
        sa.Column("provider_id", sa.UUID(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("period", sa.Integer(), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["provider_id"], ["app_user.id"],
                                name=op.f("fk_access_review_reminder_provider_id_app_user"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("provider_id", "due_at", "period", name=op.f("pk_access_review_reminder")),
    )


def downgrade() -> None:
    op.drop_table("access_review_reminder")
    op.drop_index("ix_access_review_attestation_provider", table_name="access_review_attestation")
    op.drop_table("access_review_attestation")
    op.drop_table("access_grant_use_day")
    op.drop_table("access_grant_use")
    op.drop_table("access_usage_rollup")
    for column in SETTINGS:
        op.drop_constraint(op.f(f"ck_company_{column}_range"), "company", type_="check")
        op.drop_column("company", column)
