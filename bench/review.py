"""The access review at 10,000,000 access-log rows: one provider (P) whom 1,000 people can read, two years of
reads by them and by a few other providers' people, then the review measured against the access list.

    .venv/bin/python bench/review.py generate [--rows 10000000] [--database-url postgresql://...]
    .venv/bin/python bench/review.py run [--rounds 60] [--clients 4] [--skip-roll-up] [--fresh-rows N]

`generate` (re)creates the database named in the URL (default: review_bench on the local PostgreSQL),
applies the migrations and loads the log with set-based SQL, triggers off. The log's chain columns are
synthetic: chain_id = n % 16, chain_seq counts up within each chain and prev_hash is the previous row's
row_hash, but row_hash is not the hash of the row's content, so `billing-api verify-audit` reports the bench
database's chains as altered. `run` rolls the log up as the worker does (timed: the first roll-up folds every
row), adds a day of reads that stay not rolled up, starts `billing-api serve` with 2 workers, logs in as P and
measures the first and deeper pages of GET /v1/providers/{P}/access and of GET /v1/providers/{P}/access-review,
interleaved, and the whole review as CSV once. Figures: docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
from argon2 import PasswordHasher

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BENCH_PASSWORD, server_env, sqlalchemy_url  # noqa: E402
from generate import presets_sql  # noqa: E402
from run import compiled, free_port, percentile, start_server, wait_ready  # noqa: E402

from billing_api.access_log import repository as access_log_repository  # noqa: E402
from billing_api.authz.permissions import Permission  # noqa: E402
from billing_api.authz.scope import ACTOR  # noqa: E402
from billing_api.migrations_runner import upgrade  # noqa: E402

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/review_bench"
END = datetime(2026, 11, 30, tzinfo=timezone.utc)  # fixed, so that runs on different days see the same log
MONTHS = 24
NAMED = 700  # people named on P's list by user
GROUPS, GROUP_SIZE = 3, 100  # groups named on P's list
OTHER_PROVIDERS, OTHERS_PEOPLE = 4, 50  # providers Q1..Q4 of the same company, each with their own people
PATIENTS = 5_000
CHUNK = 1_000_000
PROVIDER_USERNAME = "review.provider"
# Who reads when, by person (P's people): a tenth never read (dormant grants), a tenth only in the first six
# months, a tenth stopped 60 days before the end (in the 90-day count, not the 30-day one), the rest throughout.
PATTERNS = ("never", "early", "stopped", "steady", "steady", "steady", "steady", "steady", "steady", "steady")
FIRST_NAMES = ["Ada", "Ben", "Chloe", "Dev", "Elena", "Farid", "Grace", "Hugo", "Iris", "Jonas", "Kira", "Liam",
               "Maya", "Noah", "Olga", "Priya", "Quinn", "Rosa", "Sami", "Tara", "Uma", "Victor", "Wen", "Yusuf"]
LAST_NAMES = ["Abbott", "Bergeron", "Chen", "Dubois", "Evans", "Fortin", "Gagnon", "Haddad", "Ibrahim", "Jensen",
              "Khan", "Lavoie", "Morin", "Nguyen", "Okafor", "Patel", "Roy", "Singh", "Tremblay", "Wong"]


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


async def step(conn: asyncpg.Connection, label: str, sql: str, *args) -> float:
    started = time.perf_counter()
    await conn.execute(sql, *args)
    elapsed = time.perf_counter() - started
    print(f"  {label:<44} {elapsed:7.1f} s", flush=True)
    return elapsed


# ---------------------------------------------------------------- generate

async def fresh_database(url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    admin = await asyncpg.connect(with_database(url, "postgres"))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()


async def people(conn: asyncpg.Connection, password_hash: str) -> None:
    """The company (segregation on), P, Q1..Q4, P's 700 named people and 3 groups of 100, each Q's people, one
    support user, the patients. Every user logs in with BENCH_PASSWORD."""
    await conn.execute("""
        CREATE TABLE bench_person (n int PRIMARY KEY, id uuid NOT NULL, role text NOT NULL, of_provider int,
                                   pattern text NOT NULL)""")
    await conn.execute("""
        INSERT INTO company (id, name, time_zone, billing_segregation_enabled_at, created_at)
        VALUES (gen_random_uuid(), 'Review bench clinic', 'America/Toronto', $1, $1)""", END - timedelta(days=800))
    company_id = await conn.fetchval("SELECT id FROM company")
    rows = [(0, "provider", 0)] + [(q, "provider", q) for q in range(1, OTHER_PROVIDERS + 1)]
    rows += [(100 + i, "named", 0) for i in range(NAMED)]
    rows += [(1000 + i, "group_member", 0) for i in range(GROUPS * GROUP_SIZE)]
    rows += [(2000 + i, "other_people", 1 + i // OTHERS_PEOPLE) for i in range(OTHER_PROVIDERS * OTHERS_PEOPLE)]
    rows += [(3000, "support", None)]
    records = []
    for n, role, of_provider in rows:
        # A person's reading habit, spread over each population (P's named people and its group members alike).
        pattern = PATTERNS[(n * 7) % 10] if role in ("named", "group_member") else "steady"
        records.append((n, uuid.uuid4(), role, of_provider, pattern))
    await conn.copy_records_to_table("bench_person", records=records)
    await conn.execute("""
        INSERT INTO app_user (id, company_id, email, username, display_name, password_hash, status, account_type,
                              kind, is_provider, billing_number, permissions, token_version, created_at, updated_at)
        SELECT p.id, $1, 'review' || p.n || '@bench.example',
               CASE WHEN p.n = 0 THEN $3 ELSE 'review.' || p.n END,
               CASE p.role WHEN 'provider' THEN 'Dr ' || ($4::text[])[1 + p.n] || ' ' || ($5::text[])[1 + p.n]
                           WHEN 'support' THEN 'Vendor Support'
                           ELSE ($5::text[])[1 + (p.n * 7) % cardinality($5::text[])] || ', '
                                || ($4::text[])[1 + (p.n * 11) % cardinality($4::text[])] || ' ' || p.n END,
               $2, 'active', CASE WHEN p.role = 'support' THEN 'support' ELSE 'standard' END::account_type,
               'member', p.role = 'provider', CASE WHEN p.role = 'provider' THEN 'RB' || p.n END, '{}', 1,
               $6, $6
        FROM bench_person p""", company_id, password_hash, PROVIDER_USERNAME, FIRST_NAMES, LAST_NAMES,
                       END - timedelta(days=800))
    await conn.execute(f"""
        CREATE TABLE bench_group AS SELECT g, gen_random_uuid() AS id FROM generate_series(1, {GROUPS}) g;
        INSERT INTO user_group (id, company_id, name, permissions, created_at)
        SELECT g.id, c.id, 'Front desk ' || g.g, '{{}}', now() FROM bench_group g, company c;
        INSERT INTO group_member (group_id, user_id)
        SELECT g.id, p.id FROM bench_person p JOIN bench_group g ON g.g = 1 + (p.n - 1000) / {GROUP_SIZE}
        WHERE p.role = 'group_member';
        -- P's list: the named people in the three roles, and the three groups; Q1 also names group 1, Q2 also
        -- names the first hundred of P's named people, so some of P's people read other providers' bills too.
        CREATE TABLE bench_provider AS SELECT p.n AS q, p.id FROM bench_person p WHERE p.role = 'provider';
        INSERT INTO delegation_entry (id, provider_id, user_id, group_id, role, permissions, created_at)
        SELECT gen_random_uuid(), pr.id, p.id, NULL, preset.role, preset.permissions, now()
        FROM bench_person p JOIN bench_provider pr ON pr.q = 0
        JOIN {presets_sql()} ON preset.role = (ARRAY['financial_viewer', 'data_entry', 'administrator'])
                                              [1 + p.n % 3]
        WHERE p.role = 'named';
        INSERT INTO delegation_entry (id, provider_id, user_id, group_id, role, permissions, created_at)
        SELECT gen_random_uuid(), pr.id, NULL, g.id, preset.role, preset.permissions, now()
        FROM bench_group g JOIN bench_provider pr ON pr.q = 0 OR (pr.q = 1 AND g.g = 1)
        JOIN {presets_sql()} ON preset.role = 'financial_viewer';
        INSERT INTO delegation_entry (id, provider_id, user_id, group_id, role, permissions, created_at)
        SELECT gen_random_uuid(), pr.id, p.id, NULL, preset.role, preset.permissions, now()
        FROM bench_person p JOIN bench_provider pr ON pr.q = p.of_provider OR (pr.q = 2 AND p.n BETWEEN 100 AND 199)
        JOIN {presets_sql()} ON preset.role = 'financial_viewer'
        WHERE p.role = 'other_people' OR (p.role = 'named' AND pr.q = 2);
        INSERT INTO delegation_list (provider_id, version, updated_at)
        SELECT DISTINCT provider_id, 1, now() FROM delegation_entry;
        CREATE TABLE bench_patient AS
        SELECT i, gen_random_uuid() AS id FROM generate_series(0, {PATIENTS - 1}) i;
        INSERT INTO patient (id, company_id, first_name, last_name, created_at)
        SELECT p.id, c.id, 'Patient', 'No ' || p.i, now() FROM bench_patient p, company c;""")


async def read_kinds(conn: asyncpg.Connection) -> None:
    """bench_kind: every (reader, providers shown) the log holds, with the `grants` the service's own statement
    records for it, and how often it is read in each era (0: the first six months, 1: until 60 days before the
    end, 2: the last 60 days); bench_slot: the kinds of each era, repeated by weight, for the rows to draw from."""
    company_id = await conn.fetchval("SELECT id FROM company")
    provider = {row["q"]: row["id"] for row in await conn.fetch("SELECT q, id FROM bench_provider")}
    group_of = {row["user_id"]: row["g"] for row in await conn.fetch(
        "SELECT m.user_id, g.g FROM group_member m JOIN bench_group g ON g.id = m.group_id")}
    kinds: list[tuple[uuid.UUID, list[uuid.UUID], int]] = []  # (actor, providers shown, weight)
    eras: list[tuple[int, ...]] = []
    for person in await conn.fetch("SELECT n, id, role, of_provider, pattern FROM bench_person ORDER BY n"):
        n, actor, role = person["n"], person["id"], person["role"]
        era = {"never": (), "early": (0,), "stopped": (0, 1), "steady": (0, 1, 2)}[person["pattern"]]
        heavy = 1 + (n * 13) % 5  # some read five times as much as others
        if role == "provider":
            shown = [([provider[person["of_provider"]]], 20 if n == 0 else 60)]
        elif role == "support":
            shown = [([provider[0]], 30)]
        elif role == "other_people":
            shown = [([provider[person["of_provider"]]], 6 * heavy)]
        else:
            shown = [([provider[0]], 10 * heavy)]
            if group_of.get(actor) == 1:  # on Q1's list through the group as well
                shown += [([provider[1]], heavy), ([provider[0], provider[1]], heavy)]
            if role == "named" and 100 <= n < 200:  # named on Q2's list as well
                shown += [([provider[2]], heavy)]
        for providers, weight in shown:
            kinds.append((actor, providers, weight))
            eras.append(era)

    statement = access_log_repository._grants(Permission.BILLS_VIEW)
    records = []
    for k, ((actor, providers, weight), era) in enumerate(zip(kinds, eras)):
        sql, args = compiled(statement, {ACTOR: actor, "shown_provider_ids": providers,
                                         "shown_company_ids": [company_id] * len(providers), "policy_grants": "[]"})
        grants = await conn.fetchval(sql, *args)
        records.append((k, actor, sorted(providers), grants, weight, list(era)))
    await conn.execute("""CREATE TABLE bench_kind (k int PRIMARY KEY, actor_id uuid NOT NULL,
                              provider_ids uuid[] NOT NULL, grants jsonb NOT NULL, weight int NOT NULL,
                              eras int[] NOT NULL)""")
    await conn.copy_records_to_table("bench_kind", records=records)
    empty = await conn.fetchval("SELECT count(*) FROM bench_kind WHERE grants = '[]'::jsonb")
    if empty:
        raise RuntimeError(f"{empty} read kinds have no grants: the data set does not match the rules")
    await conn.execute("""
        CREATE TABLE bench_slot AS
        SELECT e.era, (row_number() OVER (PARTITION BY e.era ORDER BY k.k, w) - 1)::int AS slot, k.k
        FROM bench_kind k CROSS JOIN LATERAL unnest(k.eras) AS e(era) CROSS JOIN generate_series(1, k.weight) w;
        CREATE UNIQUE INDEX ON bench_slot (era, slot);
        CREATE TABLE bench_era AS SELECT era, count(*)::int AS slots FROM bench_slot GROUP BY era;
        ANALYZE bench_slot; ANALYZE bench_era; ANALYZE bench_kind;""")


async def log_definitions(conn: asyncpg.Connection) -> tuple[list[str], list[str]]:
    """The access log's constraints backed by an index (primary key, unique) and its other indexes, as SQL that
    re-creates them, so the load can drop them and build each once at the end."""
    constraints = [f"ALTER TABLE access_log ADD CONSTRAINT {row['conname']} {row['def']}"
                   for row in await conn.fetch("""
        SELECT conname, pg_get_constraintdef(oid) AS def FROM pg_constraint
        WHERE conrelid = 'access_log'::regclass AND contype IN ('p', 'u') ORDER BY conname""")]
    # A partitioned log's index reads "ON ONLY access_log", which would make an invalid index for the parent alone.
    indexes = [row["indexdef"].replace(" ON ONLY ", " ON ") for row in await conn.fetch("""
        SELECT pg_get_indexdef(i.indexrelid) AS indexdef FROM pg_index i
        WHERE i.indrelid = 'access_log'::regclass
          AND i.indexrelid NOT IN (SELECT conindid FROM pg_constraint WHERE conrelid = 'access_log'::regclass)""")]
    return constraints, indexes


def row_select(rows: int, first: int, last: int, chained: bool = True) -> str:
    """Rows n = first .. last of `rows`, evenly over the MONTHS before END (n in time order, so chain_seq grows
    with time; n >= rows fall after END at the same pace), each drawing its reader and providers from its era's
    slots. With `chained`, the synthetic chain columns too (for a load with triggers off)."""
    chain = """,
               (t.n % 16)::smallint, t.n / 16 + 1,
               CASE WHEN t.n >= 16 THEN sha256(int8send(t.n - 16)) END, sha256(int8send(t.n))""" if chained else ""
    return f"""
        WITH numbered AS (
            SELECT n, {epoch_start()} + (n + 0.5) * {span_seconds()} / {rows} AS at_epoch,
                   abs(hashint8(n)::bigint) AS h1, abs(hashint8(n + 7919::bigint * {rows})::bigint) AS h2
            FROM generate_series({first}::bigint, {last}::bigint) n
        ), timed AS (
            SELECT n, to_timestamp(at_epoch) AS at, h1, h2,
                   CASE WHEN at_epoch < {epoch_of(months_before_end(MONTHS - 6))} THEN 0
                        WHEN at_epoch < {epoch_of(END - timedelta(days=60))} THEN 1 ELSE 2 END AS era
            FROM numbered
        )
        SELECT gen_random_uuid(), t.at, k.actor_id,
               CASE t.h2 % 10 WHEN 0 THEN '/v1/patients/{{patient_id}}/bills' WHEN 1 THEN '/v1/bills/{{bill_id}}'
                              WHEN 2 THEN '/v1/bills/{{bill_id}}' WHEN 3 THEN '/v1/bills/{{bill_id}}'
                              ELSE '/v1/bills' END,
               CASE t.h2 % 10 WHEN 0 THEN 'patient_chart' WHEN 1 THEN 'bill' WHEN 2 THEN 'bill' WHEN 3 THEN 'bill'
                              ELSE 'billing_dashboard' END,
               'bills:view', k.provider_ids,
               CASE WHEN t.h2 % 10 BETWEEN 0 AND 3 THEN ARRAY[pt.ids[1 + t.h1 % {PATIENTS}]]
                    ELSE ARRAY[pt.ids[1 + t.h1 % {PATIENTS}], pt.ids[1 + t.h2 % {PATIENTS}],
                               pt.ids[1 + (t.h1 + t.h2) % {PATIENTS}]] END,
               k.grants,
               CASE WHEN t.h2 % 10 BETWEEN 1 AND 3 THEN 1 ELSE 1 + (t.h2 / 10) % 50 END,
               '10.0.' || (t.h1 / 7 % 200) || '.' || (t.h1 / 3 % 250), 'Mozilla/5.0 (review bench)'{chain}
        FROM timed t
        JOIN bench_era e ON e.era = t.era
        JOIN bench_slot s ON s.era = t.era AND s.slot = t.h1 % e.slots
        JOIN bench_kind k ON k.k = s.k
        CROSS JOIN (SELECT array_agg(id ORDER BY i) AS ids FROM bench_patient) pt"""


READ_COLUMNS = ("id, created_at, actor_id, route, surface, permission, provider_ids, patient_ids, grants, "
                "record_count, client_address, user_agent")
LOG_COLUMNS = READ_COLUMNS + ", chain_id, chain_seq, prev_hash, row_hash"


def months_before_end(months: int) -> datetime:
    year, month = divmod(END.year * 12 + END.month - 1 - months, 12)
    return END.replace(year=year, month=month + 1)


def epoch_of(moment: datetime) -> float:
    return moment.timestamp()


def epoch_start() -> float:
    return epoch_of(months_before_end(MONTHS))


def span_seconds() -> float:
    return epoch_of(END) - epoch_start()


async def partitions(conn: asyncpg.Connection) -> int:
    """When the log is partitioned by month, `access_log_partition(month)` makes each month's partition."""
    if not await conn.fetchval("SELECT count(*) FROM pg_proc WHERE proname = 'access_log_partition'"):
        return 0
    start = months_before_end(MONTHS).replace(day=1)
    month, made = start, 0
    while month <= END + timedelta(days=31):  # and the month after END, for the reads `run` adds
        await conn.execute("SELECT access_log_partition($1::date)", month.date())
        made += 1
        year, index = divmod(month.year * 12 + month.month, 12)
        month = month.replace(year=year, month=index + 1)
    return made


