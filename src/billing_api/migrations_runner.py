"""Applying the Alembic migrations from code (CLI, start-up, tests)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def alembic_config(url: str | None = None) -> Config:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    if url:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def _upgrade_on(connection: Connection) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


async def upgrade_connection(connection: AsyncConnection) -> None:
    """Upgrade through an open connection (from inside a running event loop; docs/stack-notes.md, trap 5)."""
    await connection.run_sync(_upgrade_on)


async def upgrade(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            # One migrator at a time, even with several processes starting together.
            await connection.exec_driver_sql("SELECT pg_advisory_lock(727274)")
            await upgrade_connection(connection)
            await connection.commit()
            await connection.exec_driver_sql("SELECT pg_advisory_unlock(727274)")
    finally:
        await engine.dispose()
