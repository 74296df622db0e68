"""An invitation reveals nothing about accounts the inviter cannot see.

Inviting never asks whether the email has an account: the answer is the same for an email with an account in
another company and for an unknown one, the per-provider limit refuses before anything about the email is looked
up, and the team shows an account's username only once the invitation is accepted. Whether the email has an
account is settled on acceptance, told to the token's holder: an existing account joins with its own login (one
login serving several providers), a newcomer chooses a username and a password.
"""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import event, select

from billing_api.models import User, UserKind
from tests.helpers import assert_problem
from tests.support import smtp
from tests.support.practice import snapshot
from tests.team.flows import accept, bearer, invite, login, unique_email, unique_username

# Headers that differ between any two answers, whatever they say, and so are left out of the comparison:
DIFFERING_HEADERS = {
    # A fresh id for every request (observability/request ids), so two requests never share it.
    "x-request-id",
    # The byte length of the body, which holds the invitation id, the email and the timestamps: those fields
    # differ by nature (compared apart below), and a timestamp's text is shorter when its microseconds are 0.
    "content-length",
}
# Body fields that differ by nature between two invitations: their own id, the address each was sent to, and
# when each was made (and so when it expires).
DIFFERING_FIELDS = {"id", "email", "created_at", "expires_at"}


async def account_elsewhere(factory, practice) -> User:
    """An account in another company (Lakes), which Dr Ada does not reach."""
    account = await factory.user(practice.lakes, name="Dr Wu")
    account.email = unique_email("dr.wu")
    await factory.session.flush()
    return account


def comparable_headers(response) -> dict[str, str]:
    return {name: value for name, value in response.headers.items() if name not in DIFFERING_HEADERS}


@pytest.mark.parametrize("suggestion", [None, "suggested.name"], ids=["no-username", "suggested-username"])
async def test_an_account_elsewhere_and_an_unknown_email_get_the_same_answer(client, factory, session, practice,
                                                                           suggestion):
    owner = factory.headers(practice.dr_a)
    account = await account_elsewhere(factory, practice)
    # The inviter cannot see that account.
    assert_problem(await client.get(f"/v1/users/{account.id}", headers=owner), 404)
    unknown = unique_email("dr.xu")
    assert await session.scalar(select(User.id).where(User.email.ilike(unknown))) is None

    answers = {}
    for email in (account.email, unknown):
        answers[email] = await invite(client, owner, practice.dr_a.id, email=email, username=suggestion,
                                      role="financial_viewer", display_name="Dr W")
    known, fresh = answers[account.email], answers[unknown]

    assert known.status_code == fresh.status_code == 201, (known.text, fresh.text)
    assert comparable_headers(known) == comparable_headers(fresh)
    assert set(known.headers) - DIFFERING_HEADERS  # the comparison covers headers (content-type, at least)
    assert known.headers["content-type"] == "application/json"
    known_body, fresh_body = known.json(), fresh.json()
    assert set(known_body) == set(fresh_body)
    for field in sorted(set(known_body) - DIFFERING_FIELDS):
        assert known_body[field] == fresh_body[field], field
    assert (known_body["email"], fresh_body["email"]) == (account.email, unknown)
    assert known_body["id"] != fresh_body["id"]
    # Nothing of the account: not whether it exists, not its username.
    assert "reuses_existing_account" not in known_body
    assert known_body["username"] == suggestion and account.username not in known.text
    assert known_body["display_name"] == "Dr W" and known_body["state"] == "pending"

    # The inviter's audit trail says no more than the answer did.
    trail = await client.get("/v1/audit-events", headers=owner)
    assert trail.status_code == 200, trail.text
    created = {e["details"]["email"]: e["details"] for e in trail.json()["items"]
               if e["action"] == "invitation.created"}
    assert set(created) == {account.email, unknown}
    assert ({k: v for k, v in created[account.email].items() if k not in {"invitation_id", "email"}}
            == {k: v for k, v in created[unknown].items() if k not in {"invitation_id", "email"}})
    assert account.username not in trail.text


