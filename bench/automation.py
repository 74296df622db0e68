"""Time one night of billing automation for one company with 100,000 patients and 200,000 encounters.

    .venv/bin/python bench/automation.py [--scale 1.0] [--database-url postgresql://...]

Builds the data with set-based SQL in its OWN database, `billing_automation_bench` (dropped and re-created; the
1M-bill data set of bench/generate.py is left alone), on the embedded PostgreSQL in bench/.data unless a URL is
given; then runs the night of 2026-11-01 (America/Toronto) through the worker's code: bill creation (daily mode:
every October session, one bill per encounter), AutoPay, superbills (day 1: October), statements (the first night:
every patient still owing for October after AutoPay), then sharing at +60 min.
Prints the figures as JSON and one human line.

Data: 100 providers; every patient shares bills and superbills after 60 minutes and has a notice email;
20% have AutoPay with a `tok_success` card, 2% with `tok_decline`; 30% have superbills on; 2% of the
encounters are imported without CPT codes; statements are made but not shared (statement sharing off, the default).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import database_url, sqlalchemy_url  # noqa: E402

from billing_api.automation import jobs, repository  # noqa: E402
from billing_api.config import Settings  # noqa: E402
from billing_api.db import make_engine, make_sessionmaker  # noqa: E402
from billing_api.migrations_runner import upgrade  # noqa: E402
from billing_api.models import AutomationStage  # noqa: E402

DATABASE = "billing_automation_bench"
NIGHT = date(2026, 11, 1)
ZONE = "America/Toronto"


async def build(url: str, patients: int, encounters: int, providers: int) -> None:
    conn = await asyncpg.connect(url)
    await conn.execute(f"SET synchronous_commit = off")
    steps = {
        "company": f"""
            INSERT INTO company (id, name, time_zone, created_at) VALUES (gen_random_uuid(), 'Automation bench', '{ZONE}', now());
            INSERT INTO company_billing_automation (company_id, bill_creation, superbill_day, share_bills,
                bill_delay_minutes, share_superbills, superbill_delay_minutes, share_statements, statement_delay_minutes,
                autopay_enabled, updated_at)
            SELECT id, 'daily', 1, true, 60, true, 60, false, 60, true, now() FROM company;""",
        "providers": f"""
            INSERT INTO app_user (id, company_id, email, username, display_name, password_hash, status, account_type,
                                  kind, is_provider, billing_number, permissions, token_version, created_at, updated_at)
            SELECT gen_random_uuid(), c.id, 'p' || n || '@bench.example', 'p' || n, 'Provider ' || n, 'x', 'active',
                   'standard', 'member', true, 'B' || n, '{{}}', 1, now(), now()
              FROM company c, generate_series(1, {providers}) n;
            CREATE TABLE bench_provider AS SELECT row_number() OVER (ORDER BY id) - 1 AS i, id FROM app_user;""",
        "patients and settings": f"""
            CREATE TABLE bench_patient AS SELECT n, gen_random_uuid() AS id FROM generate_series(1, {patients}) n;
            INSERT INTO patient (id, company_id, first_name, last_name, created_at)
            SELECT p.id, c.id, 'Patient', 'No ' || p.n, now() FROM bench_patient p, company c;
            INSERT INTO patient_billing_settings (patient_id, company_id, superbills_enabled, share_bills,
                bill_delay_minutes, share_superbills, superbill_delay_minutes, share_statements, statement_delay_minutes,
                autopay_enabled, notice_email, updated_at)
            SELECT p.id, c.id, p.n % 10 < 3, true, 60, true, 60, false, 60, p.n % 50 < 11,
                   'patient' || p.n || '@bench.example', now()
              FROM bench_patient p, company c;
            INSERT INTO payment_card (id, company_id, patient_id, token, brand, last4, exp_month, exp_year, active,
                                      created_at)
            SELECT gen_random_uuid(), c.id, p.id, CASE WHEN p.n % 50 = 10 THEN 'tok_decline' ELSE 'tok_success' END,
                   'visa', '4242', 12, 2030, true, now()
              FROM bench_patient p, company c WHERE p.n % 50 < 11;""",
        "encounters and lines": f"""
            CREATE TABLE bench_encounter AS
            SELECT e, gen_random_uuid() AS id, 1 + (e * 7919) % {patients} AS patient_n,
                   e % {providers} AS provider_i, DATE '2026-10-01' + (e % 31) AS service_date, e % 50 = 0 AS imported
              FROM generate_series(1, {encounters}) e;
            INSERT INTO encounter (id, company_id, patient_id, provider_id, service_date, imported, created_at)
            SELECT e.id, c.id, p.id, pr.id, e.service_date, e.imported, now()
              FROM bench_encounter e JOIN bench_patient p ON p.n = e.patient_n
              JOIN bench_provider pr ON pr.i = e.provider_i, company c;
            INSERT INTO encounter_line (id, encounter_id, position, code_system, code, description, units, fee_cents)
            SELECT gen_random_uuid(), e.id, k, CASE WHEN NOT e.imported THEN 'cpt'::service_code_system END,
                   CASE WHEN NOT e.imported THEN '9083' || k END, 'Session', 1,
                   12000 + 1000 * k
              FROM bench_encounter e, generate_series(1, 2) k WHERE k = 1 OR e.e % 3 = 0;
            ANALYZE;""",
    }
    for label, sql in steps.items():
        started = time.perf_counter()
        await conn.execute(sql)
        print(f"  {label}: {time.perf_counter() - started:.1f}s", flush=True)
    await conn.close()


async def main(url: str, scale: float) -> None:
    patients, encounters, providers = int(100_000 * scale), int(200_000 * scale), max(10, int(100 * scale))
    admin = await asyncpg.connect(url)
    await admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    await admin.execute(f"CREATE DATABASE {DATABASE}")
    await admin.close()
    bench_url = url.rsplit("/", 1)[0] + "/" + DATABASE if "?" not in url else \
        url.split("?")[0].rsplit("/", 1)[0] + "/" + DATABASE + "?" + url.split("?", 1)[1]
    await upgrade(sqlalchemy_url(bench_url))
    print(f"building: {patients:,} patients, {encounters:,} encounters, {providers} providers", flush=True)
    await build(bench_url, patients, encounters, providers)

    settings = Settings()
    engine = make_engine(sqlalchemy_url(bench_url), 5, 5)
    sessionmaker = make_sessionmaker(engine)
    async with sessionmaker() as session:
        [(company_id, _, _)] = await repository.scheduled_companies(session)
    midnight = datetime(NIGHT.year, NIGHT.month, NIGHT.day, 0, 5, tzinfo=ZoneInfo(ZONE)).astimezone(UTC)
    figures: dict = {"patients": patients, "encounters": encounters, "providers": providers,
                     "night": NIGHT.isoformat(), "seconds": {}}
    for stage, instant in ((AutomationStage.bills, midnight), (AutomationStage.autopay, midnight + timedelta(minutes=30)),
                           (AutomationStage.superbills, midnight),
                           (AutomationStage.statements, midnight + timedelta(minutes=30))):
        started = time.perf_counter()
        async with sessionmaker() as session, session.begin():
            await jobs.run_stage(session, company_id, NIGHT, stage, settings=settings, now=instant)
        figures["seconds"][stage.value] = round(time.perf_counter() - started, 2)
        async with sessionmaker() as session:
            figures[stage.value] = (await repository.get_run(session, company_id, NIGHT, stage)).counts
    started = time.perf_counter()
    shared = notices = 0
    while True:
        async with sessionmaker() as session, session.begin():
            s, n = await repository.share_due(session, midnight + timedelta(minutes=61))
        shared, notices = shared + s, notices + n
        if s == 0:
            break
    figures["seconds"]["shares"] = round(time.perf_counter() - started, 2)
    figures["shares"] = {"documents_shared": shared, "notices_queued": notices}
    await engine.dispose()
    print(json.dumps(figures, indent=2))
    b, a, s, st = figures["bills"], figures["autopay"], figures["superbills"], figures["statements"]
    print(f"night of {NIGHT} for {patients:,} patients / {encounters:,} encounters: "
          f"{b['bills_created']:,} bills in {figures['seconds']['bills']}s "
          f"(skipped {b['skipped_imported']:,} imported); AutoPay charged {a['bills_charged']:,} bills, "
          f"{a['declined']:,} declined in {figures['seconds']['autopay']}s; "
          f"{s['superbills_created']:,} superbills in {figures['seconds']['superbills']}s; "
          f"{st['statements_created']:,} statements listing {st['bills_listed']:,} bills in "
          f"{figures['seconds']['statements']}s; "
          f"{shared:,} documents shared with {notices:,} notices in {figures['seconds']['shares']}s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--database-url", help="PostgreSQL server URL; default: embedded server in bench/.data")
    args = parser.parse_args()
    asyncio.run(main(database_url(args.database_url), args.scale))
