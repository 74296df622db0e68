"""Reading the access log back in tests."""

from __future__ import annotations

import uuid

from sqlalchemy import select
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
