"""PostgreSQL stopped under a running app: 503 problem+json quickly, never a 500 or a hang; back without a restart."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

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


async def test_outage_answers_503_and_the_service_recovers_without_a_restart(server, settings):
    setup = create_async_engine(server.url)
    async with setup.connect() as connection:
        await upgrade_connection(connection)
        await connection.commit()
    async with AsyncSession(setup, expire_on_commit=False) as session:
        factory = Factory(session, settings)
        user = await factory.user(await factory.company())
        await session.commit()
    await setup.dispose()
    headers = factory.headers(user)

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
