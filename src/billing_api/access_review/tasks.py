"""The access review's loop in `billing-api worker`: roll the access log up into the usage figures, drop day
counts no review asks for any more, and queue the reminders of overdue reviews. Safe with several workers: the
roll-up takes turns under a lock, and each reminder is claimed by a unique row."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing_api.access_review import service
from billing_api.config import Settings

logger = logging.getLogger("billing_api.access_review")


async def roll_up_all(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    """Roll up everything waiting, a chunk per transaction (the first pass over a large log commits as it goes)."""
    total = 0
    while True:
        async with sessionmaker() as session, session.begin():
            rows = await service.roll_up_usage(session)
        total += rows
        if rows == 0:
            return total


async def one_pass(sessionmaker: async_sessionmaker[AsyncSession], now: datetime) -> dict[str, int]:
    rolled = await roll_up_all(sessionmaker)
    async with sessionmaker() as session, session.begin():
        forgotten = await service.forget_old_days(session)
        reminders = await service.queue_overdue_reminders(session, now)
    return {"rolled_up": rolled, "day_counts_dropped": forgotten, "reminders_queued": reminders}


async def run(sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, stop: asyncio.Event) -> None:
    """A pass at start, then every `access_review_poll_seconds`, until `stop` is set."""
    while not stop.is_set():
        try:
            done = await one_pass(sessionmaker, datetime.now(UTC))
            if any(done.values()):
                logger.info("access review pass: %s", done)
        except Exception:  # the database is away, say: keep the loop alive and try again later
            logger.exception("access review pass failed")
        try:
            await asyncio.wait_for(stop.wait(), timeout=settings.access_review_poll_seconds)
        except TimeoutError:
            pass