async def test_the_limit_refuses_before_anything_is_looked_up_about_the_email(client, factory, session, practice,
                                                                              connection, settings, deliver,
                                                                              collector):
    owner = factory.headers(practice.dr_a)
    account = await account_elsewhere(factory, practice)
    member = await factory.user(practice.clinic, name="Team Member")
    # On the team already (by an accepted invitation), and a pending invitation: both would be refused with a
    # 409 by a look-up, so a 429 for them shows that the limit came first.
    invitation = await invite(client, owner, practice.dr_a.id, email=member.email)
    assert invitation.status_code == 201, invitation.text
    await deliver()
    token = smtp.token_of(collector.wait_for(member.email)[-1])
    assert (await accept(client, token, password=None, headers=factory.headers(member))).status_code == 200
    pending = unique_email("pending")
    assert (await invite(client, owner, practice.dr_a.id, email=pending, username=unique_username())
            ).status_code == 201
    for _ in range(settings.invitation_send_max - 2):
        response = await invite(client, owner, practice.dr_a.id, email=unique_email(), username=unique_username())
        assert response.status_code == 201, response.text

    # Every statement the service sends while refusing, with its parameters.
    sent: list[str] = []

    def remember(conn, cursor, statement, parameters, context, executemany):
        sent.append(f"{statement} {parameters!r}".lower())

    unknown = unique_email("dr.xu")
    answers = {}
    before = await snapshot(session)
    event.listen(connection.sync_connection, "before_cursor_execute", remember)
    try:
        for email in (account.email, unknown, member.email, pending, practice.dr_a.email):
            sent.clear()
            answers[email] = await invite(client, owner, practice.dr_a.id, email=email, role="financial_viewer")
            assert sent, "no statement seen: the listener is not on the app's connection"
            assert not [s for s in sent if email.lower() in s], f"the database was asked about {email}"
    finally:
        event.remove(connection.sync_connection, "before_cursor_execute", remember)
    assert await snapshot(session) == before  # refused: nothing written

    problems = {email: assert_problem(response, 429, "invitation_send_limited")
                for email, response in answers.items()}
    known, fresh = answers[account.email], answers[unknown]
    # Retry-After counts the seconds left by the wall clock, which may tick between the two requests.
    ticking = DIFFERING_HEADERS | {"retry-after"}
    assert ({k: v for k, v in known.headers.items() if k not in ticking}
            == {k: v for k, v in fresh.headers.items() if k not in ticking})
    for email, problem in problems.items():
        retry_after = int(answers[email].headers["Retry-After"])
        assert 0 < retry_after <= settings.invitation_send_window_minutes * 60 + 1
        assert problem["retry_after_seconds"] == retry_after
    # A problem's `request_id` is the X-Request-Id of its request; `retry_after_seconds` is Retry-After.
    ticking_fields = {"request_id", "retry_after_seconds"}
    assert set(problems[account.email]) == set(problems[unknown])
    for field in sorted(set(problems[account.email]) - ticking_fields):
        assert problems[account.email][field] == problems[unknown][field], field
    for email, problem in problems.items():
        assert problem["request_id"] == answers[email].headers["x-request-id"]


async def test_the_team_shows_the_username_only_once_accepted(client, factory, session, practice, deliver,
                                                              collector):
    owner = factory.headers(practice.dr_a)
    account = await account_elsewhere(factory, practice)
    team_url = f"/v1/providers/{practice.dr_a.id}/team"
    created = await invite(client, owner, practice.dr_a.id, email=account.email, username="a.suggestion")
    assert created.status_code == 201, created.text

    team = await client.get(team_url, headers=owner)
    assert team.status_code == 200, team.text
    (pending,) = team.json()["invitations"]
    assert pending["email"] == account.email and pending["state"] == "pending"
    assert pending["username"] == "a.suggestion"  # the inviter's own suggestion, not the account's
    assert "reuses_existing_account" not in pending
    assert team.json()["members"] == []
    assert account.username not in team.text

    await deliver()
    token = smtp.token_of(collector.wait_for(account.email)[-1])
    accepted = await accept(client, token, password=None, headers=factory.headers(account))
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["username"] == account.username and accepted.json()["account_created"] is False

    team = (await client.get(team_url, headers=owner)).json()
    assert team["invitations"] == []
    (member,) = team["members"]
    assert member["user_id"] == str(account.id) and member["username"] == account.username
    assert member["source"] == "invitation" and member["invitation_id"] == created.json()["id"]


