"""Attesting a provider's access review (password-confirmed, over the list version reviewed), the company's
overview of reviews, the overdue reminders over real SMTP, and removing dormant entries by a normal list save."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from billing_api.access_review.service import queue_overdue_reminders
from tests.access_review.helpers import grant, list_made, list_without, read_at, review
from tests.authz.world import build_world
from tests.events.helpers import of_type, poll
from tests.factories import PASSWORD
from tests.helpers import assert_problem, count


def _attest(client, factory, world, body, user=None):
    return client.post(f"/v1/providers/{world.owner.id}/access-review/attestations", json=body,
                       headers=factory.headers(user or world.owner))


async def test_attestation_needs_the_password_and_the_version_reviewed(client, factory, session):
    world = await build_world(factory, segregated=True)
    page = await review(client, factory, world)
    assert page["last_attestation"] is None

    wrong = await _attest(client, factory, world, {"list_version": page["list_version"], "password": "not it"})
    assert_problem(wrong, 403, "password_confirmation_failed")
    assert await count(session, "access_review_attestation") == 0
    assert await count(session, "audit_event", "action = 'access_review.attested'") == 0

    stale = await _attest(client, factory, world, {"list_version": page["list_version"] + 1, "password": PASSWORD})
    assert_problem(stale, 409, "access_review_stale")
    assert stale.json()["current_version"] == page["list_version"]
    assert await count(session, "access_review_attestation") == 0

    manager = world.users["admin_both"]
    done = await _attest(client, factory, world, {"list_version": page["list_version"], "password": PASSWORD},
                         user=manager)
    assert done.status_code == 201, done.text
    attestation = done.json()
    assert attestation["attested_by"] == str(manager.id) and attestation["attested_by_name"] == "admin_both"
    assert attestation["list_version"] == page["list_version"] and attestation["people"] == page["people"]
    assert await count(session, "audit_event", "action = 'access_review.attested' AND target_id = :provider",
                       provider=world.owner.id) == 1

    after = await review(client, factory, world)
    assert after["last_attestation"] == attestation and after["overdue"] is False
    feed = of_type(await poll(client, factory.headers(world.users["company_admin"])), "access_review.attested")
    assert [event["data"]["attestation_id"] for event in feed] == [attestation["id"]]


async def test_overdue_reminders_go_once_per_interval(client, factory, session, deliver, collector):
    world = await build_world(factory, segregated=True)
    owner = world.owner
    world.clinic.access_review_interval_days = 7
    now = (await session.execute(select(func.now()))).scalar_one()
    owner.created_at = now - timedelta(days=10)  # never attested: due 7 days after the account was made
    await session.flush()
    page = await review(client, factory, world)
    assert page["overdue"] is True

    assert await queue_overdue_reminders(session, now) == 1
    assert await queue_overdue_reminders(session, now) == 0
    assert await queue_overdue_reminders(session, now + timedelta(days=3)) == 0  # the same interval
    await deliver()
    (mail,) = collector.to(owner.email)
    assert "review who can see your bills" in mail["Subject"]
    assert "never been confirmed" in mail.get_body(("plain",)).get_content()

    assert await queue_overdue_reminders(session, now + timedelta(days=5)) == 1  # the next interval
    assert await queue_overdue_reminders(session, now + timedelta(days=6)) == 0
    await deliver()
    assert len(collector.to(owner.email)) == 2

    done = await _attest(client, factory, world, {"list_version": page["list_version"], "password": PASSWORD})
    assert done.status_code == 201, done.text
    assert await queue_overdue_reminders(session, now + timedelta(days=6)) == 0  # attested: due again in 7 days
    await deliver()
    assert len(collector.to(owner.email)) == 2


async def test_the_company_overview_filters_overdue_and_dormant(client, factory, session):
    world = await build_world(factory, segregated=True)
    await list_made(session, world, days_ago=200)  # the owner's delegates never read: dormant
    other = world.users["other_provider"]
    other.created_at = other.created_at - timedelta(days=100)  # never attested: overdue
    await session.flush()
    page = await review(client, factory, world)
    done = await _attest(client, factory, world, {"list_version": page["list_version"], "password": PASSWORD})
    assert done.status_code == 201, done.text

    admin = factory.headers(world.users["company_admin"])

    async def overview(company, **params):
        response = await client.get(f"/v1/companies/{company.id}/access-review", headers=admin, params=params)
        assert response.status_code == 200, response.text
        return {item["provider_id"]: item for item in response.json()["items"]}

    everyone = await overview(world.clinic)
    assert set(everyone) == {str(world.owner.id), str(other.id)}
    mine = everyone[str(world.owner.id)]
    assert mine["dormant_grants"] == page["dormant_grants"] > 0 and mine["people"] == page["people"]
    assert mine["last_attested_at"] == done.json()["attested_at"] and mine["overdue"] is False
    assert everyone[str(other.id)]["overdue"] is True and everyone[str(other.id)]["last_attested_at"] is None

    assert set(await overview(world.clinic, overdue="true")) == {str(other.id)}
    assert set(await overview(world.clinic, has_dormant="true")) == {str(world.owner.id)}
    assert set(await overview(world.clinic, has_dormant="false", overdue="false")) == set()

    # The parent company's administrator sees the child's providers from the parent.
    parent = await client.get(f"/v1/companies/{world.network.id}/access-review",
                              headers=factory.headers(world.users["parent_admin"]))
    assert {item["provider_id"] for item in parent.json()["items"]} >= set(everyone)
    # A page of one, then the next.
    first = await client.get(f"/v1/companies/{world.clinic.id}/access-review", headers=admin, params={"limit": 1})
    second = await client.get(f"/v1/companies/{world.clinic.id}/access-review", headers=admin,
                              params={"limit": 1, "cursor": first.json()["next_cursor"]})
    assert [i["provider_id"] for i in first.json()["items"] + second.json()["items"]] == [
        i["provider_id"] for i in sorted(everyone.values(), key=lambda i: (i["display_name"], i["provider_id"]))]
    assert second.json()["next_cursor"] is None

    assert_problem(await client.get(f"/v1/companies/{world.clinic.id}/access-review",
                                    headers=factory.headers(world.users["admin_one"])), 403, "access_review_forbidden")
    assert_problem(await client.get(f"/v1/companies/{world.clinic.id}/access-review",
                                    headers=factory.headers(world.users["outsider"])), 404, "company_not_found")


async def test_dormant_entries_go_by_a_normal_list_save(client, factory, session):
    world = await build_world(factory, segregated=True)
    await list_made(session, world, days_ago=200)
    delegate = world.users["delegate_user"]
    await read_at(session, world, delegate, days_ago=1)  # the one entry still used
    page = await review(client, factory, world)
    removable = {entry["user_id"] or entry["group_id"] for entry in page["removable_entries"]}
    assert removable == {str(world.users[name].id) for name in ("deactivated_delegate", "expired_delegate")} | {
        str(world.group_id)}
    body = await list_without(client, factory, world, {entry["entry_id"] for entry in page["removable_entries"]})
    assert [entry["user_id"] for entry in body["entries"]] == [str(delegate.id)]
    assert body["version"] == page["list_version"]

    refused = await client.put(f"/v1/providers/{world.owner.id}/delegation", headers=factory.headers(world.owner),
                               json={**body, "password": "not it"})
    assert_problem(refused, 403, "password_confirmation_failed")
    saved = await client.put(f"/v1/providers/{world.owner.id}/delegation", headers=factory.headers(world.owner),
                             json={**body, "password": PASSWORD})
    assert saved.status_code == 200, saved.text
    again = await client.put(f"/v1/providers/{world.owner.id}/delegation", headers=factory.headers(world.owner),
                             json={**body, "password": PASSWORD})
    assert_problem(again, 409, "delegation_list_stale")  # the review's version is spent

    after = await review(client, factory, world)
    assert after["removable_entries"] == [] and after["list_version"] == body["version"] + 1
    assert after["dormant_grants"] == 0
    assert {item["user_id"] for item in after["items"]} == {
        str(world.owner.id), str(delegate.id), str(world.users["support"].id)}
    # The entry that stayed is the same grant: same entry, granted when it was, its use kept.
    assert grant(after, delegate, "delegation_user") == grant(page, delegate, "delegation_user")


async def test_who_granted_what_comes_from_the_audit_events(client, factory, session):
    world = await build_world(factory, segregated=True)
    staff, admin = world.users["staff"], world.users["admin_both"]
    listed = await client.get(f"/v1/providers/{world.owner.id}/delegation", headers=factory.headers(world.owner))
    entries = [{"user_id": e["user_id"], "group_id": e["group_id"], "role": e["role"]}
               for e in listed.json()["entries"] if not e["expired"]]
    saved = await client.put(f"/v1/providers/{world.owner.id}/delegation", headers=factory.headers(world.owner), json={
        "entries": [*entries, {"user_id": str(staff.id), "role": "financial_viewer"}],
        "version": listed.json()["version"], "password": PASSWORD})
    assert saved.status_code == 200, saved.text
    newcomer = await factory.user(world.clinic, name="Newcomer")
    members = await client.put(f"/v1/groups/{world.group_id}/members", headers=factory.headers(admin), json={
        "user_ids": [str(world.users["group_delegate"].id), str(newcomer.id)]})
    assert members.status_code == 200, members.text

    page = await review(client, factory, world)
    by_list = grant(page, staff, "delegation_user")
    assert by_list["granted_by"] == str(world.owner.id) and by_list["granted_by_name"] == "Owner Provider"
    assert by_list["role"] == "financial_viewer" and "bills:view" in by_list["permissions"]
    by_group = grant(page, newcomer, "delegation_group")
    assert by_group["granted_by"] == str(admin.id) and by_group["granted_at"] >= by_list["granted_at"]
    # Named before the audit trail knew of it (the world writes its list directly): its entry's creation, by no one.
    earlier = grant(page, world.users["delegate_user"], "delegation_user")
    assert earlier["granted_by"] is None and earlier["granted_at"] < by_list["granted_at"]
