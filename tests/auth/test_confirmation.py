"""The password-confirmation step (auth/confirmation.py), through PATCH /v1/profiles/me."""

from datetime import timedelta

from sqlalchemy import select, update

from billing_api.auth.confirmation import CONFIRMATION_FAILED
from billing_api.models import AuditEvent, FailureCounter
from tests.factories import PASSWORD
from tests.helpers import assert_problem

PROFILE = "/v1/profiles/me"


def change_email(password, email="changed@example.org"):
    return {"email": email, "display_name": "Should Not Stick", "current_password": password}


async def failures(session, user):
    statement = select(AuditEvent).where(AuditEvent.actor_id == user.id, AuditEvent.action == CONFIRMATION_FAILED)
    return (await session.execute(statement.order_by(AuditEvent.created_at))).scalars().all()


async def test_wrong_password_is_refused_changes_nothing_and_is_audited(client, factory, session):
    company = await factory.company()
    me = await factory.user(company, name="Unchanged")
    original_email = me.email

    response = await client.patch(PROFILE, json=change_email("not my password"), headers=factory.headers(me))
    body = assert_problem(response, 403, "password_confirmation_failed")
    assert "password" in body["detail"].lower()

    await session.refresh(me)
    assert me.email == original_email and me.display_name == "Unchanged" and me.token_version == 1
    # The failure outlived the request's rollback; the profile change did not.
    events = await failures(session, me)
    assert len(events) == 1
    event = events[0]
    assert event.company_id == company.id and event.target_type == "user" and event.target_id == me.id
    assert event.details == {"purpose": "profile.update"}
    assert event.client_address  # the ASGI test client's address
    assert (await session.execute(select(AuditEvent).where(
        AuditEvent.actor_id == me.id, AuditEvent.action == "profile.updated"))).first() is None


async def test_a_password_change_with_the_wrong_password_keeps_the_old_one(client, factory, session):
    me = await factory.user(await factory.company())
    headers = factory.headers(me)
    refused = await client.patch(PROFILE, json={"new_password": "another passphrase", "current_password": "wrong"},
                                 headers=headers)
    assert_problem(refused, 403, "password_confirmation_failed")
    assert (await client.get("/v1/me", headers=headers)).status_code == 200  # the token was not revoked
    assert (await client.post("/v1/auth/token", data={"username": me.username, "password": PASSWORD})).status_code == 200


async def test_five_failures_lock_further_attempts_even_with_the_right_password(client, factory, session, settings):
    me = await factory.user(await factory.company())
    bystander = await factory.user(await factory.company())
    headers = factory.headers(me)
    assert settings.account_max_failures == 5
    for attempt in range(5):
        response = await client.patch(PROFILE, json=change_email(f"wrong {attempt}"), headers=headers)
        assert_problem(response, 403, "password_confirmation_failed")

    locked = await client.patch(PROFILE, json=change_email(PASSWORD), headers=headers)
    assert_problem(locked, 429, "password_confirmation_locked")
    retry_after = int(locked.headers["Retry-After"])
    assert 0 < retry_after <= settings.account_failure_window_minutes * 60
    assert len(await failures(session, me)) == 5  # a locked attempt is not a new failure
    await session.refresh(me)
    assert me.email != "changed@example.org"

    # A display-name change needs no confirmation and is not locked.
    assert (await client.patch(PROFILE, json={"display_name": "Still Me"}, headers=headers)).status_code == 200
    # The lock is per user.
    ok = await client.patch(PROFILE, json=change_email(PASSWORD, "bystander@example.org"),
                            headers=factory.headers(bystander))
    assert ok.status_code == 200, ok.text


async def test_failures_outside_the_window_do_not_count(client, factory, session, settings):
    me = await factory.user(await factory.company())
    for _ in range(settings.account_max_failures - 1):
        assert_problem(await client.patch(PROFILE, json=change_email("wrong"), headers=factory.headers(me)), 403,
                       "password_confirmation_failed")
    # Those failures' window ends: the next one opens a new window instead of reaching the limit.
    window = timedelta(minutes=settings.account_failure_window_minutes)
    await session.execute(update(FailureCounter).where(FailureCounter.key == str(me.id)).values(
        window_started_at=FailureCounter.window_started_at - window))
    for _ in range(settings.account_max_failures - 1):
        assert_problem(await client.patch(PROFILE, json=change_email("wrong"), headers=factory.headers(me)), 403,
                       "password_confirmation_failed")
    response = await client.patch(PROFILE, json=change_email(PASSWORD), headers=factory.headers(me))
    assert response.status_code == 200, response.text
    assert response.json()["email"] == "changed@example.org"
