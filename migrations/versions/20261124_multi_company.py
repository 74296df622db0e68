"""multi-company management: billing customer assignments (groups and users), payers, facilities,
and the two-level company tree enforced by the database

Revision ID: 0005
Revises: 0003
Create Date: 2026-11-24 08:11:03.171083
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The service validates every write that sets a parent (clear 422s); this is the backstop for every other
# path (the CLI, scripts, races). Two levels: a parent must itself be top-level, and a company that has
# children cannot become a child. Cycles need a third level, so they cannot happen either. The parent row
# is locked (FOR SHARE) so that attaching a child to it and giving it a parent take turns.
TREE_CHECK = """
CREATE FUNCTION company_tree_check() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    grandparent uuid;
BEGIN
    IF NEW.parent_id IS NULL THEN
        RETURN NEW;
    END IF;
    SELECT parent_id INTO grandparent FROM company WHERE id = NEW.parent_id FOR SHARE;
    IF FOUND AND grandparent IS NOT NULL THEN
        RAISE EXCEPTION 'company % is a child company and cannot have children', NEW.parent_id
            USING ERRCODE = 'check_violation';
    END IF;
    IF TG_OP = 'UPDATE' AND EXISTS (SELECT 1 FROM company WHERE parent_id = NEW.id) THEN
        RAISE EXCEPTION 'company % has child companies and cannot become a child company', NEW.id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER company_tree_check BEFORE INSERT OR UPDATE OF parent_id ON company
    FOR EACH ROW EXECUTE FUNCTION company_tree_check();
"""


def upgrade() -> None:
    op.create_table('group_company_assignment',
    sa.Column('group_id', sa.UUID(), nullable=False),
    sa.Column('company_id', sa.UUID(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['company_id'], ['company.id'], name=op.f('fk_group_company_assignment_company_id_company'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['group_id'], ['user_group.id'], name=op.f('fk_group_company_assignment_group_id_user_group'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('group_id', 'company_id', name=op.f('pk_group_company_assignment'))
    )
    op.create_index('ix_group_company_assignment_company', 'group_company_assignment', ['company_id', 'group_id'], unique=False)
    op.create_table('user_company_assignment',
    sa.Column('user_id', sa.UUID(), nullable=False),
    sa.Column('company_id', sa.UUID(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['company_id'], ['company.id'], name=op.f('fk_user_company_assignment_company_id_company'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['app_user.id'], name=op.f('fk_user_company_assignment_user_id_app_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', 'company_id', name=op.f('pk_user_company_assignment'))
    )
    op.create_index('ix_user_company_assignment_company', 'user_company_assignment', ['company_id', 'user_id'], unique=False)
    op.create_table('payer',
    sa.Column('payer_code', sa.String(length=50), nullable=True),
    sa.Column('copied_from_id', sa.UUID(), nullable=True),
    sa.Column('company_id', sa.UUID(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('address', sa.String(length=500), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['company_id'], ['company.id'], name=op.f('fk_payer_company_id_company'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['copied_from_id'], ['payer.id'], name=op.f('fk_payer_copied_from_id_payer'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payer'))
    )
    op.create_index('ix_payer_company_created', 'payer', ['company_id', 'created_at', 'id'], unique=False)
    op.create_index('ix_payer_copied_from', 'payer', ['copied_from_id'], unique=False, postgresql_where=sa.text('copied_from_id IS NOT NULL'))
    op.create_index('uq_payer_company_copied_from', 'payer', ['company_id', 'copied_from_id'], unique=True, postgresql_where=sa.text('copied_from_id IS NOT NULL'))
    op.create_index('uq_payer_company_name_lower', 'payer', ['company_id', sa.literal_column('lower(name)')], unique=True)
    op.create_table('facility',
    sa.Column('npi', sa.String(length=10), nullable=True),
    sa.Column('copied_from_id', sa.UUID(), nullable=True),
    sa.Column('company_id', sa.UUID(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('address', sa.String(length=500), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['company_id'], ['company.id'], name=op.f('fk_facility_company_id_company'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['copied_from_id'], ['facility.id'], name=op.f('fk_facility_copied_from_id_facility'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_facility'))
    )
    op.create_index('ix_facility_company_created', 'facility', ['company_id', 'created_at', 'id'], unique=False)
    op.create_index('ix_facility_copied_from', 'facility', ['copied_from_id'], unique=False, postgresql_where=sa.text('copied_from_id IS NOT NULL'))
    op.create_index('uq_facility_company_copied_from', 'facility', ['company_id', 'copied_from_id'], unique=True, postgresql_where=sa.text('copied_from_id IS NOT NULL'))
    op.create_index('uq_facility_company_name_lower', 'facility', ['company_id', sa.literal_column('lower(name)')], unique=True)
    # One statement per execute: asyncpg prepares each, and a prepared statement holds one command.
    for statement in TREE_CHECK.split("\n\n"):
        if statement.strip():
            op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TRIGGER company_tree_check ON company")
    op.execute("DROP FUNCTION company_tree_check()")
    op.drop_index('uq_facility_company_name_lower', table_name='facility')
    op.drop_index('uq_facility_company_copied_from', table_name='facility', postgresql_where=sa.text('copied_from_id IS NOT NULL'))
    op.drop_index('ix_facility_copied_from', table_name='facility', postgresql_where=sa.text('copied_from_id IS NOT NULL'))
    op.drop_index('ix_facility_company_created', table_name='facility')
    op.drop_table('facility')
    op.drop_index('uq_payer_company_name_lower', table_name='payer')
    op.drop_index('uq_payer_company_copied_from', table_name='payer', postgresql_where=sa.text('copied_from_id IS NOT NULL'))
    op.drop_index('ix_payer_copied_from', table_name='payer', postgresql_where=sa.text('copied_from_id IS NOT NULL'))
    op.drop_index('ix_payer_company_created', table_name='payer')
    op.drop_table('payer')
    op.drop_index('ix_user_company_assignment_company', table_name='user_company_assignment')
    op.drop_table('user_company_assignment')
    op.drop_index('ix_group_company_assignment_company', table_name='group_company_assignment')
    op.drop_table('group_company_assignment')
