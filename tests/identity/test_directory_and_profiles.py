"""The directory search and profiles (read, update, password change)."""

import uuid

from billing_api.models import UserStatus
from tests.factories import PASSWORD
from tests.helpers import ADMIN, SUPPORT, assert_problem, count


async def search(client, headers, q, **params):
    response = await client.get("/v1/directory", params={"q": q, **params}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def test_directory_finds_active_users_and_groups_by_name(client, factory):
    company = await factory.company()
    caller = await factory.user(company, name="Casey Caller")
    smith = await factory.user(company, name="Dr. Jane Smith", provider=True)
    smithers = await factory.user(company, name="Wayland Smithers")
    await factory.user(company, name="Gone Smith", status=UserStatus.deactivated)
    await factory.user(await factory.company(), name="Other Smith")
    gone = await factory.user(company, status=UserStatus.deactivated)
    group = await factory.group(company, [smith, smithers, gone], name="Smith team")
    await factory.group(company, [smith], name="Unrelated")

    items = await search(client, factory.headers(caller), "SMITH")
    by_id = {item["id"]: item for item in items}
    assert set(by_id) == {str(smith.id), str(smithers.id), str(group.id)}
    assert by_id[str(group.id)] == {"type": "group", "id": str(group.id), "name": "Smith team", "username": None,
                                    "is_provider": None, "member_count": 2}  # active members only
    assert by_id[str(smith.id)]["type"] == "user" and by_id[str(smith.id)]["is_provider"] is True
    assert by_id[str(smith.id)]["username"] == smith.username
    # A username matches too.
    assert [item["id"] for item in await search(client, factory.headers(caller), smithers.username)] == [
        str(smithers.id)]
    assert await search(client, factory.headers(caller), "nobody-called-this") == []
    limited = await search(client, factory.headers(caller), "smith", limit=1)
    assert len(limited) == 1


async def test_directory_is_scoped_to_a_company_the_caller_reaches(client, factory):
    parent = await factory.company()
    child = await factory.company(parent=parent)
    elsewhere = await factory.company()
    admin = await factory.user(parent, account_type=ADMIN)
    plain = await factory.user(parent)
    kid = await factory.user(child, name="Kim Child")
    await factory.user(elsewhere, name="Kim Elsewhere")

    assert [i["id"] for i in await search(client, factory.headers(admin), "kim", company_id=str(child.id))] == [
        str(kid.id)]
    assert await search(client, factory.headers(admin), "kim") == []  # defaults to the home company
    assert_problem(await client.get("/v1/directory", params={"q": "kim", "company_id": str(elsewhere.id)},
                                    headers=factory.headers(admin)), 404, "company_not_found")
    assert_problem(await client.get("/v1/directory", params={"q": "kim", "company_id": str(child.id)},
                                    headers=factory.headers(plain)), 404, "company_not_found")
    support = await factory.user(await factory.company(), account_type=SUPPORT)
    assert len(await search(client, factory.headers(support), "kim", company_id=str(elsewhere.id))) == 1
    assert_problem(await client.get("/v1/directory", headers=factory.headers(plain)), 422, "validation_error")


async def test_profiles_read(client, factory):
    company = await factory.company()
    me = await factory.user(company, name="Me Myself", provider=True)
    colleague = await factory.user(company, name="Col League")
    stranger = await factory.user(await factory.company())
    headers = factory.headers(me)

    mine = await client.get("/v1/profiles/me", headers=headers)
    assert mine.status_code == 200
    assert mine.json() == {"id": str(me.id), "company_id": str(company.id), "username": me.username,
                           "display_name": "Me Myself", "email": me.email, "is_provider": True,
                           "billing_number": me.billing_number, "status": "active"}
    theirs = await client.get(f"/v1/profiles/{colleague.id}", headers=headers)
    assert theirs.status_code == 200 and theirs.json()["display_name"] == "Col League"
    assert_problem(await client.get(f"/v1/profiles/{stranger.id}", headers=headers), 404, "user_not_found")
    assert_problem(await client.get(f"/v1/profiles/{uuid.uuid4()}", headers=headers), 404, "user_not_found")
    assert_problem(await client.get("/v1/profiles/me"), 401)


async def test_display_name_changes_without_a_password(client, factory, session):
    me = await factory.user(await factory.company(), name="Old")
    response = await client.patch("/v1/profiles/me", json={"display_name": "  New Name  "}, headers=factory.headers(me))
    assert response.status_code == 200, response.text
    assert response.json()["display_name"] == "New Name"
    await session.refresh(me)
    assert me.display_name == "New Name" and me.token_version == 1
    # The same token still works: no password changed.
    assert (await client.get("/v1/profiles/me", headers=factory.headers(me))).json()["display_name"] == "New Name"
    assert await count(session, "audit_event", "action = 'profile.updated' AND actor_id = :u", u=me.id) == 1


async def test_email_change_needs_the_current_password(client, factory, session):
    company = await factory.company()
    me = await factory.user(company)
    other = await factory.user(company)
    headers = factory.headers(me)
    original = me.email

    body = assert_problem(await client.patch("/v1/profiles/me", json={"email": "new@example.org"}, headers=headers),
                          422, "current_password_required")
    assert body["field"] == "current_password"
    assert_problem(await client.patch("/v1/profiles/me", headers=headers,
                                      json={"email": other.email.upper(), "current_password": PASSWORD}),
                   409, "email_taken")
    await session.refresh(me)
    assert me.email == original

    ok = await client.patch("/v1/profiles/me", json={"email": "new@example.org", "current_password": PASSWORD},
                            headers=headers)
    assert ok.status_code == 200 and ok.json()["email"] == "new@example.org"
    # An email change alone keeps the session.
    assert (await client.get("/v1/me", headers=headers)).status_code == 200
    assert (await client.post("/v1/auth/token", data={"username": "new@example.org",
                                                      "password": PASSWORD})).status_code == 200


async def test_password_change_logs_out_old_tokens_and_the_new_password_works(client, factory, session):
    me = await factory.user(await factory.company())
    old_headers = factory.headers(me)
    new_password = "  a brand new passphrase "

    assert_problem(await client.patch("/v1/profiles/me", json={"new_password": new_password}, headers=old_headers),
                   422, "current_password_required")
    assert_problem(await client.patch("/v1/profiles/me", json={"new_password": "short", "current_password": PASSWORD},
                                      headers=old_headers), 422, "password_too_short")

    changed = await client.patch("/v1/profiles/me", headers=old_headers,
                                 json={"new_password": new_password, "current_password": PASSWORD})
    assert changed.status_code == 200, changed.text
    assert_problem(await client.get("/v1/me", headers=old_headers), 401, "token_revoked")

    assert_problem(await client.post("/v1/auth/token", data={"username": me.username, "password": PASSWORD}), 401,
                   "invalid_credentials")
    login = await client.post("/v1/auth/token", data={"username": me.username, "password": new_password})
    assert login.status_code == 200
    fresh = {"Authorization": f"Bearer {login.json()['access_token']}"}
    assert (await client.get("/v1/profiles/me", headers=fresh)).json()["id"] == str(me.id)
    await session.refresh(me)
    assert me.token_version == 2
