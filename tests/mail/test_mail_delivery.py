"""Invitation email for real: the outbox is written with the invitation, a sender delivers it over SMTP to a
local aiosmtpd server, retries with exponential backoff, and records the outcome on the invitation. The sender
runs inside the app (lifespan) and as `billing-api worker`."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import text

from billing_api.app import create_app
from billing_api.db import make_sessionmaker
from billing_api.mail.sender import backoff, deliver_due
from billing_api.worker import run_worker
from tests.support import smtp
from tests.support.smtp import mail_settings
from tests.team.flows import accept, invite, unique_email, unique_username

ROOT = Path(__file__).resolve().parents[2]


async def _team_invitation(client, headers, provider_id, invitation_id) -> dict:
    team = (await client.get(f"/v1/providers/{provider_id}/team", headers=headers)).json()
    (found,) = [i for i in team["invitations"] if i["id"] == invitation_id]
    return found


async def _outbox(session, invitation_id) -> list[dict]:
    rows = await session.execute(text(
        "SELECT status, attempts, last_error, secret_nonce, next_attempt_at, sent_at FROM mail_outbox "
        "WHERE invitation_id = :id ORDER BY created_at"), {"id": invitation_id})
    return [dict(row._mapping) for row in rows]


async def test_a_refused_recipient_shows_as_failed_with_the_reason(client, factory, session, practice, settings,
                                                                    sessionmaker, refuser):
    owner = factory.headers(practice.dr_a)
    email = unique_email("nobody")
    invitation = (await invite(client, owner, practice.dr_a.id, email=email, username=unique_username())).json()
    assert await deliver_due(sessionmaker, mail_settings(settings, refuser.port)) == 1
    assert email in refuser.refused

    shown = await _team_invitation(client, owner, practice.dr_a.id, invitation["id"])
    assert shown["state"] == "pending"
    delivery = shown["delivery"]
    assert delivery["status"] == "failed" and delivery["attempts"] == 1 and delivery["sent_at"] is None
    assert delivery["error"].startswith("550") and "User unknown" in delivery["error"]
    assert datetime.fromisoformat(delivery["last_attempt_at"]) > datetime.now(UTC) - timedelta(minutes=1)
    (row,) = await _outbox(session, invitation["id"])
    assert row["status"] == "failed" and row["secret_nonce"] is None  # permanent: no retry, nothing kept
    assert await deliver_due(sessionmaker, mail_settings(settings, refuser.port)) == 0

    # Fixed at the source (a resend to a server that takes it): the new link arrives and works.
    assert (await client.post(f"/v1/invitations/{invitation['id']}/resend", headers=owner)).status_code == 200
    shown = await _team_invitation(client, owner, practice.dr_a.id, invitation["id"])
    assert shown["delivery"] == {"status": "queued", "attempts": 0, "last_attempt_at": None, "error": None,
                                 "sent_at": None}


async def test_an_unreachable_server_is_retried_with_exponential_backoff(client, factory, session, practice,
                                                                          settings, sessionmaker, collector):
    owner = factory.headers(practice.dr_a)
    email = unique_email()
    invitation = (await invite(client, owner, practice.dr_a.id, email=email, username=unique_username())).json()
    down = mail_settings(settings, smtp.free_port(), mail_retry_base_seconds=60, mail_max_attempts=3,
                         smtp_timeout_seconds=2)

    started = datetime.now(UTC)
    assert await deliver_due(sessionmaker, down) == 1
    (row,) = await _outbox(session, invitation["id"])
    assert row["status"] == "queued" and row["attempts"] == 1 and "could not reach" in row["last_error"]
    assert timedelta(seconds=55) < row["next_attempt_at"] - started < timedelta(seconds=70)
    delivery = (await _team_invitation(client, owner, practice.dr_a.id, invitation["id"]))["delivery"]
    assert delivery["status"] == "queued" and delivery["attempts"] == 1 and "could not reach" in delivery["error"]
    assert await deliver_due(sessionmaker, down) == 0  # not due yet

    # Time passes (the row falls due); the second failure waits twice as long.
    await session.execute(text("UPDATE mail_outbox SET next_attempt_at = now() WHERE invitation_id = :id"),
                          {"id": invitation["id"]})
    started = datetime.now(UTC)
    assert await deliver_due(sessionmaker, down) == 1
    (row,) = await _outbox(session, invitation["id"])
    assert row["attempts"] == 2 and timedelta(seconds=115) < row["next_attempt_at"] - started < timedelta(seconds=130)

    # The server is back: the next attempt delivers.
    await session.execute(text("UPDATE mail_outbox SET next_attempt_at = now() WHERE invitation_id = :id"),
                          {"id": invitation["id"]})
    assert await deliver_due(sessionmaker, mail_settings(settings, collector.port)) == 1
    collector.wait_for(email)
    delivery = (await _team_invitation(client, owner, practice.dr_a.id, invitation["id"]))["delivery"]
    assert delivery["status"] == "sent" and delivery["attempts"] == 3 and delivery["error"] is None


async def test_out_of_attempts_is_failed(client, factory, session, practice, settings, sessionmaker):
    owner = factory.headers(practice.dr_a)
    invitation = (await invite(client, owner, practice.dr_a.id, email=unique_email(),
                               username=unique_username())).json()
    down = mail_settings(settings, smtp.free_port(), mail_retry_base_seconds=0, mail_max_attempts=2,
                         smtp_timeout_seconds=2)
    assert await deliver_due(sessionmaker, down) == 2  # due again at once (no backoff), then given up
    delivery = (await _team_invitation(client, owner, practice.dr_a.id, invitation["id"]))["delivery"]
    assert delivery["status"] == "failed" and delivery["attempts"] == 2 and "could not reach" in delivery["error"]
    (row,) = await _outbox(session, invitation["id"])
    assert row["status"] == "failed" and row["secret_nonce"] is None


def test_backoff_doubles_up_to_the_cap(settings):
    s = settings.model_copy(update={"mail_retry_base_seconds": 30, "mail_retry_max_seconds": 200})
    assert [backoff(s, n).total_seconds() for n in range(1, 6)] == [30, 60, 120, 200, 200]


async def test_names_in_the_email_are_escaped_and_kept_to_one_line(client, factory, session, practice, deliver,
                                                                    collector):
    practice.dr_a.display_name = "Dr <b>Bold</b>\r\nBcc: victim@example.org"
    await session.flush()
    email = unique_email()
    await invite(client, factory.headers(practice.dr_a), practice.dr_a.id, email=email, username=unique_username())
    await deliver()
    (message,) = collector.wait_for(email)
    assert message["Bcc"] is None and "\n" not in message["Subject"]
    text_body, html = smtp.bodies(message)
    assert "&lt;b&gt;Bold&lt;/b&gt;" in html and "<b>Bold</b>" not in html
    assert "generate billing reports" not in text_body and "create and edit bills" in text_body  # data entry
    assert "expires on" in text_body and "mobile app" in text_body


async def test_a_message_whose_key_changed_is_never_sent(client, factory, session, practice, settings,
                                                          sessionmaker, collector):
    """The token is derived with the server key: a sender with another key cannot rebuild it, and says so
    instead of mailing a link that would not work."""
    email = unique_email()
    invitation = (await invite(client, factory.headers(practice.dr_a), practice.dr_a.id, email=email,
                               username=unique_username())).json()
    other_key = mail_settings(settings, collector.port, jwt_secret="another-secret-" + "y" * 40)
    assert await deliver_due(sessionmaker, other_key) == 1
    assert collector.to(email) == []
    (row,) = await _outbox(session, invitation["id"])
    assert row["status"] == "cancelled" and row["secret_nonce"] is None


# Real commits: the sender inside the app, as `billing-api worker`, and several senders at once.


def _live_url(live_engine) -> str:
    return live_engine.url.render_as_string(hide_password=False)


async def _live_provider(factory):
    company = await factory.company()
    provider = await factory.user(company, name="Dr Live", provider=True)
    await factory.session.commit()
    return provider


async def test_the_sender_runs_inside_the_app(live, live_engine, settings, collector):
    _, factory = live
    provider = await _live_provider(factory)
    app_settings = mail_settings(settings, collector.port, database_url=_live_url(live_engine),
                                 mail_poll_seconds=0.05)
    app = create_app(app_settings)
    email, username = unique_email(), unique_username()
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            response = await invite(http, factory.headers(provider), provider.id, email=email, username=username)
            assert response.status_code == 201, response.text
            (message,) = await collector.wait_for_async(email)
            accepted = await accept(http, smtp.token_of(message))
            assert accepted.status_code == 200, accepted.text
            for _ in range(100):
                team = (await http.get(f"/v1/providers/{provider.id}/team",
                                        headers=factory.headers(provider))).json()
                if any(m["username"] == username for m in team["members"]):
                    break
                await asyncio.sleep(0.02)
            assert any(m["username"] == username for m in team["members"])


async def test_disabled_in_the_app_the_sender_leaves_mail_queued(live, live_engine, settings, collector):
    _, factory = live
    provider = await _live_provider(factory)
    app_settings = mail_settings(settings, collector.port, database_url=_live_url(live_engine),
                                 mail_poll_seconds=0.05, mail_sender_enabled=False)
    app = create_app(app_settings)
    email = unique_email()
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            response = await invite(http, factory.headers(provider), provider.id, email=email,
                                    username=unique_username())
            assert response.status_code == 201
            await asyncio.sleep(0.3)
            assert collector.to(email) == []
            invitation = response.json()
            shown = await _team_invitation(http, factory.headers(provider), provider.id, invitation["id"])
            assert shown["delivery"]["status"] == "queued"
    # ... and a worker delivers it.
    stop = asyncio.Event()
    task = asyncio.create_task(run_worker(app_settings, stop=stop, migrate=False))
    try:
        await collector.wait_for_async(email)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=10)


async def test_several_senders_send_each_message_once(live, live_engine, settings, collector):
    http, factory = live
    provider = await _live_provider(factory)
    emails = [unique_email("many") for _ in range(6)]
    for email in emails:
        response = await invite(http, factory.headers(provider), provider.id, email=email,
                                username=unique_username())
        assert response.status_code == 201
    sessionmaker = make_sessionmaker(live_engine)
    s = mail_settings(settings, collector.port)
    counts = await asyncio.gather(*(deliver_due(sessionmaker, s) for _ in range(3)))
    assert sum(counts) >= len(emails)
    await asyncio.sleep(0.2)
    for email in emails:
        assert len(collector.to(email)) == 1


async def test_the_worker_command(live, live_engine, settings, collector):
    """`billing-api worker` as a process: delivers what is queued, stops cleanly on SIGTERM."""
    http, factory = live
    provider = await _live_provider(factory)
    email = unique_email("worker")
    response = await invite(http, factory.headers(provider), provider.id, email=email, username=unique_username())
    assert response.status_code == 201
    env = {**os.environ, "BILLING_API_ENV": "test", "BILLING_API_DATABASE_URL": _live_url(live_engine),
           "BILLING_API_JWT_SECRET": settings.jwt_secret, "BILLING_API_SMTP_HOST": "127.0.0.1",
           "BILLING_API_SMTP_PORT": str(collector.port), "BILLING_API_MAIL_POLL_SECONDS": "0.1"}
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("billing-api")), "worker", env=env, cwd=str(ROOT),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        (message,) = await collector.wait_for_async(email, timeout=30)
        assert smtp.token_of(message)
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 0, output.decode()
    assert b"mail sender stopped" in output
