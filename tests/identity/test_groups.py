"""Groups: create, list, get with member counts, rename, role permissions, members, and /v1/me."""

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from billing_api.models import DelegationEntry, UserStatus
from tests.authz.world import build_world
from tests.helpers import ADMIN, SUPPORT, assert_problem, count


async def test_company_admin_creates_a_group(client, factory, session):
    company = await factory.company()
    admin = await factory.user(company, account_type=ADMIN)
    response = await client.post("/v1/groups", headers=factory.headers(admin), json={
        "company_id": str(company.id), "name": "Billing clerks", "permissions": ["bills:save", "bills:view"]})
    assert response.status_code == 201, response.text
    group = response.json()
    assert group["name"] == "Billing clerks" and group["company_id"] == str(company.id)
    assert group["permissions"] == ["bills:save", "bills:view"]
    assert group["member_count"] == 0 and group["active_member_count"] == 0
    assert await count(session, "audit_event", "action = 'group.created' AND target_id = :g",
                       g=uuid.UUID(group["id"])) == 1


async def test_who_may_create_groups(client, factory, session):
    company, elsewhere = await factory.company(), await factory.company()
    editor = await factory.user(company, permissions=["users:edit_others"])
    plain = await factory.user(company)
    support = await factory.user(await factory.company(), account_type=SUPPORT)
    before = await count(session, "user_group")
    body = {"company_id": str(company.id), "name": "Front desk"}
    assert_problem(await client.post("/v1/groups", json=body, headers=factory.headers(plain)), 403,
                   "groups_edit_forbidden")
    assert_problem(await client.post("/v1/groups", json=body, headers=factory.headers(support)), 403,
                   "groups_edit_forbidden")
    assert_problem(await client.post("/v1/groups", json={**body, "company_id": str(elsewhere.id)},
                                     headers=factory.headers(editor)), 404, "company_not_found")
    # An editor gives a role only from what they hold.
    assert_problem(await client.post("/v1/groups", json={**body, "permissions": ["bills:view"]},
                                     headers=factory.headers(editor)), 403, "permission_grant_forbidden")
    assert await count(session, "user_group") == before
    assert (await client.post("/v1/groups", json=body, headers=factory.headers(editor))).status_code == 201


