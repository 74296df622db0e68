"""GET and PUT /v1/providers/{provider_id}/delegation: who may manage a list, what a save does, and what it refuses."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text, update

from billing_api.authz.actor import load_actor
from billing_api.authz.permissions import BILLING_PERMISSIONS, Permission
from billing_api.authz.policies import is_list_manager, may_manage_list
from billing_api.models import AccountType, AuditEvent, DelegationEntry, GroupMember
from tests.authz.world import build_world
from tests.factories import PASSWORD
from tests.helpers import assert_problem

ADMINISTRATOR = sorted(p.value for p in BILLING_PERMISSIONS - {Permission.TEAM_INVITE})
DATA_ENTRY = sorted(["bills:view", "bills:save", "bills:submit", "bills:delete"])


def url(provider_id) -> str:
    return f"/v1/providers/{provider_id}/delegation"


def body(entries, version, password=PASSWORD) -> dict:
    return {"entries": entries, "version": version, "password": password}


async def read(client, factory, world, who="owner") -> dict:
    response = await client.get(url(world.owner.id), headers=factory.headers(world.users[who]))
    assert response.status_code == 200, response.text
    return response.json()


def names_of(listing: dict) -> set[str]:
    return {entry["name"] for entry in listing["entries"]}


# Who may manage a list (rule 7)

MANAGERS = ["owner", "admin_both"]
FORBIDDEN = ["admin_one", "company_admin", "parent_admin", "staff", "delegate_user", "group_delegate", "support",
             "other_provider", "role_biller"]


@pytest.mark.parametrize("caller", MANAGERS + FORBIDDEN + ["outsider"])
async def test_who_may_read_a_list(client, factory, caller):
    world = await build_world(factory, segregated=False)
    response = await client.get(url(world.owner.id), headers=factory.headers(world.users[caller]))
    if caller in MANAGERS:
        assert response.status_code == 200, response.text
        listing = response.json()
        assert listing["provider_id"] == str(world.owner.id)
        assert names_of(listing) == {"Billing clerks", "delegate_user", "deactivated", "expired_delegate"}
        assert {e["name"] for e in listing["entries"] if e["expired"]} == {"expired_delegate"}
        assert [e["type"] for e in listing["entries"]] == ["group", "user", "user", "user"]  # groups first
        assert response.headers["ETag"] == f'"{listing["version"]}"'
    elif caller in FORBIDDEN:
        assert_problem(response, 403, "delegation_manage_forbidden")
    else:  # the outsider does not reach the clinic: the provider does not exist for them
        assert_problem(response, 404)


@pytest.mark.parametrize("caller", MANAGERS + FORBIDDEN + ["outsider"])
async def test_who_may_save_a_list(client, factory, caller):
    world = await build_world(factory, segregated=False)
    before = await read(client, factory, world)
    entries = [{"user_id": str(world.users["staff"].id)}]
    response = await client.put(url(world.owner.id), json=body(entries, before["version"]),
                                headers=factory.headers(world.users[caller]))
    after = await read(client, factory, world)
    if caller in MANAGERS:
        assert response.status_code == 200, response.text
        assert names_of(after) == {"staff"} and after["version"] == before["version"] + 1
        assert after["updated_by"] == str(world.users[caller].id)
    else:
        assert_problem(response, 403 if caller in FORBIDDEN else 404,
                       "delegation_manage_forbidden" if caller in FORBIDDEN else None)
        assert after == before


@pytest.mark.parametrize(("held", "manages"), [
    pytest.param([Permission.BILLING_DELEGATION_SETTINGS], False, id="delegation-settings-alone"),
    pytest.param([Permission.USERS_EDIT_OTHERS], False, id="users-edit-others-alone"),
    pytest.param([Permission.USERS_EDIT_OTHERS, Permission.BILLING_DELEGATION_SETTINGS], True, id="both"),
])
async def test_managing_another_providers_list_takes_both_list_manager_permissions(
        client, factory, session, held, manages):
    """Rule 7: users:edit_others and billing:delegation_settings together manage any list in the companies one
    reaches; either one alone manages none, in the policy and on GET and PUT alike."""
    world = await build_world(factory, segregated=False)
    admin = await factory.user(world.clinic, name="admin", permissions=[p.value for p in held])
    actor = await load_actor(session, admin)
    assert is_list_manager(actor, world.clinic.id) is manages
    assert may_manage_list(actor, world.owner) is manages

    before = await read(client, factory, world)
    got = await client.get(url(world.owner.id), headers=factory.headers(admin))
    saved = await client.put(url(world.owner.id), json=body([{"user_id": str(world.users["staff"].id)}],
                                                            before["version"]), headers=factory.headers(admin))
    after = await read(client, factory, world)
    if manages:
        assert got.status_code == 200 and got.json() == before, got.text
        assert saved.status_code == 200, saved.text
        assert names_of(after) == {"staff"} and after["updated_by"] == str(admin.id)
    else:
        assert_problem(got, 403, "delegation_manage_forbidden")
        assert_problem(saved, 403, "delegation_manage_forbidden")
        assert after == before


async def test_an_id_that_is_not_a_provider_is_404(client, factory):
    world = await build_world(factory, segregated=False)
    admin = factory.headers(world.users["admin_both"])
    for target in (world.users["staff"].id, uuid.uuid4()):
        assert_problem(await client.get(url(target), headers=admin), 404, "provider_not_found")
        assert_problem(await client.put(url(target), json=body([], 0), headers=admin), 404, "provider_not_found")
    # The provider themself, seen by an admin of their own company: fine.
    assert (await client.get(url(world.users["other_provider"].id), headers=admin)).status_code == 200


async def test_manager_permissions_may_come_from_a_group_role_and_a_parent_admin_reaches_children(client, factory):
    world = await build_world(factory, segregated=False)
    both = [Permission.USERS_EDIT_OTHERS.value, Permission.BILLING_DELEGATION_SETTINGS.value]
    by_role = await factory.user(world.clinic, name="by role")
    await factory.group(world.clinic, [by_role], name="Delegation admins", permissions=both)
    # Holding one permission directly and the other through a group is holding both.
    split = await factory.user(world.clinic, name="split", permissions=[Permission.USERS_EDIT_OTHERS.value])
    await factory.group(world.clinic, [split], name="Delegation settings", permissions=[both[1]])
    # A company admin of the parent company with both permissions reaches the clinic (rule 3).
    parent_manager = await factory.user(world.network, name="parent manager", permissions=both,
                                        account_type=AccountType.company_admin)
    # A plain user of the parent company with both permissions does not reach the clinic.
    parent_plain = await factory.user(world.network, name="parent plain", permissions=both)
    version = 0
    for user in (by_role, split, parent_manager):
        saved = await client.put(url(world.owner.id), json=body([], version), headers=factory.headers(user))
        assert saved.status_code == 200, (user.display_name, saved.text)
        version += 1
    assert_problem(await client.get(url(world.owner.id), headers=factory.headers(parent_plain)), 404)


async def test_a_list_manager_of_another_company_cannot_reach_the_list(client, factory):
    world = await build_world(factory, segregated=False)
    far_admin = await factory.user(world.elsewhere, permissions=[
        Permission.USERS_EDIT_OTHERS.value, Permission.BILLING_DELEGATION_SETTINGS.value])
    response = await client.put(url(world.owner.id), json=body([], 0), headers=factory.headers(far_admin))
    assert_problem(response, 404)
    assert len((await read(client, factory, world))["entries"]) == 4


# Saving


async def test_put_replaces_the_whole_list(client, factory, session):
    world = await build_world(factory, segregated=True)
    u = world.users
    # A deactivated member of the group does not count among its members.
    session.add(GroupMember(group_id=world.group_id, user_id=u["deactivated_delegate"].id))
    await session.flush()
    before = await read(client, factory, world)
    assert before["version"] == 0 and before["updated_at"] is None

    expires = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    entries = [
        {"user_id": str(u["staff"].id)},  # no role: administrator
        {"group_id": str(world.group_id), "role": "financial_viewer"},
        {"user_id": str(u["deactivated_delegate"].id), "role": "data_entry"},
        {"user_id": str(u["role_biller"].id), "role": "custom", "permissions": ["invoices:view", "bills:view"],
         "expires_at": expires.isoformat()},
    ]
    response = await client.put(url(world.owner.id), json=body(entries, 0), headers=factory.headers(world.owner))
    assert response.status_code == 200, response.text
    saved = response.json()
    assert saved["version"] == 1 and response.headers["ETag"] == '"1"'
    assert saved["updated_by"] == str(world.owner.id) and saved["updated_at"] is not None
    by_name = {entry["name"]: entry for entry in saved["entries"]}
    assert set(by_name) == {"staff", "Billing clerks", "deactivated", "role_biller"}

    staff = by_name["staff"]
    assert staff["type"] == "user" and staff["role"] == "administrator" and staff["permissions"] == ADMINISTRATOR
    assert "team:invite" not in staff["permissions"]
    assert staff["active"] is True and staff["member_count"] is None and staff["expires_at"] is None

    group = by_name["Billing clerks"]
    assert group["type"] == "group" and group["group_id"] == str(world.group_id) and group["user_id"] is None
    assert group["member_count"] == 1  # group_delegate; removed_member left, the deactivated member is not counted
    assert group["permissions"] == sorted(["bills:view", "reports:generate", "invoices:view", "invoices:pay"])

    inactive = by_name["deactivated"]
    assert inactive["active"] is False and inactive["permissions"] == DATA_ENTRY

    custom = by_name["role_biller"]
    assert custom["role"] == "custom" and custom["permissions"] == ["bills:view", "invoices:view"]
    assert datetime.fromisoformat(custom["expires_at"]) == expires and custom["expired"] is False

    listing = await client.get(url(world.owner.id), headers=factory.headers(world.owner))
    assert listing.json() == saved and listing.headers["ETag"] == '"1"'

    # The replaced entries are gone: the former direct delegate no longer sees the bills (segregation is on).
    gone = await client.get(f"/v1/bills/{world.private_bill.id}", headers=factory.headers(u["delegate_user"]))
    assert_problem(gone, 404)
    # ... and the new ones grant: the custom entry views, the administrator entry may also save.
    for who in ("staff", "role_biller", "group_delegate"):
        seen = await client.get(f"/v1/bills/{world.private_bill.id}", headers=factory.headers(u[who]))
        assert seen.status_code == 200, (who, seen.text)
    # The deactivated user stays listed but grants nothing: their token no longer works at all.
    assert (await client.get("/v1/bills", headers=factory.headers(u["deactivated_delegate"]))).status_code == 401

    # An empty list is a list too.
    emptied = await client.put(url(world.owner.id), json=body([], 1), headers=factory.headers(world.owner))
    assert emptied.status_code == 200 and emptied.json()["entries"] == [] and emptied.json()["version"] == 2


async def test_a_deactivated_user_stays_on_the_list_flagged_inactive(client, factory, session):
    world = await build_world(factory, segregated=True)
    staff = world.users["staff"]
    saved = await client.put(url(world.owner.id), json=body([{"user_id": str(staff.id), "role": "data_entry"}], 0),
                             headers=factory.headers(world.owner))
    assert saved.status_code == 200, saved.text
    assert (await client.get(f"/v1/bills/{world.private_bill.id}", headers=factory.headers(staff))).status_code == 200
    deactivated = await client.post(f"/v1/users/{staff.id}/deactivate",
                                    headers=factory.headers(world.users["admin_both"]))
    assert deactivated.status_code == 200, deactivated.text
    listing = await read(client, factory, world)
    assert [(e["name"], e["active"]) for e in listing["entries"]] == [("staff", False)]


# Bad entries: each a 422 naming the entry, and nothing saved.


async def _other_company_group(factory, world):
    return await factory.group(world.elsewhere, name="Far clerks")


async def _other_company_user(factory, world):
    return await factory.user(world.elsewhere, name="far user")


def _bad_entry_cases():
    past = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()

    async def unknown_user(factory, world):
        return {"user_id": str(uuid.uuid4())}

    async def unknown_group(factory, world):
        return {"group_id": str(uuid.uuid4())}

    async def other_company_user(factory, world):
        return {"user_id": str((await _other_company_user(factory, world)).id)}

    async def outsider(factory, world):
        return {"user_id": str(world.users["outsider"].id)}

    async def other_company_group(factory, world):
        return {"group_id": str((await _other_company_group(factory, world)).id)}

    async def the_provider(factory, world):
        return {"user_id": str(world.owner.id)}

    async def twice(factory, world):
        return {"user_id": str(world.users["staff"].id), "role": "data_entry"}  # staff is entry 0 too

    async def both(factory, world):
        return {"user_id": str(world.users["role_biller"].id), "group_id": str(world.group_id)}

    async def neither(factory, world):
        return {"role": "data_entry"}

    async def custom_empty(factory, world):
        return {"user_id": str(world.users["role_biller"].id), "role": "custom", "permissions": []}

    async def custom_missing(factory, world):
        return {"user_id": str(world.users["role_biller"].id), "role": "custom"}

    async def custom_invite(factory, world):
        return {"user_id": str(world.users["role_biller"].id), "role": "custom",
                "permissions": ["bills:view", "team:invite"]}

    async def permissions_with_preset(factory, world):
        return {"user_id": str(world.users["role_biller"].id), "role": "data_entry", "permissions": ["bills:view"]}

    async def permissions_without_role(factory, world):
        return {"user_id": str(world.users["role_biller"].id), "permissions": ["bills:view"]}

    async def expired(factory, world):
        return {"user_id": str(world.users["role_biller"].id), "expires_at": past}

    return [
        pytest.param(unknown_user, "unknown_user", id="unknown-user"),
        pytest.param(unknown_group, "unknown_group", id="unknown-group"),
        pytest.param(other_company_user, "outside_company", id="user-of-another-company"),
        pytest.param(outsider, "outside_company", id="outsider"),
        pytest.param(other_company_group, "outside_company", id="group-of-another-company"),
        pytest.param(the_provider, "self", id="the-provider-themself"),
        pytest.param(twice, "duplicate", id="same-user-twice"),
        pytest.param(both, "target", id="user-and-group"),
        pytest.param(neither, "target", id="neither-user-nor-group"),
        pytest.param(custom_empty, "empty_permissions", id="custom-empty-permissions"),
        pytest.param(custom_missing, "empty_permissions", id="custom-missing-permissions"),
        pytest.param(custom_invite, "permission_not_delegable", id="custom-with-team-invite"),
        pytest.param(permissions_with_preset, "permissions_with_preset", id="permissions-with-preset"),
        pytest.param(permissions_without_role, "permissions_with_preset", id="permissions-without-role"),
        pytest.param(expired, "expired", id="expiry-in-the-past"),
    ]


@pytest.mark.parametrize(("make_entry", "reason"), _bad_entry_cases())
async def test_bad_entries_are_refused_by_index_and_save_nothing(client, factory, session, make_entry, reason):
    world = await build_world(factory, segregated=False)
    before = await read(client, factory, world)
    entries = [{"user_id": str(world.users["staff"].id)}, await make_entry(factory, world),
               {"group_id": str(world.group_id)}]
    response = await client.put(url(world.owner.id), json=body(entries, before["version"]),
                                headers=factory.headers(world.owner))
    problem = assert_problem(response, 422, "delegation_entry_invalid")
    assert problem["entry"] == 1 and problem["reason"] == reason, problem
    assert "Entry 1" in problem["detail"]
    assert await read(client, factory, world) == before
    saves = await session.execute(select(AuditEvent).where(AuditEvent.action == "delegation.list_saved",
                                                           AuditEvent.target_id == world.owner.id))
    assert saves.first() is None


async def test_wrong_password_saves_nothing_and_is_audited(client, factory, session):
    world = await build_world(factory, segregated=True)
    before = await read(client, factory, world)
    response = await client.put(url(world.owner.id), json=body([], before["version"], password="not my password"),
                                headers=factory.headers(world.owner))
    assert_problem(response, 403, "password_confirmation_failed")
    assert await read(client, factory, world) == before
    # The delegate keeps their access.
    assert (await client.get(f"/v1/bills/{world.private_bill.id}",
                             headers=factory.headers(world.users["delegate_user"]))).status_code == 200
    events = (await session.execute(select(AuditEvent).where(
        AuditEvent.actor_id == world.owner.id, AuditEvent.action == "auth.password_confirmation_failed"
    ))).scalars().all()
    assert len(events) == 1 and events[0].details == {"purpose": "delegation.save"}
    assert (await session.execute(select(AuditEvent).where(AuditEvent.action == "delegation.list_saved",
                                                           AuditEvent.target_id == world.owner.id))).first() is None


async def test_the_admin_confirms_with_their_own_password(client, factory):
    world = await build_world(factory, segregated=False)
    admin = factory.headers(world.users["admin_both"])
    ok = await client.put(url(world.owner.id), json=body([], 0), headers=admin)
    assert ok.status_code == 200, ok.text
    assert ok.json()["updated_by"] == str(world.users["admin_both"].id)


async def test_stale_version_saves_nothing(client, factory):
    world = await build_world(factory, segregated=False)
    owner = factory.headers(world.owner)
    first = await client.put(url(world.owner.id), json=body([{"user_id": str(world.users["staff"].id)}], 0),
                             headers=owner)
    assert first.status_code == 200 and first.json()["version"] == 1
    before = await read(client, factory, world)
    for version in (0, 2, 99):
        stale = await client.put(url(world.owner.id), headers=owner,
                                 json=body([{"user_id": str(world.users["role_biller"].id)}], version))
        problem = assert_problem(stale, 409, "delegation_list_stale")
        assert problem["current_version"] == 1
        assert await read(client, factory, world) == before


BAD_BODIES = [
    pytest.param({"entries": [], "version": 0, "password": PASSWORD, "force": True}, id="unknown-field"),
    pytest.param({"entries": [{"user_id": "{staff}", "colour": "red"}], "version": 0, "password": PASSWORD},
                 id="unknown-entry-field"),
    pytest.param({"entries": [], "version": "0", "password": PASSWORD}, id="version-as-string"),
    pytest.param({"entries": [], "version": True, "password": PASSWORD}, id="version-as-boolean"),
    pytest.param({"entries": [], "version": -1, "password": PASSWORD}, id="version-negative"),
    pytest.param({"entries": [], "version": 0.5, "password": PASSWORD}, id="version-fraction"),
    pytest.param({"entries": [], "version": 2**70, "password": PASSWORD}, id="version-huge"),
    pytest.param({"entries": [], "version": None, "password": PASSWORD}, id="version-null"),
    pytest.param({"entries": [], "password": PASSWORD}, id="version-missing"),
    pytest.param({"entries": [], "version": 0}, id="password-missing"),
    pytest.param({"entries": [], "version": 0, "password": ""}, id="password-empty"),
    pytest.param({"version": 0, "password": PASSWORD}, id="entries-missing"),
    pytest.param({"entries": {"user_id": "{staff}"}, "version": 0, "password": PASSWORD}, id="entries-not-a-list"),
    pytest.param({"entries": ["{staff}"], "version": 0, "password": PASSWORD}, id="entry-not-an-object"),
    pytest.param({"entries": [{"user_id": "not-a-uuid"}], "version": 0, "password": PASSWORD}, id="bad-uuid"),
    pytest.param({"entries": [{"user_id": "{staff}", "role": "superuser"}], "version": 0, "password": PASSWORD},
                 id="unknown-role"),
    pytest.param({"entries": [{"user_id": "{staff}", "role": "custom", "permissions": ["bills:fly"]}],
                  "version": 0, "password": PASSWORD}, id="unknown-permission"),
    pytest.param({"entries": [{"user_id": "{staff}", "expires_at": "2099-01-01T00:00:00"}], "version": 0,
                  "password": PASSWORD}, id="naive-expiry"),
    pytest.param({"entries": [{"user_id": "{staff}", "expires_at": "next tuesday"}], "version": 0,
                  "password": PASSWORD}, id="unparseable-expiry"),
    pytest.param([], id="array-body"),
    pytest.param("just a string", id="string-body"),
]


def _fill(value, staff_id: str):
    if isinstance(value, dict):
        return {k: _fill(v, staff_id) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, staff_id) for v in value]
    return staff_id if value == "{staff}" else value


@pytest.mark.parametrize("payload", BAD_BODIES)
async def test_bad_bodies_are_4xx_problems_and_save_nothing(client, factory, payload):
    world = await build_world(factory, segregated=False)
    before = await read(client, factory, world)
    response = await client.put(url(world.owner.id), json=_fill(payload, str(world.users["staff"].id)),
                                headers=factory.headers(world.owner))
    problem = assert_problem(response, 422)
    # A version beyond the column's range is refused by the database (a data exception), still as a 422.
    assert problem["code"] in ("validation_error", "invalid_value")
    assert await read(client, factory, world) == before


@pytest.mark.parametrize("raw", [b'{"entries": [', b"", b"\xff\xfe", b'{"entries": [], "version": 0,}'])
async def test_malformed_json_is_a_400_problem(client, factory, raw):
    world = await build_world(factory, segregated=False)
    before = await read(client, factory, world)
    response = await client.put(url(world.owner.id), content=raw,
                                headers={**factory.headers(world.owner), "Content-Type": "application/json"})
    assert 400 <= response.status_code < 500, response.text
    assert_problem(response, response.status_code)
    assert await read(client, factory, world) == before


# Time-limited entries


async def test_a_time_limited_entry_stops_granting_at_its_expiry(client, factory, session):
    world = await build_world(factory, segregated=True)
    staff = factory.headers(world.users["staff"])
    bill = f"/v1/bills/{world.private_bill.id}"
    assert_problem(await client.get(bill, headers=staff), 404)

    soon = datetime.now(UTC) + timedelta(seconds=5)
    saved = await client.put(url(world.owner.id), headers=factory.headers(world.owner), json=body(
        [{"user_id": str(world.users["staff"].id), "role": "financial_viewer", "expires_at": soon.isoformat()}], 0))
    assert saved.status_code == 200, saved.text
    (entry,) = saved.json()["entries"]
    assert entry["expired"] is False and datetime.fromisoformat(entry["expires_at"]) == soon

    assert (await client.get(bill, headers=staff)).status_code == 200
    assert str(world.private_bill.id) in {b["id"] for b in (await client.get("/v1/bills", headers=staff)).json()["items"]}

    # The instant passes (the database's clock is the one that counts).
    await session.execute(update(DelegationEntry).where(DelegationEntry.id == uuid.UUID(entry["id"]))
                          .values(expires_at=text("now() - interval '1 second'")))
    assert_problem(await client.get(bill, headers=staff), 404)
    assert str(world.private_bill.id) not in {
        b["id"] for b in (await client.get("/v1/bills", headers=staff)).json()["items"]}
    # Still listed, now flagged expired.
    (listed,) = (await read(client, factory, world))["entries"]
    assert listed["id"] == entry["id"] and listed["expired"] is True


# Audit


@pytest.mark.parametrize("saver", ["owner", "admin_both"])
async def test_a_save_is_audited_and_visible_to_the_provider_and_admins(client, factory, saver):
    world = await build_world(factory, segregated=False)
    entries = [{"user_id": str(world.users["staff"].id), "role": "data_entry"}]
    saved = await client.put(url(world.owner.id), json=body(entries, 0), headers=factory.headers(world.users[saver]))
    assert saved.status_code == 200, saved.text

    def saves(response) -> list[dict]:
        assert response.status_code == 200, response.text
        return [e for e in response.json()["items"]
                if e["action"] == "delegation.list_saved" and e["target_id"] == str(world.owner.id)]

    for who in ("owner", "admin_both", "company_admin", "parent_admin"):
        events = saves(await client.get("/v1/audit-events", headers=factory.headers(world.users[who])))
        assert len(events) == 1, who
        event = events[0]
        assert event["actor_id"] == str(world.users[saver].id) and event["target_type"] == "provider"
        assert event["company_id"] == str(world.clinic.id) and event["details"]["version"] == 1
        assert [e["user_id"] for e in event["details"]["after"]] == [str(world.users["staff"].id)]
        assert len(event["details"]["before"]) == 4
        filtered = saves(await client.get("/v1/audit-events", params={"action": "delegation.list_saved"},
                                          headers=factory.headers(world.users[who])))
        assert [e["id"] for e in filtered] == [event["id"]]

    for who in ("staff", "other_provider", "admin_one", "delegate_user", "outsider"):
        assert saves(await client.get("/v1/audit-events", headers=factory.headers(world.users[who]))) == [], who
