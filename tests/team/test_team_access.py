"""GET /v1/roles, GET team, and who may invite, resend, cancel, change and revoke: the provider and the list
managers (users:edit_others + billing:delegation_settings where they reach); never a delegate, whatever
their preset (the administrator preset included); not seen: 404."""

from __future__ import annotations

import pytest

from billing_api.authz.permissions import BILLING_PERMISSIONS, Permission
from tests.authz.world import CALLERS, build_world
from tests.helpers import assert_problem
from tests.support.practice import snapshot
from tests.team.flows import invite, join, unique_email, unique_username

MANAGERS = {"owner", "admin_both"}
UNAUTHENTICATED = {"deactivated_delegate"}  # a deactivated user's token stops working
UNSEEN = {"outsider"}                        # does not reach the clinic: the provider does not exist for them


def expected(caller: str) -> int:
    if caller in MANAGERS:
        return 200
    if caller in UNAUTHENTICATED:
        return 401
    return 404 if caller in UNSEEN else 403


async def test_roles_lists_the_four_presets(client, factory):
    company = await factory.company()
    response = await client.get("/v1/roles", headers=factory.headers(await factory.user(company)))
    assert response.status_code == 200, response.text
    roles = {role["role"]: role for role in response.json()}
    assert list(roles) == ["financial_viewer", "data_entry", "administrator", "custom"]
    assert set(roles["financial_viewer"]["permissions"]) == {"bills:view", "reports:generate", "invoices:view",
                                                             "invoices:pay"}
    assert set(roles["data_entry"]["permissions"]) == {"bills:view", "bills:save", "bills:submit", "bills:delete"}
    assert "team:invite" not in roles["administrator"]["permissions"]
    assert len(roles["administrator"]["permissions"]) == 7
    assert roles["custom"]["customizable"] is True and "team:invite" not in roles["custom"]["permissions"]
    assert all(role["description"] and role["name"] for role in roles.values())
    assert_problem(await client.get("/v1/roles"), 401)


@pytest.mark.parametrize("caller", CALLERS)
async def test_who_may_read_the_team(client, factory, caller):
    world = await build_world(factory, segregated=False)
    response = await client.get(f"/v1/providers/{world.owner.id}/team", headers=factory.headers(world.users[caller]))
    status = expected(caller)
    if status != 200:
        assert_problem(response, status, {403: "team_manage_forbidden", 404: "provider_not_found"}.get(status))
        return
    team = response.json()
    # The list's user entries (groups are managed on the list itself), each with where it came from.
    assert {m["display_name"] for m in team["members"]} == {"delegate_user", "deactivated", "expired_delegate"}
    assert {m["source"] for m in team["members"]} == {"list"}
    assert {m["display_name"]: m["active"] for m in team["members"]}["deactivated"] is False
    assert {m["display_name"]: m["expired"] for m in team["members"]}["expired_delegate"] is True
    assert team["invitations"] == [] and team["list_version"] == 0


@pytest.mark.parametrize("caller", CALLERS)
async def test_who_may_invite(client, factory, session, caller):
    world = await build_world(factory, segregated=True)
    before = await snapshot(session)
    response = await invite(client, factory.headers(world.users[caller]), world.owner.id, email=unique_email(),
                            username=unique_username(), role="financial_viewer")
    status = expected(caller)
    if status == 200:
        assert response.status_code == 201, response.text
        assert response.json()["invited_by"] == str(world.users[caller].id)
    else:
        assert_problem(response, status)
        assert await snapshot(session) == before


@pytest.mark.parametrize("caller", CALLERS)
async def test_who_may_resend_cancel_change_and_revoke(client, factory, session, deliver, collector, caller):
    world = await build_world(factory, segregated=True)
    owner = factory.headers(world.owner)
    joined = await join(client, deliver, collector, owner, world.owner.id, role="data_entry")
    pending = (await invite(client, owner, world.owner.id, email=unique_email(), username=unique_username())).json()
    headers = factory.headers(world.users[caller])
    requests = [
        ("POST", f"/v1/invitations/{pending['id']}/resend", None),
        ("PATCH", f"/v1/providers/{world.owner.id}/team/{joined.user_id}", {"role": "administrator"}),
        ("DELETE", f"/v1/providers/{world.owner.id}/team/{joined.user_id}", None),
        ("DELETE", f"/v1/invitations/{pending['id']}", None),
    ]
    status = expected(caller)
    for method, path, body in requests:
        before = await snapshot(session)
        response = await client.request(method, path, headers=headers, **({"json": body} if body else {}))
        if status == 200:
            assert response.status_code in (200, 204), (method, path, response.text)
        else:
            problem = assert_problem(response, status)
            if status == 404:
                assert problem["code"] in ("provider_not_found", "invitation_not_found")
            assert await snapshot(session) == before


async def test_the_administrator_preset_never_invites(client, factory, session, deliver, collector):
    world = await build_world(factory, segregated=False)
    owner = factory.headers(world.owner)
    admin = await join(client, deliver, collector, owner, world.owner.id, role="administrator")
    assert set(admin.accepted["permissions"]) == {p.value for p in BILLING_PERMISSIONS} - {"team:invite"}
    before = await snapshot(session)
    for response in (
        await invite(client, admin.headers, world.owner.id, email=unique_email(), username=unique_username()),
        await client.get(f"/v1/providers/{world.owner.id}/team", headers=admin.headers),
        await client.patch(f"/v1/providers/{world.owner.id}/team/{admin.user_id}", headers=admin.headers,
                           json={"role": "administrator"}),
        await client.delete(f"/v1/providers/{world.owner.id}/team/{admin.user_id}", headers=admin.headers),
    ):
        assert_problem(response, 403, "team_manage_forbidden")
    assert await snapshot(session) == before
    # Nor does a delegate whose list entry holds the administrator preset (a list entry, not an invitation).
    listed = await factory.user(world.clinic, name="Listed admin")
    version = (await client.get(f"/v1/providers/{world.owner.id}/delegation", headers=owner)).json()["version"]
    saved = await client.put(f"/v1/providers/{world.owner.id}/delegation", headers=owner, json={
        "entries": [{"user_id": str(listed.id), "role": "administrator"}], "version": version,
        "password": "correct horse battery"})
    assert saved.status_code == 200, saved.text
    assert_problem(await invite(client, factory.headers(listed), world.owner.id, email=unique_email(),
                                username=unique_username()), 403, "team_manage_forbidden")


async def test_a_list_manager_of_another_company_does_not_see_the_provider(client, factory, session):
    world = await build_world(factory, segregated=False)
    far_manager = await factory.user(world.elsewhere, permissions=[
        Permission.USERS_EDIT_OTHERS.value, Permission.BILLING_DELEGATION_SETTINGS.value])
    response = await invite(client, factory.headers(far_manager), world.owner.id, email=unique_email(),
                            username=unique_username())
    assert_problem(response, 404, "provider_not_found")
