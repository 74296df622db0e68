"""An encounter's fees are billing information: its lines' `fee_cents` are shown only to callers who may view the
provider's bills in the encounter's company (the bill scope decides), and null for everyone else who sees the
encounter, who keep its clinical part (date, patient, provider, codes, units, descriptions). A read that shows
fees is recorded in the access log (surface `encounter_fees`) and, for support, audited like any bill read."""

from __future__ import annotations

import json
import uuid
from datetime import date

import pytest
from sqlalchemy import select

from billing_api.models import AuditEvent, DelegationEntry, Encounter
from tests.access_log.helpers import entries_of
from tests.authz.world import CALLERS, ENCOUNTER_FEE, SEES_OWNER_BILLS, build_world
from tests.helpers import assert_problem

SEGREGATION = [pytest.param(False, id="segregation-off"), pytest.param(True, id="segregation-on")]
ROUTE = "/v1/encounters/{encounter_id}"
LINE = {"code_system": "cpt", "code": "99213", "modifiers": [], "diagnosis_pointers": [], "description": "Office visit",
        "units": 1, "cpt_code": "99213"}
# Who sees the world's encounter at all (its company's people, the parent's administrator, support).
SEES_ENCOUNTER = set(CALLERS) - {"outsider", "deactivated_delegate"}


def fees_of(body: dict) -> list[int | None]:
    return [line["fee_cents"] for line in body["lines"]]


def clinical(body: dict) -> list[dict]:
    return [{key: value for key, value in line.items() if key != "fee_cents"} for line in body["lines"]]


async def fee_entries(session, user) -> list:
    return [entry for entry in await entries_of(session, user.id) if entry.surface == "encounter_fees"]


@pytest.mark.parametrize("segregated", SEGREGATION)
@pytest.mark.parametrize("caller", CALLERS)
async def test_the_fees_follow_the_bills(client, factory, session, caller, segregated):
    """Every class of caller: whoever sees the encounter gets its clinical part; the fees go exactly to those who
    see the owner's bills (SEES_OWNER_BILLS), and each such read leaves one access-log row."""
    world = await build_world(factory, segregated=segregated)
    user = world.users[caller]
    response = await client.get(f"/v1/encounters/{world.encounter.id}", headers=factory.headers(user))
    if caller == "deactivated_delegate":
        assert_problem(response, 401)
        return
    if caller not in SEES_ENCOUNTER:
        assert_problem(response, 404, "encounter_not_found")
        assert await fee_entries(session, user) == []
        return

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["id"], body["provider_id"], body["patient_id"]) == (
        str(world.encounter.id), str(world.owner.id), str(world.patient.id))
    assert body["service_date"] == "2026-11-02"
    assert clinical(body) == [LINE]
    shown = caller in SEES_OWNER_BILLS[segregated]
    assert fees_of(body) == ([ENCOUNTER_FEE] if shown else [None])
    assert len(await fee_entries(session, user)) == (1 if shown else 0)


async def test_a_clerk_without_the_providers_bills_reads_no_fees(client, factory, session):
    """Segregation on: plain staff, a role biller and the clinic's administrators see the encounter, its codes and
    units, and no fee; the owner's bill itself stays hidden from them."""
    world = await build_world(factory, segregated=True)
    for caller in ("staff", "role_biller", "other_provider", "company_admin"):
        headers = factory.headers(world.users[caller])
        response = await client.get(f"/v1/encounters/{world.encounter.id}", headers=headers)
        assert response.status_code == 200, (caller, response.text)
        assert clinical(response.json()) == [LINE] and fees_of(response.json()) == [None], caller
        assert '"fee_cents":null' in response.text and f'"fee_cents":{ENCOUNTER_FEE}' not in response.text
        assert_problem(await client.get(f"/v1/bills/{world.insured_bill.id}", headers=headers), 404)
        assert await entries_of(session, world.users[caller].id) == [], caller


async def test_with_the_bills_the_answer_is_unchanged(client, factory):
    """A caller who may view the bills gets the answer as it always was, byte for byte; a clerk's differs only in
    the fee."""
    world = await build_world(factory, segregated=True)
    owner = await client.get(f"/v1/encounters/{world.encounter.id}", headers=factory.headers(world.owner))
    staff = await client.get(f"/v1/encounters/{world.encounter.id}", headers=factory.headers(world.users["staff"]))
    assert owner.status_code == staff.status_code == 200
    encounter = world.encounter
    expected = {
        "id": str(encounter.id), "company_id": str(world.clinic.id), "patient_id": str(world.patient.id),
        "provider_id": str(world.owner.id), "visit_id": str(world.visit.id), "service_date": "2026-11-02",
        "imported": False, "diagnoses": [],
        "lines": [{**{key: value for key, value in LINE.items() if key != "cpt_code"}, "fee_cents": ENCOUNTER_FEE,
                   "cpt_code": "99213"}],
        "created_at": owner.json()["created_at"],
    }
    assert owner.content == json.dumps(expected, separators=(",", ":")).encode()
    assert staff.content == owner.content.replace(f'"fee_cents":{ENCOUNTER_FEE}'.encode(), b'"fee_cents":null')


@pytest.mark.parametrize("caller, rule", [("owner", "own_bills"), ("delegate_user", "delegation_user"),
                                          ("group_delegate", "delegation_group"), ("support", "support")])
