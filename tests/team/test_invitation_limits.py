"""Abuse limits on invitations: new invitations per provider, the password rules at acceptance, and
concurrent accepts of one invitation (exactly one wins)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from billing_api.mail import secrets as mail_secrets
from billing_api.models import Invitation, OutboxMessage, User
from tests.helpers import assert_problem
from tests.support.practice import snapshot
from tests.team.flows import accept, invite, invited_token, unique_email, unique_username


async def test_new_invitations_are_limited_per_provider(client, factory, session, practice, settings):
    owner = factory.headers(practice.dr_a)
    assert settings.invitation_send_max == 20 and settings.invitation_send_window_minutes == 60
    for n in range(settings.invitation_send_max):
        response = await invite(client, owner, practice.dr_a.id, email=unique_email(), username=unique_username())
        assert response.status_code == 201, response.text
        if n == 0:  # a cancelled invitation was still sent: it counts
            cancelled = await client.delete(f"/v1/invitations/{response.json()['id']}", headers=owner)
            assert cancelled.status_code == 204
    before = await snapshot(session)
    refused = await invite(client, owner, practice.dr_a.id, email=unique_email(), username=unique_username())
    problem = assert_problem(refused, 429, "invitation_send_limited")
    retry_after = int(refused.headers["Retry-After"])
    assert 0 < retry_after <= settings.invitation_send_window_minutes * 60 + 1
    assert problem["retry_after_seconds"] == retry_after
    assert await snapshot(session) == before  # no invitation, no mail, no audit event

    # Another provider has its own allowance.
    other = await invite(client, factory.headers(practice.other_provider), practice.other_provider.id,
                         email=unique_email(), username=unique_username())
    assert other.status_code == 201, other.text
    # Once the oldest invitations leave the window, sending works again.
    await session.execute(update(Invitation).where(Invitation.provider_id == practice.dr_a.id).values(
        created_at=Invitation.created_at - timedelta(minutes=settings.invitation_send_window_minutes)))
    again = await invite(client, owner, practice.dr_a.id, email=unique_email(), username=unique_username())
    assert again.status_code == 201, again.text


@pytest.mark.parametrize(("password", "code"), [
    pytest.param("too short", "password_too_short", id="short"),
    pytest.param("qwertyuiop123", "password_too_common", id="common"),
    pytest.param("Password!2024", "password_too_common", id="common-word-decorated"),
])
async def test_acceptance_applies_the_password_rules(client, factory, session, practice, deliver, collector,
                                                     password, code):
    email, username = unique_email(), unique_username()
    _, token = await invited_token(client, deliver, collector, factory.headers(practice.dr_a), practice.dr_a.id,
                                   email=email, username=username)
    before = await snapshot(session)
    assert assert_problem(await accept(client, token, password=password), 422, code)["field"] == "password"
    assert_problem(await accept(client, token, password=username), 422, "password_same_as_login")
    assert_problem(await accept(client, token, password=email.upper()), 422, "password_same_as_login")
    assert await snapshot(session) == before
    # The invitation is still open: a good password joins.
    assert (await accept(client, token)).status_code == 200


async def test_concurrent_accepts_of_one_invitation_exactly_one_wins(live, settings):
    """Real commits: ten accepts of one new-account invitation at once."""
    http, factory = live
    company = await factory.company()
    provider = await factory.user(company, provider=True)
    await factory.session.commit()
    email, username = unique_email(), unique_username()
    created = await invite(http, factory.headers(provider), provider.id, email=email, username=username)
    assert created.status_code == 201, created.text
    # The token as the mail sender builds it from the queued message.
    nonce = (await factory.session.execute(select(OutboxMessage.secret_nonce).where(
        OutboxMessage.invitation_id == created.json()["id"]))).scalar_one()
    token = mail_secrets.derive(settings, nonce)

    answers = await asyncio.gather(*(accept(http, token) for _ in range(10)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200] + [409] * 9, [a.text for a in answers]
    for loser in (a for a in answers if a.status_code == 409):
        assert_problem(loser, 409, "invitation_already_accepted")
    accounts = (await factory.session.execute(select(User).where(User.username == username))).scalars().all()
    assert len(accounts) == 1
    assert str(accounts[0].id) == next(a for a in answers if a.status_code == 200).json()["user_id"]
    team = await http.get(f"/v1/providers/{provider.id}/team", headers=factory.headers(provider))
    assert [m["user_id"] for m in team.json()["members"]] == [str(accounts[0].id)]
