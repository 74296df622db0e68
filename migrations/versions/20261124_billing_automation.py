"""billing automation: company and patient settings, cards, billing contacts, documents, runs, AutoPay charges

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24 08:38:49.936225
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _procrastinate_schema() -> None:
    """Procrastinate's own schema (its job queue and periodic defers), applied here rather than with
    apply_schema_async at run time (not idempotent). Multi-statement SQL: through the driver connection."""
    from procrastinate.schema import SchemaManager
    from sqlalchemy.util import await_only

    await_only(op.get_bind().connection.driver_connection.execute(SchemaManager.get_schema()))


DROP_PROCRASTINATE = """
DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename LIKE 'procrastinate%' LOOP
        EXECUTE format('DROP TABLE IF EXISTS %I CASCADE', r.tablename);
    END LOOP;
    FOR r IN SELECT p.oid::regprocedure AS f FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
             WHERE n.nspname = current_schema() AND p.proname LIKE 'procrastinate%' LOOP
        EXECUTE format('DROP FUNCTION IF EXISTS %s CASCADE', r.f);
    END LOOP;
    FOR r IN SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
             WHERE n.nspname = current_schema() AND t.typname LIKE 'procrastinate%' AND t.typtype IN ('e', 'c') LOOP
        EXECUTE format('DROP TYPE IF EXISTS %I CASCADE', r.typname);
    END LOOP;
