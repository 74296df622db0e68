"""Every way an invitation can fail gives a 4xx problem+json with a code and writes
nothing (every table the invitation flows write to is the same before and after)."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text

from billing_api.models import AccountType, UserStatus
from tests.helpers import assert_problem
from tests.support import smtp
from tests.support.practice import snapshot
from tests.team.flows import accept, invite, invited_token, join, unique_email, unique_username

NUL = "a\x00b"


async def refused(session, request, status: int, code: str) -> dict:
    """Send `request` (an awaitable factory) and check it is refused without writing anything."""
    before = await snapshot(session)
    problem = assert_problem(await request(), status, code)
    assert await snapshot(session) == before, "a refused request wrote something"
    return problem


# Accepting


async def test_accepting_twice(client, factory, session, practice, deliver, collector):
    owner = factory.headers(practice.dr_a)
    _, token = await invited_token(client, deliver, collector, owner, practice.dr_a.id, email=unique_email(),
                                   username=unique_username())
    assert (await accept(client, token)).status_code == 200
    await refused(session, lambda: accept(client, token), 409, "invitation_already_accepted")
    await refused(session, lambda: accept(client, token, password="another password 123"), 409,
                  "invitation_already_accepted")


async def test_an_expired_invitation(client, factory, session, practice, deliver, collector):
    owner = factory.headers(practice.dr_a)
    invitation, token = await invited_token(client, deliver, collector, owner, practice.dr_a.id,
                                            email=unique_email(), username=unique_username())
    await session.execute(text("UPDATE invitation SET expires_at = now() - interval '1 second' WHERE id = :id"),
                          {"id": invitation["id"]})
    await refused(session, lambda: accept(client, token), 410, "invitation_expired")
    team = (await client.get(f"/v1/providers/{practice.dr_a.id}/team", headers=owner)).json()
    assert [i["state"] for i in team["invitations"]] == ["expired"]
    # A resend revives it with a new link and a new expiry; the old link stays dead.
    resent = await client.post(f"/v1/invitations/{invitation['id']}/resend", headers=owner)
    assert resent.status_code == 200 and resent.json()["state"] == "pending"
    assert resent.json()["expires_at"] > invitation["expires_at"]
    await deliver()
    new_token = smtp.token_of(collector.wait_for(invitation["email"], count=2)[-1])
    await refused(session, lambda: accept(client, token), 404, "invitation_not_found")
    assert (await accept(client, new_token)).status_code == 200


async def test_a_cancelled_invitation(client, factory, session, practice, deliver, collector):
    owner = factory.headers(practice.dr_a)
    invitation, token = await invited_token(client, deliver, collector, owner, practice.dr_a.id,
                                            email=unique_email(), username=unique_username())
    assert (await client.delete(f"/v1/invitations/{invitation['id']}", headers=owner)).status_code == 204
    await refused(session, lambda: accept(client, token), 410, "invitation_cancelled")
    team = (await client.get(f"/v1/providers/{practice.dr_a.id}/team", headers=owner)).json()
    assert team["invitations"] == []
    # Nor can it be resent or cancelled again.
    await refused(session, lambda: client.post(f"/v1/invitations/{invitation['id']}/resend", headers=owner), 409,
                  "invitation_not_pending")
    await refused(session, lambda: client.delete(f"/v1/invitations/{invitation['id']}", headers=owner), 409,
                  "invitation_not_pending")


async def test_a_cancelled_invitation_is_never_mailed(client, factory, session, practice, deliver, collector):
    owner = factory.headers(practice.dr_a)
    email = unique_email()
    invitation = (await invite(client, owner, practice.dr_a.id, email=email, username=unique_username())).json()
    assert (await client.delete(f"/v1/invitations/{invitation['id']}", headers=owner)).status_code == 204
    assert await deliver() == 0
    assert collector.to(email) == []
    status = (await session.execute(text("SELECT status, secret_nonce FROM mail_outbox WHERE invitation_id = :id"),
                                    {"id": invitation["id"]})).one()
    assert status == ("cancelled", None)


async def test_a_resend_kills_the_old_link_and_only_the_new_mail_goes(client, factory, session, practice, deliver,
                                                                       collector):
    owner = factory.headers(practice.dr_a)
    email = unique_email()
    invitation = (await invite(client, owner, practice.dr_a.id, email=email, username=unique_username())).json()
    resent = await client.post(f"/v1/invitations/{invitation['id']}/resend", headers=owner)
    assert resent.status_code == 200, resent.text
    assert await deliver() == 1  # the first mail, not yet sent, was withdrawn
    (message,) = collector.wait_for(email)
    assert (await accept(client, smtp.token_of(message))).status_code == 200


async def test_unknown_and_malformed_tokens(client, session):
    await refused(session, lambda: accept(client, "x" * 43), 404, "invitation_not_found")
    await refused(session, lambda: accept(client, "short"), 422, "validation_error")
    await refused(session, lambda: accept(client, "not a token at all, spaces!"), 422, "validation_error")


async def test_wrong_account_and_login_required(client, factory, session, practice, deliver, collector):
    owner = factory.headers(practice.dr_a)
    existing = await factory.user(practice.lakes, name="Existing")
    _, token = await invited_token(client, deliver, collector, owner, practice.dr_a.id, email=existing.email)
    someone_else = factory.headers(await factory.user(practice.lakes))
    await refused(session, lambda: accept(client, token, password=None), 401, "invitation_login_required")
    await refused(session, lambda: accept(client, token, password=None, headers=someone_else), 403,
                  "invitation_wrong_account")
    await refused(session, lambda: accept(client, token, headers=factory.headers(existing)), 422,
                  "new_account_fields_not_expected")
    problem = await refused(session, lambda: accept(client, token, password=None, username="new.name",
                                                    headers=factory.headers(existing)), 422,
                            "new_account_fields_not_expected")
    assert problem["field"] == "username"
    await refused(session, lambda: accept(client, token, password=None, headers={"Authorization": "Bearer junk"}),
                  401, "unauthenticated")
    assert (await accept(client, token, password=None, headers=factory.headers(existing))).status_code == 200

    # A new-account invitation is accepted signed out, with a password.
    _, new_token = await invited_token(client, deliver, collector, owner, practice.dr_a.id, email=unique_email(),
                                       username=unique_username())
    await refused(session, lambda: accept(client, new_token, headers=someone_else), 403, "invitation_wrong_account")
    await refused(session, lambda: accept(client, new_token, password=None), 422, "password_required")
    await refused(session, lambda: accept(client, new_token, password="short"), 422, "password_too_short")


async def test_username_taken_between_invitation_and_acceptance(client, factory, session, practice, deliver,
                                                                 collector):
    owner = factory.headers(practice.dr_a)
    username = unique_username()
    _, token = await invited_token(client, deliver, collector, owner, practice.dr_a.id, email=unique_email(),
                                   username=username)
    taker = await factory.user(practice.clinic)
    taker.username = username.upper()
    await session.flush()
    problem = await refused(session, lambda: accept(client, token), 409, "username_taken")
    assert problem["field"] == "username"
    # The newcomer chooses another one.
    other = unique_username()
    accepted = await accept(client, token, username=other)
    assert accepted.status_code == 200 and accepted.json()["username"] == other


# Inviting


@pytest.fixture
async def people(factory, practice):
    taken = await factory.user(practice.lakes, name="Taken")
    return {
        "taken": taken,
        "support": await factory.user(practice.lakes, account_type=AccountType.support),
        "deactivated": await factory.user(practice.lakes, status=UserStatus.deactivated),
    }


async def test_a_suggested_username_is_checked_on_acceptance_only(client, factory, session, practice, people,
                                                                   deliver, collector):
    """Inviting never says whether a username is taken (that would tell about other accounts); the newcomer
    learns it on acceptance and chooses another."""
    owner = factory.headers(practice.dr_a)
    taken = people["taken"]
    email = unique_email()
    invitation, token = await invited_token(client, deliver, collector, owner, practice.dr_a.id, email=email,
                                            username=taken.username.upper())
    assert invitation["username"] == taken.username.upper()
    problem = await refused(session, lambda: accept(client, token), 409, "username_taken")
    assert problem["field"] == "username"
    await refused(session, lambda: accept(client, token, username=taken.username), 409, "username_taken")
    # An `@` is refused by the schema, for any address: a username may not be another account's email.
    for username in (taken.email, unique_email()):
        await refused(session, lambda: accept(client, token, username=username), 422, "validation_error")
        await refused(session, lambda: invite(client, owner, practice.dr_a.id, email=unique_email(),
                                              username=username), 422, "validation_error")
    assert (await accept(client, token, username=unique_username())).status_code == 200


async def test_a_suggested_username_is_not_reserved(client, factory, session, practice, deliver, collector):
    """Two invitations may suggest one username: the first newcomer to accept has it."""
    username = unique_username()
    _, first = await invited_token(client, deliver, collector, factory.headers(practice.dr_a), practice.dr_a.id,
                                   email=unique_email(), username=username)
    _, second = await invited_token(client, deliver, collector, factory.headers(practice.dr_b), practice.dr_b.id,
                                    email=unique_email(), username=username)
    assert (await accept(client, second)).json()["username"] == username
    await refused(session, lambda: accept(client, first), 409, "username_taken")
    assert (await accept(client, first, username=unique_username())).status_code == 200


async def test_refusals_on_acceptance_about_the_account(client, factory, session, practice, people, deliver,
                                                        collector):
    """What inviting no longer checks (it would tell the inviter about other companies' accounts) is told on
    acceptance, to the holder of the email."""
    owner = factory.headers(practice.dr_a)
    a = practice.dr_a.id
    support, deactivated = people["support"], people["deactivated"]
    _, token = await invited_token(client, deliver, collector, owner, a, email=support.email)
    await refused(session, lambda: accept(client, token, password=None, headers=factory.headers(support)), 409,
                  "account_not_invitable")
    _, token = await invited_token(client, deliver, collector, owner, a, email=deactivated.email)
    await refused(session, lambda: accept(client, token, password=None), 409, "account_deactivated")
    # A newcomer with no suggested username chooses one.
    _, token = await invited_token(client, deliver, collector, owner, a, email=unique_email())
    problem = await refused(session, lambda: accept(client, token), 422, "username_required")
    assert problem["field"] == "username"
    # An email whose owner logs in with it as a username elsewhere cannot be a new account's email.
    login_clash = await factory.user(practice.lakes)
    login_clash.username = "clash@mail.example.org"
    await session.flush()
    _, token = await invited_token(client, deliver, collector, owner, a, email="Clash@mail.example.org",
                                   username=unique_username())
    problem = await refused(session, lambda: accept(client, token), 409, "email_taken")
    assert problem["field"] == "email"


async def test_refusals_about_the_invitee(client, factory, session, practice, people, deliver, collector):
    owner = factory.headers(practice.dr_a)
    a = practice.dr_a.id
    cases = [
        (lambda: invite(client, owner, a, email=practice.dr_a.email), 422, "cannot_invite_self", "email"),
        (lambda: invite(client, owner, a, email=practice.dr_a.email.upper()), 422, "cannot_invite_self", "email"),
        (lambda: invite(client, owner, a, email=unique_email(), username=unique_username(), role="custom"), 422,
         "custom_permissions_required", "permissions"),
        (lambda: invite(client, owner, a, email=unique_email(), username=unique_username(), role="custom",
                        permissions=[]), 422, "custom_permissions_required", "permissions"),
        (lambda: invite(client, owner, a, email=unique_email(), username=unique_username(), role="custom",
                        permissions=["bills:view", "team:invite"]), 422, "permission_not_delegable", "permissions"),
        (lambda: invite(client, owner, a, email=unique_email(), username=unique_username(), role="custom",
                        permissions=["users:edit_others"]), 422, "permission_not_delegable", "permissions"),
        (lambda: invite(client, owner, a, email=unique_email(), username=unique_username(), role="data_entry",
                        permissions=["bills:view"]), 422, "permissions_with_preset", "permissions"),
    ]
    for request, status, code, field in cases:
        problem = await refused(session, request, status, code)
        assert problem["field"] == field, problem

    # Twice to one address: the second is a resend, not another invitation.
    email = unique_email()
    assert (await invite(client, owner, a, email=email, username=unique_username())).status_code == 201
    await refused(session, lambda: invite(client, owner, a, email=email.upper(), username=unique_username()), 409,
                  "invitation_pending")

    # Already on the team (through an accepted invitation, or on the list).
    joined = await join(client, deliver, collector, owner, a)
    await refused(session, lambda: invite(client, owner, a, email=joined.email.upper()), 409, "already_on_team")
    listed = await factory.user(practice.clinic)
    saved = await client.put(f"/v1/providers/{a}/delegation", headers=owner, json={
        "version": (await client.get(f"/v1/providers/{a}/team", headers=owner)).json()["list_version"],
        "password": "correct horse battery",
        "entries": [{"user_id": str(listed.id), "role": "data_entry"},
                    {"user_id": joined.user_id, "role": "data_entry"}]})
    assert saved.status_code == 200, saved.text
    await refused(session, lambda: invite(client, owner, a, email=listed.email), 409, "already_on_team")


INVITE_BODY = {"email": "valid@mail.example.org", "username": "valid.user", "role": "data_entry"}

BAD_INVITES = [
    pytest.param({**INVITE_BODY, "email": "not-an-email"}, id="email-malformed"),
    pytest.param({**INVITE_BODY, "email": "two@@mail.example.org"}, id="email-double-at"),
    pytest.param({**INVITE_BODY, "email": ""}, id="email-empty"),
    pytest.param({**INVITE_BODY, "email": 12}, id="email-number"),
    pytest.param({**INVITE_BODY, "email": None}, id="email-null"),
    pytest.param({**INVITE_BODY, "email": ["a@b.org"]}, id="email-list"),
    pytest.param({**INVITE_BODY, "email": "x" * 320 + "@mail.example.org"}, id="email-too-long"),
    pytest.param({k: v for k, v in INVITE_BODY.items() if k != "email"}, id="email-missing"),
    pytest.param({**INVITE_BODY, "username": "has space"}, id="username-space"),
    pytest.param({**INVITE_BODY, "username": "ab"}, id="username-too-short"),
    pytest.param({**INVITE_BODY, "username": 5}, id="username-number"),
    pytest.param({**INVITE_BODY, "username": "x" * 65}, id="username-too-long"),
    pytest.param({**INVITE_BODY, "username": "valid@mail.example.org"}, id="username-with-at"),
    pytest.param({**INVITE_BODY, "role": "owner"}, id="role-unknown"),
    pytest.param({**INVITE_BODY, "role": None}, id="role-null"),
    pytest.param({k: v for k, v in INVITE_BODY.items() if k != "role"}, id="role-missing"),
    pytest.param({**INVITE_BODY, "role": "custom", "permissions": "bills:view"}, id="permissions-string"),
    pytest.param({**INVITE_BODY, "role": "custom", "permissions": ["bills:fly"]}, id="permissions-unknown"),
    pytest.param({**INVITE_BODY, "role": "custom", "permissions": [True]}, id="permissions-bool"),
    pytest.param({**INVITE_BODY, "display_name": ""}, id="display-name-empty"),
    pytest.param({**INVITE_BODY, "display_name": 7}, id="display-name-number"),
    pytest.param({**INVITE_BODY, "password": "not here"}, id="unknown-field"),
    pytest.param([INVITE_BODY], id="list-body"),
    pytest.param("valid@mail.example.org", id="string-body"),
]


@pytest.mark.parametrize("body", BAD_INVITES)
async def test_bad_invitation_bodies(client, factory, session, practice, body):
    problem = await refused(session, lambda: client.post(f"/v1/providers/{practice.dr_a.id}/invitations", json=body,
                                                         headers=factory.headers(practice.dr_a)),
                            422, "validation_error")
    assert all(error["location"][0] == "body" for error in problem["errors"])


async def test_nul_characters_and_malformed_json(client, factory, session, practice):
    url = f"/v1/providers/{practice.dr_a.id}/invitations"
    owner = factory.headers(practice.dr_a)
    await refused(session, lambda: client.post(url, json={**INVITE_BODY, "display_name": NUL}, headers=owner), 422,
                  "invalid_value")
    for raw in (b'{"email": ', b"{'email': 1}", b'{"email": "\xff"}'):
        await refused(session, lambda: client.post(url, content=raw, headers={**owner, "Content-Type":
                                                                                 "application/json"}),
                      400, "malformed_body")
    await refused(session, lambda: client.post(url, content=b"", headers={**owner, "Content-Type":
                                                                             "application/json"}),
                  422, "validation_error")
    await refused(session, lambda: client.post("/v1/invitations/accept", content=b'{"token": ',
                                               headers={"Content-Type": "application/json"}), 400, "malformed_body")


BAD_ACCEPTS = [
    pytest.param({}, id="empty"),
    pytest.param({"token": 12345678901234567890123}, id="token-number"),
    pytest.param({"token": None}, id="token-null"),
    pytest.param({"token": "x" * 201}, id="token-too-long"),
    pytest.param({"token": "x" * 43, "password": 1234567890123}, id="password-number"),
    pytest.param({"token": "x" * 43, "email": "me@mail.example.org"}, id="unknown-field"),
    pytest.param({"token": "x" * 43, "username": "me"}, id="username-too-short"),
    pytest.param({"token": "x" * 43, "username": "me@mail.example.org"}, id="username-with-at"),
    pytest.param({"token": "x" * 43, "display_name": ""}, id="display-name-empty"),
    pytest.param(["x" * 43], id="list-body"),
]


@pytest.mark.parametrize("body", BAD_ACCEPTS)
async def test_bad_accept_bodies(client, session, body):
    await refused(session, lambda: client.post("/v1/invitations/accept", json=body), 422, "validation_error")


BAD_MEMBER_UPDATES = [
    pytest.param({}, "validation_error", id="empty"),
    pytest.param({"role": "boss"}, "validation_error", id="role-unknown"),
    pytest.param({"role": "custom"}, "custom_permissions_required", id="custom-without-permissions"),
    pytest.param({"role": "custom", "permissions": ["team:invite"]}, "permission_not_delegable", id="team-invite"),
    pytest.param({"role": "data_entry", "permissions": ["bills:view"]}, "permissions_with_preset",
                 id="permissions-with-preset"),
    pytest.param({"role": "data_entry", "expires_at": "2030-01-01T00:00:00Z"}, "validation_error",
                 id="unknown-field"),
    pytest.param({"role": "custom", "permissions": "bills:view"}, "validation_error", id="permissions-string"),
]


@pytest.mark.parametrize(("body", "code"), BAD_MEMBER_UPDATES)
async def test_bad_member_updates(client, factory, session, practice, deliver, collector, body, code):
    owner = factory.headers(practice.dr_a)
    joined = await join(client, deliver, collector, owner, practice.dr_a.id)
    await refused(session, lambda: client.patch(f"/v1/providers/{practice.dr_a.id}/team/{joined.user_id}", json=body,
                                                headers=owner), 422, code)


async def test_members_and_invitations_that_do_not_exist(client, factory, session, practice):
    owner = factory.headers(practice.dr_a)
    stranger = await factory.user(practice.clinic)
    nobody = uuid.uuid4()
    a = practice.dr_a.id
    await refused(session, lambda: client.patch(f"/v1/providers/{a}/team/{stranger.id}", json={"role": "data_entry"},
                                                headers=owner), 404, "team_member_not_found")
    await refused(session, lambda: client.delete(f"/v1/providers/{a}/team/{nobody}", headers=owner), 404,
                  "team_member_not_found")
    await refused(session, lambda: client.post(f"/v1/invitations/{nobody}/resend", headers=owner), 404,
                  "invitation_not_found")
    await refused(session, lambda: client.delete(f"/v1/invitations/{nobody}", headers=owner), 404,
                  "invitation_not_found")
    for path in (f"/v1/providers/{nobody}/team", f"/v1/providers/{stranger.id}/team"):
        await refused(session, lambda: client.get(path, headers=owner), 404, "provider_not_found")
    for method, path in (("GET", "/v1/providers/nope/team"), ("POST", "/v1/invitations/12/resend"),
                         ("DELETE", "/v1/invitations/abc"), ("DELETE", f"/v1/providers/{a}/team/false")):
        await refused(session, lambda: client.request(method, path, headers=owner), 422, "validation_error")


async def test_resends_are_rate_limited(client, factory, session, practice, settings):
    owner = factory.headers(practice.dr_a)
    invitation = (await invite(client, owner, practice.dr_a.id, email=unique_email(),
                               username=unique_username())).json()
    url = f"/v1/invitations/{invitation['id']}/resend"
    for _ in range(settings.invitation_resend_max):
        assert (await client.post(url, headers=owner)).status_code == 200
    before = await snapshot(session)
    response = await client.post(url, headers=owner)
    problem = assert_problem(response, 429, "invitation_resend_limited")
    assert 0 < int(response.headers["Retry-After"]) <= settings.invitation_resend_window_minutes * 60 + 1
    assert problem["retry_after_seconds"] == int(response.headers["Retry-After"])
    assert await snapshot(session) == before
    # Another invitation has its own allowance.
    other = (await invite(client, owner, practice.dr_a.id, email=unique_email(), username=unique_username())).json()
    assert (await client.post(f"/v1/invitations/{other['id']}/resend", headers=owner)).status_code == 200


async def test_the_token_is_stored_only_as_a_hash(client, factory, session, practice, deliver, collector):
    owner = factory.headers(practice.dr_a)
    invitation, token = await invited_token(client, deliver, collector, owner, practice.dr_a.id,
                                            email=unique_email(), username=unique_username())
    dump = (await session.execute(text(
        "SELECT coalesce(string_agg(t::text, ' '), '') FROM (SELECT * FROM invitation) t"))).scalar_one()
    outbox = (await session.execute(text(
        "SELECT coalesce(string_agg(t::text, ' '), '') FROM (SELECT * FROM mail_outbox) t"))).scalar_one()
    assert token not in dump and token not in outbox
    import hashlib
    stored = (await session.execute(text("SELECT token_hash FROM invitation WHERE id = :id"),
                                    {"id": invitation["id"]})).scalar_one()
    assert stored == hashlib.sha256(token.encode()).hexdigest()
    # Once sent, the outbox keeps nothing from which the token could be rebuilt.
    nonce = (await session.execute(text("SELECT secret_nonce FROM mail_outbox WHERE invitation_id = :id"),
                                   {"id": invitation["id"]})).scalar_one()
    assert nonce is None
