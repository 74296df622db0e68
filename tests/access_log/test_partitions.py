"""The access log is partitioned by month (UTC): rows land in their month's partition, or in the default one when
their month has none; the chains verify across partitions; the retention drops only whole months past it, recorded
in the audit events, and verification reports those cuts while a partition dropped by hand is missing rows.
Every partition is append-only. All in the test's transaction (partitions made and dropped are rolled back)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import select, text

from billing_api.access_log import repository
from billing_api.access_log.repository import verify_chain
from billing_api.authz.permissions import Permission
from billing_api.housekeeping import service as housekeeping
from billing_api.migrations_runner import alembic_config
from billing_api.models import AuditEvent
from tests.access_log.helpers import CHANGES, assert_change_refused
from tests.authz.world import build_world

ACCESS_LOG_LOCK_KEY = 80_011  # migration 0010's lock key of the access log's chains


async def into_chain(session, chain: int) -> None:
    """Make this transaction's next access-log rows go into `chain`, as the trigger would once it had its lock."""
    await session.execute(text("SELECT pg_advisory_xact_lock(:key, :chain)"),
                          {"key": ACCESS_LOG_LOCK_KEY, "chain": chain})
    await session.execute(text("SELECT set_config('billing_api.chain_of_access_log', :chain, true)"),
                          {"chain": str(chain)})


async def log_reads(session, world, *moments: datetime, route: str = "/partition-test") -> None:
    """One entry per moment, read by the owner at that time, inserted as the access log's writer does."""
    entries = []
    for moment in moments:
        params = repository.entry_params(
            actor_id=world.owner.id, permission=Permission.BILLS_VIEW, route=route, surface="bill",
            pairs=[(world.owner.id, world.insured_bill.company_id)], patient_ids=[world.patient.id],
            record_count=1, client_address=None, user_agent=None)
        entry = await repository.granted_entry(session, Permission.BILLS_VIEW, params)
        entries.append({**entry, "read_at": moment})
    await repository.insert_granted(await session.connection(), entries)


async def placed(session, route: str = "/partition-test") -> list[tuple[datetime, str]]:
    return [tuple(row) for row in (await session.execute(text(
        "SELECT created_at, tableoid::regclass::text FROM access_log WHERE route = :route ORDER BY created_at"),
        {"route": route})).all()]


async def make_months(session, *months: date) -> None:
    for month in months:
        assert await repository.make_partition(session, month) == f"access_log_y{month:%Y}m{month:%m}"


def at(text_: str) -> datetime:
    return datetime.fromisoformat(text_).astimezone(UTC)


async def test_reads_land_in_their_months_partition_or_the_default(factory, session):
    world = await build_world(factory, segregated=False)
    await make_months(session, date(2031, 1, 1), date(2031, 2, 1))
    moments = [at("2031-01-15T12:00:00+00:00"), at("2031-01-31T23:59:59+00:00"), at("2031-02-01T00:00:00+00:00"),
               at("2031-01-31T20:30:00-05:00"),  # 2031-02-01T01:30Z: the month is UTC's
               at("2031-03-10T08:00:00+00:00")]  # no partition for March
    await log_reads(session, world, *moments)
    assert await placed(session) == [
        (moments[0], "access_log_y2031m01"), (moments[1], "access_log_y2031m01"),
        (moments[2], "access_log_y2031m02"), (moments[3], "access_log_y2031m02"),
        (moments[4], "access_log_default")]
    # Idempotent for a month that has its partition; none for a month with rows in the default partition.
    assert await repository.make_partition(session, date(2031, 1, 20)) == "access_log_y2031m01"
    assert await repository.make_partition(session, date(2031, 3, 1)) is None
    assert date(2031, 3, 1) in await repository.months_in_default_partition(session)
    report = await verify_chain(session, "access_log")
    assert report.ok and report.default_partition_rows >= 1, report


