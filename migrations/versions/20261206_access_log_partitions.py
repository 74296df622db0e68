"""The access log partitioned by month; chain heads in a table of their own

`access_log` becomes a table partitioned by RANGE (created_at), one partition per calendar month in UTC
(`access_log_yYYYYmMM`, made by `access_log_partition(month)`, which the worker's housekeeping calls to stay three
months ahead), and a DEFAULT partition for rows of a month that has no partition yet (a read never fails for it).
The primary key is (id, created_at): a partitioned table's unique keys hold the partition key, so (chain_id,
chain_seq) is indexed, not unique (the chain trigger gives each link its place under the chain's lock).

The chain trigger no longer looks up the previous link in the table (on a partitioned table, a probe of every
partition on every insert): `chain_head` keeps each chain's last seq and hash, read and updated under the chain's
advisory lock, held until commit as before. `chain_hash()`, the definition of a link, is unchanged.

Append-only on every partition: a row-level trigger of the parent (cloned to each partition) refuses UPDATE and
DELETE; statement triggers are not cloned, so `access_log_partition()` gives each partition its own, which refuses
TRUNCATE (and UPDATE and DELETE that touch no row). Dropping a whole month is the retention's (housekeeping/).

Revision ID: access_log_partitions
Revises: access_reviews
"""

from __future__ import annotations

from alembic import op

revision: str = "access_log_partitions"
down_revision: str | None = "access_reviews"
branch_labels = None
depends_on = None

ACCESS_LOG_CHAINS = 16
ACCESS_LOG_LOCK_KEY = 80_011
# pg_advisory_xact_lock(key) of whoever creates or drops access-log partitions.
PARTITIONS_LOCK_KEY = 80_012

COLUMNS = ("actor_id, route, surface, permission, provider_ids, patient_ids, grants, record_count, client_address, "
           "user_agent, id, created_at, chain_id, chain_seq, prev_hash, row_hash")

TABLE_BODY = """(
    actor_id uuid NOT NULL,
    route varchar(200) NOT NULL,
    surface varchar(50) NOT NULL,
    permission varchar(50) NOT NULL,
    provider_ids uuid[] NOT NULL,
    patient_ids uuid[] NOT NULL,
    grants jsonb NOT NULL,
    record_count integer NOT NULL,
    client_address varchar(64),
    user_agent varchar(300),
    id uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    chain_id smallint NOT NULL,
    chain_seq bigint NOT NULL,
    prev_hash bytea,
    row_hash bytea NOT NULL
)"""

CHAIN_LINK = """
CREATE OR REPLACE FUNCTION chain_link() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    chains int := TG_ARGV[0]::int;
    lock_key int := TG_ARGV[1]::int;
    -- The chained table: on a partition, the trigger is the parent's clone and TG_TABLE_NAME the partition's.
    chained text := coalesce(TG_ARGV[2], TG_TABLE_NAME);
    chosen_setting text := 'billing_api.chain_of_' || chained;
    chosen text := current_setting(chosen_setting, true);
    last_seq bigint;
    last_hash bytea;
BEGIN
    -- The lock is held until commit: the next inserter into the chain reads this row's head only once it is
    -- committed. A transaction's first insert takes the first free chain, starting from one of its own, and
    -- waits for that one only when all are taken; later inserts keep it (transaction-local setting).
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
    SELECT h.last_seq, h.last_hash INTO last_seq, last_hash
      FROM chain_head h WHERE h.table_name = chained AND h.chain_id = NEW.chain_id;
    IF NOT FOUND THEN
        -- A chain's first row (or a head lost): its place comes from the table, once.
        EXECUTE format('SELECT chain_seq, row_hash FROM %I.%I WHERE chain_id = $1 ORDER BY chain_seq DESC LIMIT 1',
                       TG_TABLE_SCHEMA, chained) USING NEW.chain_id INTO last_seq, last_hash;
        INSERT INTO chain_head (table_name, chain_id, last_seq, last_hash)
        VALUES (chained, NEW.chain_id, coalesce(last_seq, 0), last_hash);
    END IF;
    NEW.chain_seq := coalesce(last_seq, 0) + 1;
    NEW.prev_hash := last_hash;
    NEW.row_hash := chain_hash(last_hash, NEW);
    UPDATE chain_head SET last_seq = NEW.chain_seq, last_hash = NEW.row_hash
     WHERE table_name = chained AND chain_id = NEW.chain_id;
    RETURN NEW;
END $$"""

