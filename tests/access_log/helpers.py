"""Reading the access log back in tests."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from billing_api.models import AccessLogEntry, DelegationEntry
from tests.authz.world import World

AGENT = {"User-Agent": "access-log-test/1.0"}


async def entries_of(session: AsyncSession, actor_id: uuid.UUID) -> list[AccessLogEntry]:
    statement = (select(AccessLogEntry).where(AccessLogEntry.actor_id == actor_id)
                 .order_by(AccessLogEntry.created_at, AccessLogEntry.chain_id, AccessLogEntry.chain_seq))
    return list((await session.execute(statement)).scalars())


async def entry_id(session: AsyncSession, world: World, *, user_id=None, group_id=None) -> uuid.UUID:
    statement = select(DelegationEntry.id).where(DelegationEntry.provider_id == world.owner.id)
    if user_id is not None:
        statement = statement.where(DelegationEntry.user_id == user_id)
    else:
        statement = statement.where(DelegationEntry.group_id == group_id)
    return (await session.execute(statement)).scalar_one()


# What the append-only triggers must refuse, `{t}` the table (or partition).
CHANGES = ["UPDATE {t} SET client_address = '10.0.0.1'", "DELETE FROM {t}", "TRUNCATE {t}",
           "UPDATE {t} SET chain_seq = chain_seq WHERE false"]


async def assert_change_refused(session: AsyncSession, table: str, change: str) -> None:
    """`change` on `table`, which holds rows, is refused as append-only and leaves every row."""
    before = (await session.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one()
    assert before >= 1
    with pytest.raises(DBAPIError, match="append-only"):
        async with session.begin_nested():
            await session.execute(text(change.format(t=table)))
    assert (await session.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one() == before