async def test_housekeeping_keeps_three_months_ahead_but_not_over_rows_in_the_default(factory, session, settings,
                                                                                      caplog):
    world = await build_world(factory, segregated=False)
    await log_reads(session, world, at("2035-07-04T10:00:00+00:00"))  # July 2035 has no partition: default
    result = await housekeeping.keep_access_log_partitions(session, settings, now=at("2035-05-20T00:00:00+00:00"))
    assert result == {"made": ["2035-05", "2035-06", "2035-08"], "dropped": []}
    assert "2035-07" in caplog.text
    months = await repository.month_partitions(session)
    assert {date(2035, 5, 1), date(2035, 6, 1), date(2035, 8, 1)} <= set(months)
    assert date(2035, 7, 1) not in months
    # A second pass has nothing to make.
    assert (await housekeeping.keep_access_log_partitions(
        session, settings, now=at("2035-05-21T00:00:00+00:00")))["made"] == []


async def test_chains_verify_across_partitions(factory, session):
    world = await build_world(factory, segregated=False)
    await make_months(session, date(2032, 1, 1), date(2032, 2, 1), date(2032, 3, 1))
    for chain in (3, 7, 12):
        await into_chain(session, chain)
        await log_reads(session, world, at("2032-01-10T00:00:00+00:00"), at("2032-03-05T00:00:00+00:00"),
                        at("2032-02-20T00:00:00+00:00"), at("2032-01-11T00:00:00+00:00"))
    rows = (await session.execute(text(
        "SELECT DISTINCT chain_id, tableoid::regclass::text FROM access_log WHERE route = '/partition-test'"))).all()
    assert {chain for chain, _ in rows} == {3, 7, 12} and len({partition for _, partition in rows}) == 3
    report = await verify_chain(session, "access_log")
    assert report.ok and report.cuts == [] and report.rows >= 12, report


async def test_retention_drops_whole_past_months_and_verification_reports_the_cut(factory, session, settings):
    world = await build_world(factory, segregated=False)
    months = [date(2001, 1, 1), date(2001, 2, 1), date(2001, 3, 1)]
    await make_months(session, *months)
    for chain in (4, 9):
        await into_chain(session, chain)
        # Out of time order within a chain, as the writer may insert them: January's rows are two runs.
        await log_reads(session, world, at("2001-01-05T00:00:00+00:00"), at("2001-01-06T00:00:00+00:00"),
                        at("2001-02-01T00:00:00+00:00"), at("2001-01-31T23:59:59+00:00"),
                        at("2001-02-02T00:00:00+00:00"), at("2001-03-03T00:00:00+00:00"))
    january = (await session.execute(text(
        "SELECT chain_id, chain_seq, row_hash FROM access_log_y2001m01 ORDER BY chain_id, chain_seq"))).all()
    assert len(january) == 6
    kept = settings.model_copy(update={"access_log_retention_years": 1})

    # 2002-02-28: January 2001 ended more than a year ago, February 2001 not quite.
    result = await housekeeping.keep_access_log_partitions(session, kept, now=at("2002-02-28T12:00:00+00:00"))
    assert result["dropped"] == ["2001-01"]
    await session.commit()  # the audit event goes in at commit (a savepoint of the test's transaction)
    partitions = await repository.month_partitions(session)
    assert date(2001, 1, 1) not in partitions and {date(2001, 2, 1), date(2001, 3, 1)} <= set(partitions)

    event = (await session.execute(select(AuditEvent).where(AuditEvent.action == repository.MONTH_DROPPED)
                                   .order_by(AuditEvent.chain_seq.desc()).limit(1))).scalar_one()
    assert event.actor_id is None
    assert (event.details["month"], event.details["rows"]) == ("2001-01", 6)
    expected_runs = []
    for chain in (4, 9):
        seqs = [(seq, row_hash) for chain_id, seq, row_hash in january if chain_id == chain]
        # Seqs n, n+1, then n+3 (February 1st came between): two runs.
        assert [seq for seq, _ in seqs] == [seqs[0][0], seqs[0][0] + 1, seqs[0][0] + 3]
        expected_runs += [{"chain_id": chain, "from_seq": seqs[0][0], "to_seq": seqs[1][0],
                           "last_row_hash": seqs[1][1].hex()},
                          {"chain_id": chain, "from_seq": seqs[2][0], "to_seq": seqs[2][0],
                           "last_row_hash": seqs[2][1].hex()}]
    assert event.details["runs"] == expected_runs

    report = await verify_chain(session, "access_log")
    assert report.ok, report
    assert [(cut.month, cut.rows) for cut in report.cuts if cut.month == "2001-01"] == [("2001-01", 6)]
    assert (await verify_chain(session, "audit_event")).ok

    # A month dropped by hand, with no record of it, is rows missing where the chain goes on.
    await session.execute(text("DROP TABLE access_log_y2001m02"))
    report = await verify_chain(session, "access_log")
    assert not report.ok and report.problem == "missing_rows" and report.broken_chain == 4, report


