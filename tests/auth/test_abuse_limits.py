"""Abuse limits (auth/limits.py): one failure counter per account shared by login and password confirmation,
one per client address for logins; lockout is a 429 with Retry-After and an audit event."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy import select, update

from billing_api.config import Settings
from billing_api.models import AuditEvent, FailureCounter
from tests.auth.test_tokens import login
from tests.factories import PASSWORD
from tests.helpers import assert_problem

PROFILE = "/v1/profiles/me"


def confirm(password: str) -> dict:
    """A profile change that needs the password confirmation step."""
    return {"email": "changed@example.org", "current_password": password}


async def events(session, action: str, **where) -> list[AuditEvent]:
    statement = select(AuditEvent).where(AuditEvent.action == action, *(
        getattr(AuditEvent, column) == value for column, value in where.items()))
    return (await session.execute(statement)).scalars().all()


def assert_locked(response: httpx.Response, code: str, settings) -> None:
    assert_problem(response, 429, code)
    assert 0 < int(response.headers["Retry-After"]) <= settings.account_failure_window_minutes * 60


async def test_the_limit_is_strict_enough(settings):
    # ASVS 2.2.1 / NIST 800-63B 5.2.2: at most 100 failures an hour; any hour overlaps at most 5 windows.
    assert settings.account_max_failures == 5 and settings.account_failure_window_minutes == 15
    assert settings.account_max_failures * (60 // settings.account_failure_window_minutes + 1) <= 100


def test_settings_that_allow_more_than_100_failures_an_hour_are_refused():
    with pytest.raises(ValidationError, match="at most 100"):
        Settings(account_max_failures=20, account_failure_window_minutes=10)
    assert Settings(account_max_failures=20, account_failure_window_minutes=15).account_max_failures == 20


async def test_five_failures_lock_the_account_even_for_the_right_password(client, factory, session, settings):
    user = await factory.user(await factory.company())
    for attempt in range(settings.account_max_failures):
        assert_problem(await login(client, user.username, f"wrong {attempt}"), 401, "invalid_credentials")
    locked = await login(client, user.username)
    assert_locked(locked, "login_locked", settings)
    assert "access_token" not in locked.text
    # By email too: the counter is the account's, not the spelling's.
    assert_locked(await login(client, user.email), "login_locked", settings)
    [event, _] = await events(session, "auth.login_locked", target_id=user.id)
    assert event.company_id == user.company_id and event.client_address
    assert event.details == {"client": "web", "account_locked": True, "address_locked": False}
    failed = await events(session, "auth.login_failed", target_id=user.id)
    assert [e.details["account_locked"] for e in failed] == [False] * 4 + [True]
    # Another account is not locked.
    other = await factory.user(await factory.company())
    assert (await login(client, other.username)).status_code == 200


async def test_an_unknown_username_locks_exactly_like_a_real_one(client, factory, settings):
    user = await factory.user(await factory.company())
    real, unknown = [], []
    for attempt in range(settings.account_max_failures + 1):
        real.append(await login(client, user.username, f"wrong {attempt}"))
        unknown.append(await login(client, "nobody-by-this-name", f"wrong {attempt}"))
    for mine, theirs in zip(real, unknown, strict=True):
        assert mine.status_code == theirs.status_code
        # Each answer carries its own request id; everything else must be the same.
        assert {**mine.json(), "request_id": None} == {**theirs.json(), "request_id": None}
        assert ("retry-after" in mine.headers) == ("retry-after" in theirs.headers)
    assert [r.status_code for r in real] == [401] * settings.account_max_failures + [429]


async def test_a_success_resets_the_account_counter(client, factory, settings):
    user = await factory.user(await factory.company())
    for _ in range(2):
        for _ in range(settings.account_max_failures - 1):
            assert_problem(await login(client, user.username, "wrong"), 401, "invalid_credentials")
        assert (await login(client, user.username)).status_code == 200
    # Four more failures (eight in all) and still not locked: the successes reset the count.
    assert (await login(client, user.username)).status_code == 200


async def test_the_lock_ends_with_its_window(client, factory, session, settings):
    user = await factory.user(await factory.company())
    for _ in range(settings.account_max_failures):
        await login(client, user.username, "wrong")
    assert_locked(await login(client, user.username), "login_locked", settings)
    window = timedelta(minutes=settings.account_failure_window_minutes)
    await session.execute(update(FailureCounter).where(FailureCounter.key == str(user.id)).values(
        window_started_at=FailureCounter.window_started_at - window,
        locked_until=FailureCounter.locked_until - window))
    assert (await login(client, user.username)).status_code == 200
    assert (await session.execute(select(FailureCounter).where(FailureCounter.key == str(user.id)))).first() is None


async def test_login_and_password_confirmation_share_the_account_counter(client, factory, session, settings):
    user = await factory.user(await factory.company())
    headers = factory.headers(user)
    for _ in range(3):
        assert_problem(await client.patch(PROFILE, json=confirm("wrong"), headers=headers), 403,
                       "password_confirmation_failed")
    for _ in range(2):
        assert_problem(await login(client, user.username, "wrong"), 401, "invalid_credentials")
    assert_locked(await login(client, user.username), "login_locked", settings)
    assert_locked(await client.patch(PROFILE, json=confirm(PASSWORD), headers=headers),
                  "password_confirmation_locked", settings)
    [event] = await events(session, "auth.password_confirmation_locked", actor_id=user.id)
    assert event.details == {"purpose": "profile.update"}
    await session.refresh(user)
    assert user.email != "changed@example.org"


async def test_a_right_confirmation_resets_the_counter_for_login_too(client, factory, settings):
    user = await factory.user(await factory.company())
    for _ in range(settings.account_max_failures - 1):
        await login(client, user.username, "wrong")
    assert (await client.patch(PROFILE, json={"display_name": "x", "current_password": PASSWORD,
                                              "email": user.email}, headers=factory.headers(user))).status_code == 200
    for _ in range(settings.account_max_failures - 1):
        assert_problem(await login(client, user.username, "wrong"), 401, "invalid_credentials")


async def test_failures_from_one_address_across_accounts_lock_that_address(app, client, factory, session, settings):
    user = await factory.user(await factory.company())
    for n in range(settings.address_max_failures):
        assert_problem(await login(client, f"guess-{n}", "wrong"), 401, "invalid_credentials")
    # The address is locked, even for a right password of an account with no failures...
    locked = await login(client, user.username)
    assert_locked(locked, "login_locked", settings)
    [event] = await events(session, "auth.login_locked", target_id=user.id)
    assert event.details == {"client": "web", "account_locked": False, "address_locked": True}
    # ... and a success does not reset an address; another address signs in.
    elsewhere = httpx.ASGITransport(app=app, client=("203.0.113.9", 50000))
    async with httpx.AsyncClient(transport=elsewhere, base_url="http://testserver") as other:
        assert (await login(other, user.username)).status_code == 200
    assert_locked(await login(client, user.username), "login_locked", settings)


async def test_concurrent_wrong_attempts_never_pass_the_limit(live, settings):
    """Real commits: 12 wrong passwords at once, half logins and half confirmations, from their own address."""
    http, factory = live
    company = await factory.company()
    user = await factory.user(company)
    await factory.session.commit()
    transport = httpx.ASGITransport(app=http._transport.app, client=("198.51.100.23", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        headers = factory.headers(user)
        answers = await asyncio.gather(*(
            login(client, user.username, f"wrong {n}") if n % 2 else
            client.patch(PROFILE, json=confirm(f"wrong {n}"), headers=headers)
            for n in range(12)
        ))
        statuses = sorted(a.status_code for a in answers)
        failures = [a for a in answers if a.status_code in (401, 403)]
        locked = [a for a in answers if a.status_code == 429]
        assert len(failures) == settings.account_max_failures, statuses
        assert len(locked) == 12 - settings.account_max_failures, statuses
        assert_locked(await login(client, user.username), "login_locked", settings)
    row = (await factory.session.execute(select(FailureCounter).where(
        FailureCounter.scope == "account", FailureCounter.key == str(user.id)))).scalar_one()
    assert row.failures == settings.account_max_failures and row.locked_until is not None