async def chain_heads(conn: asyncpg.Connection) -> int:
    """When chain_head keeps each chain's last link, it names the loaded log's last rows."""
    if not await conn.fetchval("SELECT to_regclass('chain_head') IS NOT NULL"):
        return 0
    await conn.execute("DELETE FROM chain_head WHERE table_name = 'access_log'")
    return int((await conn.execute("""
        INSERT INTO chain_head (table_name, chain_id, last_seq, last_hash)
        SELECT DISTINCT ON (chain_id) 'access_log', chain_id, chain_seq, row_hash
        FROM access_log ORDER BY chain_id, chain_seq DESC""")).split()[-1])


async def generate(url: str, rows: int) -> None:
    started = time.perf_counter()
    print(f"building {urlsplit(url).path.lstrip('/')}: {rows:,} access-log rows over {MONTHS} months before "
          f"{END.date()}", flush=True)
    await fresh_database(url)
    await upgrade(sqlalchemy_url(url))
    password_hash = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(BENCH_PASSWORD)
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("SET synchronous_commit = off")
        began = time.perf_counter()
        await people(conn, password_hash)
        # `rows` sets the pace of the log's time; `next_n` is where the reads `run` adds continue.
        await conn.execute(f"CREATE TABLE bench_meta AS SELECT {rows:d}::bigint AS rows, {rows:d}::bigint AS next_n")
        await read_kinds(conn)
        print(f"  {'people, lists, groups, read kinds':<44} {time.perf_counter() - began:7.1f} s", flush=True)
        made = await partitions(conn)
        if made:
            print(f"  {made} monthly partitions made by access_log_partition()", flush=True)
        constraints, indexes = await log_definitions(conn)
        # Triggers off for the load (chain links and the append-only guard, foreign keys): a superuser only.
        await conn.execute("SET session_replication_role = replica")
        await step(conn, "drop the log's indexes for the load", "; ".join(
            [f"ALTER TABLE access_log DROP CONSTRAINT {d.split()[5]}" for d in constraints]
            + [f"DROP INDEX {d.split(' INDEX ')[1].split()[0]}" for d in indexes]) or "SELECT 1")
        load_started = time.perf_counter()
        for first in range(0, rows, CHUNK):
            last = min(rows, first + CHUNK) - 1
            await step(conn, f"rows {first + 1:,} - {last + 1:,}",
                       f"INSERT INTO access_log ({LOG_COLUMNS}) {row_select(rows, first, last)}")
        await conn.execute("SET maintenance_work_mem = '1GB'")
        for definition in constraints + indexes:
            await step(conn, definition.split(" ON ")[0].split(" CONSTRAINT ")[-1][:44], definition)
        heads = await chain_heads(conn)
        if heads:
            print(f"  chain_head: {heads} access-log chains", flush=True)
        await conn.execute("SET session_replication_role = origin")
        load = time.perf_counter() - load_started
    finally:
        await conn.close()
    conn = await asyncpg.connect(url)
    try:
        analyze = await step(conn, "vacuum analyze", "VACUUM ANALYZE")
        counts = await conn.fetchrow(f"""
            SELECT (SELECT count(*) FROM access_log) AS log_rows,
                   pg_size_pretty(pg_database_size(current_database())) AS database_size,
                   (SELECT count(*) FROM access_log WHERE provider_ids @> ARRAY[p.id]) AS rows_about_p,
                   (SELECT count(DISTINCT actor_id) FROM access_log WHERE provider_ids @> ARRAY[p.id]) AS p_readers
            FROM app_user p WHERE p.username = '{PROVIDER_USERNAME}'""")
    finally:
        await conn.close()
    print(f"loaded {rows:,} rows with their indexes in {load:.0f} s (+ {analyze:.0f} s vacuum analyze); built in "
          f"{time.perf_counter() - started:.0f} s: " + ", ".join(f"{k} {v:,}" if isinstance(v, int) else f"{k} {v}"
                                                                 for k, v in counts.items()), flush=True)


