"""New passwords (auth/passwords.check_new_password): at least 12 characters, up to 256, not common, not the
login. Checked at account creation and password change here; at invitation acceptance in tests/team."""

from __future__ import annotations

import pytest

from billing_api.auth.passwords import MIN_LENGTH, common_passwords
from billing_api.demo import DEMO_PASSWORD
from tests.factories import PASSWORD
from tests.helpers import ADMIN, assert_problem, count
from tests.identity.test_users import new_user

REFUSED = [
    pytest.param("eleven char", "password_too_short", id="11-characters"),
    pytest.param("", "password_too_short", id="empty"),
    pytest.param("password1234", "password_too_common", id="listed"),
    pytest.param("QwertyUIOP123", "password_too_common", id="listed-other-case"),
    pytest.param("Monkey123456!", "password_too_common", id="common-word-with-digits"),
    pytest.param("  letmein!!2024  ", "password_too_common", id="common-word-with-symbols-and-spaces"),
    pytest.param("abcabcabcabc", "password_too_common", id="repeated-piece"),
    pytest.param("zzzzzzzzzzzzzzzz", "password_too_common", id="one-character"),
    pytest.param("correct horse battery staple", "password_too_common", id="the-famous-passphrase"),
]
ACCEPTED = [
    pytest.param("a" * 11 + "b", id="12-characters"),
    pytest.param("x9" + "quiet lantern river " * 12 + "end", id="256-characters"),
    pytest.param("Ünïcödé pässphräsé", id="unicode"),
    pytest.param(DEMO_PASSWORD, id="the-demo-password"),
]


def test_the_shipped_list_holds_the_classics():
    common = common_passwords()
    assert len(common) > 2000
    for classic in ("password", "123456", "qwerty", "letmein", "iloveyou", "monkey", "dragon", "trustno1",
                    "passwordpassword", "123456789012", "qwertyuiopasdf", "correcthorsebatterystaple"):
        assert classic in common
    assert all(entry == entry.lower() for entry in common)
    assert MIN_LENGTH == 12


@pytest.mark.parametrize(("password", "code"), REFUSED)
async def test_account_creation_refuses(client, factory, session, password, code):
    company = await factory.company()
    admin = await factory.user(company, account_type=ADMIN)
    before = await count(session, "app_user")
    response = await client.post("/v1/users", json=new_user(company, password=password), headers=factory.headers(admin))
    body = assert_problem(response, 422, code)
    assert body["field"] == "password"
    assert await count(session, "app_user") == before


@pytest.mark.parametrize("password", ACCEPTED)
async def test_account_creation_accepts(client, factory, password):
    company = await factory.company()
    admin = await factory.user(company, account_type=ADMIN)
    body = new_user(company, password=password)
    response = await client.post("/v1/users", json=body, headers=factory.headers(admin))
    assert response.status_code == 201, response.text
    login = await client.post("/v1/auth/token", data={"username": body["username"], "password": password})
    assert login.status_code == 200, login.text


async def test_a_password_may_not_be_the_username_or_the_email(client, factory, session):
    company = await factory.company()
    admin = await factory.user(company, account_type=ADMIN)
    for field in ("username", "email"):
        body = new_user(company)
        body["password"] = body[field].upper()
        response = await client.post("/v1/users", json=body, headers=factory.headers(admin))
        assert assert_problem(response, 422, "password_same_as_login")["field"] == "password"
    too_long = new_user(company, password="x" * 257)
    assert_problem(await client.post("/v1/users", json=too_long, headers=factory.headers(admin)), 422,
                   "validation_error")


@pytest.mark.parametrize(("password", "code"), REFUSED)
async def test_a_password_change_refuses(client, factory, session, password, code):
    me = await factory.user(await factory.company())
    response = await client.patch("/v1/profiles/me", headers=factory.headers(me),
                                  json={"new_password": password, "current_password": PASSWORD})
    assert assert_problem(response, 422, code)["field"] == "new_password"
    await session.refresh(me)
    assert me.token_version == 1  # nothing changed: the old tokens still work


async def test_a_password_change_may_not_pick_the_login_or_the_new_email(client, factory):
    me = await factory.user(await factory.company())
    new_email = "someone.new.address@example.org"
    for change in ({"new_password": me.username}, {"new_password": me.email.upper()},
                   {"new_password": new_email, "email": new_email}):
        response = await client.patch("/v1/profiles/me", headers=factory.headers(me),
                                      json={**change, "current_password": PASSWORD})
        assert_problem(response, 422, "password_same_as_login")
