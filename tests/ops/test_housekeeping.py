"""Housekeeping in the worker: expired idempotency keys and failure counters whose window and lock have ended are
deleted; everything still in force stays."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update

from billing_api.db import make_sessionmaker
from billing_api.housekeeping import service as housekeeping
from billing_api.models import FailureCounter, IdempotencyKey
from billing_api.worker import LOOPS
from tests.auth.test_tokens import login
from tests.authz.world import build_world
from tests.idempotency.test_idempotency import bill_body, keyed


async def counters(session) -> set[tuple[str, str]]:
    return set((await session.execute(select(FailureCounter.scope, FailureCounter.key))).all())


async def test_a_sweep_deletes_what_has_expired_and_keeps_what_is_in_force(client, factory, session, settings):
    world = await build_world(factory, segregated=False)
    headers = factory.headers(world.owner)
    for key in ("old-key", "fresh-key"):
        response = await client.post("/v1/bills", headers=keyed(headers, key), json=bill_body(world))
        assert response.status_code == 201
    await session.execute(update(IdempotencyKey).where(IdempotencyKey.key == "old-key")
                          .values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    # Failed logins: counters for a real account, for a name no account has, and for the client's address.
    for username in (world.users["staff"].username, "nobody-at-all"):
        assert (await login(client, username, "wrong password, surely")).status_code == 401
    before = await counters(session)
    staff, nobody = ("account", str(world.users["staff"].id)), ("account", "login:nobody-at-all")
    assert {staff, nobody} <= before and any(scope == "address" for scope, _ in before)
    window = timedelta(minutes=settings.account_failure_window_minutes)
    ended = datetime.now(UTC) - window - timedelta(seconds=1)
    await session.execute(update(FailureCounter).values(window_started_at=ended))
    # ... one of them still locked (a lock set to outlast its window is kept all the same).
    await session.execute(update(FailureCounter).where(FailureCounter.key == staff[1])
                          .values(locked_until=datetime.now(UTC) + timedelta(minutes=1)))

    deleted = await housekeeping.sweep(session, settings)

    assert deleted == {"idempotency_keys": 1, "failure_counters": len(before) - 1}
    assert await counters(session) == {staff}
    keys = (await session.execute(select(IdempotencyKey.key).where(IdempotencyKey.user_id == world.owner.id)))
    assert keys.scalars().all() == ["fresh-key"]
    # A retry with the fresh key still answers the first result.
    replay = await client.post("/v1/bills", headers=keyed(headers, "fresh-key"), json=bill_body(world))
    assert replay.status_code == 201 and replay.headers.get("Idempotent-Replayed") == "true"


async def test_the_worker_runs_the_sweep_until_stopped(live, live_engine, settings):
    assert housekeeping.run in LOOPS
    http, factory = live
    world = await build_world(factory, segregated=False)
    await factory.session.commit()
    response = await http.post("/v1/bills", headers=keyed(factory.headers(world.owner), "to-expire"),
                               json=bill_body(world))
    assert response.status_code == 201
    await factory.session.execute(update(IdempotencyKey).where(IdempotencyKey.user_id == world.owner.id)
                                  .values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    await factory.session.commit()

    async def remaining() -> int:
        statement = select(func.count()).select_from(IdempotencyKey).where(IdempotencyKey.user_id == world.owner.id)
        count = (await factory.session.execute(statement)).scalar_one()
        await factory.session.commit()
        return count

    stop = asyncio.Event()
    fast = settings.model_copy(update={"housekeeping_interval_seconds": 0.05})
    task = asyncio.create_task(housekeeping.run(make_sessionmaker(live_engine), fast, stop))
    try:
        for _ in range(100):
            if await remaining() == 0:
                break
            await asyncio.sleep(0.05)
        assert await remaining() == 0
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=10)
