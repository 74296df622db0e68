"""The audit events and the access log are append-only (the database refuses UPDATE, DELETE and TRUNCATE) and
hash-chained: verification passes on a clean chain and finds the first link a superuser broke."""

from __future__ import annotations

import asyncio
import itertools
import os
import sys

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from billing_api.access_log.repository import (
    CHAINED_TABLES,
    verify_chain,
    verify_chains,
)
from billing_api.audit.service import record
from billing_api.migrations_runner import alembic_config
from tests.access_log.helpers import CHANGES, assert_change_refused
from tests.authz.world import build_world


async def fill(client, factory, session, reads: int = 3) -> None:
    """Audit events and access-log entries written by the real code paths."""
    world = await build_world(factory, segregated=False)
    for n in range(reads):
        record(session, None, "test.event", details={"n": n, "note": None})
        response = await client.get(f"/v1/bills/{world.insured_bill.id}", headers=factory.headers(world.owner))
        assert response.status_code == 200
    await session.commit()  # audit events are inserted at commit (a savepoint of the test's transaction)


async def own_chain(session, table: str) -> int:
    """The chain this transaction's rows of `table` went into (each transaction keeps to one)."""
    return int((await session.execute(text(f"SELECT current_setting('billing_api.chain_of_{table}')"))).scalar_one())


async def tamper(session, statement: str, **params) -> None:
    """What a superuser can do: switch off the triggers for the session."""
    await session.execute(text("SET session_replication_role = replica"))
    await session.execute(text(statement), params)
    await session.execute(text("SET session_replication_role = origin"))


@pytest.mark.parametrize("table", CHAINED_TABLES)
@pytest.mark.parametrize("change", CHANGES)
async def test_the_database_refuses_changes(client, factory, session, table, change):
    await fill(client, factory, session, reads=1)
    await assert_change_refused(session, table, change)


async def test_a_clean_chain_verifies_and_links_each_row_to_the_previous(client, factory, session):
    await fill(client, factory, session)
    for report in await verify_chains(session):
        assert report.ok and report.rows >= 3 and sum(head.seq for head in report.heads) == report.rows, report
        assert all(len(head.hash) == 64 for head in report.heads)
    audit = await verify_chain(session, "audit_event")
    assert [head.chain_id for head in audit.heads] == [0]  # the audit events are one chain
    chain = await own_chain(session, "access_log")
    rows = (await session.execute(text(
        "SELECT chain_seq, prev_hash, row_hash FROM access_log WHERE chain_id = :chain ORDER BY chain_seq"),
        {"chain": chain})).all()
    assert len(rows) >= 3 and [seq for seq, _, _ in rows] == list(range(1, len(rows) + 1))
    assert rows[0].prev_hash is None
    assert all(later.prev_hash == earlier.row_hash for earlier, later in itertools.pairwise(rows))


@pytest.mark.parametrize("table", CHAINED_TABLES)
async def test_an_altered_row_is_found(client, factory, session, table):
    await fill(client, factory, session)
    chain = await own_chain(session, table)
    await tamper(session, f"UPDATE {table} SET created_at = created_at - interval '1 day' "
                          "WHERE chain_id = :chain AND chain_seq = 2", chain=chain)
    report = await verify_chain(session, table)
    assert (report.broken_chain, report.broken_at, report.problem) == (chain, 2, "altered_row")


async def test_a_rehashed_row_breaks_the_next_link(client, factory, session):
    """Someone who alters a row and recomputes its hash still breaks the link from the row after it."""
    await fill(client, factory, session)
    await tamper(session, "UPDATE audit_event SET action = 'nothing.happened' WHERE chain_seq = 2")
    await tamper(session, "UPDATE audit_event a SET row_hash = chain_hash(prev_hash, a) WHERE chain_seq = 2")
    report = await verify_chain(session, "audit_event")
    assert (report.broken_chain, report.broken_at, report.problem) == (0, 3, "broken_link")


@pytest.mark.parametrize("table", CHAINED_TABLES)
async def test_a_removed_row_is_found(client, factory, session, table):
    await fill(client, factory, session)
    chain = await own_chain(session, table)
    await tamper(session, f"DELETE FROM {table} WHERE chain_id = :chain AND chain_seq = 2", chain=chain)
    report = await verify_chain(session, table)
    assert (report.broken_chain, report.broken_at, report.problem) == (chain, 3, "missing_rows")