# ---------------------------------------------------------------- run

def cli_has(command: str) -> bool:
    billing_api = Path(sys.executable).with_name("billing-api")
    usage = subprocess.run([str(billing_api), "--help"], capture_output=True, text=True).stdout
    return command in usage


async def roll_up(url: str) -> dict:
    """The first roll-up of the whole log: the `billing-api roll-up-usage` command if there is one, else the
    service's function in one session per call until it folds nothing more."""
    started = time.perf_counter()
    if cli_has("roll-up-usage"):
        billing_api = Path(sys.executable).with_name("billing-api")
        subprocess.run([str(billing_api), "roll-up-usage"], env=server_env(url), check=True)
        return {"roll_up_s": time.perf_counter() - started, "roll_up_via": "billing-api roll-up-usage"}
    from sqlalchemy.ext.asyncio import async_sessionmaker

    from billing_api.access_review.service import roll_up_usage
    from billing_api.db import make_engine

    engine = make_engine(sqlalchemy_url(url))  # the service's connection settings and 60 s command timeout
    folded, calls = 0, []
    try:
        sessions = async_sessionmaker(engine)
        while True:  # as the worker does: a chunk per transaction until nothing is left
            began = time.perf_counter()
            async with sessions() as session, session.begin():
                count = await roll_up_usage(session)
            calls.append(time.perf_counter() - began)
            folded += count
            if not count:
                break
    finally:
        await engine.dispose()
    return {"roll_up_s": time.perf_counter() - started, "roll_up_rows": folded, "roll_up_calls": len(calls),
            "roll_up_slowest_call_s": max(calls), "roll_up_via": "roll_up_usage(), a transaction per call"}


