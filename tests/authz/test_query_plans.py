"""The authorized first page of GET /v1/bills uses the indexes, never a sequential scan of the bill table,
on a data set of 100,000 bills, for every class of caller, with fresh and with generic plans."""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import select, text
from sqlalchemy.dialects import postgresql

from billing_api.authz.permissions import Permission
from billing_api.authz.scope import bill_scope
from billing_api.bills.repository import BillFilters, BillRepository
from billing_api.models import AccountType, Bill, DelegationEntry
from tests.authz.world import build_world

BILLS = 100_000
PROVIDERS = 200


async def _load(session, world) -> None:
    """Bulk rows the way the benchmark builds them: set-based SQL."""
    await session.execute(text("""
        INSERT INTO app_user (id, company_id, email, username, display_name, status, account_type, kind,
                              is_provider, billing_number, permissions, token_version, created_at, updated_at)
        SELECT gen_random_uuid(), :company, 'bulk' || g || '@example.org', 'bulk' || g, 'Bulk Provider ' || g,
               'active', 'standard', 'member', true, 'BN' || g, '{}', 1, now(), now()
        FROM generate_series(1, :providers) g"""), {"company": world.clinic.id, "providers": PROVIDERS})
    await session.execute(text("""
        WITH providers AS (SELECT id, row_number() OVER (ORDER BY id) AS n FROM app_user WHERE username LIKE 'bulk%')
        INSERT INTO bill (id, company_id, provider_id, patient_id, coverage, status, source, service_date,
                          total_cents, balance_cents, created_at, updated_at)
        SELECT gen_random_uuid(), :company, p.id, :patient,
               CASE WHEN g % 3 = 0 THEN 'private'::bill_coverage ELSE 'insured'::bill_coverage END,
               'submitted', 'manual', date '2026-01-01' + (g % 300),
               10000, 10000, now() - make_interval(mins => g), now()
        FROM generate_series(1, :bills) g JOIN providers p ON p.n = 1 + (g % :providers)"""),
        {"company": world.clinic.id, "patient": world.patient.id, "bills": BILLS, "providers": PROVIDERS})
    await session.execute(text("ANALYZE app_user"))
    await session.execute(text("ANALYZE bill"))
    await session.execute(text("ANALYZE delegation_entry"))
    await session.execute(text("ANALYZE group_member"))


def _scans(plan: dict) -> list[tuple[str, str | None]]:
    found = [(plan["Node Type"], plan.get("Relation Name"))]
    for child in plan.get("Plans", []):
        found += _scans(child)
    return found


@pytest.fixture
async def big_world(factory, session):
    world = await build_world(factory, segregated=True)
    await _load(session, world)
    # A delegate through a group that five bulk providers list.
    providers = (await session.execute(text("SELECT id FROM app_user WHERE username LIKE 'bulk%' LIMIT 5"))).scalars()
    for provider_id in providers:
        session.add(DelegationEntry(id=uuid.uuid4(), provider_id=provider_id, group_id=world.group_id,
                                    role="financial_viewer", permissions=["bills:view"]))
    await session.flush()
    return world


CLASSES = ["owner", "group_delegate", "support", "company_wide"]


async def _plan(session, world, caller: str, generic: bool) -> dict:
    if caller == "company_wide":
        # Segregation off for this class: everyone in the clinic sees all of it.
        await session.execute(text("UPDATE company SET billing_segregation_enabled_at = NULL WHERE id = :id"),
                              {"id": world.clinic.id})
        caller = "staff"
    user = world.users[caller]
    scope = bill_scope(user.id, Permission.BILLS_VIEW, is_support=user.account_type == AccountType.support)
    statement, params = BillRepository(session, scope).dashboard_statement(BillFilters(), 51)
    compiled = statement.params(params).compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
    if not generic:
        return (await session.execute(text(f"EXPLAIN (FORMAT JSON) {compiled}"))).scalar_one()[0]["Plan"]
    # A prepared statement with parameters, forced onto the generic plan PostgreSQL switches to after
    # five executions (docs/performance.md, "The plan cache").
    asyncpg_compiled = statement.params(params).compile(dialect=session.bind.dialect)
    values = [asyncpg_compiled.params[name] for name in asyncpg_compiled.positiontup]
    raw = await (await session.connection()).get_raw_connection()
    driver = raw.driver_connection
    await driver.execute("SET LOCAL plan_cache_mode = force_generic_plan")
    prepared = await driver.prepare(f"EXPLAIN (FORMAT JSON) {asyncpg_compiled}")
    result = await prepared.fetchval(*values)
    return json.loads(result)[0]["Plan"] if isinstance(result, str) else result[0]["Plan"]


async def test_first_page_uses_indexes_and_answers_like_the_row_predicate(session, big_world):
    """One load of 100,000 bills, then every class of caller, with fresh and generic plans."""
    failures = []
    for caller in CLASSES:
        for generic in (False, True):
            scans = _scans(await _plan(session, big_world, caller, generic))
            bill_scans = [node for node, relation in scans if relation == "bill"]
            if not bill_scans or "Seq Scan" in bill_scans or not any(
                node in ("Index Scan", "Index Only Scan") for node in bill_scans
            ):
                failures.append((caller, "generic" if generic else "fresh", scans))
    assert not failures, failures

    # The three-mode statement returns exactly the rows the plain row predicate returns, in order
    # (the loop above left segregation off; then it goes on).
    for segregated, sizes in (
        (False, {"owner": 51, "group_delegate": 51, "support": 51, "staff": 51}),
        (True, {"owner": 2, "group_delegate": 51, "support": 51, "staff": 0}),
    ):
        await session.execute(text("UPDATE company SET billing_segregation_enabled_at = "
                                   + ("now()" if segregated else "NULL") + " WHERE id = :id"),
                              {"id": big_world.clinic.id})
        for caller, size in sizes.items():
            user = big_world.users[caller]
            scope = bill_scope(user.id, Permission.BILLS_VIEW,
                               is_support=user.account_type == AccountType.support)
            page = [bill.id for bill in await BillRepository(session, scope).page(BillFilters(), 50, None)]
            reference = (await session.execute(
                select(Bill.id).where(scope.allows(Bill.provider_id, Bill.company_id))
                .order_by(Bill.created_at.desc(), Bill.id.desc()).limit(51), scope.params
            )).scalars().all()
            assert page == list(reference), (caller, segregated)
            assert len(page) == size, (caller, segregated)
