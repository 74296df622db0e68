"""Secrets never reach a response or a log: the main flows driven over HTTP with every logger at DEBUG
(SQL statements included), then every response body and every log record scanned for the plaintext passwords,
the JWT secret, argon2 hashes, and (in logs) invitation and access tokens."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from billing_api.db import make_sessionmaker
from billing_api.mail.sender import deliver_due
from tests.factories import PASSWORD
from tests.helpers import ADMIN, assert_problem
from tests.identity.test_users import new_user
from tests.support import smtp
from tests.support.practice import build_practice
from tests.team.flows import accept, invite, invited_token, unique_email, unique_username

# The test's own SMTP server (aiosmtpd) logs the mail it receives: an invitation email carries its token by
# design. It is not the service, so its records are left out of the scan.
HARNESS_LOGGERS = ("mail.log", "mail.debug")


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def texts(self) -> Iterator[tuple[str, str]]:
        formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
        for record in self.records:
            if not record.name.startswith(HARNESS_LOGGERS):
                yield record.name, formatter.format(record) + " " + repr(record.__dict__)


@contextmanager
def everything_logged() -> Iterator[Capture]:
    """Every logger at DEBUG, enabled, and its records captured (also from loggers that do not propagate)."""
    capture = Capture()
    loggers = [logging.getLogger()] + [logger for logger in logging.root.manager.loggerDict.values()
                                       if isinstance(logger, logging.Logger)]
    saved = [(logger, logger.level, logger.disabled) for logger in loggers]
    isolated = [logger for logger in loggers if not logger.propagate]
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
        logger.disabled = False
    for logger in [logging.getLogger(), *isolated]:
        logger.addHandler(capture)
    try:
        yield capture
    finally:
        for logger in [logging.getLogger(), *isolated]:
            logger.removeHandler(capture)
        for logger, level, disabled in saved:
            logger.setLevel(level)
            logger.disabled = disabled


async def test_no_secret_reaches_a_response_or_a_log(live, live_engine, smtp_settings, collector, settings):
    """On real commits (`live`): each request checks out its own connection, which logs its SQL once the
    loggers are at DEBUG."""
    client, factory = live
    practice = await build_practice(factory)
    admin = await factory.user(practice.clinic, account_type=ADMIN, permissions=["users:edit_others"])
    await factory.session.commit()
    sessionmaker = make_sessionmaker(live_engine)

    async def deliver() -> int:
        return await deliver_due(sessionmaker, smtp_settings)

    responses: list[httpx.Response] = []

    async def keep(response: httpx.Response) -> None:
        await response.aread()
        responses.append(response)

    client.event_hooks["response"] = [keep]
    created_password, changed_password, invited_password = (
        "created by an admin 7f3a", "changed by its owner 9c1e", "chosen on acceptance 2b8d")
    wrong_password = "a wrong guess 5e0b"
    company = practice.clinic
    owner = factory.headers(practice.dr_a)
    invitation_tokens, access_tokens = [], []

    with everything_logged() as logs:
        # Account creation, refused then accepted; login, wrong then right.
        body = new_user(company, password=created_password)
        refused = new_user(company, password="Password123456")
        assert_problem(await client.post("/v1/users", json=refused, headers=factory.headers(admin)), 422,
                       "password_too_common")
        assert (await client.post("/v1/users", json=body, headers=factory.headers(admin))).status_code == 201
        form = {"username": body["username"], "password": wrong_password}
        assert_problem(await client.post("/v1/auth/token", data=form), 401, "invalid_credentials")
        login = await client.post("/v1/auth/token", data={**form, "password": created_password})
        assert login.status_code == 200
        access_tokens.append(login.json()["access_token"])
        me = {"Authorization": f"Bearer {access_tokens[-1]}"}
        # Password change, with a wrong confirmation first; then a login with the new password.
        assert_problem(await client.patch("/v1/profiles/me", headers=me, json={
            "new_password": changed_password, "current_password": wrong_password}), 403, "password_confirmation_failed")
        changed = await client.patch("/v1/profiles/me", headers=me, json={
            "new_password": changed_password, "current_password": created_password})
        assert changed.status_code == 200, changed.text
        login = await client.post("/v1/auth/token", data={**form, "password": changed_password})
        access_tokens.append(login.json()["access_token"])

        # Invitation: send, deliver by SMTP, accept with a new password (a refused one first), log in.
        email, username = unique_email(), unique_username()
        _, token = await invited_token(client, deliver, collector, owner, practice.dr_a.id, email=email,
                                       username=username)
        invitation_tokens.append(token)
        assert_problem(await accept(client, token, password="qwertyuiop1234"), 422, "password_too_common")
        assert (await accept(client, token, password=invited_password)).status_code == 200
        login = await client.post("/v1/auth/token", data={"username": username, "password": invited_password})
        access_tokens.append(login.json()["access_token"])
        # A second invitation, resent (a new token), then cancelled.
        second = await invite(client, owner, practice.dr_a.id, email=unique_email(), username=unique_username())
        assert (await client.post(f"/v1/invitations/{second.json()['id']}/resend", headers=owner)).status_code == 200
        assert await deliver() >= 1

        # The delegation list saved with the provider's password (wrong, then right).
        current = (await client.get(f"/v1/providers/{practice.dr_a.id}/delegation", headers=owner)).json()
        entries = [{"user_id": e["user_id"], "role": e["role"]} for e in current["entries"] if e["type"] == "user"]
        save = {"entries": entries, "version": current["version"]}
        assert_problem(await client.put(f"/v1/providers/{practice.dr_a.id}/delegation", headers=owner,
                                        json={**save, "password": wrong_password}), 403, "password_confirmation_failed")
        saved = await client.put(f"/v1/providers/{practice.dr_a.id}/delegation", headers=owner,
                                 json={**save, "password": PASSWORD})
        assert saved.status_code == 200, saved.text

        # What an auditor or the user reads back.
        for path in ("/v1/audit-events?limit=200", "/v1/profiles/me", "/v1/me", "/v1/users?limit=200"):
            assert (await client.get(path, headers=factory.headers(admin))).status_code == 200
        assert (await client.get(f"/v1/providers/{practice.dr_a.id}/team", headers=owner)).status_code == 200

    everywhere = [created_password, changed_password, invited_password, wrong_password, PASSWORD,
                  settings.jwt_secret, "$argon2"]
    assert len(responses) >= 20
    for response in responses:
        for secret in everywhere:
            assert secret not in response.text, (response.request.url, secret)
        assert "password_hash" not in response.text and "secret_nonce" not in response.text
    # The capture works: SQL statements are logged at this level (with their parameters hidden) ...
    records = list(logs.texts())
    assert any(name.startswith("sqlalchemy.engine") for name, _ in records)
    assert any("INSERT INTO app_user" in text for _, text in records)
    # ... and none of them, nor any other record, holds a secret or a token.
    assert [smtp.token_of(message) for message in collector.to(email)] == invitation_tokens
    for name, text in records:
        for secret in everywhere + invitation_tokens + access_tokens:
            assert secret not in text, (name, secret, text[:300])


async def test_the_service_engine_logs_no_parameters_and_no_rows():
    from billing_api.db import make_engine

    engine = make_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    try:
        assert engine.sync_engine.hide_parameters is True
    finally:
        await engine.dispose()
    row = logging.LogRecord("sqlalchemy.engine.Engine", logging.DEBUG, "", 0, "Row %r", (("$argon2id$...",),), None)
    assert logging.getLogger("sqlalchemy.engine.Engine").filter(row) is False
