"""bill counts per provider and company, kept by triggers; covering newest-first bill index

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Statement-level triggers with transition tables: one upsert per (provider, company) per statement,
# so a bulk insert of a night's bills costs one row update per provider, in the same transaction.
TRIGGERS = """
CREATE FUNCTION provider_bill_count_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO provider_bill_count (provider_id, company_id, bill_count)
    SELECT provider_id, company_id, count(*) FROM changed_bills GROUP BY provider_id, company_id
    ORDER BY provider_id, company_id
    ON CONFLICT (provider_id, company_id)
    DO UPDATE SET bill_count = provider_bill_count.bill_count + EXCLUDED.bill_count;
    RETURN NULL;
END $$;

CREATE FUNCTION provider_bill_count_remove() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE provider_bill_count AS c SET bill_count = c.bill_count - gone.n
    FROM (SELECT provider_id, company_id, count(*) AS n FROM changed_bills
          GROUP BY provider_id, company_id ORDER BY provider_id, company_id) AS gone
    WHERE c.provider_id = gone.provider_id AND c.company_id = gone.company_id;
    RETURN NULL;
END $$;

CREATE TRIGGER bill_count_after_insert AFTER INSERT ON bill
    REFERENCING NEW TABLE AS changed_bills FOR EACH STATEMENT EXECUTE FUNCTION provider_bill_count_add();

CREATE TRIGGER bill_count_after_delete AFTER DELETE ON bill
    REFERENCING OLD TABLE AS changed_bills FOR EACH STATEMENT EXECUTE FUNCTION provider_bill_count_remove();

-- A bill never moves to another provider or company (the counts rely on it).
CREATE FUNCTION bill_owner_is_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'a bill keeps its provider and company' USING ERRCODE = 'check_violation';
END $$;

CREATE TRIGGER bill_owner_fixed BEFORE UPDATE OF provider_id, company_id ON bill FOR EACH ROW
    WHEN (OLD.provider_id IS DISTINCT FROM NEW.provider_id OR OLD.company_id IS DISTINCT FROM NEW.company_id)
    EXECUTE FUNCTION bill_owner_is_fixed();
"""


def upgrade() -> None:
    op.create_table(
        "provider_bill_count",
        sa.Column("provider_id", sa.UUID(), nullable=False),
        sa.Column("company_id", sa.UUID(), nullable=False),
        sa.Column("bill_count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("provider_id", "company_id", name=op.f("pk_provider_bill_count")),
    )
    op.create_index("ix_provider_bill_count_company", "provider_bill_count", ["company_id", "bill_count"])
    op.execute("""
        INSERT INTO provider_bill_count (provider_id, company_id, bill_count)
        SELECT provider_id, company_id, count(*) FROM bill GROUP BY provider_id, company_id""")
    # One statement per execute: asyncpg prepares each, and a prepared statement holds one command.
    for statement in TRIGGERS.split("\n\n"):
        if statement.strip():
            op.execute(statement)
    op.drop_index("ix_bill_created", table_name="bill")
    op.create_index("ix_bill_created", "bill", [sa.literal_column("created_at DESC"), sa.literal_column("id DESC")],
                    postgresql_include=["provider_id", "company_id"])


def downgrade() -> None:
    op.drop_index("ix_bill_created", table_name="bill")
    op.create_index("ix_bill_created", "bill", [sa.literal_column("created_at DESC"), sa.literal_column("id DESC")])
    for trigger in ("bill_count_after_insert", "bill_count_after_delete", "bill_owner_fixed"):
        op.execute(f"DROP TRIGGER {trigger} ON bill")
    for function in ("provider_bill_count_add", "provider_bill_count_remove", "bill_owner_is_fixed"):
        op.execute(f"DROP FUNCTION {function}()")
    op.drop_index("ix_provider_bill_count_company", table_name="provider_bill_count")
    op.drop_table("provider_bill_count")
