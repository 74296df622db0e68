"""Three `billing-api worker` processes started together on one database, as in production: Procrastinate runs the
tick jobs on whichever process takes them, several at once, and each bill, charge, share and notice of the night
happens exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import procrastinate
from procrastinate import exceptions as procrastinate_exceptions
from sqlalchemy import text

from billing_api.automation import tasks
from tests.automation.conftest import (
    add_card,
    build_clinic,
    configure,
    encounter,
    new_patient,
    night_totals,
    patch_patient,
    zone_in_the_day,
)

ROOT = Path(__file__).resolve().parents[2]
PATIENTS = 4
WORKERS = 3



async def test_three_worker_processes_make_each_bill_charge_and_share_once(live, live_engine, settings, collector):
    http, factory = live
    zone = zone_in_the_day()
    clinic = await build_clinic(factory, zone.key)
    await factory.session.commit()
    # Bills shared at once (a delay under an hour is accepted, with a warning), so sharing runs in the test too.
    await configure(http, clinic, bills={"enabled": True, "delay_minutes": 0})
    tonight = datetime.now(UTC).astimezone(zone).date()
    yesterday = tonight - timedelta(days=1)
    emails = []
    for n in range(PATIENTS):
        patient = await new_patient(http, clinic, f"P{n}")
        email = f"worker-{uuid.uuid4().hex[:8]}@example.org"
        await patch_patient(http, clinic, patient, autopay_enabled=True, notice_email=email)
        await add_card(http, clinic, patient)
        for _ in range(2):
            await encounter(http, clinic, patient, yesterday)
        emails.append(email)
    expected = PATIENTS * 2

    url = live_engine.url.render_as_string(hide_password=False)
    env = {**os.environ, "BILLING_API_ENV": "test", "BILLING_API_DATABASE_URL": url,
           "BILLING_API_JWT_SECRET": settings.jwt_secret, "BILLING_API_SMTP_HOST": "127.0.0.1",
           "BILLING_API_SMTP_PORT": str(collector.port), "BILLING_API_MAIL_POLL_SECONDS": "0.1",
           "BILLING_API_AUTOMATION_SCHEDULER": "procrastinate"}
    command = str(Path(sys.executable).with_name("billing-api"))
    workers = [await asyncio.create_subprocess_exec(command, "worker", env=env, cwd=str(ROOT),
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
               for _ in range(WORKERS)]
    connector = procrastinate.PsycopgConnector(conninfo=tasks.conninfo(url), min_size=1, max_size=2)
    try:
        # Ticks as the periodic scheduler would queue them, but many and at once, until the night is done: each is
        # taken by whichever process is free, so several run together.
        with tasks.app.replace_connector(connector):
            async with tasks.app.open_async():
                deadline = time.monotonic() + 60
                got: dict[str, int] = {}
                while time.monotonic() < deadline:
                    try:
                        await tasks.automation_tick.defer_async(timestamp=int(time.time()))
                    except procrastinate_exceptions.AlreadyEnqueued:
                        pass
                    got = await night_totals(live_engine, clinic.company.id, tonight)
                    if got["shared"] >= expected and got["payments"] >= expected:
                        break
                    await asyncio.sleep(0.05)
                for _ in range(20):  # more ticks on the finished night: nothing more may happen
                    try:
                        await tasks.automation_tick.defer_async(timestamp=int(time.time()))
                    except procrastinate_exceptions.AlreadyEnqueued:
                        pass
                    await asyncio.sleep(0.05)
        for email in emails:  # one notice per shared bill, sent by the workers' mail senders
            assert len(await collector.wait_for_async(email, 2, timeout=30)) == 2
        await asyncio.sleep(0.5)
    finally:
        outputs = []
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            output, _ = await asyncio.wait_for(worker.communicate(), timeout=30)
            outputs.append(output.decode())
    assert all(worker.returncode == 0 for worker in workers), outputs
    assert sum("automation tick" in output for output in outputs) >= 2  # the ticks ran in several processes
    # Tonight's two stages (bills, AutoPay) ran once each; every encounter billed, charged, paid and shared once.
    assert await night_totals(live_engine, clinic.company.id, tonight) == {
        "bills": expected, "encounters_billed": expected, "charges": expected, "bills_charged": expected,
        "payments": expected, "shared": expected, "runs": 2, "paid": expected}
    assert all(len(collector.to(email)) == 2 for email in emails)
    async with live_engine.connect() as conn:
        ticks = (await conn.execute(text(
            "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'billing_automation_tick' "
            "AND status = 'succeeded'"))).scalar_one()
    assert ticks >= 2