async def test_list_shows_the_groups_of_reached_companies_in_pages(client, factory):
    company = await factory.company()
    user = await factory.user(company)
    mine = [await factory.group(company, name=f"Team {i}") for i in range(3)]
    await factory.group(await factory.company(), name="Not yours")
    seen, cursor = [], None
    for _ in range(5):
        params = {"limit": 1, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/v1/groups", params=params, headers=factory.headers(user))).json()
        seen += [group["id"] for group in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [str(group.id) for group in mine]
    assert cursor is None


async def test_get_counts_members_and_active_members(client, factory, session):
    company = await factory.company()
    user = await factory.user(company)
    members = [await factory.user(company), await factory.user(company),
               await factory.user(company, status=UserStatus.deactivated)]
    group = await factory.group(company, members, name="Nurses")
    response = await client.get(f"/v1/groups/{group.id}", headers=factory.headers(user))
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "Nurses" and body["member_count"] == 3 and body["active_member_count"] == 2
    listed = (await client.get(f"/v1/groups/{group.id}/members", headers=factory.headers(user))).json()
    assert {m["id"] for m in listed} == {str(m.id) for m in members}
    assert {m["status"] for m in listed} == {"active", "deactivated"}
    assert_problem(await client.get(f"/v1/groups/{uuid.uuid4()}", headers=factory.headers(user)), 404,
                   "group_not_found")


async def test_another_companys_group_does_not_exist_for_the_caller(client, factory, session):
    company, elsewhere = await factory.company(), await factory.company()
    admin = await factory.user(company, account_type=ADMIN)
    group = await factory.group(elsewhere, name="Theirs")
    headers = factory.headers(admin)
    assert_problem(await client.get(f"/v1/groups/{group.id}", headers=headers), 404, "group_not_found")
    assert_problem(await client.get(f"/v1/groups/{group.id}/members", headers=headers), 404, "group_not_found")
    assert_problem(await client.patch(f"/v1/groups/{group.id}", json={"name": "Mine"}, headers=headers), 404,
                   "group_not_found")
    assert_problem(await client.put(f"/v1/groups/{group.id}/members", json={"user_ids": [str(admin.id)]},
                                    headers=headers), 404, "group_not_found")
    assert_problem(await client.get("/v1/groups", params={"company_id": str(elsewhere.id)}, headers=headers), 404,
                   "company_not_found")
    assert await count(session, "group_member", "group_id = :g", g=group.id) == 0


async def test_rename_and_change_the_role(client, factory, session):
    company = await factory.company()
    admin = await factory.user(company, account_type=ADMIN)
    group = await factory.group(company, name="Clerks", permissions=["bills:view"])
    await factory.group(company, name="Managers")
    headers = factory.headers(admin)

    renamed = await client.patch(f"/v1/groups/{group.id}", json={"name": "Billing clerks"}, headers=headers)
    assert renamed.status_code == 200 and renamed.json()["name"] == "Billing clerks"
    assert renamed.json()["permissions"] == ["bills:view"]  # untouched
    role = await client.patch(f"/v1/groups/{group.id}", headers=headers,
                              json={"permissions": ["bills:submit", "bills:view", "bills:view"]})
    assert role.status_code == 200 and role.json()["permissions"] == ["bills:submit", "bills:view"]
    # Same name in another case: still the same group; another group's name: refused.
    assert (await client.patch(f"/v1/groups/{group.id}", json={"name": "BILLING CLERKS"},
                               headers=headers)).status_code == 200
    assert_problem(await client.patch(f"/v1/groups/{group.id}", json={"name": "managers"}, headers=headers), 409,
                   "group_name_taken")
    assert_problem(await client.patch(f"/v1/groups/{group.id}", json={"name": None}, headers=headers), 422,
                   "field_required")
    assert (await client.get(f"/v1/groups/{group.id}", headers=headers)).json()["name"] == "BILLING CLERKS"
    assert await count(session, "audit_event", "action = 'group.updated' AND target_id = :g", g=group.id) == 3


async def test_an_editor_cannot_add_role_permissions_they_do_not_hold(client, factory):
    company = await factory.company()
    editor = await factory.user(company, permissions=["users:edit_others", "bills:view"])
    group = await factory.group(company, permissions=["bills:delete"])
    headers = factory.headers(editor)
    assert_problem(await client.patch(f"/v1/groups/{group.id}", json={"permissions": ["bills:delete", "bills:save"]},
                                      headers=headers), 403, "permission_grant_forbidden")
    kept = await client.patch(f"/v1/groups/{group.id}", json={"permissions": ["bills:delete", "bills:view"]},
                              headers=headers)
    assert kept.status_code == 200 and kept.json()["permissions"] == ["bills:delete", "bills:view"]
    plain = await factory.user(company)
    assert_problem(await client.patch(f"/v1/groups/{group.id}", json={"name": "X"}, headers=factory.headers(plain)),
                   403, "groups_edit_forbidden")


async def test_set_members_replaces_the_whole_list(client, factory, session):
    company = await factory.company()
    admin = await factory.user(company, account_type=ADMIN)
    ann = await factory.user(company, name="Ann")
    bob = await factory.user(company, name="Bob")
    cy = await factory.user(company, name="Cy")
    group = await factory.group(company, [ann])
    headers = factory.headers(admin)
    url = f"/v1/groups/{group.id}/members"

    response = await client.put(url, json={"user_ids": [str(cy.id), str(bob.id)]}, headers=headers)
    assert response.status_code == 200, response.text
    assert [m["display_name"] for m in response.json()] == ["Bob", "Cy"]
    assert [m["id"] for m in (await client.get(url, headers=headers)).json()] == [str(bob.id), str(cy.id)]
    got = (await client.get(f"/v1/groups/{group.id}", headers=headers)).json()
    assert got["member_count"] == 2
    event = (await session.execute(text(
        "SELECT details FROM audit_event WHERE action = 'group.members_set' AND target_id = :g"), {"g": group.id}
    )).scalar_one()
    assert event["removed"] == [str(ann.id)] and sorted(event["added"]) == sorted([str(bob.id), str(cy.id)])

    cleared = await client.put(url, json={"user_ids": []}, headers=headers)
    assert cleared.status_code == 200 and cleared.json() == []
    assert await count(session, "group_member", "group_id = :g", g=group.id) == 0


async def test_members_must_be_users_of_the_groups_company(client, factory, session):
    parent = await factory.company()
    child = await factory.company(parent=parent)
    admin = await factory.user(parent, account_type=ADMIN)
    member = await factory.user(parent)
    outsider = await factory.user(child)  # reached by the admin, but of another company
    stranger = await factory.user(await factory.company())
    group = await factory.group(parent, [member])
    url = f"/v1/groups/{group.id}/members"
    headers = factory.headers(admin)
    unknown = uuid.uuid4()

    body = assert_problem(await client.put(url, headers=headers, json={
        "user_ids": [str(member.id), str(outsider.id), str(stranger.id), str(unknown)]}), 422, "member_not_in_company")
    assert sorted(body["user_ids"]) == sorted([str(outsider.id), str(stranger.id), str(unknown)])
    assert_problem(await client.put(url, json={"user_ids": [str(member.id), str(member.id)]}, headers=headers),
                   422, "duplicate_member")
    assert [m["id"] for m in (await client.get(url, headers=headers)).json()] == [str(member.id)]


async def test_group_role_permissions_show_up_in_me_and_leave_with_the_member(client, factory):
    company = await factory.company()
    admin = await factory.user(company, account_type=ADMIN)
    clerk = await factory.user(company, permissions=["reports:generate"])
    group = await factory.group(company, [clerk], permissions=["bills:save", "bills:view"])
    other = await factory.group(company, [clerk], permissions=["bills:view", "invoices:view"])
    me = (await client.get("/v1/me", headers=factory.headers(clerk))).json()
    assert me["permissions"] == ["bills:save", "bills:view", "invoices:view", "reports:generate"]

    # Leaving a group takes its role away on the very next request.
    assert (await client.put(f"/v1/groups/{group.id}/members", json={"user_ids": []},
                             headers=factory.headers(admin))).status_code == 200
    me = (await client.get("/v1/me", headers=factory.headers(clerk))).json()
    assert me["permissions"] == ["bills:view", "invoices:view", "reports:generate"]
    assert (await client.patch(f"/v1/groups/{other.id}", json={"permissions": []},
                               headers=factory.headers(admin))).status_code == 200
    assert (await client.get("/v1/me", headers=factory.headers(clerk))).json()["permissions"] == ["reports:generate"]


async def test_support_reads_groups_anywhere_but_changes_none(client, factory, session):
    clinic = await factory.company()
    support = await factory.user(await factory.company(), account_type=SUPPORT)
    member = await factory.user(clinic)
    group = await factory.group(clinic, [member], name="Clinic team")
    headers = factory.headers(support)
    assert (await client.get(f"/v1/groups/{group.id}", headers=headers)).json()["member_count"] == 1
    listed = await client.get("/v1/groups", params={"company_id": str(clinic.id)}, headers=headers)
    assert [g["id"] for g in listed.json()["items"]] == [str(group.id)]
    assert_problem(await client.patch(f"/v1/groups/{group.id}", json={"name": "X"}, headers=headers), 403)
    assert_problem(await client.put(f"/v1/groups/{group.id}/members", json={"user_ids": []}, headers=headers), 403)
    assert await count(session, "group_member", "group_id = :g", g=group.id) == 1


async def test_an_editor_cannot_gain_a_role_by_joining_its_group(client, factory, session):
    # Regression: adding members hands them the group's role, so an editor without
    # billing:delegation_settings could put themselves into a group carrying it.
    company = await factory.company()
    editor = await factory.user(company, permissions=["users:edit_others", "bills:view"])
    colleague = await factory.user(company)
    managers = await factory.group(company, [colleague], permissions=["billing:delegation_settings", "bills:view"])
    viewers = await factory.group(company, permissions=["bills:view"])
    headers = factory.headers(editor)

    body = assert_problem(await client.put(f"/v1/groups/{managers.id}/members", headers=headers,
                                           json={"user_ids": [str(colleague.id), str(editor.id)]}),
                          403, "permission_grant_forbidden")
    assert body["permissions"] == ["billing:delegation_settings"]
    assert await count(session, "group_member", "group_id = :g", g=managers.id) == 1
    assert "billing:delegation_settings" not in (await client.get("/v1/me", headers=headers)).json()["permissions"]

    # Removing members grants nothing; a role the editor holds in full may be handed on.
    assert (await client.put(f"/v1/groups/{managers.id}/members", json={"user_ids": []},
                             headers=headers)).status_code == 200
    assert (await client.put(f"/v1/groups/{viewers.id}/members", json={"user_ids": [str(colleague.id)]},
                             headers=headers)).status_code == 200
    # A company admin may fill any group.
    admin = await factory.user(company, account_type=ADMIN)
    assert (await client.put(f"/v1/groups/{managers.id}/members", json={"user_ids": [str(colleague.id)]},
                             headers=factory.headers(admin))).status_code == 200


async def test_members_join_a_listed_group_only_through_someone_who_manages_its_lists(client, factory, session):
    """Joining a group named on a delegation list hands over that list's entry: adding members changes who sees
    the provider's bills, so it takes someone who may manage the list (rule 7). Removing members grants nothing,
    and a group named only by expired entries grants nothing either."""
    world = await build_world(factory, segregated=True)
    editor, manager = world.users["admin_one"], world.users["admin_both"]
    url = f"/v1/groups/{world.group_id}/members"
    bill_url = f"/v1/bills/{world.insured_bill.id}"
    current = [str(world.users["group_delegate"].id)]
    joining = [*current, str(editor.id)]
    events = await count(session, "audit_event", "action = 'group.members_set'")

    body = assert_problem(await client.put(url, json={"user_ids": joining}, headers=factory.headers(editor)),
                          403, "group_on_delegation_list")
    assert body["provider_ids"] == [str(world.owner.id)]
    assert await count(session, "group_member", "group_id = :g", g=world.group_id) == 1
    assert await count(session, "audit_event", "action = 'group.members_set'") == events
    assert (await client.get(bill_url, headers=factory.headers(editor))).status_code == 404

    assert (await client.put(url, json={"user_ids": joining}, headers=factory.headers(manager))).status_code == 200
    assert (await client.get(bill_url, headers=factory.headers(editor))).status_code == 200
    assert (await client.put(url, json={"user_ids": current}, headers=factory.headers(editor))).status_code == 200
    assert (await client.get(bill_url, headers=factory.headers(editor))).status_code == 404

    former = await factory.group(world.clinic, name="Former clerks")
    session.add(DelegationEntry(id=uuid.uuid4(), provider_id=world.owner.id, group_id=former.id, role="custom",
                                permissions=["bills:view"], expires_at=datetime.now(UTC) - timedelta(days=1)))
    await session.flush()
    assert (await client.put(f"/v1/groups/{former.id}/members", json={"user_ids": [str(editor.id)]},
                             headers=factory.headers(editor))).status_code == 200
