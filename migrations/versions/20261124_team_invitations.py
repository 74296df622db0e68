"""team invitations, mail outbox, payments; delegation entry source

Invitations (token stored as a hash only), the transactional mail outbox, payments on bills, and where a
delegation entry came from (`source`: list | invitation, with the invitation). Generated against a database
at 0003 and reviewed by hand: the check constraints added to delegation_entry (autogenerate does not see
them) and the enum types dropped in downgrade.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 08:10:39.854814
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('invitation',
    sa.Column('provider_id', sa.UUID(), nullable=False),
    sa.Column('company_id', sa.UUID(), nullable=False),
    sa.Column('invited_by', sa.UUID(), nullable=True),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=True),
    sa.Column('display_name', sa.String(length=200), nullable=True),
    sa.Column('role', sa.String(length=32), nullable=False),
    sa.Column('permissions', postgresql.ARRAY(sa.Text()), nullable=False),
    sa.Column('status', sa.Enum('pending', 'accepted', 'cancelled', name='invitation_status'), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('accepted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('accepted_user_id', sa.UUID(), nullable=True),
    sa.Column('cancelled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('cancelled_by', sa.UUID(), nullable=True),
    sa.Column('delivery_status', sa.Enum('queued', 'sent', 'failed', name='mail_delivery_status'), nullable=False),
    sa.Column('delivery_attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('delivery_last_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('delivery_error', sa.Text(), nullable=True),
    sa.Column('delivery_sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint('cardinality(permissions) > 0', name=op.f('ck_invitation_has_permissions')),
    sa.ForeignKeyConstraint(['accepted_user_id'], ['app_user.id'], name=op.f('fk_invitation_accepted_user_id_app_user'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['cancelled_by'], ['app_user.id'], name=op.f('fk_invitation_cancelled_by_app_user'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['company_id'], ['company.id'], name=op.f('fk_invitation_company_id_company'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['invited_by'], ['app_user.id'], name=op.f('fk_invitation_invited_by_app_user'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['provider_id'], ['app_user.id'], name=op.f('fk_invitation_provider_id_app_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invitation'))
    )
    op.create_index('ix_invitation_pending_username', 'invitation', [sa.literal_column('lower(username)')], unique=False, postgresql_where=sa.text("status = 'pending' AND username IS NOT NULL"))
    op.create_index('ix_invitation_provider_created', 'invitation', ['provider_id', 'created_at', 'id'], unique=False)
    op.create_index('uq_invitation_pending_provider_email', 'invitation', ['provider_id', sa.literal_column('lower(email)')], unique=True, postgresql_where=sa.text("status = 'pending'"))
    op.create_index('uq_invitation_token_hash', 'invitation', ['token_hash'], unique=True)
    op.create_table('mail_outbox',
    sa.Column('template', sa.String(length=50), nullable=False),
    sa.Column('to_address', sa.String(length=320), nullable=False),
    sa.Column('context', postgresql.JSONB(astext_type=sa.Text()), server_default='{}', nullable=False),
    sa.Column('secret_nonce', sa.String(length=100), nullable=True),
    sa.Column('invitation_id', sa.UUID(), nullable=True),
    sa.Column('status', sa.Enum('queued', 'sent', 'failed', 'cancelled', name='mail_outbox_status'), nullable=False),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('last_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['invitation_id'], ['invitation.id'], name=op.f('fk_mail_outbox_invitation_id_invitation'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mail_outbox'))
    )
    op.create_index('ix_mail_outbox_due', 'mail_outbox', ['next_attempt_at'], unique=False, postgresql_where=sa.text("status = 'queued'"))
    op.create_index(op.f('ix_mail_outbox_invitation_id'), 'mail_outbox', ['invitation_id'], unique=False)
    op.create_table('payment',
    sa.Column('bill_id', sa.UUID(), nullable=False),
    sa.Column('amount_cents', sa.Integer(), nullable=False),
    sa.Column('method', sa.Enum('card', 'cash', 'cheque', 'bank_transfer', 'insurer', 'other', name='payment_method'), nullable=False),
    sa.Column('reference', sa.String(length=100), nullable=True),
    sa.Column('recorded_by', sa.UUID(), nullable=True),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint('amount_cents > 0', name=op.f('ck_payment_amount_positive')),
    sa.ForeignKeyConstraint(['bill_id'], ['bill.id'], name=op.f('fk_payment_bill_id_bill'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['recorded_by'], ['app_user.id'], name=op.f('fk_payment_recorded_by_app_user'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payment'))
    )
    op.create_index('ix_payment_bill_created', 'payment', ['bill_id', 'created_at', 'id'], unique=False)
    op.add_column('delegation_entry', sa.Column('source', sa.String(length=16), server_default='list', nullable=False))
    op.add_column('delegation_entry', sa.Column('invitation_id', sa.UUID(), nullable=True))
    op.create_foreign_key(op.f('fk_delegation_entry_invitation_id_invitation'), 'delegation_entry', 'invitation', ['invitation_id'], ['id'], ondelete='SET NULL')
    op.create_check_constraint(op.f('ck_delegation_entry_known_source'), 'delegation_entry',
                               "source IN ('list', 'invitation')")
    op.create_check_constraint(op.f('ck_delegation_entry_invitation_names_a_user'), 'delegation_entry',
                               "source = 'list' OR user_id IS NOT NULL")


def downgrade() -> None:
    op.drop_constraint(op.f('ck_delegation_entry_invitation_names_a_user'), 'delegation_entry', type_='check')
    op.drop_constraint(op.f('ck_delegation_entry_known_source'), 'delegation_entry', type_='check')
    op.drop_constraint(op.f('fk_delegation_entry_invitation_id_invitation'), 'delegation_entry', type_='foreignkey')
    op.drop_column('delegation_entry', 'invitation_id')
    op.drop_column('delegation_entry', 'source')
    op.drop_index('ix_payment_bill_created', table_name='payment')
    op.drop_table('payment')
    op.drop_index(op.f('ix_mail_outbox_invitation_id'), table_name='mail_outbox')
    op.drop_index('ix_mail_outbox_due', table_name='mail_outbox', postgresql_where=sa.text("status = 'queued'"))
    op.drop_table('mail_outbox')
    op.drop_index('uq_invitation_token_hash', table_name='invitation')
    op.drop_index('uq_invitation_pending_provider_email', table_name='invitation', postgresql_where=sa.text("status = 'pending'"))
    op.drop_index('ix_invitation_provider_created', table_name='invitation')
    op.drop_index('ix_invitation_pending_username', table_name='invitation', postgresql_where=sa.text("status = 'pending' AND username IS NOT NULL"))
    op.drop_table('invitation')
    for enum_name in ('payment_method', 'mail_outbox_status', 'mail_delivery_status', 'invitation_status'):
        sa.Enum(name=enum_name).drop(op.get_bind(), checkfirst=True)