# Migration 0010's, for the downgrade.
OLD_CHAIN_LINK = """
CREATE OR REPLACE FUNCTION chain_link() RETURNS trigger LANGUAGE plpgsql AS $$
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
END $$"""

# Idempotent: the partition of the month holding `month`, made if absent. NULL (and a warning) when the default
# partition holds rows of that month: the partition could not be attached over them.
ACCESS_LOG_PARTITION = f"""
CREATE FUNCTION access_log_partition(month date) RETURNS regclass
LANGUAGE plpgsql SET "TimeZone" = 'UTC' AS $$
DECLARE
    first_day date := date_trunc('month', month)::date;
    next_day date := (date_trunc('month', month) + interval '1 month')::date;
    partition_name text := format('access_log_y%sm%s', to_char(first_day, 'YYYY'), to_char(first_day, 'MM'));
    stranded boolean;
BEGIN
    IF to_regclass(partition_name) IS NOT NULL THEN
        RETURN partition_name::regclass;
    END IF;
    PERFORM pg_advisory_xact_lock({PARTITIONS_LOCK_KEY});
    IF to_regclass(partition_name) IS NOT NULL THEN
        RETURN partition_name::regclass;
    END IF;
    SELECT EXISTS (SELECT FROM access_log_default
                    WHERE created_at >= first_day::timestamptz AND created_at < next_day::timestamptz)
      INTO stranded;
    IF stranded THEN
        RAISE WARNING 'access_log_default holds rows of %: no partition made for that month', first_day;
        RETURN NULL;
    END IF;
    EXECUTE format('CREATE TABLE %I PARTITION OF access_log FOR VALUES FROM (%L) TO (%L)',
                   partition_name, first_day::timestamptz, next_day::timestamptz);
    EXECUTE format('CREATE TRIGGER access_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON %I '
                   'FOR EACH STATEMENT EXECUTE FUNCTION refuse_change()', partition_name);
    RETURN partition_name::regclass;
END $$"""


def _append_only(table: str) -> None:
    op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON {table} "
               "FOR EACH STATEMENT EXECUTE FUNCTION refuse_change()")


