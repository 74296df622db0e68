"""Real commits: three workers over the same night, a worker killed mid-stage and restarted, and the notices
delivered over real SMTP exactly once."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import text

from billing_api.automation import jobs
from billing_api.automation.gateway import ChargeResult, TestGateway
from billing_api.db import make_sessionmaker
from billing_api.mail.sender import deliver_due
from tests.automation.conftest import (
    add_card,
    build_clinic,
    configure,
    encounter,
    new_patient,
    night_totals,
    patch_patient,
)

ZONE = ZoneInfo("Europe/London")
NIGHT = date(2026, 11, 10)
PATIENTS = 6


def at(hour: int, minute: int, night: date = NIGHT) -> datetime:
    return datetime(night.year, night.month, night.day, hour, minute, tzinfo=ZONE).astimezone(UTC)


async def build(http, factory) -> tuple:
    clinic = await build_clinic(factory, "Europe/London")
    await factory.session.commit()
    await configure(http, clinic, bills={"enabled": True, "delay_minutes": 60})
    patients, emails = [], []
    for n in range(PATIENTS):
        patient = await new_patient(http, clinic, f"P{n}")
        email = f"notice-{uuid.uuid4().hex[:8]}@example.org"
        await patch_patient(http, clinic, patient, autopay_enabled=True, notice_email=email)
        await add_card(http, clinic, patient)
        for _ in range(2):  # two sessions the day before the night (the catch-up of the night before finds none)
            await encounter(http, clinic, patient, NIGHT - timedelta(days=1),
                            provider=clinic.provider if n % 2 else clinic.provider2)
        patients.append(patient)
        emails.append(email)
    return clinic, patients, emails


async def totals(engine, company_id) -> dict[str, int]:
    return await night_totals(engine, company_id, NIGHT)


async def test_three_workers_over_the_same_night_make_everything_exactly_once(live, live_engine, settings, collector):
    http, factory = live
    clinic, patients, emails = await build(http, factory)
    workers = [make_sessionmaker(live_engine) for _ in range(3)]
    for instant in (at(0, 5), at(0, 35), at(1, 40)):
        await asyncio.gather(*(jobs.run_due(w, settings, instant) for w in workers))
    got = await totals(live_engine, clinic.company.id)
    n = PATIENTS * 2
    assert got == {"bills": n, "encounters_billed": n, "charges": n, "bills_charged": n, "payments": n,
                   "shared": n, "runs": 2, "paid": n}
    # Notices: one per shared document, sent over SMTP once even with three senders.
    mail = settings.model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": collector.port})
    for _ in range(5):
        await asyncio.gather(*(deliver_due(w, mail) for w in workers))
    for email in emails:
        assert len(await collector.wait_for_async(email, 2)) == 2
    await asyncio.sleep(0.2)
    assert all(len(collector.to(email)) == 2 for email in emails)
    # A manual trigger afterwards finds every stage already run.
    response = await http.post(f"/v1/companies/{clinic.company.id}/billing-automation/runs",
                               json={"date": NIGHT.isoformat()}, headers=clinic.h(clinic.admin))
    assert {r["outcome"] for r in response.json()["results"]} == {"already_run"}


class CrashingGateway(TestGateway):
    """The worker dies after its first charge: the exception ends the stage's transaction."""

    def __init__(self) -> None:
        self.calls = 0

    async def charge(self, token: str, amount_cents: int, idempotency_key: str) -> ChargeResult:
        self.calls += 1
        if self.calls > 1:
            raise RuntimeError("worker killed mid-stage")
        return await super().charge(token, amount_cents, idempotency_key)


async def test_a_worker_killed_mid_autopay_leaves_nothing_and_the_restart_finishes(live, live_engine, settings):
    http, factory = live
    clinic, patients, _ = await build(http, factory)
    sm = make_sessionmaker(live_engine)
    await jobs.run_due(sm, settings, at(0, 5))
    crashing = CrashingGateway()
    stats = await jobs.run_due(sm, settings, at(0, 35), gateway=crashing)
    assert stats["failed"] >= 1 and crashing.calls == 2
    got = await totals(live_engine, clinic.company.id)
    assert (got["charges"], got["payments"], got["runs"]) == (0, 0, 1)  # the charge before the crash rolled back
    await asyncio.gather(*(jobs.run_due(make_sessionmaker(live_engine), settings, at(0, 50)) for _ in range(2)))
    got = await totals(live_engine, clinic.company.id)
    assert (got["charges"], got["bills_charged"], got["payments"], got["paid"], got["runs"]) == (12, 12, 12, 12, 2)


async def test_a_worker_killed_mid_bill_creation_leaves_nothing_and_the_restart_finishes(live, live_engine, settings):
    """A real fault inside PostgreSQL: a trigger fails the stage after the first provider's bills were written."""
    http, factory = live
    clinic, patients, _ = await build(http, factory)
    name = f"fault_{uuid.uuid4().hex[:8]}"
    async with live_engine.begin() as conn:
        await conn.execute(text(f"""
            CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.company_id = '{clinic.company.id}' THEN RAISE EXCEPTION 'worker killed mid-stage'; END IF;
                RETURN NEW;
            END $$"""))
        await conn.execute(text(f"CREATE TRIGGER {name} BEFORE INSERT ON billing_document "
                                f"FOR EACH ROW EXECUTE FUNCTION {name}()"))
    sm = make_sessionmaker(live_engine)
    try:
        stats = await jobs.run_due(sm, settings, at(0, 5))
        assert stats["failed"] >= 1
        assert await totals(live_engine, clinic.company.id) == {k: 0 for k in (
            "bills", "encounters_billed", "charges", "bills_charged", "payments", "shared", "runs", "paid")}
    finally:
        async with live_engine.begin() as conn:
            await conn.execute(text(f"DROP TRIGGER {name} ON billing_document"))
            await conn.execute(text(f"DROP FUNCTION {name}()"))
    await asyncio.gather(*(jobs.run_due(make_sessionmaker(live_engine), settings, at(0, 35)) for _ in range(3)))
    got = await totals(live_engine, clinic.company.id)
    assert (got["bills"], got["encounters_billed"], got["charges"], got["paid"], got["runs"]) == (12, 12, 12, 12, 2)


