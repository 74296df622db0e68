"""Decision table: every class of caller against every bill surface, segregation off and on.
Not visible means 404 (or simply absent from a list); visible but not permitted means 403."""

from __future__ import annotations

import pytest

from tests.authz.world import CALLERS, MAY_CHANGE_OWNER_BILLS, SEES_OWNER_BILLS, build_world

SEGREGATION = [pytest.param(False, id="segregation-off"), pytest.param(True, id="segregation-on")]


def ids(page) -> set[str]:
    return {item["id"] for item in page["items"]}


@pytest.mark.parametrize("segregated", SEGREGATION)
@pytest.mark.parametrize("caller", CALLERS)
async def test_read_surfaces(client, factory, caller, segregated):
    world = await build_world(factory, segregated=segregated)
    headers = factory.headers(world.users[caller])
    sees = caller in SEES_OWNER_BILLS[segregated]
    owner_bills = world.owner_bill_ids

    dashboard = await client.get("/v1/bills", headers=headers)
    single = await client.get(f"/v1/bills/{world.insured_bill.id}", headers=headers)
    encounter = await client.get(f"/v1/encounters/{world.encounter.id}/bills", headers=headers)
    insured = await client.get(f"/v1/patients/{world.patient.id}/bills", params={"coverage": "insured"},
                               headers=headers)
    private = await client.get(f"/v1/patients/{world.patient.id}/bills", params={"coverage": "private"},
                               headers=headers)
    visits = await client.get("/v1/visits", headers=headers)

    if caller == "deactivated_delegate":
        for response in (dashboard, single, encounter, insured, private, visits):
            assert response.status_code == 401
        return

    assert dashboard.status_code == 200
    assert (owner_bills <= ids(dashboard.json())) is sees
    assert not (owner_bills & ids(dashboard.json())) or sees
    # Never a bill of another company, except for support.
    assert (str(world.elsewhere_bill.id) in ids(dashboard.json())) is (caller in ("support", "outsider"))

    assert single.status_code == (200 if sees else 404)
    if sees:
        assert single.json()["lines"][0]["cpt_code"] == "99213"
    else:
        assert single.headers["content-type"] == "application/problem+json"

    if caller == "outsider":  # the clinic's records themselves are out of reach
        for response in (encounter, insured, private):
            assert response.status_code == 404
        assert str(world.visit.id) not in ids(visits.json())
        return

    assert encounter.status_code == 200
    assert {b["id"] for b in encounter.json()} == ({str(world.insured_bill.id)} if sees else set())
    assert insured.status_code == private.status_code == 200
    assert ids(insured.json()) & owner_bills == ({str(world.insured_bill.id)} if sees else set())
    assert ids(private.json()) & owner_bills == ({str(world.private_bill.id)} if sees else set())
    visit = next(v for v in visits.json()["items"] if v["id"] == str(world.visit.id))
    assert {b["id"] for b in visit["bills"]} == (owner_bills if sees else set())


WRITES = [
    pytest.param("save", id="edit"),
    pytest.param("submit", id="submit"),
    pytest.param("delete", id="delete"),
    pytest.param("create", id="create"),
]


async def _write(client, world, headers, action):
    bill = world.private_bill
    line = {"cpt_code": "99214", "description": "Longer visit", "units": 2, "fee_cents": 9000}
    if action == "save":
        return await client.patch(f"/v1/bills/{bill.id}", json={"lines": [line]}, headers=headers)
    if action == "submit":
        return await client.post(f"/v1/bills/{bill.id}/submit", headers=headers)
    if action == "delete":
        return await client.delete(f"/v1/bills/{bill.id}", headers=headers)
    return await client.post("/v1/bills", headers=headers, json={
        "provider_id": str(world.owner.id), "patient_id": str(world.patient.id), "coverage": "private",
        "service_date": "2026-11-03", "lines": [line]})


