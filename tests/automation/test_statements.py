"""Statements: on the first night of each month, after AutoPay, one per patient who owes (issued bills with a
balance for services up to the end of the previous month), listing those bills; exactly once; shared after the
patient's statement delay when the patient's statement sharing is on. Over HTTP and through the worker's code."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import text

from billing_api.automation import jobs, repository
from billing_api.models import AutomationStage
from tests.automation.conftest import (
    add_card,
    build_clinic,
    by_stage,
    configure,
    encounter,
    new_patient,
    patch_patient,
    run,
)
from tests.helpers import count

FIRST = date(2026, 11, 1)
STATEMENTS_ON = {"enabled": True, "delay_minutes": 120}


async def documents(client, clinic, patient, **params) -> list[dict]:
    response = await client.get(f"/v1/patients/{patient}/documents", headers=clinic.h(clinic.admin),
                                params={"include_unshared": "true", **params})
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def statements_of(client, clinic, patient, **params) -> list[dict]:
    return [d for d in await documents(client, clinic, patient, **params) if d["kind"] == "statement"]


async def manual_bill(client, clinic, patient, service_date: date, *, submit: bool, fee: int = 4000) -> str:
    response = await client.post("/v1/bills", headers=clinic.h(clinic.provider), json={
        "provider_id": str(clinic.provider.id), "patient_id": str(patient), "coverage": "private",
        "service_date": service_date.isoformat(),
        "lines": [{"cpt_code": "90832", "description": "Psychotherapy, 30 min", "units": 1, "fee_cents": fee}]})
    assert response.status_code == 201, response.text
    bill_id = response.json()["id"]
    if submit:
        assert (await client.post(f"/v1/bills/{bill_id}/submit", headers=clinic.h(clinic.provider))).status_code == 200
    return bill_id


async def bill_of_encounter(session, encounter_id) -> uuid.UUID:
    return (await session.execute(text("SELECT id FROM bill WHERE encounter_id = :e"), {"e": encounter_id})
            ).scalar_one()


async def test_one_statement_per_patient_who_owes_listing_the_open_bills_after_autopay(client, session, clinic):
    await configure(client, clinic, statements=STATEMENTS_ON)
    owes = await new_patient(client, clinic, "Owes")
    await patch_patient(client, clinic, owes, notice_email="owes@example.org")
    early = await encounter(client, clinic, owes, date(2026, 10, 20), fee=10000)
    late = await encounter(client, clinic, owes, date(2026, 10, 31), provider=clinic.provider2, fee=8000)
    await run(client, clinic, date(2026, 10, 21), ["bills"])  # the 20th's session is billed the next night
    early_bill = await bill_of_encounter(session, early)
    paid_part = await client.post(f"/v1/bills/{early_bill}/payments", headers=clinic.h(clinic.provider),
                                  json={"amount_cents": 3000, "method": "cash"})
    assert paid_part.status_code in (200, 201), paid_part.text
    await manual_bill(client, clinic, owes, date(2026, 10, 15), submit=False)  # a draft is not owed
    await manual_bill(client, clinic, owes, date(2026, 11, 5), submit=True)  # November's: next statement
    paid_by_autopay = await new_patient(client, clinic, "AutoPaid")
    await patch_patient(client, clinic, paid_by_autopay, autopay_enabled=True)
    await add_card(client, clinic, paid_by_autopay)
    await encounter(client, clinic, paid_by_autopay, date(2026, 10, 31))
    declined = await new_patient(client, clinic, "Declined")
    await patch_patient(client, clinic, declined, autopay_enabled=True,
                        statements={"enabled": False, "delay_minutes": 60})
    await add_card(client, clinic, declined, "tok_decline")
    await encounter(client, clinic, declined, date(2026, 10, 30), fee=6000)
    nothing = await new_patient(client, clinic, "Nothing")
    await encounter(client, clinic, nothing, date(2026, 10, 31), imported=True, cpt=None)

    stages = by_stage(await run(client, clinic, FIRST))
    assert list(stages) == ["bills", "autopay", "statements"]  # superbill day is the 5th
    assert stages["autopay"]["run"]["counts"]["bills_charged"] == 1
    counts = stages["statements"]["run"]["counts"]
    assert (counts["statements_created"], counts["bills_listed"], counts["balance_cents"]) == (2, 3, 21000)
    assert (counts["period_start"], counts["period_end"]) == ("2026-10-01", "2026-10-31")

    [statement] = await statements_of(client, clinic, owes)
    late_bill = await bill_of_encounter(session, late)
    assert statement["total_cents"] == 15000
    assert (statement["period_start"], statement["period_end"]) == ("2026-10-01", "2026-10-31")
    assert statement["items"] == [
        {"bill_id": str(early_bill), "provider_id": str(clinic.provider.id), "service_date": "2026-10-20",
         "total_cents": 10000, "balance_cents": 7000},
        {"bill_id": str(late_bill), "provider_id": str(clinic.provider2.id), "service_date": "2026-10-31",
         "total_cents": 8000, "balance_cents": 8000},
    ]
    [other] = await statements_of(client, clinic, declined)
    assert (other["total_cents"], other["share_state"], other["share_at"]) == (6000, "not_shared", None)
    assert await statements_of(client, clinic, paid_by_autopay) == []
    assert await statements_of(client, clinic, nothing) == []
    assert all(d["items"] == [] for d in await documents(client, clinic, owes) if d["kind"] != "statement")

    # Shared at creation + the patient's delay, with a notice; never for the patient whose sharing is off.
    created, share_at = datetime.fromisoformat(statement["created_at"]), datetime.fromisoformat(statement["share_at"])
    assert (statement["share_state"], share_at - created) == ("scheduled", timedelta(minutes=120))
    assert await statements_of(client, clinic, owes, include_unshared="false") == []
    await repository.share_due(session, share_at - timedelta(seconds=1), company_id=clinic.company.id)
    assert await statements_of(client, clinic, owes, include_unshared="false") == []
    await repository.share_due(session, share_at, company_id=clinic.company.id)
    [shared] = await statements_of(client, clinic, owes, include_unshared="false")
    assert shared["share_state"] == "shared" and shared["items"] == statement["items"]
    assert await count(session, "mail_outbox", "to_address = 'owes@example.org' AND context->>'kind' = 'statement'") == 1
    await repository.share_due(session, share_at + timedelta(days=40), company_id=clinic.company.id)
    assert (await statements_of(client, clinic, declined))[0]["share_state"] == "not_shared"


async def test_statements_are_made_once_per_patient_and_month(client, session, clinic, settings):
    await configure(client, clinic, statements=STATEMENTS_ON)
    patient = await new_patient(client, clinic)
    await encounter(client, clinic, patient, date(2026, 10, 12))
    by_stage(await run(client, clinic, FIRST))
    again = by_stage(await run(client, clinic, FIRST, ["statements"]))
    assert {r["outcome"] for r in again.values()} == {"already_run"}
    assert await jobs.run_stage(session, clinic.company.id, FIRST, AutomationStage.statements, settings=settings,
                                ) == jobs.StageOutcome(AutomationStage.statements, "already_run", None)
    # Even past the run claim, the unique index keeps one statement per patient and month.
    open_bills = [(b, patient, clinic.provider.id, date(2026, 10, 12), 15000, 15000) for b in (
        await session.execute(text("SELECT id FROM bill WHERE patient_id = :p"), {"p": patient})).scalars()]
    assert await repository.add_statements(session, clinic.company.id, date(2026, 10, 1), date(2026, 10, 31),
                                           datetime.now(UTC), open_bills) == (0, 0, 0)
    assert await count(session, "billing_document", "patient_id = :p AND kind = 'statement'", p=patient) == 1
    assert await count(session, "statement_item si JOIN billing_document d ON d.id = si.document_id",
                       "d.patient_id = :p", p=patient) == 1


async def test_statements_only_on_the_first_night_and_monthly_bills_are_on_it(client, session, clinic):
    await configure(client, clinic, bill_creation="monthly", statements=STATEMENTS_ON)
    patient = await new_patient(client, clinic)
    await encounter(client, clinic, patient, date(2026, 10, 3), fee=5000)
    await encounter(client, clinic, patient, date(2026, 10, 17), fee=5000)
    assert "statements" not in by_stage(await run(client, clinic, date(2026, 11, 2)))
    asked = by_stage(await run(client, clinic, date(2026, 11, 3), ["statements"]))
    assert list(asked) == ["bills", "autopay", "statements"]  # what statements follow comes along
    assert asked["statements"]["run"]["counts"]["statements_created"] == 0
    assert asked["statements"]["run"]["counts"]["note"] == "statements are created on the first night of the month"
    first = by_stage(await run(client, clinic, FIRST))
    assert first["bills"]["run"]["counts"]["bills_created"] == 1  # October's monthly bill, made that same night
    [statement] = await statements_of(client, clinic, patient)
    assert statement["total_cents"] == 10000 and len(statement["items"]) == 1


async def test_the_worker_makes_statements_after_autopay_on_the_first_night(client, session, sessionmaker, factory,
                                                                           settings):
    clinic = await build_clinic(factory, "Australia/Sydney")
    await configure(client, clinic, statements=STATEMENTS_ON)
    owes = await new_patient(client, clinic, "Owes")
    await encounter(client, clinic, owes, date(2026, 10, 31), fee=9000)
    paid = await new_patient(client, clinic, "Paid")
    await patch_patient(client, clinic, paid, autopay_enabled=True)
    await add_card(client, clinic, paid)
    await encounter(client, clinic, paid, date(2026, 10, 31))
    zone = ZoneInfo("Australia/Sydney")
    at = lambda h, m: datetime(2026, 11, 1, h, m, tzinfo=zone).astimezone(UTC)
    await jobs.run_due(sessionmaker, settings, at(0, 10))
    assert await count(session, "billing_document", "company_id = :c AND kind = 'statement'",
                       c=clinic.company.id) == 0  # bills at midnight; statements wait for AutoPay
    for minute in (31, 46):
        await jobs.run_due(sessionmaker, settings, at(0, minute))
    assert [s["total_cents"] for s in await statements_of(client, clinic, owes)] == [9000]
    assert await statements_of(client, clinic, paid) == []
    stats = await jobs.run_due(sessionmaker, settings, at(2, 31))
    assert stats["shared"] >= 1
    assert [s["share_state"] for s in await statements_of(client, clinic, owes)] == ["shared"]
    assert await count(session, "automation_run", "company_id = :c AND local_date = :d AND stage = 'statements'",
                       c=clinic.company.id, d=FIRST) == 1
