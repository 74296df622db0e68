"""PostgreSQL stopped under a running app: 503 problem+json quickly, never a 500 or a hang; back without a restart."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from billing_api import db
from billing_api.app import create_app
from billing_api.migrations_runner import upgrade_connection
from tests.factories import Factory
from tests.helpers import assert_problem
from tests.ops.dedicated_postgres import DedicatedPostgres, available

pytestmark = pytest.mark.skipif(not available(), reason="no PostgreSQL binaries to run a dedicated server")

# A guard against hanging, not a speed test: the app's own timeouts are a few seconds.
HANG_GUARD_SECONDS = 30


@pytest.fixture
async def server():
    server = await asyncio.to_thread(DedicatedPostgres)
    await asyncio.to_thread(server.start)
    try:
        yield server
    finally:
        await asyncio.to_thread(server.destroy)


async def answer(http: httpx.AsyncClient, path: str, **kwargs) -> httpx.Response:
    return await asyncio.wait_for(http.get(path, **kwargs), HANG_GUARD_SECONDS)


async def _migrated_with_a_user(server, settings):
    """The schema on the dedicated server, and one user with their bearer headers."""
    setup = create_async_engine(server.url)
    async with setup.connect() as connection:
        await upgrade_connection(connection)
        await connection.commit()
    async with AsyncSession(setup, expire_on_commit=False) as session:
        factory = Factory(session, settings)
        user = await factory.user(await factory.company())
        await session.commit()
    await setup.dispose()
    return user, factory.headers(user)


async def test_outage_answers_503_and_the_service_recovers_without_a_restart(server, settings):
    user, headers = await _migrated_with_a_user(server, settings)

    app = create_app(settings.model_copy(update={"database_url": server.url, "mail_sender_enabled": False,
                                                 "db_connect_timeout_seconds": 2}))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        assert (await answer(http, "/readyz")).status_code == 200
        assert (await answer(http, "/v1/me", headers=headers)).status_code == 200  # the pool holds a connection

        await asyncio.to_thread(server.stop)
        for _ in range(2):  # the pooled connection that died, then a fresh connection refused
            assert_problem(await answer(http, "/readyz"), 503, "database_unavailable")
            for path in ("/v1/me", f"/v1/bills/{uuid.uuid4()}", "/v1/bills"):
                down = await answer(http, path, headers=headers)
                body = assert_problem(down, 503, "database_unavailable")
                assert down.headers["retry-after"].isdigit() and body["request_id"] == down.headers["x-request-id"]
            write = await asyncio.wait_for(http.post("/v1/patients", headers=headers, json={
                "company_id": str(user.company_id), "first_name": "Pat", "last_name": "Doe"}), HANG_GUARD_SECONDS)
            assert_problem(write, 503, "database_unavailable")
        assert (await answer(http, "/healthz")).status_code == 200  # liveness does not depend on the database

        await asyncio.to_thread(server.start)
        assert (await answer(http, "/readyz")).status_code == 200
        back = await answer(http, "/v1/me", headers=headers)
        assert back.status_code == 200 and back.json()["user"]["id"] == str(user.id)


async def _terminate_other_backends(url: str) -> int:
    """Kill every other connection to the database, as a restart would; returns how many."""
    engine = create_async_engine(url)
    async with engine.connect() as connection:
        killed = (await connection.execute(text(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"))).scalar_one()
    await engine.dispose()
    return killed


@pytest.mark.parametrize("rested", [True, False], ids=["rested-connection-pinged", "busy-connection-fails-once"])
async def test_a_dead_pooled_connection_is_replaced(server, settings, monkeypatch, rested):
    """A connection that rested is pinged before use, so its death costs no request; one in steady use is not
    (a ping per request would be three round trips), so its death fails one request with 503, and the next
    request gets a new connection."""
    user, headers = await _migrated_with_a_user(server, settings)

    app = create_app(settings.model_copy(update={"database_url": server.url, "mail_sender_enabled": False}))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        assert (await answer(http, "/v1/me", headers=headers)).status_code == 200  # the pool holds a connection
        assert await _terminate_other_backends(server.url) >= 1
        # Whether the pooled connection counts as rested, without waiting on the clock.
        monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.0 if rested else 3600.0)
        first = await answer(http, "/v1/me", headers=headers)
        if rested:
            assert first.status_code == 200
        else:
            assert_problem(first, 503, "database_unavailable")
        back = await answer(http, "/v1/me", headers=headers)
        assert back.status_code == 200 and back.json()["user"]["id"] == str(user.id)
