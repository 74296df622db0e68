"""The nightly automation on Procrastinate: a periodic task (every minute) that runs one scheduler tick.

Procrastinate defers the periodic job once per minute whatever the number of workers (its periodic-defer table
is unique per task and timestamp), and the queueing lock keeps at most one tick waiting. The tick itself
(`jobs.run_due`) is what makes every stage exactly once: it claims (company, local date, stage) in the run table,
in the transaction of the stage's work; so two ticks at once, a retry, or a manual run can never double anything.
Procrastinate's schema is created by the Alembic migration 0007 (never apply_schema at run time).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

import procrastinate
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing_api.automation import jobs
from billing_api.config import Settings

logger = logging.getLogger("billing_api.automation")

app = procrastinate.App(connector=procrastinate.PsycopgConnector())

# Set by `run` (the worker loop) before the procrastinate worker starts.
_context: dict[str, Any] = {}


@app.periodic(cron="* * * * *", periodic_id="automation_tick")
@app.task(name="billing_automation_tick", queue="billing_automation", queueing_lock="billing_automation_tick",
          pass_context=False)
async def automation_tick(timestamp: int) -> None:
    """Run every due, unclaimed stage of every company at the tick's instant, then share what is due."""
    sessionmaker: async_sessionmaker[AsyncSession] = _context["sessionmaker"]
    settings: Settings = _context["settings"]
    instant = max(datetime.fromtimestamp(timestamp, UTC), datetime.now(UTC))
    stats = await jobs.run_due(sessionmaker, settings, instant)
    logger.info("automation tick %s: %s", instant.isoformat(), stats)


def conninfo(sqlalchemy_url: str) -> str:
    """A libpq connection string for psycopg from the service's SQLAlchemy URL (host, port or unix socket)."""
    url = make_url(sqlalchemy_url)
    parts = {"dbname": url.database, "user": url.username, "password": url.password,
             "host": url.query.get("host") or url.host, "port": url.port}
    return " ".join(f"{k}={v}" for k, v in parts.items() if v)


async def run(sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, stop: asyncio.Event) -> None:
    """The worker loop (`billing-api worker`): a Procrastinate worker (with its periodic scheduler) on the
    service's database until `stop` is set."""
    if not settings.automation_enabled:
        return
    if settings.automation_scheduler == "loop":
        await jobs.run(sessionmaker, settings, stop)
        return
    _context.update(sessionmaker=sessionmaker, settings=settings)
    url = sessionmaker.kw["bind"].url.render_as_string(hide_password=False)
    connector = procrastinate.PsycopgConnector(conninfo=conninfo(url), min_size=1, max_size=4)
    with app.replace_connector(connector):
        async with app.open_async():
            worker = asyncio.create_task(app.run_worker_async(
                queues=["billing_automation"], install_signal_handlers=False, wait=True,
                name="billing-automation"))
            stopping = asyncio.create_task(stop.wait())
            await asyncio.wait({worker, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if not worker.done():
                worker.cancel()
            stopping.cancel()
            try:
                await worker
            except asyncio.CancelledError:
                pass