async def test_a_partition_dropped_by_hand_at_a_chains_end_is_missing_rows(factory, session):
    """The chain's head (`chain_head`) remembers rows no later row links to."""
    world = await build_world(factory, segregated=False)
    await make_months(session, date(2033, 1, 1))
    await into_chain(session, 6)
    await log_reads(session, world, at("2033-01-05T00:00:00+00:00"), at("2033-01-06T00:00:00+00:00"))
    assert (await verify_chain(session, "access_log")).ok
    last = (await session.execute(text("SELECT last_seq FROM chain_head "
                                       "WHERE table_name = 'access_log' AND chain_id = 6"))).scalar_one()
    await session.execute(text("DROP TABLE access_log_y2033m01"))
    report = await verify_chain(session, "access_log")
    assert (report.broken_chain, report.broken_at, report.problem) == (6, last + 1, "missing_rows"), report


@pytest.mark.parametrize("table", ["access_log", "access_log_y2034m01", "access_log_default"])
@pytest.mark.parametrize("change", CHANGES)
async def test_every_partition_is_append_only(factory, session, table, change):
    world = await build_world(factory, segregated=False)
    await make_months(session, date(2034, 1, 1))
    await log_reads(session, world, at("2034-01-15T00:00:00+00:00"), at("2034-05-15T00:00:00+00:00"))
    await assert_change_refused(session, table, change)


async def test_the_partitioning_migration_keeps_every_row_and_link(connection, factory, session):
    """Down to a plain table and up again: the same rows with the same chain columns, in their months."""
    world = await build_world(factory, segregated=False)
    await make_months(session, date(2031, 5, 1))
    await log_reads(session, world, at("2031-05-15T00:00:00+00:00"), at("2031-05-16T00:00:00+00:00"))
    await session.commit()  # the fixture's savepoint; the connection's transaction goes on
    snapshot = text("SELECT id, created_at, chain_id, chain_seq, prev_hash, row_hash, grants FROM access_log "
                    "ORDER BY id")
    relkind = text("SELECT relkind::text FROM pg_class WHERE oid = 'access_log'::regclass")
    rows = (await connection.execute(snapshot)).all()
    assert len(rows) >= 2 and (await connection.execute(relkind)).scalar_one() == "p"

    def config(sync):
        alembic = alembic_config()
        alembic.attributes["connection"] = sync
        return alembic

    before = ScriptDirectory.from_config(alembic_config()).get_revision("access_log_partitions").down_revision
    await connection.run_sync(lambda sync: command.downgrade(config(sync), before))
    assert (await connection.execute(relkind)).scalar_one() == "r"
    assert (await connection.execute(snapshot)).all() == rows
    await connection.run_sync(lambda sync: command.upgrade(config(sync), "head"))
    assert (await connection.execute(relkind)).scalar_one() == "p"
    assert (await connection.execute(snapshot)).all() == rows
    assert (await connection.execute(text(
        "SELECT DISTINCT tableoid::regclass::text FROM access_log WHERE route = '/partition-test'"))).all() == [
        ("access_log_y2031m05",)]
    # Chains go on from their heads.
    await log_reads(session, world, at("2031-05-17T00:00:00+00:00"))
    assert (await verify_chain(session, "access_log")).ok
