"""Superbills and statements made by hand (POST /v1/patients/{id}/documents), over HTTP: the therapy seed's
imported sessions, the once-per-patient-and-period rule shared with the nightly run (both ways, and under
concurrent requests), who may make one, bad periods, sharing as configured, Idempotency-Key."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from billing_api.automation import repository
from billing_api.db import make_sessionmaker
from billing_api.models import BillingDocument, DocumentKind, ShareState
from tests.automation.conftest import (
    build_clinic,
    by_stage,
    configure,
    encounter,
    new_patient,
    patch_patient,
    run,
)
from tests.automation.test_statements import manual_bill
from tests.helpers import assert_problem, count

MARCH = {"period_start": "2026-03-01", "period_end": "2026-03-31"}
OCTOBER = {"period_start": "2026-10-01", "period_end": "2026-10-31"}
SUPERBILL_NIGHT = date(2026, 11, 5)  # superbill_day 5 (SETTINGS_BODY): October's superbills


async def post(client, clinic, patient, body: dict, user=None, **headers):
    return await client.post(f"/v1/patients/{patient}/documents", json=body,
                             headers={**clinic.h(user or clinic.provider), **headers})


async def documents(client, clinic, patient) -> list[dict]:
    response = await client.get(f"/v1/patients/{patient}/documents", headers=clinic.h(clinic.admin),
                                params={"include_unshared": "true"})
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def test_the_therapy_seeds_imported_sessions_get_a_superbill_by_hand_once(client, session, clinic):
    """Imported sessions are never picked up by the night; a superbill made by hand lists them, is shared as the
    patient's superbill sharing says, and a second one for the month is 409 with the first one's id."""
    await configure(client, clinic)  # superbill sharing on, 30 minutes
    patient = await new_patient(client, clinic)
    first = await encounter(client, clinic, patient, date(2026, 3, 10), imported=True, fee=15000)
    second = await encounter(client, clinic, patient, date(2026, 3, 24), imported=True, cpt="90834", fee=12000)
    await encounter(client, clinic, patient, date(2026, 3, 17), imported=True, cpt=None)  # no CPT code
    logged = await count(session, "access_log")

    response = await post(client, clinic, patient, {"kind": "superbill", "encounter_ids": [str(second), str(first)]})
    assert response.status_code == 201, response.text
    doc = response.json()
    assert (doc["kind"], doc["period_start"], doc["period_end"]) == ("superbill", "2026-03-01", "2026-03-31")
    assert doc["total_cents"] == 27000 and doc["created_by"] == str(clinic.provider.id)
    assert [(e["encounter_id"], e["service_date"], e["imported"], e["total_cents"]) for e in doc["encounters"]] == [
        (str(first), "2026-03-10", True, 15000), (str(second), "2026-03-24", True, 12000)]
    created = datetime.fromisoformat(doc["created_at"])
    assert doc["share_state"] == "scheduled"
    assert datetime.fromisoformat(doc["share_at"]) == created + timedelta(minutes=30)
    assert await count(session, "access_log", "surface = 'patient_document' AND :p = ANY(patient_ids)", p=patient) == 1
    assert await count(session, "access_log") == logged + 1
    assert await count(session, "audit_event", "action = 'billing_document.created' AND target_id = :p",
                       p=patient) == 1
    listed = await documents(client, clinic, patient)
    assert [d["id"] for d in listed] == [doc["id"]] and len(listed[0]["encounters"]) == 2

    # Again, by period or by the same sessions: one per patient and month.
    for body in ({"kind": "superbill", **MARCH}, {"kind": "superbill", "encounter_ids": [str(first)]}):
        problem = assert_problem(await post(client, clinic, patient, body), 409, "document_exists_for_period")
        assert problem["existing_id"] == doc["id"]
    assert len(await documents(client, clinic, patient)) == 1

    # Shared when its time comes, with the notice in the outbox, as the night's documents are.
    await patch_patient(client, clinic, patient, notice_email="pat@example.org")
    assert await repository.share_due(session, created + timedelta(minutes=29)) == (0, 0)
    assert await repository.share_due(session, created + timedelta(minutes=31)) == (1, 1)
    assert (await documents(client, clinic, patient))[0]["share_state"] == "shared"


async def test_a_superbill_by_period_lists_imported_and_other_sessions_with_a_cpt_code(client, clinic):
    await configure(client, clinic, superbills={"enabled": False, "delay_minutes": 0})
    patient = await new_patient(client, clinic)
    imported = await encounter(client, clinic, patient, date(2026, 3, 3), imported=True, fee=10000)
    recorded = await encounter(client, clinic, patient, date(2026, 3, 31), provider=clinic.provider2, fee=9000)
    await encounter(client, clinic, patient, date(2026, 4, 1), fee=5000)  # April: not in March
    # Both providers' sessions: a biller who may save every provider's bills of the practice (no segregation).
    biller = await clinic.factory.user(clinic.company, permissions=["bills:save"])
    assert_problem(await post(client, clinic, patient, {"kind": "superbill", **MARCH}), 403, "permission_denied")
    response = await post(client, clinic, patient, {"kind": "superbill", **MARCH}, user=biller)
    assert response.status_code == 201, response.text
    doc = response.json()
    assert [e["encounter_id"] for e in doc["encounters"]] == [str(imported), str(recorded)]
    assert doc["total_cents"] == 19000
    assert (doc["share_state"], doc["share_at"]) == ("not_shared", None)  # the patient's superbill sharing is off


async def test_a_statement_by_period_lists_what_is_owed_and_the_night_makes_no_second(client, session, clinic):
    await configure(client, clinic, statements={"enabled": True, "delay_minutes": 0})
    patient = await new_patient(client, clinic)
    owed = await manual_bill(client, clinic, patient, date(2026, 9, 12), submit=True, fee=4000)
    await manual_bill(client, clinic, patient, date(2026, 9, 20), submit=False, fee=7000)  # a draft: not owed
    await manual_bill(client, clinic, patient, date(2026, 10, 2), submit=True, fee=3000)  # after the period
    response = await post(client, clinic, patient, {"kind": "statement", "period_start": "2026-09-01",
                                                    "period_end": "2026-09-30"})
    assert response.status_code == 201, response.text
    doc = response.json()
    assert doc["kind"] == "statement" and doc["total_cents"] == 4000 and doc["encounters"] == []
    assert [(i["bill_id"], i["balance_cents"]) for i in doc["items"]] == [(owed, 4000)]
    assert doc["share_state"] == "scheduled" and doc["share_at"] == doc["created_at"]
    again = await post(client, clinic, patient, {"kind": "statement", "period_start": "2026-09-01",
                                                 "period_end": "2026-09-30"})
    assert assert_problem(again, 409, "document_exists_for_period")["existing_id"] == doc["id"]
    # The night of October 1st makes September's statements: none for this patient, who has one.
    assert by_stage(await run(client, clinic, date(2026, 10, 1), ["statements"]))["statements"][
        "run"]["counts"]["statements_created"] == 0
    assert await count(session, "billing_document", "patient_id = :p AND kind = 'statement'", p=patient) == 1


async def test_the_nightly_run_and_manual_superbills_share_the_once_per_period_rule(client, session, clinic):
    await configure(client, clinic)
    by_night, by_hand = await new_patient(client, clinic, "Night"), await new_patient(client, clinic, "Hand")
    for patient in (by_night, by_hand):
        await patch_patient(client, clinic, patient, superbills_enabled=True)
        await encounter(client, clinic, patient, date(2026, 10, 14))
    # By hand first: the night leaves that patient alone and makes the other's.
    made = await post(client, clinic, by_hand, {"kind": "superbill", **OCTOBER})
    assert made.status_code == 201, made.text
    counts = by_stage(await run(client, clinic, SUPERBILL_NIGHT, ["superbills"]))["superbills"]["run"]["counts"]
    assert counts["superbills_created"] == 1
    superbills = "patient_id = :p AND kind = 'superbill'"
    assert await count(session, "billing_document", superbills, p=by_hand) == 1
    assert await count(session, "billing_document", superbills, p=by_night) == 1
    # The night's first: a superbill by hand for that month is 409 with the night's document.
    nightly = await documents(client, clinic, by_night)
    assert nightly[0]["created_by"] is None
    for body in ({"kind": "superbill", **OCTOBER}, {"kind": "superbill", "encounter_ids": [
            str(await encounter(client, clinic, by_night, date(2026, 10, 20), imported=True))]}):
        problem = assert_problem(await post(client, clinic, by_night, body), 409, "document_exists_for_period")
        assert problem["existing_id"] == nightly[0]["id"]


async def test_concurrent_duplicates_one_wins_the_other_is_409(live, live_engine):
    http, factory = live
    clinic = await build_clinic(factory)
    await factory.session.commit()
    patient = await new_patient(http, clinic)
    await encounter(http, clinic, patient, date(2026, 3, 9), imported=True)
    answers = await asyncio.gather(*(post(http, clinic, patient, {"kind": "superbill", **MARCH})
                                     for _ in range(4)))
    assert sorted(a.status_code for a in answers) == [201, 409, 409, 409], [a.text for a in answers]
    winner = next(a.json()["id"] for a in answers if a.status_code == 201)
    assert {a.json()["existing_id"] for a in answers if a.status_code == 409} == {winner}


async def test_the_unique_index_decides_between_two_transactions_not_a_read_before(live, live_engine):
    """The insert itself is the arbiter: a second transaction's insert waits for the first and then writes
    nothing, whatever either read before."""
    http, factory = live
    clinic = await build_clinic(factory)
    await factory.session.commit()
    patient = await new_patient(http, clinic)
    maker = make_sessionmaker(live_engine)

    def superbill() -> BillingDocument:
        return BillingDocument(id=uuid.uuid4(), company_id=clinic.company.id, patient_id=patient,
                               kind=DocumentKind.superbill, period_start=date(2026, 3, 1),
                               period_end=date(2026, 3, 31), total_cents=1, share_state=ShareState.not_shared,
                               created_at=datetime.now(UTC))

    first, second = superbill(), superbill()
    async with maker() as one, maker() as two:
        assert await repository.add_manual_document(one, first)
        waiting = asyncio.create_task(repository.add_manual_document(two, second))
        await asyncio.sleep(0.3)
        assert not waiting.done()  # held by the first transaction's row
        await one.commit()
        assert await waiting is False
        assert await repository.document_for_period(two, patient, DocumentKind.superbill,
                                                    date(2026, 3, 1)) == first.id
        await two.rollback()


async def test_who_may_make_one(client, session, clinic):
    patient = await new_patient(client, clinic)
    theirs = await encounter(client, clinic, patient, date(2026, 3, 9), imported=True)
    await encounter(client, clinic, patient, date(2026, 3, 11), provider=clinic.provider2)
    chosen = {"kind": "superbill", "encounter_ids": [str(theirs)]}
    # Staff see the provider's bills company-wide (no segregation) but may not save them: 403, as POST /v1/bills.
    body = assert_problem(await post(client, clinic, patient, chosen, user=clinic.staff), 403, "permission_denied")
    assert body["permission"] == "bills:save"
    assert_problem(await post(client, clinic, patient, chosen, user=clinic.support), 403, "support_read_only")
    assert_problem(await post(client, clinic, patient, chosen, user=clinic.outsider), 404, "patient_not_found")
    # Segregated: provider2 treats the patient too, but may not see the provider's session (404), nor make the
    # month's superbill, which would list it (403).
    clinic.company.billing_segregation_enabled_at = datetime.now(UTC)
    await session.flush()
    problem = assert_problem(await post(client, clinic, patient, chosen, user=clinic.provider2), 404,
                             "encounter_not_found")
    assert problem["field"] == "encounter_ids[0]"
    assert_problem(await post(client, clinic, patient, {"kind": "superbill", **MARCH}, user=clinic.provider2), 403,
                   "permission_denied")
    assert await count(session, "billing_document", "patient_id = :p", p=patient) == 0
    # The provider may (and the superbill lists only their chosen session).
    response = await post(client, clinic, patient, chosen)
    assert response.status_code == 201, response.text


async def test_a_statement_listing_bills_the_caller_may_not_save_is_refused(client, session, clinic):
    patient = await new_patient(client, clinic)
    await manual_bill(client, clinic, patient, date(2026, 9, 12), submit=True)  # clinic.provider's
    await encounter(client, clinic, patient, date(2026, 9, 1), provider=clinic.provider2)
    clinic.company.billing_segregation_enabled_at = datetime.now(UTC)
    await session.flush()
    body = {"kind": "statement", "period_start": "2026-09-01", "period_end": "2026-09-30"}
    assert_problem(await post(client, clinic, patient, body, user=clinic.provider2), 403, "permission_denied")
    assert (await post(client, clinic, patient, body)).status_code == 201


@pytest.mark.parametrize(("body", "code", "field"), [
    ({"kind": "superbill", "period_start": "2026-03-31", "period_end": "2026-03-01"},
     "period_end_before_start", "period_end"),
    ({"kind": "superbill", "period_start": "2026-03-02", "period_end": "2026-03-31"}, "period_not_a_month",
     "period_start"),
    ({"kind": "superbill", "period_start": "2026-03-01", "period_end": "2026-04-30"}, "period_not_a_month",
     "period_end"),
    ({"kind": "statement", "period_start": "2100-01-01", "period_end": "2100-01-31"}, "period_not_ended",
     "period_end"),
    ({"kind": "superbill", "period_start": "9999-12-01", "period_end": "9999-12-31"}, "period_not_ended",
     "period_end"),
    ({"kind": "superbill", "period_start": "0001-01-01", "period_end": "9999-12-31"}, "period_not_a_month",
     "period_end"),
    ({"kind": "superbill", "period_start": "2026-03-01"}, "period_incomplete", "period_end"),
    ({"kind": "superbill"}, "period_or_encounters_required", "period_start"),
    ({"kind": "superbill", **MARCH, "encounter_ids": ["{march}"]}, "period_or_encounters_required",
     "period_start"),
    ({"kind": "statement", "encounter_ids": ["{march}"]}, "encounters_for_superbill_only", "encounter_ids"),
    ({"kind": "superbill", "encounter_ids": ["{march}", "{march}"]}, "encounter_repeated", "encounter_ids[1]"),
    ({"kind": "superbill", "encounter_ids": ["{march}", "{april}"]}, "encounters_span_months", "encounter_ids"),
    ({"kind": "superbill", "encounter_ids": ["{march}", "{no_cpt}"]}, "encounter_not_billable",
     "encounter_ids[1]"),
    ({"kind": "superbill", "encounter_ids": ["{other_patient}"]}, "encounter_mismatch", "encounter_ids[0]"),
    ({"kind": "superbill", "period_start": "2026-02-01", "period_end": "2026-02-28"}, "no_billable_sessions",
     "period_start"),
    ({"kind": "statement", **MARCH}, "nothing_owed", "period_end"),
])
async def test_bad_requests_are_422_naming_the_field_and_the_rule(client, session, clinic, body, code, field):
    patient = await new_patient(client, clinic)
    names = {
        "march": await encounter(client, clinic, patient, date(2026, 3, 9), imported=True),
        "april": await encounter(client, clinic, patient, date(2026, 4, 9), imported=True),
        "no_cpt": await encounter(client, clinic, patient, date(2026, 3, 12), imported=True, cpt=None),
        "other_patient": await encounter(client, clinic, await new_patient(client, clinic, "Other"),
                                         date(2026, 3, 9)),
    }
    if "encounter_ids" in body:
        body = {**body, "encounter_ids": [str(names[i.strip("{}")]) for i in body["encounter_ids"]]}
    problem = assert_problem(await post(client, clinic, patient, body), 422, code)
    assert problem["field"] == field
    assert await count(session, "billing_document", "patient_id = :p", p=patient) == 0


async def test_the_body_is_checked_by_the_contract(client, clinic):
    patient = await new_patient(client, clinic)
    for body in ({"kind": "bill", **MARCH}, {"kind": "superbill", "encounter_ids": []},
                 {"kind": "superbill", **MARCH, "extra": 1}, {"kind": "superbill", "period_start": "March"}):
        assert_problem(await post(client, clinic, patient, body), 422, "validation_error")
    assert_problem(await post(client, clinic, uuid.uuid4(), {"kind": "superbill", **MARCH}), 404,
                   "patient_not_found")


async def test_an_idempotency_key_answers_a_retry_with_the_same_document(client, session, clinic):
    patient = await new_patient(client, clinic)
    await encounter(client, clinic, patient, date(2026, 3, 9), imported=True)
    key = {"Idempotency-Key": str(uuid.uuid4())}
    first = await post(client, clinic, patient, {"kind": "superbill", **MARCH}, **key)
    again = await post(client, clinic, patient, {"kind": "superbill", **MARCH}, **key)
    assert (first.status_code, again.status_code) == (201, 201), again.text
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    assert await count(session, "billing_document", "patient_id = :p", p=patient) == 1