async def test_concurrent_readers_take_separate_chains_and_do_not_wait(live):
    """The log's point of several chains: two open transactions that have each logged a read do not wait for
    each other (under one chain the second insert would wait for the first's commit: here, a lock timeout)."""
    _, factory = live
    world = await build_world(factory, segregated=False)
    await factory.session.commit()
    insert = text("""INSERT INTO access_log (id, actor_id, route, surface, permission, provider_ids, patient_ids,
                     grants, record_count) VALUES (gen_random_uuid(), :actor, '/test', 'test', 'bills:view',
                     '{}', '{}', '[]', 0)""")
    engine = factory.session.bind
    async with engine.connect() as first, engine.connect() as second:
        chains = []
        for connection in (first, second):
            await connection.execute(text("SET LOCAL lock_timeout = '3s'"))
            await connection.execute(insert, {"actor": world.owner.id})
            chains.append(int((await connection.execute(
                text("SELECT current_setting('billing_api.chain_of_access_log')"))).scalar_one()))
            await connection.execute(insert, {"actor": world.owner.id})  # a second row stays in the same chain
        assert chains[0] != chains[1]
        rows = (await first.execute(text(
            "SELECT chain_id FROM access_log WHERE route = '/test' AND actor_id = :actor"),
            {"actor": world.owner.id})).scalars().all()
        assert rows == [chains[0]] * 2
        await first.rollback()
        await second.rollback()


async def test_concurrent_reads_keep_unbroken_chains(live):
    """Real commits from many requests at once (the pool's connections in parallel): spread over chains, no
    fork, no gap in any, and `billing-api verify-audit` agrees."""
    http, factory = live
    world = await build_world(factory, segregated=False)
    await factory.session.commit()
    headers = [factory.headers(world.users[name]) for name in ("owner", "delegate_user", "staff", "company_admin")]
    before = (await factory.session.execute(text("SELECT count(*) FROM access_log"))).scalar_one()
    await factory.session.commit()

    async def read(n: int):
        return await http.get(f"/v1/bills/{world.insured_bill.id}", headers=headers[n % len(headers)])

    responses = await asyncio.gather(*(read(n) for n in range(40)))
    assert [r.status_code for r in responses] == [200] * 40
    links = (await factory.session.execute(text(
        "SELECT chain_id, array_agg(chain_seq ORDER BY chain_seq) FROM access_log GROUP BY chain_id"))).all()
    assert sum(len(seqs) for _, seqs in links) == before + 40
    assert all(seqs == list(range(1, len(seqs) + 1)) for _, seqs in links)
    assert len(links) >= 2  # 40 requests at once over the pool's connections did not all queue on one chain
    for report in await verify_chains(factory.session):
        assert report.ok, report
    await factory.session.commit()

    url = factory.session.bind.engine.url.render_as_string(hide_password=False)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "billing_api", "verify-audit", stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env={**os.environ, "BILLING_API_DATABASE_URL": url, "BILLING_API_ENV": "test"},
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    lines = out.decode().splitlines()
    assert [line.split('"table": ')[1].split(",")[0] for line in lines] == ['"audit_event"', '"access_log"']
    assert all('"ok": true' in line for line in lines)
    assert f'"rows": {before + 40},' in lines[1]


async def test_the_migration_chains_the_audit_events_already_there(connection):
    """Migration 0010 on a database with audit events: they join the chain in the order they were written,
    and the chain verifies (all inside the test's transaction, rolled back after)."""

    def down_insert_up(sync) -> None:
        config = alembic_config()
        config.attributes["connection"] = sync
        command.downgrade(config, "0009")
        sync.execute(text("""INSERT INTO audit_event (id, action, details, created_at)
            SELECT gen_random_uuid(), 'before.0010', jsonb_build_object('n', n), now() - n * interval '1 minute'
            FROM generate_series(1, 3) n"""))
        command.upgrade(config, "head")

    await connection.run_sync(down_insert_up)
    rows = (await connection.execute(text(
        "SELECT chain_seq, details->>'n' FROM audit_event WHERE action = 'before.0010' ORDER BY chain_seq"))).all()
    assert [n for _, n in rows] == ["3", "2", "1"]  # oldest first
    async with AsyncSession(bind=connection) as session:
        report = await verify_chain(session, "audit_event")
    assert report.ok and report.rows >= 3, report


@pytest.mark.parametrize("table", CHAINED_TABLES)
async def test_chain_head_holds_each_chains_last_link(client, factory, session, table):
    """The trigger finds a link's place in `chain_head`, not in the (partitioned) table: it keeps each chain's
    last seq and hash, as the rows say."""
    await fill(client, factory, session)
    report = await verify_chain(session, table)
    heads = (await session.execute(text(
        "SELECT chain_id, last_seq, encode(last_hash, 'hex') FROM chain_head WHERE table_name = :table "
        "AND last_seq > 0 ORDER BY chain_id"), {"table": table})).all()
    assert [(head.chain_id, head.seq, head.hash) for head in report.heads] == [tuple(head) for head in heads]
    # A row cut from a chain's end shows against its head.
    chain = await own_chain(session, table)
    last = next(head.seq for head in report.heads if head.chain_id == chain)
    await tamper(session, f"DELETE FROM {table} WHERE chain_id = :chain AND chain_seq = :seq", chain=chain, seq=last)
    report = await verify_chain(session, table)
    assert (report.broken_chain, report.broken_at, report.problem) == (chain, last + 1, "missing_rows")
