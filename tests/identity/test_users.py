"""Users: create, list (cursor pages and filters), get, update, deactivate/reactivate, privilege rules."""

import uuid

from sqlalchemy import select

from billing_api.models import AuditEvent, User, UserStatus
from tests.factories import PASSWORD
from tests.helpers import ADMIN, SUPPORT, assert_problem, count


def new_user(company, **fields):
    n = uuid.uuid4().hex[:8]
    body = {
        "company_id": str(company.id),
        "email": f"new-{n}@example.org",
        "username": f"new.{n}",
        "display_name": f"New {n}",
        "password": "a long enough password",
    }
    body.update(fields)
    return body


async def test_company_admin_creates_a_user_who_can_log_in(client, factory, session):
    company = await factory.company()
    admin = await factory.user(company, account_type=ADMIN)
    body = new_user(company, display_name="Dr. Grace Hopper", is_provider=True, billing_number="ON-12345",
                    permissions=["bills:view"])
    response = await client.post("/v1/users", json=body, headers=factory.headers(admin))
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["company_id"] == str(company.id)
    assert created["username"] == body["username"] and created["email"] == body["email"]
    assert created["status"] == "active" and created["account_type"] == "standard" and created["kind"] == "member"
    assert created["is_provider"] is True and created["billing_number"] == "ON-12345"
    assert created["permissions"] == ["bills:view"]
    assert "password" not in created and "password_hash" not in created

    events = (await session.execute(select(AuditEvent).where(
        AuditEvent.action == "user.created", AuditEvent.target_id == uuid.UUID(created["id"])))).scalars().all()
    assert len(events) == 1 and events[0].actor_id == admin.id

    login = await client.post("/v1/auth/token", data={"username": body["username"], "password": body["password"]})
    assert login.status_code == 200


async def test_password_is_kept_exactly_as_typed(client, factory):
    # Regression: leading and trailing spaces were stripped on create, so the password never matched again.
    company = await factory.company()
    admin = await factory.user(company, account_type=ADMIN)
    body = new_user(company, password="  spaces around it  ")
    assert (await client.post("/v1/users", json=body, headers=factory.headers(admin))).status_code == 201
    exact = await client.post("/v1/auth/token", data={"username": body["username"], "password": body["password"]})
    assert exact.status_code == 200
    stripped = await client.post("/v1/auth/token", data={"username": body["username"], "password": "spaces around it"})
    assert stripped.status_code == 401


async def test_holder_of_users_edit_others_creates_a_user(client, factory):
    company = await factory.company()
    editor = await factory.user(company, permissions=["users:edit_others"])
    response = await client.post("/v1/users", json=new_user(company), headers=factory.headers(editor))
    assert response.status_code == 201, response.text
    assert response.json()["company_id"] == str(company.id)


async def test_standard_user_without_the_permission_cannot_create_or_change_users(client, factory, session):
    company = await factory.company()
    plain = await factory.user(company, permissions=["billing:delegation_settings"])
    other = await factory.user(company)
    headers = factory.headers(plain)
    before = await count(session, "app_user")
    assert_problem(await client.post("/v1/users", json=new_user(company), headers=headers), 403,
                   "users_edit_forbidden")
    assert_problem(await client.patch(f"/v1/users/{other.id}", json={"display_name": "X"}, headers=headers), 403,
                   "users_edit_forbidden")
    assert_problem(await client.post(f"/v1/users/{other.id}/deactivate", headers=headers), 403,
                   "users_edit_forbidden")
    assert await count(session, "app_user") == before
    # Reading is fine: a colleague of the same company.
    assert (await client.get(f"/v1/users/{other.id}", headers=headers)).status_code == 200


