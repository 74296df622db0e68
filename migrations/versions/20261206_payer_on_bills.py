"""A payer on every bill, and a payer of record on patients

`bill.payer_id`: who an insured bill is sent to, a payer of the bill's company; a private bill has none (the
patient pays), which a check constraint holds. Insured bills recorded before keep no payer: nothing says which
payer they went to, and inventing one would be worse than saying so. `patient.payer_id`: the payer of record the
nightly run bills.

Revision ID: payer_on_bills
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "payer_on_bills"
down_revision: str | None = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("bill", "patient"):
        op.add_column(table, sa.Column("payer_id", sa.UUID(), nullable=True))
        op.create_foreign_key(op.f(f"fk_{table}_payer_id_payer"), table, "payer", ["payer_id"], ["id"],
                              ondelete="RESTRICT")
        op.create_index(f"ix_{table}_payer", table, ["payer_id"], postgresql_where=sa.text("payer_id IS NOT NULL"))
    op.create_check_constraint("private_bill_has_no_payer", "bill", "coverage = 'insured' OR payer_id IS NULL")


def downgrade() -> None:
    op.drop_constraint(op.f("ck_bill_private_bill_has_no_payer"), "bill", type_="check")
    for table in ("patient", "bill"):
        op.drop_index(f"ix_{table}_payer", table_name=table)
        op.drop_constraint(op.f(f"fk_{table}_payer_id_payer"), table, type_="foreignkey")
        op.drop_column(table, "payer_id")