async def fresh_reads(url: str, count: int | None) -> dict:
    """`count` reads after END (default: a day's), not yet rolled up (as there always are some), inserted as the
    service inserts them: triggers on, so the database chains them."""
    conn = await asyncpg.connect(url)
    try:
        rows, first = await conn.fetchrow("SELECT rows, next_n FROM bench_meta")
        if count is None:
            count = int(rows * 86_400 / span_seconds())
        started = time.perf_counter()
        async with conn.transaction():
            await conn.execute(f"INSERT INTO access_log ({READ_COLUMNS}) "
                               f"{row_select(rows, first, first + count - 1, chained=False)}")
            await conn.execute("UPDATE bench_meta SET next_n = next_n + $1", count)
        return {"fresh_rows": count, "fresh_rows_insert_s": time.perf_counter() - started}
    finally:
        await conn.close()


class Job:
    def __init__(self, name: str, path: str, params: dict) -> None:
        self.name, self.path, self.params, self.times = name, path, params, []


async def deep_cursor(client: httpx.AsyncClient, path: str, headers: dict, pages: int) -> tuple[str | None, int]:
    """The cursor of page `pages + 1` (or of the last page when there are fewer), found by walking."""
    cursor, walked = None, 0
    for _ in range(pages):
        params = {"limit": 50} | ({"cursor": cursor} if cursor else {})
        response = await client.get(path, params=params, headers=headers)
        response.raise_for_status()
        following = response.json().get("next_cursor")
        if not following:
            break
        cursor, walked = following, walked + 1
    return cursor, walked