async def test_another_companys_users_and_company_do_not_exist_for_the_caller(client, factory, session):
    home, elsewhere = await factory.company(), await factory.company()
    admin = await factory.user(home, account_type=ADMIN)
    stranger = await factory.user(elsewhere)
    headers = factory.headers(admin)
    before = await count(session, "app_user")
    assert_problem(await client.post("/v1/users", json=new_user(elsewhere), headers=headers), 404,
                   "company_not_found")
    assert_problem(await client.get(f"/v1/users/{stranger.id}", headers=headers), 404, "user_not_found")
    assert_problem(await client.patch(f"/v1/users/{stranger.id}", json={"display_name": "X"}, headers=headers),
                   404, "user_not_found")
    assert_problem(await client.post(f"/v1/users/{stranger.id}/deactivate", headers=headers), 404,
                   "user_not_found")
    assert_problem(await client.post(f"/v1/users/{stranger.id}/reactivate", headers=headers), 404,
                   "user_not_found")
    assert_problem(await client.get("/v1/users", params={"company_id": str(elsewhere.id)}, headers=headers), 404,
                   "company_not_found")
    assert_problem(await client.get(f"/v1/users/{uuid.uuid4()}", headers=headers), 404, "user_not_found")
    assert await count(session, "app_user") == before
    listed = (await client.get("/v1/users", headers=headers)).json()["items"]
    assert str(stranger.id) not in {user["id"] for user in listed}


async def test_company_admin_of_a_parent_manages_users_of_its_children(client, factory):
    parent = await factory.company()
    child = await factory.company(parent=parent)
    admin = await factory.user(parent, account_type=ADMIN)
    worker = await factory.user(child)
    headers = factory.headers(admin)
    assert (await client.post("/v1/users", json=new_user(child), headers=headers)).status_code == 201
    assert (await client.patch(f"/v1/users/{worker.id}", json={"display_name": "Renamed"},
                               headers=headers)).json()["display_name"] == "Renamed"
    # ... but a child's own admin does not reach the parent.
    child_admin = await factory.user(child, account_type=ADMIN)
    assert_problem(await client.post("/v1/users", json=new_user(parent), headers=factory.headers(child_admin)),
                   404, "company_not_found")


