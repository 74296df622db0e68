"""Manual superbills and statements: who made a document, and the sessions a superbill lists

`billing_document.created_by`: the user who made a document by hand (NULL: the nightly run). `superbill_item`:
the encounters a superbill made by hand lists, as they stood (a snapshot, like `statement_item`). Existing rows
keep everything; the nightly run's superbills have no items (they list the period's billable sessions).

Revision ID: manual_documents
Revises: billing_identity
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "manual_documents"
down_revision: str | None = "billing_identity"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("billing_document", sa.Column("created_by", sa.UUID(), nullable=True))
    op.create_foreign_key(op.f("fk_billing_document_created_by_app_user"), "billing_document", "app_user",
                          ["created_by"], ["id"], ondelete="SET NULL")
    op.create_table(
        "superbill_item",
        sa.Column("document_id", sa.UUID(), nullable=False),
        sa.Column("encounter_id", sa.UUID(), nullable=False),
        sa.Column("provider_id", sa.UUID(), nullable=False),
        sa.Column("service_date", sa.Date(), nullable=False),
        sa.Column("imported", sa.Boolean(), nullable=False),
        sa.Column("total_cents", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["document_id"], ["billing_document.id"],
                                name=op.f("fk_superbill_item_document_id_billing_document"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["encounter_id"], ["encounter.id"],
                                name=op.f("fk_superbill_item_encounter_id_encounter"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["provider_id"], ["app_user.id"],
                                name=op.f("fk_superbill_item_provider_id_app_user"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("document_id", "encounter_id", name=op.f("pk_superbill_item")),
    )
    op.create_index(op.f("ix_superbill_item_encounter_id"), "superbill_item", ["encounter_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_superbill_item_encounter_id"), table_name="superbill_item")
    op.drop_table("superbill_item")
    op.drop_constraint(op.f("fk_billing_document_created_by_app_user"), "billing_document", type_="foreignkey")
    op.drop_column("billing_document", "created_by")