async def measure(base: str, provider_id: uuid.UUID, rounds: int, clients: int) -> dict:
    async with httpx.AsyncClient(base_url=base, timeout=300) as client:
        response = await client.post("/v1/auth/token", data={"username": PROVIDER_USERNAME,
                                                             "password": BENCH_PASSWORD})
        response.raise_for_status()
        headers = {"Authorization": f"Bearer {response.json()['access_token']}"}
        routes = {"access": f"/v1/providers/{provider_id}/access",
                  "review": f"/v1/providers/{provider_id}/access-review"}
        jobs, walked = [], {}
        for label, path in routes.items():
            jobs.append(Job(f"{label}_first", path, {"limit": 50}))
            for depth in (9, 19):  # pages 10 and 20 (of about 20: 1,000 people by 50)
                cursor, walked[f"{label}_page{depth + 1}"] = await deep_cursor(client, path, headers, depth)
                jobs.append(Job(f"{label}_page{depth + 1}", path, {"limit": 50} | ({"cursor": cursor} if cursor
                                                                                   else {})))
        failures: dict[str, int] = {}

        async def worker(seed: int) -> None:
            order = random.Random(seed)
            for run in range(rounds + 5):
                for job in order.sample(jobs, len(jobs)):
                    began = time.perf_counter()
                    answer = await client.get(job.path, params=job.params, headers=headers)
                    if answer.status_code != 200:
                        failures[f"{job.name} {answer.status_code}"] = failures.get(
                            f"{job.name} {answer.status_code}", 0) + 1
                    if run >= 5:  # the first rounds warm the caches and the plans
                        job.times.append(time.perf_counter() - began)

        await asyncio.gather(*(worker(seed) for seed in range(clients)))
        figures: dict = {"clients": clients, "rounds": rounds, "failures": failures, "pages_walked": walked}
        for job in jobs:
            figures[f"{job.name}_p50_ms"] = percentile(job.times, 0.50) * 1000
            figures[f"{job.name}_p95_ms"] = percentile(job.times, 0.95) * 1000
            figures[f"{job.name}_requests"] = len(job.times)
        for label in routes:
            times = [t for job in jobs if job.name.startswith(label) for t in job.times]
            figures[f"{label}_p50_ms"] = percentile(times, 0.50) * 1000
            figures[f"{label}_p95_ms"] = percentile(times, 0.95) * 1000
        began = time.perf_counter()
        answer = await client.get(routes["review"], headers={**headers, "Accept": "text/csv"})
        figures["review_csv_s"] = time.perf_counter() - began
        figures["review_csv_status"] = answer.status_code
        figures["review_csv_lines"] = answer.text.count("\n")
        figures["review_csv_bytes"] = len(answer.content)
    return figures


