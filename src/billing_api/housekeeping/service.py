"""Housekeeping in `billing-api worker`: without it, every Idempotency-Key ever sent and every login name ever
tried (a counter per unknown name, see auth/limits.py) would stay in the database for good. Deleting what has
expired is safe from any number of workers at once."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing_api.auth import limits
from billing_api.config import Settings
from billing_api.housekeeping import repository

logger = logging.getLogger("billing_api.housekeeping")


async def sweep(session: AsyncSession, settings: Settings) -> dict[str, int]:
    """One pass; the caller commits."""
    return {"idempotency_keys": await repository.delete_expired_idempotency_keys(session),
            "failure_counters": await repository.delete_ended_failure_counters(session, limits.windows(settings))}


async def run(sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, stop: asyncio.Event) -> None:
    """Sweep at start, then every `housekeeping_interval_seconds`, until `stop` is set."""
    while not stop.is_set():
        try:
            async with sessionmaker() as session, session.begin():
                deleted = await sweep(session, settings)
            if any(deleted.values()):
                logger.info("housekeeping deleted %s", deleted)
        except Exception:  # the database is away, say: keep the loop alive and try again later
            logger.exception("housekeeping pass failed")
        try:
            await asyncio.wait_for(stop.wait(), timeout=settings.housekeeping_interval_seconds)
        except TimeoutError:
            pass
