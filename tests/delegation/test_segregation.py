"""GET and POST /v1/companies/{company_id}/billing-segregation: readiness, the preview of who loses what,
the password-confirmed permanent switch."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from billing_api.models import AuditEvent, Company
from tests.authz.world import build_world
from tests.factories import PASSWORD
from tests.helpers import assert_problem


def url(world) -> str:
    return f"/v1/companies/{world.clinic.id}/billing-segregation"


async def state(client, factory, world, who="company_admin") -> dict:
    response = await client.get(url(world), headers=factory.headers(world.users[who]))
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize(("caller", "status"), [
    ("company_admin", 200), ("admin_both", 200), ("parent_admin", 200),
    ("staff", 403), ("admin_one", 403), ("owner", 403), ("delegate_user", 403), ("support", 403),
    ("outsider", 404),
])
async def test_who_may_read_the_state(client, factory, caller, status):
    world = await build_world(factory, segregated=False)
    response = await client.get(url(world), headers=factory.headers(world.users[caller]))
    if status == 200:
        assert response.status_code == 200, response.text
        assert response.json()["enabled"] is False
    else:
        assert_problem(response, status, "segregation_manage_forbidden" if status == 403 else None)
    # ... and POST answers the same way (with the right password, the refusal comes first).
    post = await client.post(url(world), json={"password": PASSWORD, "acknowledge_empty_lists": True},
                             headers=factory.headers(world.users[caller]))
    if status == 200:
        assert post.status_code == 200, post.text
    else:
        assert_problem(post, status)
        assert (await state(client, factory, world))["enabled"] is False


async def test_an_unknown_company_is_404(client, factory):
    world = await build_world(factory, segregated=False)
    admin = factory.headers(world.users["company_admin"])
    assert_problem(await client.get(f"/v1/companies/{uuid.uuid4()}/billing-segregation", headers=admin), 404)
    assert_problem(await client.get(f"/v1/companies/{world.elsewhere.id}/billing-segregation", headers=admin), 404)


async def test_readiness_and_preview(client, factory):
    world = await build_world(factory, segregated=False)
    u = world.users
    body = await state(client, factory, world)
    assert body["enabled"] is False and body["enabled_at"] is None and body["enabled_by"] is None
    # other_provider has a bill and an empty list; the owner has entries; the far provider is elsewhere.
    assert body["ready"] is False
    assert [(p["provider_id"], p["bill_count"]) for p in body["providers_with_empty_list"]] == [
        (str(u["other_provider"].id), 1)]
    assert body["providers_with_empty_list"][0]["display_name"] == "Other Provider"

    losses = {loss["user_id"]: set(loss["provider_ids"]) for loss in body["preview"]}
    owner, other = str(u["owner"].id), str(u["other_provider"].id)
    expected = {
        "staff": {owner, other},
        "delegate_user": {other},
        "group_delegate": {other},
        "removed_member": {owner, other},
        "expired_delegate": {owner, other},
        "owner": {other},
        "other_provider": {owner},
        "admin_one": {owner, other},
        "admin_both": {owner, other},
        "company_admin": {owner, other},
        "parent_admin": {owner, other},
        "role_biller": {owner, other},
    }
    assert losses == {str(u[name].id): providers for name, providers in expected.items()}
    # Nobody inactive, no support account, no one from elsewhere.
    for name in ("deactivated_delegate", "support", "outsider"):
        assert str(u[name].id) not in losses
    # The preview is true: after enabling, each loss is real and nothing else is lost.
    enabled = await client.post(url(world), json={"password": PASSWORD, "acknowledge_empty_lists": True},
                                headers=factory.headers(u["company_admin"]))
    assert enabled.status_code == 200, enabled.text
    bills = {str(world.owner.id): world.private_bill.id, other: world.other_provider_bill.id}
    for name, user in u.items():
        if name == "deactivated_delegate":
            continue
        for provider_id, bill_id in bills.items():
            response = await client.get(f"/v1/bills/{bill_id}", headers=factory.headers(user))
            lost = provider_id in losses.get(str(user.id), set())
            if name in ("support",) or (name != "outsider" and not lost):
                assert response.status_code == 200, (name, provider_id)
            else:
                assert response.status_code == 404, (name, provider_id)


async def test_a_provider_with_a_list_is_ready(client, factory, session):
    world = await build_world(factory, segregated=False)
    other = world.users["other_provider"]
    saved = await client.put(f"/v1/providers/{other.id}/delegation", headers=factory.headers(other), json={
        "entries": [{"user_id": str(world.users["staff"].id), "role": "data_entry"}], "version": 0,
        "password": PASSWORD})
    assert saved.status_code == 200, saved.text
    body = await state(client, factory, world)
    assert body["ready"] is True and body["providers_with_empty_list"] == []
    losses = {loss["user_id"]: set(loss["provider_ids"]) for loss in body["preview"]}
    assert losses[str(world.users["staff"].id)] == {str(world.owner.id)}
    # Ready: no acknowledgement needed.
    enabled = await client.post(url(world), json={"password": PASSWORD}, headers=factory.headers(world.users["admin_both"]))
    assert enabled.status_code == 200, enabled.text
    assert enabled.json()["enabled"] is True and enabled.json()["providers_with_empty_list"] == []


async def test_wrong_password_leaves_it_off(client, factory, session):
    world = await build_world(factory, segregated=False)
    admin = world.users["company_admin"]
    response = await client.post(url(world), json={"password": "nope", "acknowledge_empty_lists": True},
                                 headers=factory.headers(admin))
    assert_problem(response, 403, "password_confirmation_failed")
    assert (await state(client, factory, world))["enabled"] is False
    failed = (await session.execute(select(AuditEvent).where(
        AuditEvent.actor_id == admin.id, AuditEvent.action == "auth.password_confirmation_failed"))).scalars().all()
    assert [e.details for e in failed] == [{"purpose": "segregation.enable"}]
    assert (await client.get(f"/v1/bills/{world.private_bill.id}",
                             headers=factory.headers(world.users["staff"]))).status_code == 200


async def test_enabling_is_refused_while_lists_are_empty_then_acknowledged_and_permanent(client, factory, session):
    world = await build_world(factory, segregated=False)
    admin = factory.headers(world.users["company_admin"])
    staff = factory.headers(world.users["staff"])
    bill = f"/v1/bills/{world.private_bill.id}"
    assert (await client.get(bill, headers=staff)).status_code == 200

    refused = await client.post(url(world), json={"password": PASSWORD}, headers=admin)
    problem = assert_problem(refused, 409, "segregation_not_ready")
    assert problem["providers_with_empty_list"] == [str(world.users["other_provider"].id)]
    assert (await state(client, factory, world))["enabled"] is False
    assert (await client.get(bill, headers=staff)).status_code == 200

    enabled = await client.post(url(world), json={"password": PASSWORD, "acknowledge_empty_lists": True},
                                headers=admin)
    assert enabled.status_code == 200, enabled.text
    body = enabled.json()
    assert body["enabled"] is True and body["enabled_by"] == str(world.users["company_admin"].id)
    assert body["enabled_at"] is not None

    # The very next request of the staff user no longer finds the owner's bill.
    assert_problem(await client.get(bill, headers=staff), 404)
    assert str(world.private_bill.id) not in {b["id"] for b in (await client.get("/v1/bills", headers=staff)).json()["items"]}
    # The delegate keeps it.
    assert (await client.get(bill, headers=factory.headers(world.users["delegate_user"]))).status_code == 200

    after = await state(client, factory, world)
    assert after["enabled"] is True and after["enabled_at"] == body["enabled_at"]
    assert after["enabled_by"] == body["enabled_by"] and after["preview"] == []

    events = (await session.execute(select(AuditEvent).where(
        AuditEvent.action == "segregation.enabled", AuditEvent.target_id == world.clinic.id))).scalars().all()
    assert len(events) == 1
    event = events[0]
    assert event.actor_id == world.users["company_admin"].id and event.company_id == world.clinic.id
    assert event.details["acknowledged_empty_lists"] == [str(world.users["other_provider"].id)]
    assert set(event.details["access_lost"][str(world.users["staff"].id)]) == {
        str(world.owner.id), str(world.users["other_provider"].id)}
    listed = await client.get("/v1/audit-events", params={"action": "segregation.enabled"}, headers=admin)
    assert [e["id"] for e in listed.json()["items"]] == [str(event.id)]

    # A second enable is a conflict; nothing turns it off.
    again = await client.post(url(world), json={"password": PASSWORD, "acknowledge_empty_lists": True}, headers=admin)
    assert_problem(again, 409, "segregation_already_enabled")
    for method in ("DELETE", "PUT", "PATCH"):
        response = await client.request(method, url(world), headers=admin,
                                        json={"enabled": False, "password": PASSWORD})
        assert_problem(response, 405)
    company = (await session.execute(select(Company).where(Company.id == world.clinic.id)
                                     .execution_options(populate_existing=True))).scalar_one()
    assert company.billing_segregation_enabled


async def test_enabling_a_parent_does_not_segregate_its_children(client, factory):
    world = await build_world(factory, segregated=False)
    parent_admin = world.users["parent_admin"]
    response = await client.post(f"/v1/companies/{world.network.id}/billing-segregation",
                                 json={"password": PASSWORD}, headers=factory.headers(parent_admin))
    assert response.status_code == 200, response.text
    assert (await state(client, factory, world, "parent_admin"))["enabled"] is False
    assert (await client.get(f"/v1/bills/{world.private_bill.id}",
                             headers=factory.headers(world.users["staff"]))).status_code == 200


@pytest.mark.parametrize("payload", [
    {"password": PASSWORD, "acknowledge_empty_lists": "yes"},
    {"password": PASSWORD, "acknowledge_empty_lists": 1},
    {"password": PASSWORD, "acknowledge_empty_lists": None},
    {"password": PASSWORD, "enabled": True},
    {"acknowledge_empty_lists": True},
    {"password": ""},
    [],
])
async def test_bad_bodies(client, factory, payload):
    world = await build_world(factory, segregated=False)
    response = await client.post(url(world), json=payload, headers=factory.headers(world.users["company_admin"]))
    assert_problem(response, 422, "validation_error")
    assert (await state(client, factory, world))["enabled"] is False


async def test_malformed_json(client, factory):
    world = await build_world(factory, segregated=False)
    response = await client.post(url(world), content=b'{"password": ', headers={
        **factory.headers(world.users["company_admin"]), "Content-Type": "application/json"})
    assert_problem(response, 400, "malformed_body")
    assert (await state(client, factory, world))["enabled"] is False