@pytest.mark.parametrize("action", WRITES)
@pytest.mark.parametrize("segregated", SEGREGATION)
@pytest.mark.parametrize("caller", CALLERS)
async def test_writes(client, factory, caller, segregated, action):
    world = await build_world(factory, segregated=segregated)
    headers = factory.headers(world.users[caller])
    response = await _write(client, world, headers, action)
    if caller == "deactivated_delegate":
        assert response.status_code == 401
        return
    if caller in MAY_CHANGE_OWNER_BILLS[segregated]:
        assert response.status_code in (200, 201, 204), response.text
    elif caller in SEES_OWNER_BILLS[segregated]:
        assert response.status_code == 403, response.text
        assert response.json()["code"] == "permission_denied"
    else:
        assert response.status_code == 404, response.text

    # What the owner sees afterwards tells whether the write happened.
    owner_view = await client.get(f"/v1/bills/{world.private_bill.id}", headers=factory.headers(world.owner))
    changed = response.status_code in (200, 201, 204)
    if action == "delete":
        assert owner_view.status_code == (404 if changed else 200)
    elif action == "save":
        assert (owner_view.json()["total_cents"] == 18000) is changed
    elif action == "submit":
        assert (owner_view.json()["status"] == "submitted") is changed
    else:
        dashboard = await client.get("/v1/bills", params={"provider_id": str(world.owner.id)},
                                     headers=factory.headers(world.owner))
        assert (len(dashboard.json()["items"]) == 3) is changed


async def test_submitted_bills_cannot_be_edited_or_deleted(client, factory):
    world = await build_world(factory, segregated=True)
    headers = factory.headers(world.owner)
    assert (await client.post(f"/v1/bills/{world.private_bill.id}/submit", headers=headers)).status_code == 200
    for response in (
        await client.patch(f"/v1/bills/{world.private_bill.id}", json={"coverage": "insured"}, headers=headers),
        await client.delete(f"/v1/bills/{world.private_bill.id}", headers=headers),
        await client.post(f"/v1/bills/{world.private_bill.id}/submit", headers=headers),
    ):
        assert response.status_code == 409
        assert response.json()["code"] == "bill_not_draft"


async def test_support_reads_are_audited_per_provider(client, factory, session):
    from sqlalchemy import select

    from billing_api.models import AuditEvent

    world = await build_world(factory, segregated=True)
    response = await client.get("/v1/bills", headers=factory.headers(world.users["support"]))
    assert response.status_code == 200
    events = (await session.execute(
        select(AuditEvent).where(AuditEvent.action == "support.bills_viewed",
                                 AuditEvent.actor_id == world.users["support"].id)
    )).scalars().all()
    assert {e.target_id for e in events} >= {world.owner.id, world.users["other_provider"].id}
    owner_event = next(e for e in events if e.target_id == world.owner.id)
    assert set(owner_event.details["bill_ids"]) == world.owner_bill_ids
    assert owner_event.details["surface"] == "billing_dashboard"


@pytest.mark.parametrize("segregated", SEGREGATION)
async def test_invited_users_never_get_company_wide_access(client, factory, segregated):
    """Rule 6 is for the practice's own people: an invited login sees only what its list entries give."""
    from billing_api.models import UserKind

    world = await build_world(factory, segregated=segregated)
    invited = await factory.user(world.clinic, kind=UserKind.invited)
    headers = factory.headers(invited)
    assert (await client.get(f"/v1/bills/{world.insured_bill.id}", headers=headers)).status_code == 404
    dashboard = (await client.get("/v1/bills", headers=headers)).json()
    assert not ({b["id"] for b in dashboard["items"]} & world.owner_bill_ids)


async def test_invited_users_do_not_browse_the_practice(client, factory):
    """An invited login reaches no company: it sees neither the practice's patients nor its people."""
    from billing_api.models import UserKind

    world = await build_world(factory, segregated=True)
    invited = await factory.user(world.clinic, kind=UserKind.invited)
    headers = factory.headers(invited)
    patients = await client.get("/v1/patients", headers=headers)
    assert patients.status_code == 200 and patients.json()["items"] == []
    assert (await client.get(f"/v1/patients/{world.patient.id}", headers=headers)).status_code == 404
    users = await client.get("/v1/users", headers=headers)
    assert users.status_code == 200 and users.json()["items"] == []
    assert (await client.get("/v1/directory", params={"q": "Owner"}, headers=headers)).status_code == 404
    # Yet they know who they are: /me answers with their own company and nothing reached.
    me = await client.get("/v1/me", headers=headers)
    assert me.status_code == 200, me.text
    assert me.json()["company"]["id"] == str(world.clinic.id) and me.json()["reachable_companies"] == []
