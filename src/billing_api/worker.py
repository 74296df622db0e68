"""`billing-api worker`: the background loops, until interrupted.

Today it runs the mail sender, the billing automation (a Procrastinate worker
and its periodic tick, automation/tasks.py), the housekeeping sweep (housekeeping/) and the access reviews'
roll-up and reminders (access_review/tasks.py). A loop is any
`async def loop(sessionmaker, settings, stop)` that returns
once `stop` is set; add one to LOOPS (or pass `loops=`) to run it beside the others. Every loop must be
safe with several workers at once (the sender claims messages with SKIP LOCKED).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing_api.access_review import tasks as access_review_tasks
from billing_api.automation import tasks as automation_tasks
from billing_api.config import Settings
from billing_api.db import engine_for, make_sessionmaker, resolve_database_url
from billing_api.housekeeping import service as housekeeping
from billing_api.mail import sender

logger = logging.getLogger("billing_api.worker")

Loop = Callable[[async_sessionmaker[AsyncSession], Settings, asyncio.Event], Awaitable[None]]

LOOPS: list[Loop] = [sender.run, automation_tasks.run, housekeeping.run, access_review_tasks.run]


async def run_worker(settings: Settings, *, stop: asyncio.Event | None = None,
                     loops: Sequence[Loop] | None = None, migrate: bool = True) -> None:
    """Run every loop until `stop` is set (SIGINT or SIGTERM set it when running as the command)."""
    stop = stop or asyncio.Event()
    url = resolve_database_url(settings)
    if migrate:
        from billing_api.migrations_runner import upgrade

        await upgrade(url)
    engine = engine_for(settings)
    try:
        sessionmaker = make_sessionmaker(engine)
        await asyncio.gather(*(loop(sessionmaker, settings, stop) for loop in (LOOPS if loops is None else loops)))
    finally:
        await engine.dispose()


def main(settings: Settings) -> None:
    from billing_api.observability import logs

    logs.configure(settings)

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        logger.info("billing-api worker running; Ctrl-C to stop")
        await run_worker(settings, stop=stop)

    asyncio.run(serve())
