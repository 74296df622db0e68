"""Test harness: a real PostgreSQL, schema built by the migrations, each test in its own transaction.

The database is the server named by BILLING_API_TEST_DATABASE_URL, or an embedded one (pgserver) kept
in .billing-api-data/test/postgres. Either way the run gets a fresh database of its own, dropped at the end.
"""

from __future__ import annotations

import os
import uuid
import warnings
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from billing_api.app import create_app
from billing_api.config import Settings
from billing_api.db import SERVER_SETTINGS, embedded_database_url, to_asyncpg_url
from billing_api.mail.sender import deliver_due
from billing_api.migrations_runner import upgrade_connection
from tests.factories import Factory
from tests.support import smtp
from tests.support.practice import Practice, build_practice

ROOT = Path(__file__).resolve().parents[1]


def test_settings() -> Settings:
    return Settings(
        env="test",
        database_url="postgresql+asyncpg://unused/unused",
        jwt_secret="test-secret-" + "x" * 40,
        argon2_time_cost=1,
        argon2_memory_cost_kib=8,
        argon2_parallelism=1,
        data_dir=ROOT / ".billing-api-data" / "test",
    )


def _server_url() -> str:
    external = os.environ.get("BILLING_API_TEST_DATABASE_URL")
    if external:
        return to_asyncpg_url(external)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return embedded_database_url(ROOT / ".billing-api-data" / "test")


async def _create_database(server_url) -> str:
    name = f"billing_api_test_{uuid.uuid4().hex[:10]}"
    admin = create_async_engine(server_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    await admin.dispose()
    return name


async def _drop_database(server_url, name: str) -> None:
    admin = create_async_engine(server_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    await admin.dispose()


async def _migrated_engine(url: str, **kwargs) -> AsyncEngine:
    # Connections configured as the service configures its own (db.SERVER_SETTINGS).
    engine = create_async_engine(url, connect_args={"server_settings": SERVER_SETTINGS}, hide_parameters=True,
                                 **kwargs)
    async with engine.connect() as connection:
        await upgrade_connection(connection)
        await connection.commit()
    return engine


@pytest.fixture(scope="session")
async def database_url() -> AsyncIterator[str]:
    server_url = make_url(_server_url())
    name = await _create_database(server_url)
    try:
        yield server_url.set(database=name).render_as_string(hide_password=False)
    finally:
        await _drop_database(server_url, name)


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = await _migrated_engine(database_url, pool_size=20, max_overflow=10)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
def settings() -> Settings:
    return test_settings()


@pytest.fixture
async def connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    async with engine.connect() as connection:
        outer = await connection.begin()
        yield connection
        if outer.is_active:
            await outer.rollback()


@pytest.fixture
def sessionmaker(connection: AsyncConnection) -> async_sessionmaker[AsyncSession]:
    # The app's own commit and rollback become savepoints inside the test's transaction.
    return async_sessionmaker(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)


@pytest.fixture
async def session(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    async with sessionmaker() as session:
        yield session


@pytest.fixture(scope="session")
def shared_app(settings: Settings):
    # One app for the run: FastAPI builds each route's dependency state on an app's first requests
    # (about 0.1 s), which a fresh app per test would pay every time.
    return create_app(settings)


@pytest.fixture
def app(shared_app, sessionmaker: async_sessionmaker[AsyncSession]):
    # Tests run one at a time, so the shared app takes this test's sessionmaker (its transaction).
    shared_app.state.sessionmaker = sessionmaker
    yield shared_app
    shared_app.state.sessionmaker = None


@pytest.fixture
async def client(app) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.fixture
async def factory(session: AsyncSession, settings: Settings) -> Factory:
    return Factory(session, settings)


@pytest.fixture(scope="session")
async def live_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """A second database of this run for tests that need real commits, so that what they commit
    never shows up in the transaction-isolated tests."""
    url = make_url(database_url)
    name = await _create_database(url)
    engine = await _migrated_engine(url.set(database=name), pool_size=10)
    yield engine
    await engine.dispose()
    await _drop_database(url, name)


@pytest.fixture
async def live(live_engine: AsyncEngine, settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, Factory]]:
    """The app on a real engine: every request commits for real, as in production. Tests using this
    make their own companies (the data stays until the run ends)."""
    from billing_api.db import make_sessionmaker

    sessionmaker = make_sessionmaker(live_engine)
    app = create_app(settings)
    app.state.sessionmaker = sessionmaker
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with sessionmaker() as session, httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http, Factory(session, settings)


@pytest.fixture(scope="session")
def collector():
    """A real SMTP server on loopback (aiosmtpd) that keeps what it receives, for every test that sends mail."""
    yield from smtp.serving(smtp.Collector())


@pytest.fixture
def smtp_settings(settings, collector) -> Settings:
    """The test settings with the service's sender pointed at the `collector`."""
    return smtp.mail_settings(settings, collector.port)


@pytest.fixture
def deliver(sessionmaker, smtp_settings):
    """Run the real sender over the test's transaction: what the outbox holds goes out over SMTP."""

    async def run(settings: Settings | None = None) -> int:
        return await deliver_due(sessionmaker, settings or smtp_settings)

    return run


@pytest.fixture
async def practice(factory) -> Practice:
    """The `practice` world (tests/support/practice.py), in the test's transaction."""
    return await build_practice(factory)