async def test_list_walks_every_user_exactly_once_in_pages_of_two(client, factory):
    company = await factory.company()
    admin = await factory.user(company, account_type=ADMIN)
    others = [await factory.user(company) for _ in range(4)]
    await factory.user(await factory.company())  # another company's user never appears
    expected = {str(user.id) for user in [admin, *others]}

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        response = await client.get("/v1/users", params=params, headers=factory.headers(admin))
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= 2
        seen += [user["id"] for user in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert pages < 10
    assert sorted(seen) == sorted(expected) and len(seen) == len(set(seen))
    assert pages == 3
    whole = (await client.get("/v1/users", params={"limit": 5}, headers=factory.headers(admin))).json()
    assert [u["id"] for u in whole["items"]] == seen and whole["next_cursor"] is None


async def test_list_filters_by_status_and_name(client, factory):
    company = await factory.company()
    admin = await factory.user(company, account_type=ADMIN, name="Alice Admin")
    gone = await factory.user(company, name="Dora Gone", status=UserStatus.deactivated)
    dana = await factory.user(company, name="Dana Scully")
    headers = factory.headers(admin)

    async def ids(**params):
        response = await client.get("/v1/users", params=params, headers=headers)
        assert response.status_code == 200, response.text
        return {user["id"] for user in response.json()["items"]}

    assert await ids(status="deactivated") == {str(gone.id)}
    assert await ids(status="active") == {str(admin.id), str(dana.id)}
    assert await ids(q="sCUL") == {str(dana.id)}  # case-insensitive
    assert await ids(q="d", status="active") == {str(admin.id), str(dana.id)}
    assert await ids(q=dana.username) == {str(dana.id)}
    assert await ids(q="%") == set()  # LIKE wildcards are matched literally
    assert await ids(company_id=str(company.id)) == {str(admin.id), str(gone.id), str(dana.id)}


async def test_get_user(client, factory):
    company = await factory.company()
    reader = await factory.user(company)
    provider = await factory.user(company, provider=True, name="Dr. Who")
    response = await client.get(f"/v1/users/{provider.id}", headers=factory.headers(reader))
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == str(provider.id) and body["display_name"] == "Dr. Who"
    assert body["is_provider"] is True and body["billing_number"] == provider.billing_number


async def test_update_user_changes_only_what_is_sent(client, factory, session):
    company = await factory.company()
    admin = await factory.user(company, account_type=ADMIN)
    target = await factory.user(company, name="Old Name")
    headers = factory.headers(admin)
    response = await client.patch(f"/v1/users/{target.id}", headers=headers, json={
        "display_name": "New Name", "email": "Renamed@Example.org", "is_provider": True, "billing_number": "BN-9",
        "permissions": ["bills:view", "bills:view", "reports:generate"],
    })
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["display_name"] == "New Name" and body["username"] == target.username
    assert body["email"].lower() == "renamed@example.org"
    assert body["is_provider"] is True and body["billing_number"] == "BN-9"
    assert body["permissions"] == ["bills:view", "reports:generate"]
    assert (await client.get(f"/v1/users/{target.id}", headers=headers)).json() == body
    assert await count(session, "audit_event", "action = 'user.updated' AND target_id = :t", t=target.id) == 1

    # A provider keeps a billing number.
    assert_problem(await client.patch(f"/v1/users/{target.id}", json={"billing_number": None}, headers=headers),
                   422, "billing_number_required")
    # Required fields cannot be nulled.
    assert_problem(await client.patch(f"/v1/users/{target.id}", json={"username": None}, headers=headers),
                   422, "field_required")


async def test_deactivate_and_reactivate(client, factory, session):
    company = await factory.company()
    admin = await factory.user(company, account_type=ADMIN)
    target = await factory.user(company)
    headers = factory.headers(admin)

    off = await client.post(f"/v1/users/{target.id}/deactivate", headers=headers)
    assert off.status_code == 200 and off.json()["status"] == "deactivated" and off.json()["deactivated_at"]
    again = await client.post(f"/v1/users/{target.id}/deactivate", headers=headers)
    assert again.status_code == 200 and again.json()["status"] == "deactivated"  # idempotent
    login = await client.post("/v1/auth/token", data={"username": target.username, "password": PASSWORD})
    assert_problem(login, 401, "invalid_credentials")

    on = await client.post(f"/v1/users/{target.id}/reactivate", headers=headers)
    assert on.status_code == 200 and on.json()["status"] == "active" and on.json()["deactivated_at"] is None
    login = await client.post("/v1/auth/token", data={"username": target.username, "password": PASSWORD})
    assert login.status_code == 200
    actions = (await session.execute(select(AuditEvent.action).where(AuditEvent.target_id == target.id)
                                     .order_by(AuditEvent.created_at))).scalars().all()
    assert [a for a in actions if a.startswith("user.")] == ["user.deactivated", "user.reactivated"]


async def test_nobody_deactivates_themselves(client, factory, session):
    company = await factory.company()
    admin = await factory.user(company, account_type=ADMIN)
    assert_problem(await client.post(f"/v1/users/{admin.id}/deactivate", headers=factory.headers(admin)), 409,
                   "cannot_change_own_status")
    await session.refresh(admin)
    assert admin.status == UserStatus.active
    assert (await client.get("/v1/me", headers=factory.headers(admin))).status_code == 200


async def test_an_editor_cannot_deactivate_or_change_a_company_admin(client, factory, session):
    company = await factory.company()
    editor = await factory.user(company, permissions=["users:edit_others"])
    admin = await factory.user(company, account_type=ADMIN)
    headers = factory.headers(editor)
    assert_problem(await client.post(f"/v1/users/{admin.id}/deactivate", headers=headers), 403,
                   "users_edit_forbidden")
    assert_problem(await client.patch(f"/v1/users/{admin.id}", json={"display_name": "X"}, headers=headers), 403,
                   "users_edit_forbidden")
    await session.refresh(admin)
    assert admin.status == UserStatus.active and admin.display_name != "X"


async def test_a_non_admin_cannot_grant_permissions_they_do_not_hold(client, factory, session):
    company = await factory.company()
    editor = await factory.user(company, permissions=["users:edit_others", "bills:view"])
    target = await factory.user(company, permissions=["billing:delegation_settings"])
    headers = factory.headers(editor)
    before = await count(session, "app_user")

    refused = await client.post("/v1/users", headers=headers, json=new_user(
        company, permissions=["bills:view", "billing:delegation_settings", "payers:manage"]))
    body = assert_problem(refused, 403, "permission_grant_forbidden")
    assert body["permissions"] == ["billing:delegation_settings", "payers:manage"]
    assert await count(session, "app_user") == before

    # What they hold, they may hand on.
    granted = await client.post("/v1/users", headers=headers,
                                json=new_user(company, permissions=["users:edit_others", "bills:view"]))
    assert granted.status_code == 201, granted.text

    assert_problem(await client.patch(f"/v1/users/{target.id}", json={"permissions": ["payers:manage"]},
                                      headers=headers), 403, "permission_grant_forbidden")
    # Resending what the user already holds, or taking it away, grants nothing.
    kept = await client.patch(f"/v1/users/{target.id}", headers=headers,
                              json={"permissions": ["billing:delegation_settings", "bills:view"]})
    assert kept.status_code == 200, kept.text
    assert kept.json()["permissions"] == ["billing:delegation_settings", "bills:view"]
    removed = await client.patch(f"/v1/users/{target.id}", json={"permissions": []}, headers=headers)
    assert removed.status_code == 200 and removed.json()["permissions"] == []


async def test_a_company_admin_grants_any_permission(client, factory):
    company = await factory.company()
    admin = await factory.user(company, account_type=ADMIN)
    response = await client.post("/v1/users", headers=factory.headers(admin),
                                 json=new_user(company, permissions=["users:edit_others", "payers:manage"]))
    assert response.status_code == 201 and response.json()["permissions"] == ["payers:manage", "users:edit_others"]


async def test_only_company_admins_create_company_admins(client, factory, session):
    company = await factory.company()
    editor = await factory.user(company, permissions=["users:edit_others"])
    admin = await factory.user(company, account_type=ADMIN)
    plain = await factory.user(company)
    before = await count(session, "app_user")
    assert_problem(await client.post("/v1/users", json=new_user(company, account_type="company_admin"),
                                     headers=factory.headers(editor)), 403, "account_type_forbidden")
    assert_problem(await client.patch(f"/v1/users/{plain.id}", json={"account_type": "company_admin"},
                                      headers=factory.headers(editor)), 403, "account_type_forbidden")
    assert await count(session, "app_user") == before
    made = await client.post("/v1/users", json=new_user(company, account_type="company_admin"),
                             headers=factory.headers(admin))
    assert made.status_code == 201 and made.json()["account_type"] == "company_admin"


async def test_nobody_creates_support_accounts_through_the_api(client, factory, session):
    company = await factory.company()
    admin = await factory.user(company, account_type=ADMIN)
    plain = await factory.user(company)
    support = await factory.user(await factory.company(), account_type=SUPPORT)
    before = await count(session, "app_user")
    assert_problem(await client.post("/v1/users", json=new_user(company, account_type="support"),
                                     headers=factory.headers(admin)), 403, "account_type_forbidden")
    assert_problem(await client.patch(f"/v1/users/{plain.id}", json={"account_type": "support"},
                                      headers=factory.headers(admin)), 403, "account_type_forbidden")
    assert await count(session, "app_user") == before
    # Support itself cannot create one either (it changes nothing anywhere).
    assert_problem(await client.post("/v1/users", json=new_user(company, account_type="support"),
                                     headers=factory.headers(support)), 403)
    await session.refresh(plain)
    assert plain.account_type.value == "standard"


async def test_a_provider_needs_a_billing_number(client, factory, session):
    company = await factory.company()
    admin = await factory.user(company, account_type=ADMIN)
    plain = await factory.user(company)
    headers = factory.headers(admin)
    before = await count(session, "app_user")
    body = assert_problem(await client.post("/v1/users", json=new_user(company, is_provider=True), headers=headers),
                          422, "billing_number_required")
    assert body["field"] == "billing_number"
    assert await count(session, "app_user") == before
    assert_problem(await client.patch(f"/v1/users/{plain.id}", json={"is_provider": True}, headers=headers), 422,
                   "billing_number_required")
    ok = await client.patch(f"/v1/users/{plain.id}", json={"is_provider": True, "billing_number": "ON-1"},
                            headers=headers)
    assert ok.status_code == 200 and ok.json()["is_provider"] is True


async def test_support_reads_users_of_every_company_but_changes_none(client, factory, session):
    vendor, clinic = await factory.company(), await factory.company()
    support = await factory.user(vendor, account_type=SUPPORT)
    doctor = await factory.user(clinic, provider=True)
    headers = factory.headers(support)

    listed = await client.get("/v1/users", params={"company_id": str(clinic.id)}, headers=headers)
    assert listed.status_code == 200 and [u["id"] for u in listed.json()["items"]] == [str(doctor.id)]
    everyone = {u["id"] for u in (await client.get("/v1/users", headers=headers)).json()["items"]}
    assert {str(support.id), str(doctor.id)} <= everyone
    assert (await client.get(f"/v1/users/{doctor.id}", headers=headers)).json()["id"] == str(doctor.id)

    before = await count(session, "app_user")
    assert_problem(await client.post("/v1/users", json=new_user(clinic), headers=headers), 403,
                   "users_edit_forbidden")
    assert_problem(await client.patch(f"/v1/users/{doctor.id}", json={"display_name": "X"}, headers=headers), 403,
                   "users_edit_forbidden")
    assert_problem(await client.post(f"/v1/users/{doctor.id}/deactivate", headers=headers), 403,
                   "users_edit_forbidden")
    assert await count(session, "app_user") == before
    await session.refresh(doctor)
    assert doctor.status == UserStatus.active and doctor.display_name != "X"


async def test_usernames_and_emails_are_unique_case_insensitively(client, factory, session):
    company = await factory.company()
    admin = await factory.user(company, account_type=ADMIN)
    existing = await factory.user(company)
    headers = factory.headers(admin)
    before = await count(session, "app_user")
    body = assert_problem(await client.post("/v1/users", json=new_user(company, username=existing.username.upper()),
                                            headers=headers), 409, "username_taken")
    assert body["field"] == "username"
    assert_problem(await client.post("/v1/users", json=new_user(company, email=existing.email.upper()),
                                     headers=headers), 409, "email_taken")
    assert_problem(await client.patch(f"/v1/users/{admin.id}", json={"email": existing.email}, headers=headers),
                   409, "email_taken")
    assert await count(session, "app_user") == before
    # Your own name in another case is not a clash.
    mine = await client.patch(f"/v1/users/{admin.id}", json={"username": admin.username.upper()}, headers=headers)
    assert mine.status_code == 200
    user = (await session.execute(select(User).where(User.id == admin.id))).scalar_one()
    await session.refresh(user)
    assert user.username == admin.username.upper()


async def test_one_login_names_one_account(client, factory, session):
    # Login takes a username or an email, so a username may not be another account's email (and the
    # reverse); otherwise one login would name two accounts.
    company = await factory.company()
    admin = await factory.user(company, account_type=ADMIN)
    existing = await factory.user(company)
    headers = factory.headers(admin)
    before = await count(session, "app_user")
    assert_problem(await client.post("/v1/users", json=new_user(company, username=existing.email.upper()),
                                     headers=headers), 409, "username_taken")
    odd = await client.post("/v1/users", json=new_user(company, username="ann@clinic.example"), headers=headers)
    assert odd.status_code == 201
    assert_problem(await client.post("/v1/users", json=new_user(company, email="Ann@clinic.example"),
                                     headers=headers), 409, "email_taken")
    assert_problem(await client.patch(f"/v1/users/{existing.id}", json={"email": "ann@clinic.example"},
                                      headers=headers), 409, "email_taken")
    assert await count(session, "app_user") == before + 1
    # Your own username may be your email.
    body = new_user(company)
    body["username"] = body["email"]
    assert (await client.post("/v1/users", json=body, headers=headers)).status_code == 201
    login = await client.post("/v1/auth/token", data={"username": "ann@clinic.example",
                                                      "password": "a long enough password"})
    assert login.status_code == 200
    me = await client.get("/v1/me", headers={"Authorization": f"Bearer {login.json()['access_token']}"})
    assert me.json()["user"]["id"] == odd.json()["id"]


async def test_locking_a_user_rereads_the_row(engine, settings):
    # Regression: the locked read returned the request's stale copy (the caller's own row, loaded at
    # authentication), so a token_version bump made meanwhile by another request was lost.
    from sqlalchemy import delete, update
    from sqlalchemy.ext.asyncio import AsyncSession

    from billing_api.identity import repository
    from billing_api.models import Company
    from tests.factories import Factory

    async with AsyncSession(engine, expire_on_commit=False) as setup:
        factory = Factory(setup, settings)
        company = await factory.company()
        user = await factory.user(company)
        await setup.commit()
    try:
        async with AsyncSession(engine) as request:
            stale = await repository.get_user(request, user.id)
            assert stale.token_version == 1
            async with AsyncSession(engine) as other:
                await other.execute(update(User).where(User.id == user.id).values(token_version=5))
                await other.commit()
            locked = await repository.get_user_for_update(request, user.id)
            assert locked is stale and locked.token_version == 5
            await request.rollback()
    finally:
        async with AsyncSession(engine) as cleanup:
            await cleanup.execute(delete(User).where(User.id == user.id))
            await cleanup.execute(delete(Company).where(Company.id == company.id))
            await cleanup.commit()
