"""Provider and practice billing identity

`provider_billing_identity`: a provider's NPI, provincial billing number and its province, credentials and
taxonomy code. `company_billing_identity`: a practice's billing name, US EIN or Canadian business number, address
lines, phone and default place of service. Both are new and start empty: no existing row changes.

Revision ID: billing_identity
Revises: payer_on_bills
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "billing_identity"
down_revision: str | None = "payer_on_bills"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "provider_billing_identity",
        sa.Column("provider_id", sa.UUID(), nullable=False),
        sa.Column("npi", sa.String(length=10), nullable=True),
        sa.Column("province", sa.String(length=2), nullable=True),
        sa.Column("provincial_billing_number", sa.String(length=9), nullable=True),
        sa.Column("credentials", sa.String(length=40), nullable=True),
        sa.Column("taxonomy_code", sa.String(length=10), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_by", sa.UUID(), nullable=True),
        sa.CheckConstraint("npi ~ '^[0-9]{10}$'", name=op.f("ck_provider_billing_identity_npi_ten_digits")),
        sa.CheckConstraint("province IN ('ON', 'AB', 'BC')",
                           name=op.f("ck_provider_billing_identity_province_known")),
        sa.CheckConstraint("(province IS NULL) = (provincial_billing_number IS NULL)",
                           name=op.f("ck_provider_billing_identity_number_with_province")),
        sa.ForeignKeyConstraint(["provider_id"], ["app_user.id"],
                                name=op.f("fk_provider_billing_identity_provider_id_app_user"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["updated_by"], ["app_user.id"],
                                name=op.f("fk_provider_billing_identity_updated_by_app_user"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("provider_id", name=op.f("pk_provider_billing_identity")),
    )
    op.create_table(
        "company_billing_identity",
        sa.Column("company_id", sa.UUID(), nullable=False),
        sa.Column("legal_name", sa.String(length=200), nullable=True),
        sa.Column("tax_id", sa.String(length=10), nullable=True),
        sa.Column("business_number", sa.String(length=15), nullable=True),
        sa.Column("address_lines", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column("phone", sa.String(length=25), nullable=True),
        sa.Column("place_of_service", sa.String(length=2), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_by", sa.UUID(), nullable=True),
        sa.CheckConstraint("tax_id ~ '^[0-9]{2}-[0-9]{7}$'", name=op.f("ck_company_billing_identity_tax_id_shape")),
        sa.CheckConstraint("business_number ~ '^[0-9]{9}([A-Z]{2}[0-9]{4})?$'",
                           name=op.f("ck_company_billing_identity_business_number_shape")),
        sa.CheckConstraint("place_of_service ~ '^[0-9]{2}$'",
                           name=op.f("ck_company_billing_identity_place_of_service_two_digits")),
        sa.ForeignKeyConstraint(["company_id"], ["company.id"],
                                name=op.f("fk_company_billing_identity_company_id_company"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["updated_by"], ["app_user.id"],
                                name=op.f("fk_company_billing_identity_updated_by_app_user"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("company_id", name=op.f("pk_company_billing_identity")),
    )


def downgrade() -> None:
    op.drop_table("company_billing_identity")
    op.drop_table("provider_billing_identity")
