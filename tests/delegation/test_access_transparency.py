"""GET /v1/access/explain and GET /v1/providers/{provider_id}/access: the reasons behind every decision, and
everyone who can see a provider's bills. Both must agree with what the bill endpoints actually return."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from billing_api.authz.decisions import authorize
from billing_api.authz.permissions import Permission
from billing_api.models import AccountType, DelegationEntry, GroupMember, User, UserStatus
from tests.authz.world import CALLERS, SEES_OWNER_BILLS, build_world
from tests.helpers import assert_problem

SEGREGATION = [pytest.param(False, id="segregation-off"), pytest.param(True, id="segregation-on")]


async def explain(client, factory, world, asker: str, subject: User, permission: str = "bills:view",
                  provider: User | None = None):
    params = {"user_id": str(subject.id), "provider_id": str((provider or world.owner).id), "permission": permission}
    return await client.get("/v1/access/explain", params=params, headers=factory.headers(world.users[asker]))


async def entry_ids(session, world) -> dict[str, uuid.UUID]:
    """The world's list entries, by the name of who they name."""
    rows = (await session.execute(select(DelegationEntry).where(DelegationEntry.provider_id == world.owner.id)))
    by_target = {}
    for entry in rows.scalars():
        key = next((n for n, u in world.users.items() if u.id == entry.user_id), None) if entry.user_id else "group"
        by_target[key] = entry.id
    return by_target


def granting(explanation: dict) -> list[dict]:
    return [r for r in explanation["reasons"] if r["grants"]]


@pytest.mark.parametrize("segregated", SEGREGATION)
@pytest.mark.parametrize("caller", CALLERS)
async def test_explain_agrees_with_what_the_user_sees(client, factory, session, caller, segregated):
    world = await build_world(factory, segregated=segregated)
    subject = world.users[caller]
    entries = await entry_ids(session, world)

    # The provider asks about the user; the user (if they can still log in) asks about themself.
    by_owner = await explain(client, factory, world, "owner", subject)
    if caller == "outsider":  # nothing relates them: each is an unknown id to the other
        assert_problem(by_owner, 404, "user_not_found")
        assert_problem(await explain(client, factory, world, caller, subject), 404, "provider_not_found")
        decision = await authorize(session, subject.id, Permission.BILLS_VIEW, world.owner.id)
        assert decision.allowed is False and not any(r.grants for r in decision.reasons)
        single = await client.get(f"/v1/bills/{world.private_bill.id}", headers=factory.headers(subject))
        assert single.status_code == 404
        return
    assert by_owner.status_code == 200, by_owner.text
    answer = by_owner.json()
    assert answer["user_id"] == str(subject.id) and answer["provider_id"] == str(world.owner.id)
    assert answer["company_id"] == str(world.clinic.id) and answer["permission"] == "bills:view"
    # The verdict and its reasons never disagree.
    assert answer["allowed"] is bool(granting(answer)), answer

    if caller == "deactivated_delegate":
        assert answer["allowed"] is False
        assert [r["rule"] for r in answer["reasons"]] == ["deactivated"]
        return

    by_self = await explain(client, factory, world, caller, subject)
    assert by_self.status_code == 200, by_self.text
    assert by_self.json() == answer

    single = await client.get(f"/v1/bills/{world.private_bill.id}", headers=factory.headers(subject))
    assert single.status_code == (200 if answer["allowed"] else 404), single.text
    assert answer["allowed"] is (caller in SEES_OWNER_BILLS[segregated])

    rules = {r["rule"] for r in granting(answer)}
    if caller == "owner":
        assert "own_bills" in rules
    if caller == "delegate_user":
        (reason,) = [r for r in granting(answer) if r["rule"] == "delegation_user"]
        assert reason["entry_id"] == str(entries["delegate_user"]) and reason["group_id"] is None
    if caller == "group_delegate":
        (reason,) = [r for r in granting(answer) if r["rule"] == "delegation_group"]
        assert reason["group_id"] == str(world.group_id) and reason["group_name"] == "Billing clerks"
        assert reason["entry_id"] == str(entries["group"])
    if caller == "support":
        assert rules == {"support"}
    if caller == "expired_delegate":
        (expired,) = [r for r in answer["reasons"] if r["rule"] == "delegation_user"]
        assert expired["grants"] is False and "expired" in expired["detail"]
        assert expired["entry_id"] == str(entries["expired_delegate"]) and expired["expires_at"]
    if caller in ("removed_member", "outsider"):
        assert not any(r["rule"].startswith("delegation") for r in answer["reasons"])
    company_wide = [r for r in answer["reasons"] if r["rule"] == "company_wide"]
    if segregated or caller in ("support", "outsider"):
        assert "company_wide" not in rules
    else:
        assert company_wide[0]["grants"] is True and company_wide[0]["company_id"] == str(world.clinic.id)
    if segregated and caller not in ("support", "outsider"):
        assert company_wide and "segregation" in company_wide[0]["detail"].lower()