async def run(url: str, rounds: int, clients: int, skip_roll_up: bool, fresh: int | None) -> dict:
    conn = await asyncpg.connect(url)
    try:
        provider_id = await conn.fetchval("SELECT id FROM app_user WHERE username = $1", PROVIDER_USERNAME)
        figures: dict = {
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
                       f"PostgreSQL {conn.get_server_version().major}",
            "access_log_rows": await conn.fetchval("SELECT count(*) FROM access_log"),
            "database_size": await conn.fetchval("SELECT pg_size_pretty(pg_database_size(current_database()))"),
        }
    finally:
        await conn.close()
    await upgrade(sqlalchemy_url(url))  # a database built before the latest migrations (serve would, too late)
    if not skip_roll_up:
        print("rolling up the log...", file=sys.stderr, flush=True)
        figures |= await roll_up(url)
    if fresh != 0:
        figures |= await fresh_reads(url, fresh)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_server(url, port)
    try:
        await wait_ready(base, server)
        print(f"measuring ({clients} clients, {rounds} rounds)...", file=sys.stderr, flush=True)
        figures |= await measure(base, provider_id, rounds, clients)
    finally:
        server.terminate()
        server.wait(timeout=30)
    figures["review_vs_access_p95_ratio"] = figures["review_p95_ms"] / figures["access_p95_ms"]
    figures["goal_review_p95_le_50ms"] = "met" if figures["review_p95_ms"] <= 50 else "missed"
    figures["goal_review_p95_le_5x_access"] = "met" if figures["review_vs_access_p95_ratio"] <= 5 else "missed"
    return figures


