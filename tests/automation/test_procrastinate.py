"""The scheduler on Procrastinate, for real: `billing-api worker`'s automation loop starts a Procrastinate worker
on the service's database (schema from migration 0007); a tick job runs the night's due stages once."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

from procrastinate import exceptions as procrastinate_exceptions
from sqlalchemy import text

from billing_api.automation import tasks
from billing_api.db import make_sessionmaker
from tests.automation.conftest import build_clinic, configure, encounter, new_patient, zone_in_the_day


async def test_the_worker_runs_the_tick_on_procrastinate(live, live_engine, settings):
    http, factory = live
    zone = zone_in_the_day()
    clinic = await build_clinic(factory, zone.key)
    await factory.session.commit()
    await configure(http, clinic, autopay_enabled=False)
    today = datetime.now(UTC).astimezone(zone).date()
    patient = await new_patient(http, clinic)
    encounters = [await encounter(http, clinic, patient, today - timedelta(days=1)) for _ in range(3)]
    stop = asyncio.Event()
    worker = asyncio.create_task(tasks.run(make_sessionmaker(live_engine), settings, stop))
    try:
        for _ in range(100):  # the app opens once the worker starts
            await asyncio.sleep(0.05)
            try:
                await tasks.automation_tick.defer_async(timestamp=int(time.time()))
                break
            except procrastinate_exceptions.AlreadyEnqueued:
                break  # the periodic scheduler queued one already
            except procrastinate_exceptions.AppNotOpen:
                continue
        deadline = time.monotonic() + 20
        billed = 0
        while time.monotonic() < deadline and billed < 3:
            async with live_engine.connect() as conn:
                billed = (await conn.execute(text("SELECT count(*) FROM bill WHERE patient_id = :p"),
                                             {"p": patient})).scalar_one()
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        await asyncio.wait_for(worker, 20)
    async with live_engine.connect() as conn:
        rows = (await conn.execute(text("SELECT encounter_id FROM bill WHERE patient_id = :p"), {"p": patient})).all()
        runs = (await conn.execute(text(
            "SELECT count(*) FROM automation_run WHERE company_id = :c AND local_date = :d AND stage = 'bills'"),
            {"c": clinic.company.id, "d": today})).scalar_one()
        jobs_done = (await conn.execute(text(
            "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'billing_automation_tick' "
            "AND status = 'succeeded'"))).scalar_one()
    assert sorted(r[0] for r in rows) == sorted(encounters)
    assert runs == 1 and jobs_done >= 1


async def test_the_fallback_polling_loop_does_the_same(live, live_engine, settings):
    http, factory = live
    zone = zone_in_the_day()
    clinic = await build_clinic(factory, zone.key)
    await factory.session.commit()
    await configure(http, clinic, autopay_enabled=False)
    today = datetime.now(UTC).astimezone(zone).date()
    patient = await new_patient(http, clinic)
    encounters = [await encounter(http, clinic, patient, today - timedelta(days=1)) for _ in range(2)]
    stop = asyncio.Event()
    loop_settings = settings.model_copy(update={"automation_scheduler": "loop", "automation_poll_seconds": 0.05})
    workers = [asyncio.create_task(tasks.run(make_sessionmaker(live_engine), loop_settings, stop)) for _ in range(2)]
    try:
        deadline, billed = time.monotonic() + 20, 0
        while time.monotonic() < deadline and billed < 2:
            async with live_engine.connect() as conn:
                billed = (await conn.execute(text("SELECT count(*) FROM bill WHERE patient_id = :p"),
                                             {"p": patient})).scalar_one()
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # more ticks from both loops: nothing more
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*workers), 20)
    async with live_engine.connect() as conn:
        rows = (await conn.execute(text("SELECT encounter_id FROM bill WHERE patient_id = :p"), {"p": patient})).all()
    assert sorted(r[0] for r in rows) == sorted(encounters)