@pytest.mark.parametrize("segregated", SEGREGATION)
async def test_explain_per_permission_matches_the_write_endpoints(client, factory, segregated):
    """The delegate holds the data-entry preset: they may submit but not pay; the group delegate the reverse."""
    world = await build_world(factory, segregated=segregated)
    for who, permission, allowed in (
        ("delegate_user", "bills:submit", True),
        ("delegate_user", "invoices:pay", False),
        ("group_delegate", "invoices:pay", True),
        ("group_delegate", "bills:submit", False),
        ("owner", "team:invite", True),
        ("delegate_user", "team:invite", False),
        ("support", "bills:save", False),
    ):
        answer = (await explain(client, factory, world, "owner", world.users[who], permission)).json()
        assert answer["allowed"] is allowed, (who, permission, answer)
        assert answer["permission"] == permission
    submit = await client.post(f"/v1/bills/{world.private_bill.id}/submit",
                               headers=factory.headers(world.users["group_delegate"]))
    assert_problem(submit, 403)
    submit = await client.post(f"/v1/bills/{world.private_bill.id}/submit",
                               headers=factory.headers(world.users["delegate_user"]))
    assert submit.status_code == 200, submit.text


EXPLAIN_CALLERS = {
    "owner": 200, "admin_both": 200,
    "admin_one": 403, "company_admin": 403, "staff": 403, "delegate_user": 403, "other_provider": 403,
    "support": 403, "outsider": 404,
}


@pytest.mark.parametrize(("asker", "status"), EXPLAIN_CALLERS.items())
async def test_who_may_ask_for_an_explanation(client, factory, asker, status):
    world = await build_world(factory, segregated=True)
    response = await explain(client, factory, world, asker, world.users["group_delegate"])
    if status == 200:
        assert response.status_code == 200, response.text
        assert response.json()["allowed"] is True
    else:
        assert_problem(response, status)
    # Anyone may ask about themself, about a provider they can see; for an outsider the provider is unknown.
    about_self = await explain(client, factory, world, asker, world.users[asker])
    if asker == "outsider":
        assert_problem(about_self, 404, "provider_not_found")
    else:
        assert about_self.status_code == 200, about_self.text
        assert about_self.json()["allowed"] is (asker in SEES_OWNER_BILLS[True])


async def test_explain_of_unknown_ids_and_bad_parameters(client, factory):
    world = await build_world(factory, segregated=True)
    owner = factory.headers(world.owner)
    cases = [
        ({"user_id": str(uuid.uuid4()), "provider_id": str(world.owner.id)}, 404),
        ({"user_id": str(world.users["staff"].id), "provider_id": str(uuid.uuid4())}, 404),
        # Not a provider: nothing to explain.
        ({"user_id": str(world.owner.id), "provider_id": str(world.users["staff"].id)}, 404),
        ({"user_id": "nope", "provider_id": str(world.owner.id)}, 422),
        ({"user_id": str(world.users["staff"].id), "provider_id": str(world.owner.id), "permission": "bills:fly"},
         422),
        ({"provider_id": str(world.owner.id)}, 422),
    ]
    for params, status in cases:
        assert_problem(await client.get("/v1/access/explain", params=params, headers=owner), status)


async def test_the_provider_may_ask_about_everyone_who_may_concern_their_bills(client, factory, session):
    """Support, a parent company's admin, and a delegate from another practice live outside the provider's
    company, yet rules concern them: the provider may ask about them. Someone unrelated stays unknown."""
    world = await build_world(factory, segregated=True)
    invited = await factory.user(world.elsewhere, name="invited from elsewhere")
    session.add(DelegationEntry(id=uuid.uuid4(), provider_id=world.owner.id, user_id=invited.id,
                                role="financial_viewer", permissions=["bills:view", "invoices:pay", "invoices:view",
                                                                      "reports:generate"]))
    await session.flush()
    world.users["invited"] = invited
    for asker in ("owner", "admin_both"):
        for name, allowed in (("support", True), ("parent_admin", False), ("invited", True)):
            response = await explain(client, factory, world, asker, world.users[name])
            assert response.status_code == 200, (asker, name, response.text)
            assert response.json()["allowed"] is allowed, (asker, name)
        assert_problem(await explain(client, factory, world, asker, world.users["outsider"]), 404, "user_not_found")
    # The one from elsewhere really sees the bill, and is on the access list.
    assert (await client.get(f"/v1/bills/{world.private_bill.id}", headers=factory.headers(invited))).status_code == 200
    listed = {i["user_id"] for i in await all_pages(client, factory.headers(world.owner), world.owner.id)}
    assert str(invited.id) in listed
    # Someone who does not manage the list learns nothing about people outside their companies.
    assert_problem(await explain(client, factory, world, "staff", world.users["support"]), 404, "user_not_found")
    assert_problem(await explain(client, factory, world, "staff", invited), 404, "user_not_found")
    # ... and an outsider asking about a clinic user gets a 404, not a 403.
    assert_problem(await explain(client, factory, world, "outsider", world.users["staff"]), 404)