def human(figures: dict) -> str:
    lines = [f"access review bench, {figures['date']}: {figures['access_log_rows']:,} access-log rows, database "
             f"{figures['database_size']}; {figures['machine']}; server: 2 workers; {figures['clients']} clients"]
    if "roll_up_s" in figures:
        lines.append(f"  roll-up ({figures['roll_up_via']}): {figures['roll_up_s']:.1f} s"
                     + (f", {figures['roll_up_rows']:,} rows in {figures['roll_up_calls']} calls (slowest "
                        f"{figures['roll_up_slowest_call_s']:.1f} s)"
                        if "roll_up_rows" in figures else ""))
    if "fresh_rows" in figures:
        lines.append(f"  then {figures['fresh_rows']:,} reads not rolled up, inserted with the chain trigger in "
                     f"{figures['fresh_rows_insert_s']:.1f} s")
    lines.append(f"  {'request':<24}{'p50 ms':>9}{'p95 ms':>9}{'n':>7}")
    for key in figures:
        if key.endswith("_requests"):
            name = key.removesuffix("_requests")
            lines.append(f"  {name:<24}{figures[name + '_p50_ms']:>9.1f}{figures[name + '_p95_ms']:>9.1f}"
                         f"{figures[key]:>7}")
    if "review_p95_ms" in figures:
        lines.append(f"  review p95 {figures['review_p95_ms']:.1f} ms, {figures['review_vs_access_p95_ratio']:.2f} x "
                     f"access p95 ({figures['access_p95_ms']:.1f} ms)")
        lines.append(f"  goal review p95 <= 50 ms: {figures['goal_review_p95_le_50ms']}; goal review p95 <= 5 x "
                     f"access p95: {figures['goal_review_p95_le_5x_access']}")
        lines.append(f"  whole review as CSV: {figures['review_csv_s'] * 1000:.0f} ms "
                     f"({figures['review_csv_status']}, {figures['review_csv_lines']} lines)")
    else:
        lines.append(f"  access p95 {figures['access_p95_ms']:.1f} ms (no access review on this branch yet)")
    if figures["failures"]:
        lines.append(f"  failures: {figures['failures']}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("generate", help="(re)create the database and load the access log")
    build.add_argument("--rows", type=int, default=10_000_000, help="access-log rows (default 10,000,000)")
    measure_it = commands.add_parser("run", help="roll up, then measure /access and /access-review")
    measure_it.add_argument("--rounds", type=int, default=60, help="rounds over every page per client (default 60)")
    measure_it.add_argument("--clients", type=int, default=4, help="concurrent clients (default 4)")
    measure_it.add_argument("--skip-roll-up", action="store_true", help="measure without rolling up first")
    measure_it.add_argument("--fresh-rows", type=int,
                            help="reads added after the roll-up, not rolled up (default: a day's, 13,700 of 10M)")
    for command in (build, measure_it):
        command.add_argument("--database-url", default=DEFAULT_URL, help=f"PostgreSQL URL (default {DEFAULT_URL})")
    args = parser.parse_args()
    url = args.database_url.replace("postgresql+asyncpg://", "postgresql://")
    if args.command == "generate":
        asyncio.run(generate(url, args.rows))
        return
    figures = asyncio.run(run(url, args.rounds, args.clients, args.skip_roll_up, args.fresh_rows))
    print(json.dumps(figures, indent=2, default=str))
    print(human(figures), file=sys.stderr)
    sys.exit(1 if figures["failures"] else 0)


if __name__ == "__main__":
    main()
