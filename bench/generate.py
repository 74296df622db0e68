"""Build the benchmark data set with set-based SQL: by default 1,000,000 bills, 2,000 providers,
20,000 users, 500 groups (10-200 members), 0-8 delegation entries per provider, 40 companies (5 parents
with 4 children each, 15 standalone), segregation on in some and off in others, and one user per class
of caller that the benchmark measures.

    .venv/bin/python bench/generate.py [--scale 0.1] [--database-url postgresql://...]

The database is emptied first. Without a URL it is the embedded PostgreSQL in bench/.data.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import asyncpg
from argon2 import PasswordHasher

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BENCH_PASSWORD, database_url, sqlalchemy_url  # noqa: E402

from billing_api.authz.permissions import ROLE_PRESETS, RolePreset  # noqa: E402
from billing_api.migrations_runner import upgrade  # noqa: E402

COMPANIES = 40
PARENTS = 5  # companies 1-5; parent k has children 6+4(k-1) .. 9+4(k-1); 26-40 stand alone
# Parent 1's family (1, 6-9) and the odd standalone companies keep segregation off.
UNSEGREGATED = "(n IN (1, 6, 7, 8, 9) OR (n >= 26 AND n % 2 = 1))"


def presets_sql() -> str:
    rows = [f"('{role.value}', ARRAY{sorted(p.value for p in perms)}::text[])" for role, perms in ROLE_PRESETS.items()]
    return "(VALUES " + ", ".join(rows) + ") AS preset(role, permissions)"


async def step(conn: asyncpg.Connection, label: str, sql: str) -> None:
    """Run a script of several statements (the simple protocol: no parameters, literals only)."""
    started = time.perf_counter()
    await conn.execute(sql)
    print(f"  {label:<40} {time.perf_counter() - started:6.1f} s", flush=True)


async def generate(url: str, scale: float) -> None:
    bills = int(1_000_000 * scale)
    providers = max(40, int(2_000 * scale))
    users = max(providers * 4, int(20_000 * scale))
    groups = max(40, int(500 * scale))
    patients = max(400, int(50_000 * scale))
    password_hash = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(BENCH_PASSWORD)
    literal = "'" + password_hash.replace("'", "''") + "'"
    print(f"building: {bills:,} bills, {providers:,} providers, {users:,} users, {groups:,} groups", flush=True)
    started = time.perf_counter()

    conn = await asyncpg.connect(url)
    await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
    await conn.close()
    await upgrade(sqlalchemy_url(url))
    conn = await asyncpg.connect(url)
    await conn.execute("SET synchronous_commit = off")

    await step(conn, "companies", f"""
        CREATE TABLE bench_company AS
        SELECT n, gen_random_uuid() AS id,
               CASE WHEN n BETWEEN 6 AND 25 THEN 1 + (n - 6) / 4 END AS parent_n
        FROM generate_series(1, {COMPANIES}) n;
        INSERT INTO company (id, name, parent_id, time_zone, billing_segregation_enabled_at, created_at)
        SELECT c.id, 'Bench company ' || c.n, p.id, 'America/Toronto',
               CASE WHEN {UNSEGREGATED.replace('n ', 'c.n ').replace('(n', '(c.n')} THEN NULL ELSE now() END, now()
        FROM bench_company c LEFT JOIN bench_company p ON p.n = c.parent_n
        ORDER BY c.parent_n NULLS FIRST;""")
    await step(conn, "users and providers", f"""
        CREATE TABLE bench_user AS
        SELECT n, gen_random_uuid() AS id, 1 + n % {COMPANIES} AS company_n, n <= {providers} AS is_provider
        FROM generate_series(1, {users}) n;
        CREATE INDEX ON bench_user (company_n);
        INSERT INTO app_user (id, company_id, email, username, display_name, password_hash, status, account_type,
                              kind, is_provider, billing_number, permissions, token_version, created_at, updated_at)
        SELECT u.id, c.id, 'u' || u.n || '@bench.example', 'u' || u.n, 'User ' || u.n, $1, 'active', 'standard',
               'member', u.is_provider, CASE WHEN u.is_provider THEN 'B' || u.n END, '{{}}', 1, now(), now()
        FROM bench_user u JOIN bench_company c ON c.n = u.company_n;
        CREATE TABLE bench_provider AS
        SELECT row_number() OVER (ORDER BY n) - 1 AS i, id, company_n,
               (random() * 8.99)::int AS entries
        FROM bench_user WHERE is_provider;
        CREATE UNIQUE INDEX ON bench_provider (i);""".replace("$1", literal))
    await step(conn, "groups and members", f"""
        CREATE TABLE bench_group AS
        SELECT g, gen_random_uuid() AS id, 1 + g % {COMPANIES} AS company_n, 10 + (random() * 190)::int AS size
        FROM generate_series(1, {groups}) g;
        INSERT INTO user_group (id, company_id, name, permissions, created_at)
        SELECT g.id, c.id, 'Group ' || g.g, '{{}}', now() FROM bench_group g JOIN bench_company c ON c.n = g.company_n;
        INSERT INTO group_member (group_id, user_id)
        SELECT g.id, m.id FROM bench_group g
        CROSS JOIN LATERAL (SELECT id FROM bench_user u WHERE u.company_n = g.company_n
                            ORDER BY random() LIMIT g.size) m;""")
    await step(conn, "delegation lists (0-8 entries)", f"""
        INSERT INTO delegation_entry (id, provider_id, user_id, group_id, role, permissions, created_at)
        SELECT gen_random_uuid(), p.id, u.id, NULL, preset.role, preset.permissions, now()
        FROM bench_provider p
        CROSS JOIN LATERAL (SELECT id FROM bench_user u WHERE u.company_n = p.company_n AND u.id <> p.id
                            ORDER BY random() LIMIT p.entries - p.entries / 3) u
        JOIN {presets_sql()} ON preset.role = (ARRAY['financial_viewer', 'data_entry', 'administrator'])
                                              [1 + (abs(hashtext(u.id::text)) % 3)];
        INSERT INTO delegation_entry (id, provider_id, user_id, group_id, role, permissions, created_at)
        SELECT gen_random_uuid(), p.id, NULL, g.id, preset.role, preset.permissions, now()
        FROM bench_provider p
        CROSS JOIN LATERAL (SELECT id FROM bench_group g WHERE g.company_n = p.company_n
                            ORDER BY random() LIMIT p.entries / 3) g
        JOIN {presets_sql()} ON preset.role = 'financial_viewer';
        INSERT INTO delegation_list (provider_id, version, updated_at)
        SELECT DISTINCT provider_id, 1, now() FROM delegation_entry;""")
    per_company = max(1, patients // COMPANIES)
    await step(conn, "patients", f"""
        CREATE TABLE bench_patient AS
        SELECT c.n AS company_n, j, gen_random_uuid() AS id, c.id AS company_id
        FROM bench_company c CROSS JOIN generate_series(0, {per_company - 1}) j;
        CREATE UNIQUE INDEX ON bench_patient (company_n, j);
        INSERT INTO patient (id, company_id, first_name, last_name, created_at)
        SELECT id, company_id, 'Patient', 'No ' || company_n || '-' || j, now() FROM bench_patient;""")
    await step(conn, "a payer per company", """
        ALTER TABLE bench_company ADD COLUMN payer_id uuid;
        UPDATE bench_company SET payer_id = gen_random_uuid();
        INSERT INTO payer (id, company_id, name, created_at) SELECT payer_id, id, 'Mutual ' || n, now()
        FROM bench_company;""")

    index_definitions = [row["indexdef"] for row in await conn.fetch(
        "SELECT indexdef FROM pg_indexes WHERE tablename = 'bill' AND indexname NOT LIKE 'pk_%'")]
    await step(conn, "drop bill indexes for the load", "; ".join(
        f"DROP INDEX {row['indexname']}" for row in await conn.fetch(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'bill' AND indexname NOT LIKE 'pk_%'")))
    # Skewed like a real network: a few providers bill a lot, most a few hundred.
    await step(conn, f"{bills:,} bills", f"""
        INSERT INTO bill (id, company_id, provider_id, patient_id, coverage, payer_id, status, source, service_date,
                          total_cents, balance_cents, created_at, updated_at)
        SELECT gen_random_uuid(), pt.company_id, p.id, pt.id,
               CASE WHEN x.r2 < 0.7 THEN 'insured'::bill_coverage ELSE 'private'::bill_coverage END,
               CASE WHEN x.r2 < 0.7 THEN c.payer_id END,
               (ARRAY['draft', 'submitted', 'submitted', 'paid', 'paid', 'paid', 'void'])[1 + (x.r2 * 7)::int % 7]
                   ::bill_status,
               'manual', (x.at)::date, 5000 + (x.r2 * 20000)::int, (x.r2 * 5000)::int, x.at, x.at
        FROM (SELECT floor({providers} * power(random(), 2.2))::int AS pi, random() AS r1, random() AS r2,
                     now() - random() * interval '730 days' AS at
              FROM generate_series(1, {bills})) x
        JOIN bench_provider p ON p.i = x.pi
        JOIN bench_patient pt ON pt.company_n = p.company_n AND pt.j = floor(x.r1 * {per_company})::int
        JOIN bench_company c ON c.n = p.company_n;""")
    await step(conn, "bill indexes", "; ".join(index_definitions))

    await step(conn, "caller classes", f"""
        CREATE TABLE bench_caller (class text PRIMARY KEY, user_id uuid NOT NULL, username text NOT NULL);
        -- a: a provider in a segregated company who sees only their own bills
        WITH counts AS (
            SELECT b.provider_id, count(*) AS bills FROM bill b
            JOIN app_user u ON u.id = b.provider_id JOIN company c ON c.id = u.company_id
            WHERE c.billing_segregation_enabled_at IS NOT NULL GROUP BY b.provider_id),
        chosen AS (SELECT provider_id FROM counts ORDER BY abs(bills - 500), provider_id LIMIT 1)
        INSERT INTO bench_caller SELECT 'a_provider', u.id, u.username FROM app_user u JOIN chosen ON chosen.provider_id = u.id;
        DELETE FROM delegation_entry WHERE user_id = (SELECT user_id FROM bench_caller WHERE class = 'a_provider');
        DELETE FROM group_member WHERE user_id = (SELECT user_id FROM bench_caller WHERE class = 'a_provider');
        -- the segregated company with the most providers hosts the delegates
        CREATE TABLE bench_home AS
        SELECT c.id AS company_id, c.n FROM bench_company c JOIN company co ON co.id = c.id
        WHERE co.billing_segregation_enabled_at IS NOT NULL
        ORDER BY (SELECT count(*) FROM bench_provider p WHERE p.company_n = c.n) DESC, c.n LIMIT 1;
        INSERT INTO app_user (id, company_id, email, username, display_name, password_hash, status, account_type,
                              kind, is_provider, permissions, token_version, created_at, updated_at)
        SELECT gen_random_uuid(), h.company_id, v.username || '@bench.example', v.username, v.username, $1,
               'active', v.account_type::account_type, 'member', false, '{{}}', 1, now(), now()
        FROM bench_home h, (VALUES ('bench.delegate5', 'standard'), ('bench.delegate40', 'standard'),
                                   ('bench.everything', 'standard'), ('bench.support', 'support')) v(username, account_type);
        INSERT INTO app_user (id, company_id, email, username, display_name, password_hash, status, account_type,
                              kind, is_provider, permissions, token_version, created_at, updated_at)
        SELECT gen_random_uuid(), c.id, 'bench.parentadmin@bench.example', 'bench.parentadmin', 'Parent admin', $1,
               'active', 'company_admin', 'member', false, '{{}}', 1, now(), now()
        FROM bench_company c WHERE c.n = 1;
        INSERT INTO bench_caller
        SELECT CASE username WHEN 'bench.delegate5' THEN 'b_delegate_5' WHEN 'bench.delegate40' THEN 'c_delegate_40'
                             WHEN 'bench.parentadmin' THEN 'd_parent_admin' WHEN 'bench.support' THEN 'e_support'
                             ELSE 'f_everything' END, id, username
        FROM app_user WHERE username LIKE 'bench.%';
        -- b: one group on five providers' lists; c: six groups over about forty providers
        CREATE TABLE bench_home_provider AS
        SELECT p.id, row_number() OVER (ORDER BY p.i) AS k FROM bench_provider p JOIN bench_home h ON h.n = p.company_n;
        INSERT INTO user_group (id, company_id, name, permissions, created_at)
        SELECT gen_random_uuid(), h.company_id, 'Bench group ' || g, '{{}}', now() FROM bench_home h, generate_series(0, 6) g;
        INSERT INTO group_member (group_id, user_id)
        SELECT g.id, (SELECT user_id FROM bench_caller WHERE class = 'b_delegate_5') FROM user_group g WHERE g.name = 'Bench group 0'
        UNION ALL
        SELECT g.id, (SELECT user_id FROM bench_caller WHERE class = 'c_delegate_40') FROM user_group g
        WHERE g.name LIKE 'Bench group %' AND g.name <> 'Bench group 0';
        INSERT INTO delegation_entry (id, provider_id, group_id, role, permissions, created_at)
        SELECT gen_random_uuid(), hp.id, g.id, 'financial_viewer', ARRAY['bills:view', 'invoices:pay', 'invoices:view', 'reports:generate'], now()
        FROM bench_home_provider hp JOIN user_group g
          ON (g.name = 'Bench group 0' AND hp.k <= 5)
          OR (g.name LIKE 'Bench group %' AND g.name <> 'Bench group 0' AND hp.k <= 40
              AND (hp.k % 6) = (substring(g.name from 13)::int - 1))
        ON CONFLICT DO NOTHING;
        -- f: named on every provider's list (as one invited login serving a whole network would be)
        INSERT INTO delegation_entry (id, provider_id, user_id, role, permissions, created_at)
        SELECT gen_random_uuid(), p.id, (SELECT user_id FROM bench_caller WHERE class = 'f_everything'),
               'financial_viewer', ARRAY['bills:view', 'invoices:pay', 'invoices:view', 'reports:generate'], now()
        FROM bench_provider p;""".replace("$1", literal))
    await conn.close()
    # VACUUM cannot run in a transaction block: its own connection, autocommit.
    conn = await asyncpg.connect(url)
    await step(conn, "vacuum analyze", "VACUUM ANALYZE")
    counts = await conn.fetchrow("""SELECT (SELECT count(*) FROM bill) AS bills,
        (SELECT count(*) FROM app_user WHERE is_provider) AS providers, (SELECT count(*) FROM app_user) AS users,
        (SELECT count(*) FROM user_group) AS groups, (SELECT count(*) FROM delegation_entry) AS entries,
        (SELECT min(c) FROM (SELECT count(*) c FROM bill GROUP BY provider_id) x) AS min_bills,
        (SELECT max(c) FROM (SELECT count(*) c FROM bill GROUP BY provider_id) x) AS max_bills""")
    await conn.close()
    print(f"built in {time.perf_counter() - started:.0f} s: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0, help="1.0 = one million bills (default)")
    parser.add_argument("--database-url", help="PostgreSQL URL; default: embedded server in bench/.data")
    args = parser.parse_args()
    asyncio.run(generate(database_url(args.database_url), args.scale))


if __name__ == "__main__":
    main()