END $$;
"""


def upgrade() -> None:
    _procrastinate_schema()
    op.create_table('automation_run',
    sa.Column('company_id', sa.UUID(), nullable=False),
    sa.Column('local_date', sa.Date(), nullable=False),
    sa.Column('stage', sa.Enum('bills', 'autopay', 'superbills', name='automation_stage'), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('trigger', sa.String(length=20), nullable=False),
    sa.Column('counts', postgresql.JSONB(astext_type=sa.Text()), server_default='{}', nullable=False),
    sa.Column('errors', postgresql.JSONB(astext_type=sa.Text()), server_default='[]', nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['company_id'], ['company.id'], name=op.f('fk_automation_run_company_id_company'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_automation_run')),
    sa.UniqueConstraint('company_id', 'local_date', 'stage', name=op.f('uq_automation_run_company_id_local_date_stage'))
    )
    op.create_index('ix_automation_run_company_date', 'automation_run', ['company_id', sa.literal_column('local_date DESC'), 'stage'], unique=False)
    op.create_table('company_billing_automation',
    sa.Column('company_id', sa.UUID(), nullable=False),
    sa.Column('bill_creation', sa.Enum('manual', 'daily', 'monthly', name='bill_creation_mode'), nullable=False),
    sa.Column('superbill_day', sa.Integer(), nullable=False),
    sa.Column('share_bills', sa.Boolean(), nullable=False),
    sa.Column('bill_delay_minutes', sa.Integer(), nullable=False),
    sa.Column('share_superbills', sa.Boolean(), nullable=False),
    sa.Column('superbill_delay_minutes', sa.Integer(), nullable=False),
    sa.Column('share_statements', sa.Boolean(), nullable=False),
    sa.Column('statement_delay_minutes', sa.Integer(), nullable=False),
    sa.Column('autopay_enabled', sa.Boolean(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint('bill_delay_minutes >= 0 AND superbill_delay_minutes >= 0 AND statement_delay_minutes >= 0', name=op.f('ck_company_billing_automation_delays_not_negative')),
    sa.CheckConstraint('superbill_day BETWEEN 1 AND 28', name=op.f('ck_company_billing_automation_superbill_day_range')),
    sa.ForeignKeyConstraint(['company_id'], ['company.id'], name=op.f('fk_company_billing_automation_company_id_company'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('company_id', name=op.f('pk_company_billing_automation'))
    )
    op.create_table('billing_contact',
    sa.Column('company_id', sa.UUID(), nullable=False),
    sa.Column('patient_id', sa.UUID(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=True),
    sa.Column('autopay_enabled', sa.Boolean(), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['company_id'], ['company.id'], name=op.f('fk_billing_contact_company_id_company'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['patient_id'], ['patient.id'], name=op.f('fk_billing_contact_patient_id_patient'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_billing_contact')),
    sa.UniqueConstraint('patient_id', name=op.f('uq_billing_contact_patient_id'))
    )
    op.create_table('patient_billing_settings',
    sa.Column('patient_id', sa.UUID(), nullable=False),
    sa.Column('company_id', sa.UUID(), nullable=False),
    sa.Column('superbills_enabled', sa.Boolean(), nullable=False),
    sa.Column('share_bills', sa.Boolean(), nullable=False),
    sa.Column('bill_delay_minutes', sa.Integer(), nullable=False),
    sa.Column('share_superbills', sa.Boolean(), nullable=False),
    sa.Column('superbill_delay_minutes', sa.Integer(), nullable=False),
    sa.Column('share_statements', sa.Boolean(), nullable=False),
    sa.Column('statement_delay_minutes', sa.Integer(), nullable=False),
    sa.Column('autopay_enabled', sa.Boolean(), nullable=False),
    sa.Column('notice_email', sa.String(length=320), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['company_id'], ['company.id'], name=op.f('fk_patient_billing_settings_company_id_company'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['patient_id'], ['patient.id'], name=op.f('fk_patient_billing_settings_patient_id_patient'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('patient_id', name=op.f('pk_patient_billing_settings'))
    )
    op.create_index('ix_patient_billing_settings_company', 'patient_billing_settings', ['company_id', 'patient_id'], unique=False)
    op.create_table('payment_card',
    sa.Column('company_id', sa.UUID(), nullable=False),
    sa.Column('patient_id', sa.UUID(), nullable=False),
    sa.Column('token', sa.String(length=100), nullable=False),
    sa.Column('brand', sa.String(length=30), nullable=False),
    sa.Column('last4', sa.String(length=4), nullable=False),
    sa.Column('exp_month', sa.Integer(), nullable=False),
    sa.Column('exp_year', sa.Integer(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint('exp_month BETWEEN 1 AND 12', name=op.f('ck_payment_card_exp_month_range')),
    sa.ForeignKeyConstraint(['company_id'], ['company.id'], name=op.f('fk_payment_card_company_id_company'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['patient_id'], ['patient.id'], name=op.f('fk_payment_card_patient_id_patient'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payment_card'))
    )
    op.create_index(op.f('ix_payment_card_patient_id'), 'payment_card', ['patient_id'], unique=False)
    op.create_table('automated_encounter',
    sa.Column('encounter_id', sa.UUID(), nullable=False),
    sa.Column('bill_id', sa.UUID(), nullable=False),
    sa.Column('company_id', sa.UUID(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['bill_id'], ['bill.id'], name=op.f('fk_automated_encounter_bill_id_bill'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['company_id'], ['company.id'], name=op.f('fk_automated_encounter_company_id_company'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['encounter_id'], ['encounter.id'], name=op.f('fk_automated_encounter_encounter_id_encounter'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('encounter_id', name=op.f('pk_automated_encounter'))
    )
    op.create_index(op.f('ix_automated_encounter_bill_id'), 'automated_encounter', ['bill_id'], unique=False)
    op.create_table('billing_document',
    sa.Column('company_id', sa.UUID(), nullable=False),
    sa.Column('patient_id', sa.UUID(), nullable=False),
    sa.Column('kind', sa.Enum('bill', 'superbill', 'statement', name='document_kind'), nullable=False),
    sa.Column('bill_id', sa.UUID(), nullable=True),
    sa.Column('period_start', sa.Date(), nullable=True),
    sa.Column('period_end', sa.Date(), nullable=True),
    sa.Column('total_cents', sa.Integer(), nullable=False),
    sa.Column('share_state', sa.Enum('not_shared', 'scheduled', 'shared', name='document_share_state'), nullable=False),
    sa.Column('share_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('shared_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['bill_id'], ['bill.id'], name=op.f('fk_billing_document_bill_id_bill'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['company_id'], ['company.id'], name=op.f('fk_billing_document_company_id_company'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['patient_id'], ['patient.id'], name=op.f('fk_billing_document_patient_id_patient'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_billing_document')),
    sa.UniqueConstraint('bill_id', name=op.f('uq_billing_document_bill_id'))
    )
    op.create_index('ix_billing_document_due', 'billing_document', ['share_at'], unique=False, postgresql_where=sa.text("share_state = 'scheduled'"))
    op.create_index('ix_billing_document_patient_created', 'billing_document', ['patient_id', 'created_at', 'id'], unique=False)
    op.create_index('uq_billing_document_superbill_period', 'billing_document', ['patient_id', 'period_start'], unique=True, postgresql_where=sa.text("kind = 'superbill'"))
    op.create_table('autopay_charge',
    sa.Column('company_id', sa.UUID(), nullable=False),
    sa.Column('bill_id', sa.UUID(), nullable=False),
    sa.Column('card_id', sa.UUID(), nullable=True),
    sa.Column('local_date', sa.Date(), nullable=False),
    sa.Column('amount_cents', sa.Integer(), nullable=False),
    sa.Column('status', sa.Enum('succeeded', 'declined', name='autopay_charge_status'), nullable=False),
    sa.Column('decline_reason', sa.Text(), nullable=True),
    sa.Column('gateway_reference', sa.String(length=100), nullable=True),
    sa.Column('payment_id', sa.UUID(), nullable=True),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['bill_id'], ['bill.id'], name=op.f('fk_autopay_charge_bill_id_bill'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['card_id'], ['payment_card.id'], name=op.f('fk_autopay_charge_card_id_payment_card'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['company_id'], ['company.id'], name=op.f('fk_autopay_charge_company_id_company'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['payment_id'], ['payment.id'], name=op.f('fk_autopay_charge_payment_id_payment'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_autopay_charge')),
    sa.UniqueConstraint('bill_id', 'local_date', name=op.f('uq_autopay_charge_bill_id_local_date'))
    )


def downgrade() -> None:
    op.execute(DROP_PROCRASTINATE)
    op.drop_table('autopay_charge')
    op.drop_index('uq_billing_document_superbill_period', table_name='billing_document', postgresql_where=sa.text("kind = 'superbill'"))
    op.drop_index('ix_billing_document_patient_created', table_name='billing_document')
    op.drop_index('ix_billing_document_due', table_name='billing_document', postgresql_where=sa.text("share_state = 'scheduled'"))
    op.drop_table('billing_document')
    op.drop_index(op.f('ix_automated_encounter_bill_id'), table_name='automated_encounter')
    op.drop_table('automated_encounter')
    op.drop_index(op.f('ix_payment_card_patient_id'), table_name='payment_card')
    op.drop_table('payment_card')
    op.drop_index('ix_patient_billing_settings_company', table_name='patient_billing_settings')
    op.drop_table('patient_billing_settings')
    op.drop_table('billing_contact')
    op.drop_table('company_billing_automation')
    op.drop_index('ix_automation_run_company_date', table_name='automation_run')
    op.drop_table('automation_run')
    for enum_name in ('automation_stage', 'bill_creation_mode', 'document_kind', 'document_share_state',
                      'autopay_charge_status'):
        sa.Enum(name=enum_name).drop(op.get_bind(), checkfirst=True)
