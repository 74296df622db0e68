"""Idempotency keys and the integrators' events feed

`idempotency_key`: one caller's key of one write and the answer it got. `integration_event`: the durable
feed; `transaction_id` (the writing transaction's id) orders it so that a poller never skips an event
committed late (events/repository.py).

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "idempotency_key",
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("media_type", sa.String(length=100), nullable=True),
        sa.Column("response_body", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["app_user.id"], name=op.f("fk_idempotency_key_user_id_app_user"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", "key", name=op.f("pk_idempotency_key")),
    )
    op.create_index("ix_idempotency_key_expires_at", "idempotency_key", ["expires_at"], unique=False)
    op.create_table(
        "integration_event",
        sa.Column("position", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("transaction_id", sa.BigInteger(),
                  server_default=sa.text("((pg_current_xact_id())::text)::bigint"), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("company_id", sa.UUID(), nullable=False),
        sa.Column("provider_id", sa.UUID(), nullable=True),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.ForeignKeyConstraint(["company_id"], ["company.id"], name=op.f("fk_integration_event_company_id_company"),
                                ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["provider_id"], ["app_user.id"],
                                name=op.f("fk_integration_event_provider_id_app_user"), ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_integration_event")),
    )
    op.create_index("ix_integration_event_feed", "integration_event", ["transaction_id", "position"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_integration_event_feed", table_name="integration_event")
    op.drop_table("integration_event")
    op.drop_index("ix_idempotency_key_expires_at", table_name="idempotency_key")
    op.drop_table("idempotency_key")
