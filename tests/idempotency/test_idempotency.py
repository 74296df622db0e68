"""`Idempotency-Key` over HTTP: a retry answers the first result without doing the work again; the key is the
caller's own, refused with another request, held while in progress, and left behind by no failed request."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from billing_api.db import make_sessionmaker
from billing_api.idempotency import repository as idempotency_repository
from billing_api.models import IdempotencyKey
from tests.authz.world import build_world
from tests.automation.conftest import add_card, build_clinic, configure, encounter, new_patient, patch_patient, run
from tests.helpers import assert_problem, count
from tests.team.flows import invite, unique_email, unique_username

LINE = {"cpt_code": "99213", "description": "Office visit", "units": 1, "fee_cents": 5000}


def bill_body(world, **changes) -> dict:
    return {"provider_id": str(world.owner.id), "patient_id": str(world.patient.id), "coverage": "private",
            "service_date": "2026-11-03", "lines": [LINE], **changes}


def keyed(headers: dict, key: str) -> dict:
    return {**headers, "Idempotency-Key": key}


async def owner_bills(session, world) -> int:
    return await count(session, "bill", "provider_id = :p", p=world.owner.id)


async def test_a_retry_answers_the_first_result_without_creating_again(client, factory, session):
    world = await build_world(factory, segregated=False)
    headers = keyed(factory.headers(world.owner), "create-1")
    before = await owner_bills(session, world)
    first = await client.post("/v1/bills", headers=headers, json=bill_body(world))
    assert first.status_code == 201 and "idempotent-replayed" not in first.headers
    # The same request again, its JSON spaced and ordered differently: the same request.
    body = bill_body(world)
    again = await client.post("/v1/bills", headers={**headers, "Content-Type": "application/json"},
                              content=json.dumps(dict(reversed(body.items())), indent=2))
    assert again.status_code == 201, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert await owner_bills(session, world) == before + 1
    assert await count(session, "integration_event", "type = 'bill.created' AND payload->>'bill_id' = :b",
                       b=first.json()["id"]) == 1


async def test_the_same_key_with_another_request_is_refused_and_does_nothing(client, factory, session):
    world = await build_world(factory, segregated=False)
    headers = keyed(factory.headers(world.owner), "create-2")
    assert (await client.post("/v1/bills", headers=headers, json=bill_body(world))).status_code == 201
    before = await owner_bills(session, world)
    other_body = await client.post("/v1/bills", headers=headers, json=bill_body(world, coverage="insured"))
    assert_problem(other_body, 422, "idempotency_key_reused")
    other_path = await client.post(f"/v1/bills/{world.private_bill.id}/submit", headers=headers)
    assert_problem(other_path, 422, "idempotency_key_reused")
    assert await owner_bills(session, world) == before


async def test_keys_are_each_callers_own(client, factory, session):
    world = await build_world(factory, segregated=False)
    key = "shared-key"
    mine = await client.post("/v1/bills", headers=keyed(factory.headers(world.owner), key), json=bill_body(world))
    theirs = await client.post("/v1/bills", headers=keyed(factory.headers(world.users["delegate_user"]), key),
                               json=bill_body(world))
    assert mine.status_code == theirs.status_code == 201
    assert "idempotent-replayed" not in theirs.headers and theirs.json()["id"] != mine.json()["id"]
    # Another caller's key with another body is no conflict either.
    outsider = await client.post("/v1/bills", headers=keyed(factory.headers(world.users["outsider"]), key),
                                 json=bill_body(world, coverage="insured"))
    assert_problem(outsider, 404, "patient_not_found")


async def test_a_failed_request_leaves_no_key_behind(client, factory, session):
    world = await build_world(factory, segregated=False)
    headers = keyed(factory.headers(world.owner), "fails-first")
    refused = await client.post("/v1/bills", headers=headers, json=bill_body(world, service_date=None))
    assert_problem(refused, 422, "service_date_required")
    invalid = await client.post("/v1/bills", headers=headers, json=bill_body(world, coverage="nope"))
    assert_problem(invalid, 422, "validation_error")
    assert await count(session, "idempotency_key", "user_id = :u", u=world.owner.id) == 0
    # The key is free: the corrected request does the work.
    fixed = await client.post("/v1/bills", headers=headers, json=bill_body(world))
    assert fixed.status_code == 201 and "idempotent-replayed" not in fixed.headers
    assert await count(session, "idempotency_key", "user_id = :u", u=world.owner.id) == 1


async def test_an_expired_key_is_a_new_key(client, factory, session):
    world = await build_world(factory, segregated=False)
    headers = keyed(factory.headers(world.owner), "old-key")
    first = await client.post("/v1/bills", headers=headers, json=bill_body(world))
    assert first.status_code == 201
    stored = await session.get(IdempotencyKey, (world.owner.id, "old-key"))
    assert stored is not None and timedelta(hours=23) < stored.expires_at - datetime.now(UTC) <= timedelta(hours=24)
    await session.execute(update(IdempotencyKey).where(IdempotencyKey.user_id == world.owner.id)
                          .values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    later = await client.post("/v1/bills", headers=headers, json=bill_body(world, coverage="insured"))
    assert later.status_code == 201 and later.json()["id"] != first.json()["id"]


@pytest.mark.parametrize("key", ["", "k" * 256])
async def test_a_key_must_be_1_to_255_characters(client, factory, session, key):
    world = await build_world(factory, segregated=False)
    before = await owner_bills(session, world)
    response = await client.post("/v1/bills", headers=keyed(factory.headers(world.owner), key), json=bill_body(world))
    assert_problem(response, 422, "validation_error")
    assert await owner_bills(session, world) == before
    longest = await client.post("/v1/bills", headers=keyed(factory.headers(world.owner), "k" * 255),
                                json=bill_body(world))
    assert longest.status_code == 201


async def test_submit_and_payment_replays_do_not_apply_twice(client, factory, session):
    world = await build_world(factory, segregated=False)
    owner = factory.headers(world.owner)
    submit = keyed(owner, "submit-1")
    first = await client.post(f"/v1/bills/{world.private_bill.id}/submit", headers=submit)
    again = await client.post(f"/v1/bills/{world.private_bill.id}/submit", headers=submit)
    assert first.status_code == again.status_code == 200 and again.json() == first.json()
    # Without the key the retry is a conflict: the bill is no longer a draft.
    assert_problem(await client.post(f"/v1/bills/{world.private_bill.id}/submit", headers=owner), 409,
                   "bill_not_draft")
    pay = keyed(owner, "pay-1")
    body = {"amount_cents": 2000, "method": "cash", "reference": "R-1"}
    paid = [await client.post(f"/v1/bills/{world.private_bill.id}/payments", headers=pay, json=body) for _ in "ab"]
    assert [r.status_code for r in paid] == [201, 201] and paid[1].json() == paid[0].json()
    assert await count(session, "payment", "bill_id = :b", b=world.private_bill.id) == 1
    assert paid[1].json()["invoice"]["balance_cents"] == 12000 - 2000


async def test_an_invitation_is_created_and_mailed_once(client, factory, session):
    world = await build_world(factory, segregated=False)
    headers = keyed(factory.headers(world.owner), "invite-1")
    email, username = unique_email(), unique_username()
    first = await invite(client, headers, world.owner.id, email=email, username=username)
    again = await invite(client, headers, world.owner.id, email=email, username=username)
    assert first.status_code == again.status_code == 201 and again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert await count(session, "invitation", "email = :e", e=email) == 1
    assert await count(session, "mail_outbox", "to_address = :e", e=email) == 1


async def test_an_automation_run_replays_its_first_answer(client, factory, session):
    clinic = await build_clinic(factory)
    await configure(client, clinic)
    patient = await new_patient(client, clinic)
    await patch_patient(client, clinic, patient, autopay_enabled=True)
    await add_card(client, clinic, patient)
    night = datetime.now(UTC).date() - timedelta(days=1)
    await encounter(client, clinic, patient, night - timedelta(days=1))
    body = {"date": night.isoformat(), "stages": ["autopay"]}
    url = f"/v1/companies/{clinic.company.id}/billing-automation/runs"
    headers = keyed(clinic.h(clinic.admin), "night-1")
    first = await client.post(url, json=body, headers=headers)
    again = await client.post(url, json=body, headers=headers)
    assert first.status_code == again.status_code == 200 and again.json() == first.json()
    assert [r["outcome"] for r in first.json()["results"]] == ["completed", "completed"]
    # Without the key, the same night reports what already ran.
    unkeyed = await run(client, clinic, night, ["autopay"])
    assert [r["outcome"] for r in unkeyed.json()["results"]] == ["already_run", "already_run"]
    assert await count(session, "autopay_charge", "company_id = :c", c=clinic.company.id) == 1


async def test_a_key_still_in_progress_gets_409(live, live_engine):
    http, factory = live
    world = await build_world(factory, segregated=False)
    await factory.session.commit()
    headers = keyed(factory.headers(world.owner), "held")
    # Another transaction holds the key, as a first request still running would.
    async with make_sessionmaker(live_engine)() as holder:
        assert await idempotency_repository.try_lock(holder, world.owner.id, "held")
        held = await http.post("/v1/bills", headers=headers, json=bill_body(world))
        assert_problem(held, 409, "idempotency_key_in_progress")
        assert held.headers["retry-after"] == "1"
        await holder.rollback()
    done = await http.post("/v1/bills", headers=headers, json=bill_body(world))
    assert done.status_code == 201


async def test_concurrent_requests_with_one_key_create_exactly_once(live):
    http, factory = live
    world = await build_world(factory, segregated=False)
    await factory.session.commit()
    headers = keyed(factory.headers(world.owner), f"race-{uuid.uuid4()}")
    responses = await asyncio.gather(*(http.post("/v1/bills", headers=headers, json=bill_body(world))
                                       for _ in range(6)))
    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) <= {201, 409}, [r.text for r in responses]
    created = {r.json()["id"] for r in responses if r.status_code == 201}
    assert len(created) == 1
    for response in responses:
        if response.status_code == 409:
            assert_problem(response, 409, "idempotency_key_in_progress")
    retry = await http.post("/v1/bills", headers=headers, json=bill_body(world))
    assert retry.status_code == 201 and retry.json()["id"] in created
    assert retry.headers["idempotent-replayed"] == "true"
    assert await count(factory.session, "bill", "provider_id = :p", p=world.owner.id) == 2 + 1


def test_the_contract_names_the_header_on_every_creating_post(shared_app):
    schema = shared_app.openapi()
    keyed_operations = {
        operation["operationId"]
        for operations in schema["paths"].values() for operation in operations.values()
        if any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in operation.get("parameters", []))
    }
    assert keyed_operations == {
        "create_bill", "submit_bill", "record_payment", "create_invitation", "resend_invitation",
        "run_billing_automation", "add_payment_method", "create_patient", "create_visit", "create_encounter",
        "create_user", "create_group", "create_patient_document", "attest_access_review",
    }
    header = next(p for p in schema["paths"]["/v1/bills"]["post"]["parameters"] if p["name"] == "Idempotency-Key")
    assert {key: header["schema"][key] for key in ("type", "minLength", "maxLength")} == {
        "type": "string", "minLength": 1, "maxLength": 255}  # optional, yet never null: absent is how to omit it
    assert "idempotency_key_reused" in header["description"] and "idempotency_key_in_progress" in header["description"]