FIRST = date(2026, 11, 1)


async def build_first_night(http, factory) -> tuple:
    """Patients who owe at the end of October (AutoPay off), sharing statements after 60 minutes."""
    clinic = await build_clinic(factory, "Europe/London")
    await factory.session.commit()
    await configure(http, clinic, autopay_enabled=False, statements={"enabled": True, "delay_minutes": 60})
    patients = []
    for n in range(PATIENTS):
        patient = await new_patient(http, clinic, f"S{n}")
        await patch_patient(http, clinic, patient, notice_email=f"statement-{uuid.uuid4().hex[:8]}@example.org")
        for provider in (clinic.provider, clinic.provider2):
            await encounter(http, clinic, patient, date(2026, 10, 31), provider=provider)
        patients.append(patient)
    return clinic, patients


async def statement_totals(engine, company_id) -> dict[str, int]:
    async with engine.connect() as conn:
        row = (await conn.execute(text("""
            SELECT (SELECT count(*) FROM bill WHERE company_id = :c),
                   (SELECT count(*) FROM billing_document WHERE company_id = :c AND kind = 'statement'),
                   (SELECT count(DISTINCT patient_id) FROM billing_document WHERE company_id = :c AND kind = 'statement'),
                   (SELECT count(*) FROM statement_item i JOIN billing_document d ON d.id = i.document_id
                     WHERE d.company_id = :c),
                   (SELECT count(DISTINCT i.bill_id) FROM statement_item i JOIN billing_document d ON d.id = i.document_id
                     WHERE d.company_id = :c),
                   (SELECT count(*) FROM billing_document WHERE company_id = :c AND kind = 'statement'
                       AND share_state = 'shared'),
                   (SELECT count(*) FROM mail_outbox WHERE context->>'kind' = 'statement'
                       AND context->>'company_name' = (SELECT name FROM company WHERE id = :c)),
                   (SELECT count(*) FROM automation_run WHERE company_id = :c AND local_date = :d)
        """), {"c": company_id, "d": FIRST})).one()
    return dict(zip(["bills", "statements", "patients", "items", "bills_listed", "shared", "notices", "runs"], row))


async def test_three_workers_over_a_first_night_make_each_statement_exactly_once(live, live_engine, settings):
    http, factory = live
    clinic, patients = await build_first_night(http, factory)
    workers = [make_sessionmaker(live_engine) for _ in range(3)]
    for instant in (at(0, 5, FIRST), at(0, 35, FIRST), at(1, 40, FIRST)):
        await asyncio.gather(*(jobs.run_due(w, settings, instant) for w in workers))
    n = PATIENTS * 2
    assert await statement_totals(live_engine, clinic.company.id) == {
        "bills": n, "statements": PATIENTS, "patients": PATIENTS, "items": n, "bills_listed": n,
        "shared": PATIENTS, "notices": PATIENTS, "runs": 3}


async def test_a_worker_killed_mid_statements_leaves_nothing_and_the_restart_finishes(live, live_engine, settings):
    """A real fault inside PostgreSQL: listing the bills fails after the statements were inserted."""
    http, factory = live
    clinic, patients = await build_first_night(http, factory)
    sm = make_sessionmaker(live_engine)
    await jobs.run_due(sm, settings, at(0, 5, FIRST))
    name = f"fault_{uuid.uuid4().hex[:8]}"
    async with live_engine.begin() as conn:
        await conn.execute(text(f"""
            CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF EXISTS (SELECT 1 FROM billing_document d WHERE d.id = NEW.document_id
                           AND d.company_id = '{clinic.company.id}') THEN
                    RAISE EXCEPTION 'worker killed mid-stage';
                END IF;
                RETURN NEW;
            END $$"""))
        await conn.execute(text(f"CREATE TRIGGER {name} BEFORE INSERT ON statement_item "
                                f"FOR EACH ROW EXECUTE FUNCTION {name}()"))
    try:
        stats = await jobs.run_due(sm, settings, at(0, 35, FIRST))
        assert stats["failed"] >= 1
        got = await statement_totals(live_engine, clinic.company.id)
        assert (got["statements"], got["items"], got["runs"]) == (0, 0, 2)  # bills and AutoPay committed before
    finally:
        async with live_engine.begin() as conn:
            await conn.execute(text(f"DROP TRIGGER {name} ON statement_item"))
            await conn.execute(text(f"DROP FUNCTION {name}()"))
    await asyncio.gather(*(jobs.run_due(make_sessionmaker(live_engine), settings, at(0, 50, FIRST)) for _ in range(3)))
    got = await statement_totals(live_engine, clinic.company.id)
    assert (got["statements"], got["patients"], got["items"], got["bills_listed"], got["runs"]) == (
        PATIENTS, PATIENTS, PATIENTS * 2, PATIENTS * 2, 3)