# GET /v1/providers/{provider_id}/access


async def all_pages(client, headers, provider_id, limit: int | None = None) -> list[dict]:
    items, cursor, pages = [], None, 0
    while True:
        params = {} if limit is None else {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        response = await client.get(f"/v1/providers/{provider_id}/access", params=params, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        if limit is not None:
            assert len(page["items"]) <= limit
        items += page["items"]
        pages += 1
        cursor = page["next_cursor"]
        assert pages < 100
        if cursor is None:
            return items


async def support_accounts(session) -> set[str]:
    rows = await session.execute(select(User.id).where(User.account_type == AccountType.support,
                                                       User.status == UserStatus.active))
    return {str(user_id) for user_id in rows.scalars()}


@pytest.mark.parametrize("segregated", SEGREGATION)
async def test_access_lists_exactly_who_sees_the_bills(client, factory, session, segregated):
    world = await build_world(factory, segregated=segregated)
    entries = await entry_ids(session, world)
    items = await all_pages(client, factory.headers(world.owner), world.owner.id)
    listed = {item["user_id"] for item in items}
    expected = {str(world.users[name].id) for name in SEES_OWNER_BILLS[segregated]} | await support_accounts(session)
    assert listed == expected
    assert len(items) == len(listed)
    assert str(world.users["deactivated_delegate"].id) not in listed
    assert str(world.users["outsider"].id) not in listed

    by_user = {item["user_id"]: item for item in items}
    for item in items:
        assert item["reasons"] and all(r["grants"] for r in item["reasons"])

    def rules_of(name):
        return {r["rule"] for r in by_user[str(world.users[name].id)]["reasons"]}

    assert "own_bills" in rules_of("owner")
    assert rules_of("support") == {"support"}
    (group_reason,) = [r for r in by_user[str(world.users["group_delegate"].id)]["reasons"]
                       if r["rule"] == "delegation_group"]
    assert group_reason["group_id"] == str(world.group_id) and group_reason["group_name"] == "Billing clerks"
    assert group_reason["entry_id"] == str(entries["group"])
    (user_reason,) = [r for r in by_user[str(world.users["delegate_user"].id)]["reasons"]
                      if r["rule"] == "delegation_user"]
    assert user_reason["entry_id"] == str(entries["delegate_user"])
    if segregated:
        assert all("company_wide" not in {r["rule"] for r in item["reasons"]} for item in items)
    else:
        assert rules_of("staff") == {"company_wide"} and rules_of("parent_admin") == {"company_wide"}
        assert rules_of("expired_delegate") == {"company_wide"}  # the expired entry adds nothing
        assert rules_of("delegate_user") == {"company_wide", "delegation_user"}

    # Each listed user really sees the bill; the others really do not.
    for name, user in world.users.items():
        if name == "deactivated_delegate":
            continue
        response = await client.get(f"/v1/bills/{world.private_bill.id}", headers=factory.headers(user))
        assert (response.status_code == 200) is (str(user.id) in listed), name


@pytest.mark.parametrize("segregated", SEGREGATION)
async def test_access_names_a_listed_groups_active_members_and_not_its_deactivated_ones(
        client, factory, session, segregated):
    """A group on the list is expanded to its active members: a deactivated member is no viewer, and the
    group's reason and the list's member count name the active ones alone."""
    world = await build_world(factory, segregated=segregated)
    entries = await entry_ids(session, world)
    clerk = world.users["group_delegate"]
    gone = await factory.user(world.clinic, name="Deactivated clerk", status=UserStatus.deactivated)
    session.add(GroupMember(group_id=world.group_id, user_id=gone.id))
    await session.flush()

    items = await all_pages(client, factory.headers(world.owner), world.owner.id)
    by_user = {item["user_id"]: item for item in items}
    assert str(gone.id) not in by_user
    through_group = {user_id: [r for r in item["reasons"] if r["rule"] == "delegation_group"]
                     for user_id, item in by_user.items()}
    through_group = {user_id: reasons for user_id, reasons in through_group.items() if reasons}
    assert list(through_group) == [str(clerk.id)]
    (reason,) = through_group[str(clerk.id)]
    assert reason["grants"] is True and reason["entry_id"] == str(entries["group"])
    assert reason["group_id"] == str(world.group_id) and reason["group_name"] == "Billing clerks"

    # The list counts the same members, and the explanation of the deactivated one grants nothing.
    listing = await client.get(f"/v1/providers/{world.owner.id}/delegation", headers=factory.headers(world.owner))
    assert listing.status_code == 200, listing.text
    (group_entry,) = [e for e in listing.json()["entries"] if e["type"] == "group"]
    assert group_entry["group_id"] == str(world.group_id) and group_entry["member_count"] == 1
    answer = (await explain(client, factory, world, "owner", gone)).json()
    assert answer["allowed"] is False and [r["rule"] for r in answer["reasons"]] == ["deactivated"]


@pytest.mark.parametrize("segregated", SEGREGATION)
async def test_access_pages_walk_everyone_exactly_once(client, factory, segregated):
    world = await build_world(factory, segregated=segregated)
    headers = factory.headers(world.users["admin_both"])
    whole = await all_pages(client, headers, world.owner.id)
    paged = await all_pages(client, headers, world.owner.id, limit=2)
    assert [item["user_id"] for item in paged] == [item["user_id"] for item in whole]
    assert len({item["user_id"] for item in paged}) == len(paged)
    assert [(i["display_name"], i["user_id"]) for i in paged] == sorted((i["display_name"], i["user_id"])
                                                                        for i in paged)


async def test_a_list_change_shows_in_access_at_once(client, factory, session):
    from tests.factories import PASSWORD

    world = await build_world(factory, segregated=True)
    owner = factory.headers(world.owner)
    saved = await client.put(f"/v1/providers/{world.owner.id}/delegation", headers=owner, json={
        "entries": [{"user_id": str(world.users["staff"].id), "role": "financial_viewer"}], "version": 0,
        "password": PASSWORD})
    assert saved.status_code == 200, saved.text
    listed = {item["user_id"] for item in await all_pages(client, owner, world.owner.id)}
    assert listed == {str(world.owner.id), str(world.users["staff"].id)} | await support_accounts(session)


ACCESS_CALLERS = {
    "owner": 200, "admin_both": 200,
    "admin_one": 403, "company_admin": 403, "staff": 403, "delegate_user": 403, "group_delegate": 403,
    "other_provider": 403, "support": 403, "outsider": 404,
}


@pytest.mark.parametrize(("asker", "status"), ACCESS_CALLERS.items())
async def test_who_may_list_access(client, factory, asker, status):
    world = await build_world(factory, segregated=False)
    response = await client.get(f"/v1/providers/{world.owner.id}/access", headers=factory.headers(world.users[asker]))
    if status == 200:
        assert response.status_code == 200 and response.json()["items"]
    else:
        assert_problem(response, status)


async def test_access_bad_parameters(client, factory):
    world = await build_world(factory, segregated=False)
    owner = factory.headers(world.owner)
    for params in ({"limit": 0}, {"limit": 1000}, {"limit": "x"}, {"cursor": "garbage!"}):
        assert_problem(await client.get(f"/v1/providers/{world.owner.id}/access", params=params, headers=owner), 422)
    assert_problem(await client.get(f"/v1/providers/{uuid.uuid4()}/access", headers=owner), 404)


async def test_the_provider_reads_supports_views_of_their_bills(client, factory):
    world = await build_world(factory, segregated=True)
    viewed = await client.get(f"/v1/bills/{world.private_bill.id}", headers=factory.headers(world.users["support"]))
    assert viewed.status_code == 200

    def views(response) -> list[dict]:
        assert response.status_code == 200, response.text
        return [e for e in response.json()["items"]
                if e["action"] == "support.bills_viewed" and e["target_id"] == str(world.owner.id)]

    (event,) = views(await client.get("/v1/audit-events", headers=factory.headers(world.owner)))
    assert event["actor_id"] == str(world.users["support"].id)
    assert str(world.private_bill.id) in event["details"]["bill_ids"]
    assert views(await client.get("/v1/audit-events", headers=factory.headers(world.users["other_provider"]))) == []
    assert views(await client.get("/v1/audit-events", headers=factory.headers(world.users["staff"]))) == []