async def test_a_read_that_shows_fees_is_logged_with_its_grant(client, factory, session, caller, rule):
    """Segregation on: the provider, a delegate by name, a delegate through a group and support see the fees, and
    the access log says so with the one grant each read rests on."""
    world = await build_world(factory, segregated=True)
    user = world.users[caller]
    response = await client.get(f"/v1/encounters/{world.encounter.id}", headers=factory.headers(user))
    assert response.status_code == 200, response.text
    assert fees_of(response.json()) == [ENCOUNTER_FEE] and clinical(response.json()) == [LINE]

    (entry,) = await entries_of(session, user.id)
    assert (entry.route, entry.surface, entry.permission) == (ROUTE, "encounter_fees", "bills:view")
    assert entry.provider_ids == [world.owner.id] and entry.patient_ids == [world.patient.id]
    assert entry.record_count == 1
    assert [grant["rule"] for grant in entry.grants] == [rule]
    assert entry.grants[0]["provider_id"] == str(world.owner.id)
    assert entry.grants[0]["company_id"] == str(world.clinic.id)
    if rule == "delegation_group":
        assert entry.grants[0]["group_id"] == str(world.group_id)


async def test_supports_view_of_the_fees_is_audited(client, factory, session):
    world = await build_world(factory, segregated=True)
    support = world.users["support"]
    response = await client.get(f"/v1/encounters/{world.encounter.id}", headers=factory.headers(support))
    assert response.status_code == 200 and fees_of(response.json()) == [ENCOUNTER_FEE]
    events = (await session.execute(select(AuditEvent).where(
        AuditEvent.action == "support.bills_viewed", AuditEvent.actor_id == support.id))).scalars().all()
    assert [(e.target_id, e.company_id, e.details["surface"]) for e in events] == [
        (world.owner.id, world.clinic.id, "encounter_fees")]


async def test_company_wide_staff_see_the_fees_as_they_see_the_bills(client, factory, session):
    """Segregation off: the clinic's own people see every provider's bills there, and so the encounter's fees;
    the access log names the company-wide grant."""
    world = await build_world(factory, segregated=False)
    staff = world.users["staff"]
    response = await client.get(f"/v1/encounters/{world.encounter.id}", headers=factory.headers(staff))
    assert response.status_code == 200 and fees_of(response.json()) == [ENCOUNTER_FEE]
    assert (await client.get(f"/v1/bills/{world.insured_bill.id}", headers=factory.headers(staff))).status_code == 200
    (entry,) = await fee_entries(session, staff)
    assert entry.grants == [{"rule": "company_wide", "provider_id": str(world.owner.id),
                             "company_id": str(world.clinic.id)}]


async def test_the_fees_go_when_the_delegation_goes(client, factory, session):
    """No cache: the delegate's next read after their entry is removed shows no fee, and logs nothing."""
    world = await build_world(factory, segregated=True)
    delegate = world.users["delegate_user"]
    headers = factory.headers(delegate)
    path = f"/v1/encounters/{world.encounter.id}"
    assert fees_of((await client.get(path, headers=headers)).json()) == [ENCOUNTER_FEE]
    entry = (await session.execute(select(DelegationEntry).where(DelegationEntry.user_id == delegate.id))).scalar_one()
    await session.delete(entry)
    await session.flush()
    after = await client.get(path, headers=headers)
    assert after.status_code == 200 and fees_of(after.json()) == [None] and clinical(after.json()) == [LINE]
    assert len(await fee_entries(session, delegate)) == 1  # the first read only


async def test_an_encounter_without_lines_shows_no_fees_and_logs_nothing(client, factory, session):
    world = await build_world(factory, segregated=True)
    bare = Encounter(id=uuid.uuid4(), company_id=world.clinic.id, patient_id=world.patient.id,
                     provider_id=world.owner.id, service_date=date(2026, 11, 3))
    session.add(bare)
    await session.flush()
    response = await client.get(f"/v1/encounters/{bare.id}", headers=factory.headers(world.owner))
    assert response.status_code == 200 and response.json()["lines"] == []
    assert await entries_of(session, world.owner.id) == []


@pytest.mark.parametrize("segregated, caller, shown", [
    (True, "staff", False), (True, "company_admin", False), (True, "owner", True), (True, "delegate_user", True),
    (False, "staff", True),
])
async def test_the_create_answer_shows_fees_by_the_same_rule(client, factory, session, segregated, caller, shown):
    """`POST /v1/encounters` answers with the encounter: its fees by the same rule as the read (a clerk who records
    the lines gets them back without fees). A write's answer is not an access-log read."""
    world = await build_world(factory, segregated=segregated)
    user = world.users[caller]
    lines = [{"cpt_code": "99214", "description": "Longer visit", "units": 2, "fee_cents": 9000},
             {"cpt_code": "99000", "description": "Specimen handling", "units": 1, "fee_cents": 0}]
    response = await client.post("/v1/encounters", headers=factory.headers(user), json={
        "patient_id": str(world.patient.id), "provider_id": str(world.owner.id), "service_date": "2026-11-20",
        "lines": lines})
    assert response.status_code == 201, response.text
    body = response.json()
    # Sent as the deprecated `cpt_code`: stored as CPT codes, and shown both ways.
    assert [{key: line[key] for key in ("code_system", "code", "cpt_code", "description", "units")}
            for line in clinical(body)] == [
        {"code_system": "cpt", "code": line["cpt_code"], **{k: v for k, v in line.items() if k != "fee_cents"}}
        for line in lines]
    assert fees_of(body) == ([9000, 0] if shown else [None, None])
    assert await fee_entries(session, user) == []
    # The fees were recorded whoever sent them: the owner reads them back.
    read = await client.get(f"/v1/encounters/{body['id']}", headers=factory.headers(world.owner))
    assert fees_of(read.json()) == [9000, 0]
