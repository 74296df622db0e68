"""SQL that removes rows which no longer mean anything: answered idempotency keys past their expiry, and failure
counters whose window and lock have both ended (the next attempt would start them afresh anyway)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, func, or_, text
from sqlalchemy.ext.asyncio import AsyncSession

from billing_api.models import FailureCounter, IdempotencyKey


async def delete_expired_idempotency_keys(session: AsyncSession) -> int:
    result = await session.execute(delete(IdempotencyKey).where(IdempotencyKey.expires_at <= func.now()))
    return result.rowcount


async def delete_ended_failure_counters(session: AsyncSession, windows: dict[str, timedelta]) -> int:
    """Counters of each scope whose window ended and which are not locked (a lock never outlasts its window)."""
    deleted = 0
    for scope, window in windows.items():
        result = await session.execute(delete(FailureCounter).where(
            FailureCounter.scope == scope,
            FailureCounter.window_started_at <= func.now() - window,
            or_(FailureCounter.locked_until.is_(None), FailureCounter.locked_until <= func.now()),
        ))
        deleted += result.rowcount
    return deleted


async def set_lock_timeout(session: AsyncSession, timeout: str) -> None:
    """For the rest of the transaction: give up on a lock not had within `timeout`."""
    await session.execute(text("SELECT set_config('lock_timeout', :timeout, true)"), {"timeout": timeout})
