"""Alembic environment, async. A connection handed over in `config.attributes["connection"]`
(tests, `billing-api serve`) is used as it is; otherwise one is opened from `sqlalchemy.url`."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from billing_api.models import Base
from billing_api.models.access_log import is_partition

config = context.config
target_metadata = Base.metadata


def _include_name(name: str | None, kind: str, parent_names) -> bool:
    # The access log's monthly partitions are made at run time (access_log_partition()), not by a model.
    return not (kind == "table" and is_partition(name))


def run_on(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, compare_type=True,
                      include_name=_include_name)
    with context.begin_transaction():
        context.run_migrations()


async def run_async() -> None:
    engine = create_async_engine(config.get_main_option("sqlalchemy.url"))
    async with engine.connect() as connection:
        await connection.run_sync(run_on)
        await connection.commit()
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata,
                      literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
elif (connection := config.attributes.get("connection")) is not None:
    run_on(connection)
else:
    asyncio.run(run_async())
