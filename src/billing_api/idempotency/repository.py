from __future__ import annotations

import uuid

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from billing_api.models import IdempotencyKey


async def try_lock(session: AsyncSession, user_id: uuid.UUID, key: str) -> bool:
    """Hold (user, key) for the rest of the transaction, or False at once when another transaction holds it."""
    lock = func.pg_try_advisory_xact_lock(func.hashtextextended(f"idempotency:{user_id}:{key}", 0))
    return bool((await session.execute(select(lock))).scalar_one())


async def get(session: AsyncSession, user_id: uuid.UUID, key: str) -> IdempotencyKey | None:
    statement = select(IdempotencyKey).where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
    return (await session.execute(statement)).scalar_one_or_none()


async def remove(session: AsyncSession, user_id: uuid.UUID, key: str) -> None:
    await session.execute(delete(IdempotencyKey).where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key))


async def add(session: AsyncSession, row: IdempotencyKey) -> None:
    session.add(row)
    await session.flush()
