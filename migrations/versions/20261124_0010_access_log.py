"""Access log and append-only, hash-chained audit

The audit events and the access log are append-only: UPDATE, DELETE and TRUNCATE raise. Each row is a link
of a hash chain per table: `chain_seq` (1, 2, ...), `prev_hash` (the previous row's `row_hash`, NULL for the
first) and `row_hash` = sha256(hex(prev_hash) || '|' || the row's content as JSON without null columns and
without the two hashes, timestamps in UTC). The insert trigger sets the three under one transaction-scoped
advisory lock shared by both chains, so concurrent inserts wait for each other's commit and never fork a chain.
`chain_hash()` is the one definition of a link, used by the trigger and by verification
(`billing-api verify-audit`).

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels = None
depends_on = None

# Per table: how many chains, and the first key of pg_advisory_xact_lock(key, chain_id) for them. The audit
# events are inserted at commit, after any access-log row, so a transaction takes its chain locks in one order
# (access log, then audit) and two transactions cannot deadlock over them.
ACCESS_LOG_CHAINS = 16
CHAINED = {"audit_event": (1, 80_010), "access_log": (ACCESS_LOG_CHAINS, 80_011)}

FUNCTIONS = ["""
CREATE FUNCTION chain_hash(prev bytea, r anyelement) RETURNS bytea
LANGUAGE sql STABLE SET "TimeZone" = 'UTC' AS $$
    SELECT sha256(convert_to(
        coalesce(encode(prev, 'hex'), '') || '|' ||
        (SELECT jsonb_object_agg(key, value) FROM jsonb_each(to_jsonb(r) - 'prev_hash' - 'row_hash')
          WHERE value <> 'null'::jsonb)::text,
        'UTF8'))
$$""", f"""
CREATE FUNCTION chain_link() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    chains int := TG_ARGV[0]::int;
    lock_key int := TG_ARGV[1]::int;
    chosen_setting text := 'billing_api.chain_of_' || TG_TABLE_NAME;
    chosen text := current_setting(chosen_setting, true);
    last_seq bigint;
    last_hash bytea;
BEGIN
    -- The lock is held until commit: the next inserter into the chain reads this row as its predecessor only
    -- once it is committed. A transaction's first insert takes the first free chain, starting from one of its
    -- own, and waits for that one only when all are taken; later inserts keep it (transaction-local setting).
    IF coalesce(chosen, '') = '' THEN
        FOR offset_ IN 0 .. chains - 1 LOOP
            IF pg_try_advisory_xact_lock(lock_key, (pg_backend_pid() + offset_) % chains) THEN
                chosen := (pg_backend_pid() + offset_) % chains;
                EXIT;
            END IF;
        END LOOP;
        IF coalesce(chosen, '') = '' THEN
            chosen := pg_backend_pid() % chains;
            PERFORM pg_advisory_xact_lock(lock_key, chosen::int);
        END IF;
        PERFORM set_config(chosen_setting, chosen, true);
    END IF;
    NEW.chain_id := chosen::smallint;
    EXECUTE format('SELECT chain_seq, row_hash FROM %I.%I WHERE chain_id = $1 ORDER BY chain_seq DESC LIMIT 1',
                   TG_TABLE_SCHEMA, TG_TABLE_NAME) USING NEW.chain_id INTO last_seq, last_hash;
    NEW.chain_seq := coalesce(last_seq, 0) + 1;
    NEW.prev_hash := last_hash;
    NEW.row_hash := chain_hash(last_hash, NEW);
    RETURN NEW;
END $$""", """
CREATE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP USING ERRCODE = 'insufficient_privilege';
END $$"""]

# Existing audit events join the chain in the order they were written.
BACKFILL = """
DO $$
DECLARE
    r record;
    n bigint := 0;
    prev bytea;
BEGIN
    FOR r IN SELECT id FROM audit_event ORDER BY created_at, id LOOP
        n := n + 1;
        UPDATE audit_event SET chain_id = 0, chain_seq = n, prev_hash = prev WHERE id = r.id;
        UPDATE audit_event a SET row_hash = chain_hash(prev, a) WHERE id = r.id RETURNING row_hash INTO prev;
    END LOOP;
END $$;
"""


def _chain_columns(nullable: bool) -> list[sa.Column]:
    return [
        sa.Column("chain_id", sa.SmallInteger(), nullable=nullable),
        sa.Column("chain_seq", sa.BigInteger(), nullable=nullable),
        sa.Column("prev_hash", sa.LargeBinary(), nullable=True),
        sa.Column("row_hash", sa.LargeBinary(), nullable=nullable),
    ]


def upgrade() -> None:
    for function in FUNCTIONS:
        op.execute(function)
    for column in _chain_columns(nullable=True):
        op.add_column("audit_event", column)
    op.execute(BACKFILL)
    for name in ("chain_id", "chain_seq", "row_hash"):
        op.alter_column("audit_event", name, nullable=False)
    op.create_unique_constraint(op.f("uq_audit_event_chain_id_chain_seq"), "audit_event", ["chain_id", "chain_seq"])

    op.create_table(
        "access_log",
        sa.Column("actor_id", sa.UUID(), nullable=False),
        sa.Column("route", sa.String(length=200), nullable=False),
        sa.Column("surface", sa.String(length=50), nullable=False),
        sa.Column("permission", sa.String(length=50), nullable=False),
        sa.Column("provider_ids", postgresql.ARRAY(sa.UUID()), nullable=False),
        sa.Column("patient_ids", postgresql.ARRAY(sa.UUID()), nullable=False),
        sa.Column("grants", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("record_count", sa.Integer(), nullable=False),
        sa.Column("client_address", sa.String(length=64), nullable=True),
        sa.Column("user_agent", sa.String(length=300), nullable=True),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        *_chain_columns(nullable=False),
        sa.ForeignKeyConstraint(["actor_id"], ["app_user.id"], name=op.f("fk_access_log_actor_id_app_user"),
                                ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_log")),
        sa.UniqueConstraint("chain_id", "chain_seq", name=op.f("uq_access_log_chain_id_chain_seq")),
    )
    op.create_index("ix_access_log_patient_ids", "access_log", ["patient_ids"], unique=False,
                    postgresql_using="gin")
    op.create_index("ix_access_log_actor_created", "access_log", ["actor_id", "created_at", "id"], unique=False)

    for table, (chains, lock_key) in CHAINED.items():
        op.execute(f"CREATE TRIGGER {table}_chain BEFORE INSERT ON {table} "
                   f"FOR EACH ROW EXECUTE FUNCTION chain_link({chains}, {lock_key})")
        op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON {table} "
                   "FOR EACH STATEMENT EXECUTE FUNCTION refuse_change()")


def downgrade() -> None:
    for table in CHAINED:
        op.execute(f"DROP TRIGGER {table}_append_only ON {table}")
        op.execute(f"DROP TRIGGER {table}_chain ON {table}")
    op.drop_index("ix_access_log_actor_created", table_name="access_log")
    op.drop_index("ix_access_log_patient_ids", table_name="access_log")
    op.drop_table("access_log")
    op.drop_constraint(op.f("uq_audit_event_chain_id_chain_seq"), "audit_event", type_="unique")
    for name in ("row_hash", "prev_hash", "chain_seq", "chain_id"):
        op.drop_column("audit_event", name)
    for function in ("refuse_change()", "chain_link()", "chain_hash(bytea, anyelement)"):
        op.execute(f"DROP FUNCTION {function}")
