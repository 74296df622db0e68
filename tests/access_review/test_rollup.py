"""The worker's roll-up of the access log into usage figures: chunk by chunk it counts each read once, and the
worker's pass rolls up, forgets day counts no review asks for, and queues reminders."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, text

from billing_api.access_review import tasks
from billing_api.access_review.service import roll_up_usage
from tests.access_review.helpers import read_at
from tests.authz.world import build_world

USAGE = ("SELECT provider_id, user_id, rule, via_id, first_read_at, last_read_at FROM access_grant_use "
         "ORDER BY 1, 2, 3, 4")
DAYS = "SELECT provider_id, user_id, rule, via_id, day, reads FROM access_grant_use_day ORDER BY 1, 2, 3, 4, 5"


async def _tables(session) -> tuple[list, list]:
    return [tuple(r) for r in (await session.execute(text(USAGE))).all()], [
        tuple(r) for r in (await session.execute(text(DAYS))).all()]


async def test_a_chunk_at_a_time_counts_what_one_pass_counts(factory, session):
    world = await build_world(factory, segregated=False)
    u = world.users
    for reader, days_ago in (("delegate_user", 1), ("delegate_user", 3), ("group_delegate", 40), ("staff", 2),
                             ("company_admin", 100), ("delegate_user", 0)):
        await read_at(session, world, u[reader], days_ago)

    nested = await session.begin_nested()
    passes = 0
    while await roll_up_usage(session, chunk=1):
        passes += 1
    by_chunks = await _tables(session)
    await nested.rollback()
    assert passes >= 2  # the six reads share at most a few chains: one row per chain and pass

    assert await roll_up_usage(session) >= 6
    assert await _tables(session) == by_chunks
    usage, days = by_chunks
    delegate = [row for row in usage if row[1] == u["delegate_user"].id and row[2] == "delegation_user"]
    assert len(delegate) == 1 and delegate[0][5] - delegate[0][4] >= timedelta(days=2, hours=23)
    # A company administrator's company-wide reads count for the company-wide grant; the read 100 days ago is
    # past what the day counts keep.
    admin = [row for row in usage if row[1] == u["company_admin"].id]
    assert {row[2] for row in admin} == {"company_wide"} and {row[3] for row in admin} == {world.clinic.id}
    assert not [row for row in days if row[1] == u["company_admin"].id]
    assert sum(row[5] for row in days if row[1] == u["delegate_user"].id and row[2] == "delegation_user") == 3


async def test_the_worker_pass_rolls_up_and_forgets_old_days(factory, session, sessionmaker):
    world = await build_world(factory, segregated=True)
    await read_at(session, world, world.users["delegate_user"], days_ago=1)
    now = (await session.execute(select(func.now()))).scalar_one()
    await session.execute(text(
        "INSERT INTO access_grant_use_day VALUES (:p, :u, 'delegation_user', :v, (now() - interval '91 days')::date, 4)"
    ), {"p": world.owner.id, "u": world.users["delegate_user"].id, "v": "00000000-0000-0000-0000-000000000000"})
    await session.commit()

    done = await tasks.one_pass(sessionmaker, now)
    assert done["rolled_up"] >= 1 and done["day_counts_dropped"] == 1
    again = await tasks.one_pass(sessionmaker, now)
    assert again["rolled_up"] == 0 and again["day_counts_dropped"] == 0 and again["reminders_queued"] == 0
