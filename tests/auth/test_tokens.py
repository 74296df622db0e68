from billing_api.auth.tokens import Client
from billing_api.models import AuditEvent, UserStatus
from sqlalchemy import select
from tests.factories import PASSWORD


async def login(http, username, password=PASSWORD, **extra):
    return await http.post("/v1/auth/token", data={"username": username, "password": password, **extra})


async def test_login_returns_a_bearer_token_that_works(client, factory):
    company = await factory.company()
    user = await factory.user(company, name="Ann Owner")
    response = await login(client, user.username)
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer" and body["expires_in"] > 0
    me = await client.get("/v1/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    assert me.json()["user"]["id"] == str(user.id)
    assert me.json()["company"]["id"] == str(company.id)


async def test_login_by_email_case_insensitively(client, factory):
    user = await factory.user(await factory.company())
    response = await login(client, user.email.upper())
    assert response.status_code == 200


async def test_wrong_password_unknown_user_and_deactivated_user_get_the_same_401(client, factory, session):
    company = await factory.company()
    user = await factory.user(company)
    gone = await factory.user(company, status=UserStatus.deactivated)
    answers = [
        await login(client, user.username, "not the password"),
        await login(client, "nobody-by-this-name"),
        await login(client, gone.username),
    ]
    for response in answers:
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "invalid_credentials"
    assert len({r.json()["detail"] for r in answers}) == 1
    failures = (await session.execute(
        select(AuditEvent).where(AuditEvent.action == "auth.login_failed", AuditEvent.target_id == user.id)
    )).scalars().all()
    assert len(failures) == 1


async def test_deactivated_users_token_is_refused_on_the_next_request(client, factory):
    company = await factory.company()
    admin = await factory.user(company, permissions=["users:edit_others"])
    target = await factory.user(company)
    target_headers = factory.headers(target)
    assert (await client.get("/v1/me", headers=target_headers)).status_code == 200

    response = await client.post(f"/v1/users/{target.id}/deactivate", headers=factory.headers(admin))
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "deactivated"

    refused = await client.get("/v1/me", headers=target_headers)
    assert refused.status_code == 401
    assert refused.json()["code"] == "token_revoked"

    # Reactivation does not bring the old token back.
    assert (await client.post(f"/v1/users/{target.id}/reactivate", headers=factory.headers(admin))).status_code == 200
    assert (await client.get("/v1/me", headers=target_headers)).status_code == 401
    assert (await login(client, target.username)).status_code == 200


async def test_missing_garbage_and_foreign_tokens_are_401(client, factory, settings):
    assert (await client.get("/v1/me")).status_code == 401
    garbage = await client.get("/v1/me", headers={"Authorization": "Bearer not.a.jwt"})
    assert garbage.status_code == 401 and garbage.json()["code"] == "unauthenticated"
    from jose import jwt

    user = await factory.user(await factory.company())
    forged = jwt.encode({"sub": str(user.id), "ver": 1, "exp": 9999999999}, "another-secret", algorithm="HS256")
    assert (await client.get("/v1/me", headers={"Authorization": f"Bearer {forged}"})).status_code == 401
    unsigned = jwt.encode({"sub": str(user.id), "ver": 1}, "", algorithm="HS256")
    assert (await client.get("/v1/me", headers={"Authorization": f"Bearer {unsigned}"})).status_code == 401


async def test_client_field_is_web_or_mobile(client, factory):
    user = await factory.user(await factory.company())
    assert (await login(client, user.username, client="mobile")).status_code == 200
    bad = await login(client, user.username, client="desktop")
    assert bad.status_code == 422 and bad.json()["code"] == "validation_error"


async def test_token_form_rejects_other_grant_types_and_missing_fields(client):
    bad = await client.post("/v1/auth/token", data={"username": "x", "password": "y", "grant_type": "client_credentials"})
    assert bad.status_code == 422
    missing = await client.post("/v1/auth/token", data={"username": "x"})
    assert missing.status_code == 422 and missing.json()["code"] == "validation_error"


async def test_mobile_token_carries_its_client(factory, settings):
    from billing_api.auth.tokens import issue_token, read_token

    user = await factory.user(await factory.company())
    token, _ = issue_token(settings, user.id, user.token_version, Client.mobile)
    assert read_token(settings, token).client == Client.mobile
