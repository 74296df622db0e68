"""The access log's writer, as `billing-api serve` runs it (the app's own engine, real commits): rows of
concurrent reads share transactions, a response leaves only once its row is committed, a read whose row
cannot be written fails, and one bad row fails only its own read."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from billing_api.access_log import repository
from billing_api.access_log.repository import verify_chains
from billing_api.access_log.writer import AccessLogWriter
from billing_api.app import create_app
from billing_api.authz.permissions import Permission
from billing_api.config import ConfigurationError, Settings
from billing_api.db import make_sessionmaker
from tests.authz.world import build_world
from tests.helpers import assert_problem
from tests.ops.faults import failing_insert


@pytest.fixture
async def serving(live, live_engine, settings):
    """A world committed to the run's second database, and an app that owns its engine and writer there."""
    _, factory = live
    world = await build_world(factory, segregated=True)  # grants from the list alone
    await factory.session.commit()
    url = live_engine.url.render_as_string(hide_password=False)
    app = create_app(settings.model_copy(update={"database_url": url, "mail_sender_enabled": False}))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        assert isinstance(app.state.access_log_writer, AccessLogWriter)  # batching is the default
        yield http, factory, world


async def rows_of(live_engine, actor_id: uuid.UUID) -> list:
    async with live_engine.connect() as connection:
        return (await connection.execute(text(
            "SELECT xmin::text AS transaction, route, grants FROM access_log WHERE actor_id = :actor"),
            {"actor": actor_id})).all()


async def test_concurrent_reads_are_logged_through_the_writer_with_their_grants(serving, live_engine):
    http, factory, world = serving
    delegate = world.users["delegate_user"]
    responses = await asyncio.gather(*(http.get(f"/v1/bills/{world.insured_bill.id}",
                                                headers=factory.headers(delegate)) for _ in range(30)))
    assert [r.status_code for r in responses] == [200] * 30
    rows = await rows_of(live_engine, delegate.id)  # committed: read from another connection
    assert len(rows) == 30 and {row.route for row in rows} == {"/v1/bills/{bill_id}"}
    # The grants the reading transaction computed: the delegate's own list entry.
    assert all([(g["rule"], g["provider_id"]) for g in row.grants] == [("delegation_user", str(world.owner.id))]
               for row in rows)
    async with make_sessionmaker(live_engine)() as session:
        assert all(report.ok for report in await verify_chains(session))


def own_writer(live_engine) -> AccessLogWriter:
    return AccessLogWriter(create_async_engine(live_engine.url, pool_size=1, max_overflow=0))


async def entries(live_engine, world, count: int, **change) -> list[dict]:
    """Rows as a read of the owner's insured bill by the delegate computes them, in its own transaction."""
    async with make_sessionmaker(live_engine)() as session:
        made = []
        for _ in range(count):
            params = repository.entry_params(
                actor_id=world.users["delegate_user"].id, permission=Permission.BILLS_VIEW, route="/writer-test",
                surface="bill", pairs=[(world.owner.id, world.insured_bill.company_id)],
                patient_ids=[world.patient.id], record_count=1, client_address=None, user_agent=None)
            made.append(await repository.granted_entry(session, Permission.BILLS_VIEW, params))
        await session.commit()
    return [{**entry, **change} for entry in made]


async def test_rows_waiting_together_are_committed_in_one_transaction(serving, live_engine):
    _, _, world = serving
    writer = own_writer(live_engine)
    writer.start()
    # The writes are queued before the writer's task runs again, so its first batch takes all of them.
    await asyncio.gather(*(writer.write(entry) for entry in await entries(live_engine, world, 12)))
    await writer.stop()
    rows = [row for row in await rows_of(live_engine, world.users["delegate_user"].id) if row.route == "/writer-test"]
    assert len(rows) == 12 and len({row.transaction for row in rows}) == 1


async def test_one_row_that_cannot_be_written_fails_only_its_own_read(serving, live_engine):
    _, _, world = serving
    good = await entries(live_engine, world, 2)
    bad = (await entries(live_engine, world, 1))[0] | {"record_count": None}  # the column is NOT NULL
    writer = own_writer(live_engine)
    writer.start()
    outcomes = await asyncio.gather(writer.write(good[0]), writer.write(bad), writer.write(good[1]),
                                    return_exceptions=True)
    await writer.stop()
    assert outcomes[0] is None and outcomes[2] is None and isinstance(outcomes[1], Exception)
    rows = [row for row in await rows_of(live_engine, world.users["delegate_user"].id) if row.route == "/writer-test"]
    assert len(rows) == 2  # retried one by one after the batch failed: the two good rows, each in its own commit


async def test_a_read_whose_row_cannot_be_written_fails_and_shows_nothing(serving, live_engine):
    http, factory, world = serving
    delegate = world.users["delegate_user"]
    async with failing_insert(live_engine, "access_log"):
        response = await http.get(f"/v1/bills/{world.insured_bill.id}", headers=factory.headers(delegate))
    assert_problem(response, 500)
    assert "total_cents" not in response.text  # the problem, not the bill
    assert await rows_of(live_engine, delegate.id) == []


async def test_a_writer_not_running_refuses_rather_than_leave_a_read_unlogged(live_engine):
    writer = own_writer(live_engine)
    with pytest.raises(RuntimeError):
        await writer.write({})
    writer.start()
    await writer.stop()
    with pytest.raises(RuntimeError):
        await writer.write({})


async def test_without_the_log_reads_write_no_rows_and_production_refuses_that(app, client, factory, settings,
                                                                              session):
    world = await build_world(factory, segregated=False)
    delegate = world.users["delegate_user"]
    assert settings.access_log_enabled and Settings().access_log_enabled and Settings().access_log_batching
    app.state.settings = settings.model_copy(update={"access_log_enabled": False})
    try:
        response = await client.get(f"/v1/bills/{world.insured_bill.id}", headers=factory.headers(delegate))
    finally:
        app.state.settings = settings
    assert response.status_code == 200
    count = text("SELECT count(*) FROM access_log WHERE actor_id = :actor")
    assert (await session.execute(count, {"actor": delegate.id})).scalar_one() == 0
    # The same read with the log on (the default) writes its row: the switch is what made the difference.
    assert (await client.get(f"/v1/bills/{world.insured_bill.id}", headers=factory.headers(delegate))).status_code == 200
    assert (await session.execute(count, {"actor": delegate.id})).scalar_one() == 1
    production = settings.model_copy(update={"env": "production", "database_url": "postgresql://db/x",
                                             "jwt_secret": "s" * 48, "metrics_token": "m" * 32})
    production.check_production(serving=True)  # complete: starts
    with pytest.raises(ConfigurationError, match="access log"):
        production.model_copy(update={"access_log_enabled": False}).check_production(serving=True)
