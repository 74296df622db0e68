"""Housekeeping in `billing-api worker`: without it, every Idempotency-Key ever sent and every login name ever
tried (a counter per unknown name, see auth/limits.py) would stay in the database for good. Deleting what has
expired is safe from any number of workers at once.

It also keeps the access log's month partitions: the current month and three ahead exist (a month without one
goes to the default partition, which keeps reads working but is never dropped), and with
`access_log_retention_years` set, whole months past the retention are dropped, each recorded in the audit events
first (in the same transaction) so that verification reports the chains' cut rather than missing rows."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, date, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing_api.access_log import repository as access_log
from billing_api.audit.service import record
from billing_api.auth import limits
from billing_api.config import Settings
from billing_api.housekeeping import repository

logger = logging.getLogger("billing_api.housekeeping")

MONTHS_AHEAD = 3
# A DROP waits for an ACCESS EXCLUSIVE lock on the access log, and every read queues behind it: give up after this
# long (a long transaction is reading) and try again at the next pass.
PARTITION_LOCK_TIMEOUT = "2s"


async def sweep(session: AsyncSession, settings: Settings) -> dict[str, int]:
    """One pass; the caller commits."""
    return {"idempotency_keys": await repository.delete_expired_idempotency_keys(session),
            "failure_counters": await repository.delete_ended_failure_counters(session, limits.windows(settings))}


def add_months(month: date, months: int) -> date:
    index = month.year * 12 + month.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def years_before(moment: datetime, years: int) -> datetime:
    try:
        return moment.replace(year=moment.year - years)
    except ValueError:  # 29 February
        return moment.replace(year=moment.year - years, day=28)


async def keep_access_log_partitions(
    session: AsyncSession, settings: Settings, now: datetime | None = None,
) -> dict[str, list[str]]:
    """One pass over the access log's partitions (by one worker at a time; the others skip); the caller commits.
    Returns the months made and dropped."""
    if not await access_log.lock_partitions(session):
        return {"made": [], "dropped": []}
    await repository.set_lock_timeout(session, PARTITION_LOCK_TIMEOUT)
    now = now or datetime.now(UTC)
    this_month = date(now.year, now.month, 1)
    existing = await access_log.month_partitions(session)
    stranded = set(await access_log.months_in_default_partition(session))
    made = []
    for month in (add_months(this_month, ahead) for ahead in range(MONTHS_AHEAD + 1)):
        if month in existing:
            continue
        if month in stranded:
            # Attaching the month's partition would fail over those rows; they stay where they are (and are kept
            # for good) until an operator moves them.
            logger.warning("access_log_default holds rows of %s: no partition made for that month", month)
            continue
        await access_log.make_partition(session, month)
        made.append(month.isoformat()[:7])
    for month in sorted(stranded - set(existing)):
        if month < this_month:
            logger.warning("access_log_default holds rows of %s, a month without a partition", month)

    dropped = []
    if settings.access_log_retention_years is not None:
        cutoff = years_before(now, settings.access_log_retention_years)
        for month, partition in existing.items():
            month_end = datetime.combine(add_months(month, 1), datetime.min.time(), UTC)
            if month_end > cutoff:
                break
            rows, runs = await access_log.dropped_runs(session, partition)
            record(session, None, access_log.MONTH_DROPPED, target_type="access_log_partition",
                   details={"month": month.isoformat()[:7], "partition": partition, "rows": rows, "runs": runs})
            await access_log.drop_partition(session, partition)
            dropped.append(month.isoformat()[:7])
    return {"made": made, "dropped": dropped}


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
            # Apart from the sweep: its DDL locks the access log, which must not wait on the sweep's deletes.
            async with sessionmaker() as session, session.begin():
                partitions = await keep_access_log_partitions(session, settings)
            if any(partitions.values()):
                logger.info("access log partitions %s", partitions)
        except Exception:
            logger.exception("access log partition pass failed")
        try:
            await asyncio.wait_for(stop.wait(), timeout=settings.housekeeping_interval_seconds)
        except TimeoutError:
            pass