async def test_acceptance_an_existing_account_joins_with_its_login_and_a_newcomer_chooses_a_username(
        client, factory, session, practice, deliver, collector):
    account = await account_elsewhere(factory, practice)
    account_headers = factory.headers(account)
    newcomer = unique_email("newcomer")
    ada, other = practice.dr_a, practice.other_provider
    for provider, email, role in ((ada, account.email, "data_entry"), (other, account.email, "financial_viewer"),
                                  (ada, newcomer, "data_entry")):
        response = await invite(client, factory.headers(provider), provider.id, email=email, role=role)
        assert response.status_code == 201, response.text
    await deliver()
    mails = collector.wait_for(account.email, count=2)
    (new_mail,) = collector.wait_for(newcomer)
    # One wording for both: the mail does not tell the inviter's choice apart either.
    for message in (*mails, new_mail):
        text, _ = smtp.bodies(message)
        assert "If you already have an account with this email address, sign in with it" in text
        assert "If you are new, open the link to choose a username and a password." in text

    # The existing account: the token alone, signed in as that account; it keeps its username and kind.
    for message in mails:
        token = smtp.token_of(message)
        assert_problem(await accept(client, token, password=None), 401, "invitation_login_required")
        assert_problem(await accept(client, token, password=None, username="another.name", headers=account_headers),
                       422, "new_account_fields_not_expected")
        joined = await accept(client, token, password=None, headers=account_headers)
        assert joined.status_code == 200, joined.text
        assert joined.json()["user_id"] == str(account.id) and joined.json()["account_created"] is False
        assert joined.json()["username"] == account.username
    await session.refresh(account)
    assert account.kind == UserKind.member and account.company_id == practice.lakes.id
    assert len((await session.execute(select(User).where(User.email.ilike(account.email)))).scalars().all()) == 1
    # One login serving several providers: the same password logs in, and sees both providers' bills beside
    # those of its own company (Lakes, segregation off).
    headers = await bearer(client, account.username, "correct horse battery")
    dashboard = (await client.get("/v1/bills", headers=headers)).json()
    assert {b["provider_id"] for b in dashboard["items"]} == {str(ada.id), str(other.id), str(practice.dr_b.id)}
    edit = await client.patch(f"/v1/bills/{practice.draft_a.id}", headers=headers, json={"service_date": "2026-11-04"})
    assert edit.status_code == 200, edit.text
    assert_problem(await client.patch(f"/v1/bills/{practice.other_bill.id}", headers=headers,
                                      json={"service_date": "2026-11-04"}), 403, "permission_denied")

    # The newcomer (no username suggested): chooses one on acceptance, signed out, with a password.
    token = smtp.token_of(new_mail)
    before = await snapshot(session)
    assert assert_problem(await accept(client, token), 422, "username_required")["field"] == "username"
    taken = assert_problem(await accept(client, token, username=account.username.upper()), 409, "username_taken")
    assert taken["field"] == "username"
    assert_problem(await accept(client, token, username="not@allowed.org"), 422, "validation_error")
    assert await snapshot(session) == before
    username = unique_username("chosen")
    created = await accept(client, token, username=username, display_name="New Comer")
    assert created.status_code == 200, created.text
    assert created.json()["account_created"] is True and created.json()["username"] == username
    user = await session.get(User, uuid.UUID(created.json()["user_id"]))
    assert user.kind == UserKind.invited and user.email == newcomer and user.company_id == practice.clinic.id
    assert user.display_name == "New Comer"
    assert (await login(client, username)).status_code == 200
