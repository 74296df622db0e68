"""billing records and delegation

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 07:21:42.501349
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('patient',
    sa.Column('company_id', sa.UUID(), nullable=False),
    sa.Column('first_name', sa.String(length=100), nullable=False),
    sa.Column('last_name', sa.String(length=100), nullable=False),
    sa.Column('date_of_birth', sa.Date(), nullable=True),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['company_id'], ['company.id'], name=op.f('fk_patient_company_id_company'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_patient'))
    )
    op.create_index('ix_patient_company_created', 'patient', ['company_id', 'created_at', 'id'], unique=False)
    op.create_table('delegation_entry',
    sa.Column('provider_id', sa.UUID(), nullable=False),
    sa.Column('user_id', sa.UUID(), nullable=True),
    sa.Column('group_id', sa.UUID(), nullable=True),
    sa.Column('role', sa.String(length=32), nullable=False),
    sa.Column('permissions', postgresql.ARRAY(sa.Text()), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint('(user_id IS NULL) <> (group_id IS NULL)', name=op.f('ck_delegation_entry_user_xor_group')),
    sa.CheckConstraint('cardinality(permissions) > 0', name=op.f('ck_delegation_entry_has_permissions')),
    sa.ForeignKeyConstraint(['group_id'], ['user_group.id'], name=op.f('fk_delegation_entry_group_id_user_group'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['provider_id'], ['app_user.id'], name=op.f('fk_delegation_entry_provider_id_app_user'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['app_user.id'], name=op.f('fk_delegation_entry_user_id_app_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_delegation_entry'))
    )
    op.create_index('ix_delegation_entry_group', 'delegation_entry', ['group_id'], unique=False, postgresql_include=['provider_id', 'permissions', 'expires_at'], postgresql_where=sa.text('group_id IS NOT NULL'))
    op.create_index('ix_delegation_entry_user', 'delegation_entry', ['user_id'], unique=False, postgresql_include=['provider_id', 'permissions', 'expires_at'], postgresql_where=sa.text('user_id IS NOT NULL'))
    op.create_index('uq_delegation_entry_provider_group', 'delegation_entry', ['provider_id', 'group_id'], unique=True, postgresql_where=sa.text('group_id IS NOT NULL'))
    op.create_index('uq_delegation_entry_provider_user', 'delegation_entry', ['provider_id', 'user_id'], unique=True, postgresql_where=sa.text('user_id IS NOT NULL'))
    op.create_table('delegation_list',
    sa.Column('provider_id', sa.UUID(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.UUID(), nullable=True),
    sa.ForeignKeyConstraint(['provider_id'], ['app_user.id'], name=op.f('fk_delegation_list_provider_id_app_user'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['updated_by'], ['app_user.id'], name=op.f('fk_delegation_list_updated_by_app_user'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('provider_id', name=op.f('pk_delegation_list'))
    )
    op.create_table('visit',
    sa.Column('company_id', sa.UUID(), nullable=False),
    sa.Column('patient_id', sa.UUID(), nullable=False),
    sa.Column('provider_id', sa.UUID(), nullable=False),
    sa.Column('scheduled_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['company_id'], ['company.id'], name=op.f('fk_visit_company_id_company'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['patient_id'], ['patient.id'], name=op.f('fk_visit_patient_id_patient'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['provider_id'], ['app_user.id'], name=op.f('fk_visit_provider_id_app_user'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_visit'))
    )
    op.create_index('ix_visit_company_scheduled', 'visit', ['company_id', 'scheduled_at', 'id'], unique=False)
    op.create_index(op.f('ix_visit_patient_id'), 'visit', ['patient_id'], unique=False)
    op.create_table('encounter',
    sa.Column('company_id', sa.UUID(), nullable=False),
    sa.Column('patient_id', sa.UUID(), nullable=False),
    sa.Column('provider_id', sa.UUID(), nullable=False),
    sa.Column('visit_id', sa.UUID(), nullable=True),
    sa.Column('service_date', sa.Date(), nullable=False),
    sa.Column('imported', sa.Boolean(), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['company_id'], ['company.id'], name=op.f('fk_encounter_company_id_company'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['patient_id'], ['patient.id'], name=op.f('fk_encounter_patient_id_patient'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['provider_id'], ['app_user.id'], name=op.f('fk_encounter_provider_id_app_user'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['visit_id'], ['visit.id'], name=op.f('fk_encounter_visit_id_visit'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_encounter'))
    )
    op.create_index(op.f('ix_encounter_patient_id'), 'encounter', ['patient_id'], unique=False)
    op.create_index(op.f('ix_encounter_provider_id'), 'encounter', ['provider_id'], unique=False)
    op.create_index(op.f('ix_encounter_visit_id'), 'encounter', ['visit_id'], unique=False)
    op.create_table('bill',
    sa.Column('company_id', sa.UUID(), nullable=False),
    sa.Column('provider_id', sa.UUID(), nullable=False),
    sa.Column('patient_id', sa.UUID(), nullable=False),
    sa.Column('encounter_id', sa.UUID(), nullable=True),
    sa.Column('visit_id', sa.UUID(), nullable=True),
    sa.Column('coverage', sa.Enum('insured', 'private', name='bill_coverage'), nullable=False),
    sa.Column('status', sa.Enum('draft', 'submitted', 'paid', 'void', name='bill_status'), nullable=False),
    sa.Column('source', sa.Enum('manual', 'automation', name='bill_source'), nullable=False),
    sa.Column('service_date', sa.Date(), nullable=False),
    sa.Column('total_cents', sa.Integer(), nullable=False),
    sa.Column('balance_cents', sa.Integer(), nullable=False),
    sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint('total_cents >= 0', name=op.f('ck_bill_total_not_negative')),
    sa.ForeignKeyConstraint(['company_id'], ['company.id'], name=op.f('fk_bill_company_id_company'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['encounter_id'], ['encounter.id'], name=op.f('fk_bill_encounter_id_encounter'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['patient_id'], ['patient.id'], name=op.f('fk_bill_patient_id_patient'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['provider_id'], ['app_user.id'], name=op.f('fk_bill_provider_id_app_user'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['visit_id'], ['visit.id'], name=op.f('fk_bill_visit_id_visit'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bill'))
    )
    op.create_index('ix_bill_company_created', 'bill', ['company_id', sa.literal_column('created_at DESC'), sa.literal_column('id DESC')], unique=False)
    op.create_index('ix_bill_created', 'bill', [sa.literal_column('created_at DESC'), sa.literal_column('id DESC')], unique=False)
    op.create_index('ix_bill_encounter', 'bill', ['encounter_id'], unique=False, postgresql_where=sa.text('encounter_id IS NOT NULL'))
    op.create_index('ix_bill_patient_created', 'bill', ['patient_id', sa.literal_column('created_at DESC'), sa.literal_column('id DESC')], unique=False)
    op.create_index('ix_bill_provider_created', 'bill', ['provider_id', sa.literal_column('created_at DESC'), sa.literal_column('id DESC')], unique=False)
    op.create_index('ix_bill_visit', 'bill', ['visit_id'], unique=False, postgresql_where=sa.text('visit_id IS NOT NULL'))
    op.create_table('encounter_line',
    sa.Column('encounter_id', sa.UUID(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('cpt_code', sa.String(length=10), nullable=True),
    sa.Column('description', sa.String(length=200), nullable=False),
    sa.Column('units', sa.Integer(), nullable=False),
    sa.Column('fee_cents', sa.Integer(), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.CheckConstraint('fee_cents >= 0', name=op.f('ck_encounter_line_fee_not_negative')),
    sa.CheckConstraint('units > 0', name=op.f('ck_encounter_line_units_positive')),
    sa.ForeignKeyConstraint(['encounter_id'], ['encounter.id'], name=op.f('fk_encounter_line_encounter_id_encounter'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_encounter_line'))
    )
    op.create_index(op.f('ix_encounter_line_encounter_id'), 'encounter_line', ['encounter_id'], unique=False)
    op.create_table('bill_line',
    sa.Column('bill_id', sa.UUID(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('cpt_code', sa.String(length=10), nullable=True),
    sa.Column('description', sa.String(length=200), nullable=False),
    sa.Column('units', sa.Integer(), nullable=False),
    sa.Column('fee_cents', sa.Integer(), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.CheckConstraint('fee_cents >= 0', name=op.f('ck_bill_line_fee_not_negative')),
    sa.CheckConstraint('units > 0', name=op.f('ck_bill_line_units_positive')),
    sa.ForeignKeyConstraint(['bill_id'], ['bill.id'], name=op.f('fk_bill_line_bill_id_bill'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bill_line'))
    )
    op.create_index(op.f('ix_bill_line_bill_id'), 'bill_line', ['bill_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_bill_line_bill_id'), table_name='bill_line')
    op.drop_table('bill_line')
    op.drop_index(op.f('ix_encounter_line_encounter_id'), table_name='encounter_line')
    op.drop_table('encounter_line')
    op.drop_index('ix_bill_visit', table_name='bill', postgresql_where=sa.text('visit_id IS NOT NULL'))
    op.drop_index('ix_bill_provider_created', table_name='bill')
    op.drop_index('ix_bill_patient_created', table_name='bill')
    op.drop_index('ix_bill_encounter', table_name='bill', postgresql_where=sa.text('encounter_id IS NOT NULL'))
    op.drop_index('ix_bill_created', table_name='bill')
    op.drop_index('ix_bill_company_created', table_name='bill')
    op.drop_table('bill')
    op.drop_index(op.f('ix_encounter_visit_id'), table_name='encounter')
    op.drop_index(op.f('ix_encounter_provider_id'), table_name='encounter')
    op.drop_index(op.f('ix_encounter_patient_id'), table_name='encounter')
    op.drop_table('encounter')
    op.drop_index(op.f('ix_visit_patient_id'), table_name='visit')
    op.drop_index('ix_visit_company_scheduled', table_name='visit')
    op.drop_table('visit')
    op.drop_table('delegation_list')
    op.drop_index('uq_delegation_entry_provider_user', table_name='delegation_entry', postgresql_where=sa.text('user_id IS NOT NULL'))
    op.drop_index('uq_delegation_entry_provider_group', table_name='delegation_entry', postgresql_where=sa.text('group_id IS NOT NULL'))
    op.drop_index('ix_delegation_entry_user', table_name='delegation_entry', postgresql_include=['provider_id', 'permissions', 'expires_at'], postgresql_where=sa.text('user_id IS NOT NULL'))
    op.drop_index('ix_delegation_entry_group', table_name='delegation_entry', postgresql_include=['provider_id', 'permissions', 'expires_at'], postgresql_where=sa.text('group_id IS NOT NULL'))
    op.drop_table('delegation_entry')
    op.drop_index('ix_patient_company_created', table_name='patient')
    op.drop_table('patient')
    for enum_name in ('bill_source', 'bill_status', 'bill_coverage'):
        sa.Enum(name=enum_name).drop(op.get_bind(), checkfirst=True)
