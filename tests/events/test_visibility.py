"""Who sees which events: bill events as the bill scope allows (the decision tables' callers), company-level
events for the company's administrators only, nothing across companies, nothing for support."""

from __future__ import annotations

import pytest

from billing_api.models import User
from tests.authz.world import SEES_OWNER_BILLS, build_world
from tests.events.helpers import of_type, poll
from tests.factories import PASSWORD
from tests.helpers import assert_problem

# The callers with a working token (the deactivated delegate's is refused before any rule; support: 403).
CALLERS = ["owner", "delegate_user", "group_delegate", "removed_member", "expired_delegate", "other_provider",
           "admin_one", "admin_both", "company_admin", "parent_admin", "role_biller", "staff", "outsider"]
ADMINS_OF_CLINIC = {"company_admin", "parent_admin"}
# Who sees the other provider's bills: everyone who reaches the clinic while it is open; the provider alone
# once segregated.
SEES_OTHER_PROVIDER_BILLS = {
    False: SEES_OWNER_BILLS[False] - {"support"},
    True: {"other_provider"},
}


async def _changes(client, factory, session, world) -> dict:
    """Bill, payment and access changes in the clinic and elsewhere, each made over HTTP by someone allowed to."""
    owner = factory.headers(world.owner)
    created = await client.post("/v1/bills", headers=owner, json={
        "provider_id": str(world.owner.id), "patient_id": str(world.patient.id), "coverage": "private",
        "service_date": "2026-11-03",
        "lines": [{"cpt_code": "99213", "description": "Office visit", "units": 1, "fee_cents": 5000}]})
    assert created.status_code == 201, created.text
    bill_id = created.json()["id"]
    assert (await client.post(f"/v1/bills/{bill_id}/submit", headers=owner)).status_code == 200
    paid = await client.post(f"/v1/bills/{bill_id}/payments", headers=owner,
                             json={"amount_cents": 5000, "method": "cash", "reference": "R-1"})
    assert paid.status_code == 201, paid.text
    other = await client.post(f"/v1/bills/{world.other_provider_bill.id}/submit",
                              headers=factory.headers(world.users["other_provider"]))
    assert other.status_code == 200, other.text
    far_provider = await session.get(User, world.elsewhere_bill.provider_id)
    far = await client.post(f"/v1/bills/{world.elsewhere_bill.id}/submit", headers=factory.headers(far_provider))
    assert far.status_code == 200, far.text
    admin = factory.headers(world.users["company_admin"])
    deactivated = await client.post(f"/v1/users/{world.users['expired_delegate'].id}/deactivate", headers=admin)
    assert deactivated.status_code == 200, deactivated.text
    reactivated = await client.post(f"/v1/users/{world.users['expired_delegate'].id}/reactivate", headers=admin)
    assert reactivated.status_code == 200, reactivated.text
    await session.refresh(world.users["expired_delegate"])  # a new token version: the old tokens stopped working
    front_desk = await factory.group(world.clinic, name="Front desk")  # on no list, with no role
    members = await client.put(f"/v1/groups/{front_desk.id}/members", headers=admin,
                               json={"user_ids": [str(world.users["staff"].id)]})
    assert members.status_code == 200, members.text
    return {"bill_id": bill_id}


@pytest.mark.parametrize("segregated", [False, True], ids=["open", "segregated"])
async def test_each_caller_sees_exactly_what_the_rules_give(client, factory, session, segregated):
    world = await build_world(factory, segregated=segregated)
    made = await _changes(client, factory, session, world)
    owner_id, other_id = str(world.owner.id), str(world.users["other_provider"].id)
    for caller in CALLERS:
        events = await poll(client, factory.headers(world.users[caller]))
        providers = {event["data"]["provider_id"] for event in events if "bill_id" in event["data"]}
        company_level = {event["type"] for event in events if "bill_id" not in event["data"]}
        assert (owner_id in providers) == (caller in SEES_OWNER_BILLS[segregated]), caller
        assert (other_id in providers) == (caller in SEES_OTHER_PROVIDER_BILLS[segregated]), caller
        # The other company's bill: its own people only (the outsider, a plain user where segregation is off).
        assert (str(world.elsewhere_bill.provider_id) in providers) == (caller == "outsider"), caller
        if caller in ADMINS_OF_CLINIC:
            assert company_level == {"user.deactivated", "user.reactivated", "group.members_changed"}, caller
        else:
            assert company_level == set(), caller
        if caller == "owner":
            mine = [e for e in events if e["data"].get("bill_id") == made["bill_id"]]
            assert [e["type"] for e in mine] == ["bill.created", "bill.submitted", "payment.recorded", "bill.paid"]
            assert {e["company_id"] for e in mine} == {str(world.clinic.id)}


async def test_support_is_refused_and_a_deactivated_caller_is_unauthenticated(client, factory):
    world = await build_world(factory, segregated=False)
    assert_problem(await client.get("/v1/events", headers=factory.headers(world.users["support"])), 403,
                   "events_not_for_support")
    assert_problem(await client.get("/v1/events", headers=factory.headers(world.users["deactivated_delegate"])), 401)
    assert_problem(await client.get("/v1/events"), 401)


async def test_a_revoked_delegate_stops_seeing_the_providers_events_at_once(client, factory):
    world = await build_world(factory, segregated=True)
    delegate = factory.headers(world.users["delegate_user"])
    assert of_type(await poll(client, delegate), "bill.created") == []
    created = await client.post("/v1/bills", headers=factory.headers(world.owner), json={
        "provider_id": str(world.owner.id), "patient_id": str(world.patient.id), "coverage": "insured",
        "service_date": "2026-11-03",
        "lines": [{"cpt_code": "99213", "description": "Office visit", "units": 1, "fee_cents": 5000}]})
    assert created.status_code == 201
    assert [e["data"]["bill_id"] for e in of_type(await poll(client, delegate), "bill.created")] == [
        created.json()["id"]]
    listed = await client.get(f"/v1/providers/{world.owner.id}/delegation", headers=factory.headers(world.owner))
    saved = await client.put(f"/v1/providers/{world.owner.id}/delegation", headers=factory.headers(world.owner),
                             json={"entries": [], "version": listed.json()["version"], "password": PASSWORD})
    assert saved.status_code == 200, saved.text
    assert of_type(await poll(client, delegate), "bill.created") == []