def upgrade() -> None:
    op.execute("""
        CREATE TABLE chain_head (
            table_name text NOT NULL,
            chain_id smallint NOT NULL,
            last_seq bigint NOT NULL,
            last_hash bytea,
            CONSTRAINT pk_chain_head PRIMARY KEY (table_name, chain_id)
        )""")
    for table in ("audit_event", "access_log"):
        op.execute(f"""
            INSERT INTO chain_head (table_name, chain_id, last_seq, last_hash)
            SELECT DISTINCT ON (chain_id) '{table}', chain_id, chain_seq, row_hash
              FROM {table} ORDER BY chain_id, chain_seq DESC""")

    # The old table steps aside (its index names are needed by the new one).
    op.execute("ALTER TABLE access_log RENAME TO access_log_unpartitioned")
    op.execute("ALTER TABLE access_log_unpartitioned RENAME CONSTRAINT pk_access_log TO pk_access_log_unpartitioned")
    op.execute("DROP INDEX ix_access_log_patient_ids")
    op.execute("DROP INDEX ix_access_log_actor_created")

    op.execute(f"CREATE TABLE access_log {TABLE_BODY} PARTITION BY RANGE (created_at)")
    op.execute("CREATE TABLE access_log_default PARTITION OF access_log DEFAULT")
    _append_only("access_log_default")
    op.execute(ACCESS_LOG_PARTITION)
    op.execute("""
        SELECT access_log_partition(month::date)
          FROM (SELECT DISTINCT date_trunc('month', created_at AT TIME ZONE 'UTC') AS month
                  FROM access_log_unpartitioned
                UNION
                SELECT date_trunc('month', now() AT TIME ZONE 'UTC') + n * interval '1 month'
                  FROM generate_series(0, 3) AS n) months
         ORDER BY month""")
    # Copied before the chain trigger exists: every chain column comes over as it is.
    op.execute(f"INSERT INTO access_log ({COLUMNS}) SELECT {COLUMNS} FROM access_log_unpartitioned")
    op.execute("DROP TABLE access_log_unpartitioned")

    op.execute("ALTER TABLE access_log ADD CONSTRAINT pk_access_log PRIMARY KEY (id, created_at)")
    op.execute("ALTER TABLE access_log ADD CONSTRAINT fk_access_log_actor_id_app_user FOREIGN KEY (actor_id) "
               "REFERENCES app_user (id) ON DELETE RESTRICT")
    op.execute("CREATE INDEX ix_access_log_patient_ids ON access_log USING gin (patient_ids)")
    op.execute("CREATE INDEX ix_access_log_actor_created ON access_log (actor_id, created_at, id)")
    op.execute("CREATE INDEX ix_access_log_chain ON access_log (chain_id, chain_seq)")

    op.execute(CHAIN_LINK)
    op.execute(f"CREATE TRIGGER access_log_chain BEFORE INSERT ON access_log FOR EACH ROW "
               f"EXECUTE FUNCTION chain_link({ACCESS_LOG_CHAINS}, {ACCESS_LOG_LOCK_KEY}, 'access_log')")
    _append_only("access_log")
    # Row-level, so cloned to every partition, present and future.
    op.execute("CREATE TRIGGER access_log_append_only_rows BEFORE UPDATE OR DELETE ON access_log "
               "FOR EACH ROW EXECUTE FUNCTION refuse_change()")


def downgrade() -> None:
    op.execute("ALTER TABLE access_log RENAME TO access_log_partitioned")
    op.execute("ALTER TABLE access_log_partitioned RENAME CONSTRAINT pk_access_log TO pk_access_log_partitioned")
    op.execute("DROP INDEX ix_access_log_patient_ids")
    op.execute("DROP INDEX ix_access_log_actor_created")
    op.execute("DROP INDEX ix_access_log_chain")

    op.execute(f"CREATE TABLE access_log {TABLE_BODY}")
    op.execute(f"INSERT INTO access_log ({COLUMNS}) SELECT {COLUMNS} FROM access_log_partitioned")
    op.execute("DROP TABLE access_log_partitioned")  # and its partitions
    op.execute("DROP FUNCTION access_log_partition(date)")

    op.execute("ALTER TABLE access_log ADD CONSTRAINT pk_access_log PRIMARY KEY (id)")
    op.execute("ALTER TABLE access_log ADD CONSTRAINT fk_access_log_actor_id_app_user FOREIGN KEY (actor_id) "
               "REFERENCES app_user (id) ON DELETE RESTRICT")
    op.execute("ALTER TABLE access_log ADD CONSTRAINT uq_access_log_chain_id_chain_seq UNIQUE (chain_id, chain_seq)")
    op.execute("CREATE INDEX ix_access_log_patient_ids ON access_log USING gin (patient_ids)")
    op.execute("CREATE INDEX ix_access_log_actor_created ON access_log (actor_id, created_at, id)")

    op.execute(OLD_CHAIN_LINK)
    op.execute(f"CREATE TRIGGER access_log_chain BEFORE INSERT ON access_log FOR EACH ROW "
               f"EXECUTE FUNCTION chain_link({ACCESS_LOG_CHAINS}, {ACCESS_LOG_LOCK_KEY})")
    _append_only("access_log")
    op.execute("DROP TABLE chain_head")
