"""The access log's writer: the rows of concurrent reads share transactions, and so the WAL flush of a commit.

A logged read used to insert its row in its own transaction and wait for that transaction's durable commit: one
WAL flush per read, and the hash chain's lock held meanwhile. Here each API process has one writer. A read
computes its row (grants included, in its own transaction, as the rules stand for what it read) and hands it
over; the writer inserts whatever rows are waiting in one transaction and commits, then releases each read.
A response that showed billing data still leaves only once its row is durable, and a read whose row cannot be
written fails: when a batch fails, its rows are retried one transaction each, so one bad row fails one read.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from billing_api.access_log import repository

logger = logging.getLogger("billing_api.access_log")

# Rows per transaction at most: a batch is whatever waited while the previous one committed; this only bounds a
# burst's transaction (its chain lock is held until its commit).
MAX_BATCH = 200


class AccessLogWriter:
    """Owns `engine` (its own small pool, so that it never waits behind the reads that wait for it)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._connection: AsyncConnection | None = None  # kept between batches: no checkout and ping per batch
        self._waiting: list[tuple[dict, asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="access-log-writer")

    async def write(self, entry: dict) -> None:
        """Returns once `entry` (from `repository.granted_entry`) is committed; raises if it cannot be."""
        if self._task is None or self._task.done() or self._stopping:
            raise RuntimeError("the access-log writer is not running")  # no read goes unlogged
        done = asyncio.get_running_loop().create_future()
        self._waiting.append((entry, done))
        self._wake.set()
        await done

    async def stop(self) -> None:
        """Write what is waiting, then stop and close the writer's connection (the server has finished its
        requests by then)."""
        if self._task is not None:
            self._stopping = True
            self._wake.set()
            await self._task
        if self._connection is not None:
            await self._connection.close()
        await self._engine.dispose()

    async def _run(self) -> None:
        while not (self._stopping and not self._waiting):
            await self._wake.wait()
            self._wake.clear()
            await self._drain()

    async def _drain(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
            try:
                await self._commit([entry for entry, _ in batch])
            except Exception as error:
                if len(batch) == 1:
                    _settle(batch, error)
                    continue
                logger.warning("an access-log batch of %d rows failed; writing them one by one", len(batch))
                for one in batch:
                    try:
                        await self._commit([one[0]])
                    except Exception as alone:
                        _settle([one], alone)
                    else:
                        _settle([one], None)
            else:
                _settle(batch, None)

    async def _commit(self, entries: list[dict]) -> None:
        if self._connection is None:
            self._connection = await self._engine.connect()
        try:
            await repository.insert_granted(self._connection, entries)
        except Exception:
            # Whatever failed, the next batch starts on a fresh connection (the pool pings it when it hands it out).
            connection, self._connection = self._connection, None
            with suppress(Exception):  # a dead connection may fail to close too; the batch's error is the news
                await connection.close()
            raise


def _settle(batch: list[tuple[dict, asyncio.Future[None]]], error: BaseException | None) -> None:
    for _, done in batch:
        if done.done():  # its request went away (a client disconnect cancels the wait)
            continue
        if error is None:
            done.set_result(None)
        else:
            done.set_exception(error)
