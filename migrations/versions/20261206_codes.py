"""Service codes by code system, diagnoses, and each company's code systems

A service line's `cpt_code` becomes `code_system` and `code` (with `modifiers` and `diagnosis_pointers`): a code of
CPT's shape (five digits, or four digits and F or T) becomes `cpt`, one of HCPCS Level II's (a letter and four
digits) `hcpcs`, any other `legacy` (the five characters lines took before), none stays none. Bills and encounters
gain `diagnoses`; companies gain the code systems they bill in (null: never chosen). The downgrade puts every
code back in `cpt_code` and drops what the old schema cannot hold (modifiers, pointers, diagnoses, the settings).

Revision ID: codes
Revises: manual_documents
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "codes"
down_revision: str | None = "manual_documents"
branch_labels = None
depends_on = None

LINE_TABLES = ("encounter_line", "bill_line")
DIAGNOSES_TABLES = ("encounter", "bill")
SYSTEM = postgresql.ENUM("cpt", "hcpcs", "ohip", "ahcip", "msp", "legacy", name="service_code_system",
                         create_type=False)


def upgrade() -> None:
    SYSTEM.create(op.get_bind(), checkfirst=False)
    for table in LINE_TABLES:
        op.add_column(table, sa.Column("code_system", SYSTEM, nullable=True))
        op.add_column(table, sa.Column("code", sa.String(length=10), nullable=True))
        op.add_column(table, sa.Column("modifiers", postgresql.ARRAY(sa.String(length=2)), nullable=False,
                                       server_default=sa.text("'{}'")))
        op.add_column(table, sa.Column("diagnosis_pointers", postgresql.ARRAY(sa.SmallInteger()), nullable=False,
                                       server_default=sa.text("'{}'")))
        op.execute(f"""
            UPDATE {table} SET code = cpt_code, code_system = CASE
                WHEN cpt_code ~ '^[0-9]{{4}}[0-9FT]$' THEN 'cpt'
                WHEN cpt_code ~ '^[A-Z][0-9]{{4}}$' THEN 'hcpcs'
                ELSE 'legacy' END::service_code_system
            WHERE cpt_code IS NOT NULL
        """)
        op.drop_column(table, "cpt_code")
        op.create_check_constraint(op.f(f"ck_{table}_code_with_system"), table,
                                   "(code IS NULL) = (code_system IS NULL)")
        op.create_check_constraint(op.f(f"ck_{table}_modifiers_at_most_4"), table, "cardinality(modifiers) <= 4")
        op.create_check_constraint(op.f(f"ck_{table}_diagnosis_pointers_at_most_4"), table,
                                   "cardinality(diagnosis_pointers) <= 4")
    for table in DIAGNOSES_TABLES:
        op.add_column(table, sa.Column("diagnoses", postgresql.JSONB(), nullable=False,
                                       server_default=sa.text("'[]'::jsonb")))
        op.create_check_constraint(op.f(f"ck_{table}_diagnoses_at_most_12"), table,
                                   "jsonb_typeof(diagnoses) = 'array' AND jsonb_array_length(diagnoses) <= 12")
    op.add_column("company", sa.Column("service_code_systems", postgresql.ARRAY(sa.String(length=10)), nullable=True))
    op.add_column("company", sa.Column("diagnosis_code_systems", postgresql.ARRAY(sa.String(length=10)),
                                       nullable=True))
    op.create_check_constraint(op.f("ck_company_service_code_systems_known"), "company",
                               "service_code_systems <@ ARRAY['cpt', 'hcpcs', 'ohip', 'ahcip', 'msp']::varchar[]")
    op.create_check_constraint(op.f("ck_company_diagnosis_code_systems_known"), "company",
                               "diagnosis_code_systems <@ ARRAY['icd10cm', 'ohip_dx']::varchar[]")


def downgrade() -> None:
    op.drop_constraint(op.f("ck_company_diagnosis_code_systems_known"), "company", type_="check")
    op.drop_constraint(op.f("ck_company_service_code_systems_known"), "company", type_="check")
    op.drop_column("company", "diagnosis_code_systems")
    op.drop_column("company", "service_code_systems")
    for table in DIAGNOSES_TABLES:
        op.drop_constraint(op.f(f"ck_{table}_diagnoses_at_most_12"), table, type_="check")
        op.drop_column(table, "diagnoses")
    for table in LINE_TABLES:
        op.add_column(table, sa.Column("cpt_code", sa.String(length=10), nullable=True))
        op.execute(f"UPDATE {table} SET cpt_code = code WHERE code IS NOT NULL")
        for name in ("code_with_system", "modifiers_at_most_4", "diagnosis_pointers_at_most_4"):
            op.drop_constraint(op.f(f"ck_{table}_{name}"), table, type_="check")
        for column in ("diagnosis_pointers", "modifiers", "code", "code_system"):
            op.drop_column(table, column)
    SYSTEM.drop(op.get_bind(), checkfirst=False)
