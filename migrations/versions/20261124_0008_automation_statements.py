"""Billing automation: statement documents

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from alembic import op
import sqlalchemy as sa

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A new value is usable once this transaction commits; nothing here uses it.
    op.execute("ALTER TYPE automation_stage ADD VALUE IF NOT EXISTS 'statements'")
    op.create_index('uq_billing_document_statement_period', 'billing_document', ['patient_id', 'period_start'],
                    unique=True, postgresql_where=sa.text("kind = 'statement'"))
    op.create_table('statement_item',
    sa.Column('document_id', sa.UUID(), nullable=False),
    sa.Column('bill_id', sa.UUID(), nullable=False),
    sa.Column('provider_id', sa.UUID(), nullable=False),
    sa.Column('service_date', sa.Date(), nullable=False),
    sa.Column('total_cents', sa.Integer(), nullable=False),
    sa.Column('balance_cents', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['bill_id'], ['bill.id'], name=op.f('fk_statement_item_bill_id_bill'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['document_id'], ['billing_document.id'],
                            name=op.f('fk_statement_item_document_id_billing_document'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['provider_id'], ['app_user.id'], name=op.f('fk_statement_item_provider_id_app_user'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('document_id', 'bill_id', name=op.f('pk_statement_item'))
    )
    op.create_index(op.f('ix_statement_item_bill_id'), 'statement_item', ['bill_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_statement_item_bill_id'), table_name='statement_item')
    op.drop_table('statement_item')
    op.execute("DELETE FROM billing_document WHERE kind = 'statement'")
    op.drop_index('uq_billing_document_statement_period', table_name='billing_document',
                  postgresql_where=sa.text("kind = 'statement'"))
    # PostgreSQL cannot drop an enum value: rebuild the type without it.
    op.execute("DELETE FROM automation_run WHERE stage::text = 'statements'")
    op.execute("ALTER TYPE automation_stage RENAME TO automation_stage_old")
    op.execute("CREATE TYPE automation_stage AS ENUM ('bills', 'autopay', 'superbills')")
    op.execute("ALTER TABLE automation_run ALTER COLUMN stage TYPE automation_stage "
                "USING stage::text::automation_stage")
    op.execute("DROP TYPE automation_stage_old")
