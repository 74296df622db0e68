"""identity and audit

Revision ID: 0001
Revises:
Create Date: 2026-11-24 07:17:30.747886
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('company',
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('parent_id', sa.UUID(), nullable=True),
    sa.Column('time_zone', sa.String(length=64), server_default='UTC', nullable=False),
    sa.Column('billing_segregation_enabled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('billing_segregation_enabled_by', sa.UUID(), nullable=True),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint('parent_id IS NULL OR parent_id <> id', name=op.f('ck_company_not_own_parent')),
    sa.ForeignKeyConstraint(['parent_id'], ['company.id'], name=op.f('fk_company_parent_id_company'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_company'))
    )
    op.create_index(op.f('ix_company_parent_id'), 'company', ['parent_id'], unique=False)
    op.create_table('app_user',
    sa.Column('company_id', sa.UUID(), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('display_name', sa.String(length=200), nullable=False),
    sa.Column('password_hash', sa.Text(), nullable=True),
    sa.Column('status', sa.Enum('active', 'deactivated', name='user_status'), nullable=False),
    sa.Column('account_type', sa.Enum('standard', 'company_admin', 'support', name='account_type'), nullable=False),
    sa.Column('kind', sa.Enum('member', 'invited', name='user_kind'), nullable=False),
    sa.Column('is_provider', sa.Boolean(), nullable=False),
    sa.Column('billing_number', sa.String(length=32), nullable=True),
    sa.Column('permissions', postgresql.ARRAY(sa.Text()), server_default='{}', nullable=False),
    sa.Column('token_version', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('deactivated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint('NOT is_provider OR billing_number IS NOT NULL', name=op.f('ck_app_user_provider_has_billing_number')),
    sa.ForeignKeyConstraint(['company_id'], ['company.id'], name=op.f('fk_app_user_company_id_company'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_app_user'))
    )
    # company <-> app_user reference each other: this key comes once both tables exist.
    op.create_foreign_key(op.f('fk_company_billing_segregation_enabled_by_app_user'), 'company', 'app_user',
                          ['billing_segregation_enabled_by'], ['id'], ondelete='SET NULL')
    op.create_index('ix_app_user_company_created', 'app_user', ['company_id', 'created_at', 'id'], unique=False)
    op.create_index('uq_app_user_email_lower', 'app_user', [sa.literal_column('lower(email)')], unique=True)
    op.create_index('uq_app_user_username_lower', 'app_user', [sa.literal_column('lower(username)')], unique=True)
    op.create_table('user_group',
    sa.Column('company_id', sa.UUID(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('permissions', postgresql.ARRAY(sa.Text()), server_default='{}', nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['company_id'], ['company.id'], name=op.f('fk_user_group_company_id_company'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user_group'))
    )
    op.create_index('uq_user_group_company_name_lower', 'user_group', ['company_id', sa.literal_column('lower(name)')], unique=True)
    op.create_table('audit_event',
    sa.Column('company_id', sa.UUID(), nullable=True),
    sa.Column('actor_id', sa.UUID(), nullable=True),
    sa.Column('action', sa.String(length=100), nullable=False),
    sa.Column('target_type', sa.String(length=50), nullable=True),
    sa.Column('target_id', sa.UUID(), nullable=True),
    sa.Column('details', postgresql.JSONB(astext_type=sa.Text()), server_default='{}', nullable=False),
    sa.Column('client_address', sa.String(length=64), nullable=True),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['app_user.id'], name=op.f('fk_audit_event_actor_id_app_user'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['company_id'], ['company.id'], name=op.f('fk_audit_event_company_id_company'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_event'))
    )
    op.create_index('ix_audit_event_actor_action_created', 'audit_event', ['actor_id', 'action', 'created_at'], unique=False)
    op.create_index('ix_audit_event_company_created', 'audit_event', ['company_id', 'created_at', 'id'], unique=False)
    op.create_index('ix_audit_event_target_created', 'audit_event', ['target_id', 'created_at', 'id'], unique=False)
    op.create_table('group_member',
    sa.Column('group_id', sa.UUID(), nullable=False),
    sa.Column('user_id', sa.UUID(), nullable=False),
    sa.ForeignKeyConstraint(['group_id'], ['user_group.id'], name=op.f('fk_group_member_group_id_user_group'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['app_user.id'], name=op.f('fk_group_member_user_id_app_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('group_id', 'user_id', name=op.f('pk_group_member'))
    )
    op.create_index('ix_group_member_user', 'group_member', ['user_id', 'group_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_group_member_user', table_name='group_member')
    op.drop_table('group_member')
    op.drop_index('ix_audit_event_target_created', table_name='audit_event')
    op.drop_index('ix_audit_event_company_created', table_name='audit_event')
    op.drop_index('ix_audit_event_actor_action_created', table_name='audit_event')
    op.drop_table('audit_event')
    op.drop_index('uq_user_group_company_name_lower', table_name='user_group')
    op.drop_table('user_group')
    op.drop_index('uq_app_user_username_lower', table_name='app_user')
    op.drop_index('uq_app_user_email_lower', table_name='app_user')
    op.drop_index('ix_app_user_company_created', table_name='app_user')
    op.drop_constraint(op.f('fk_company_billing_segregation_enabled_by_app_user'), 'company', type_='foreignkey')
    op.drop_table('app_user')
    op.drop_index(op.f('ix_company_parent_id'), table_name='company')
    op.drop_table('company')
    for enum_name in ('user_kind', 'account_type', 'user_status'):
        sa.Enum(name=enum_name).drop(op.get_bind(), checkfirst=True)
