"""`billing-api serve --demo` with no SMTP server configured keeps its mail in the data folder: an invitation made on
the demo arrives in `<data>/mail/` as a .eml file, through the real outbox sender and real SMTP (the catcher)."""

from __future__ import annotations

import asyncio
import email
import email.policy
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
from sqlalchemy.engine import make_url

from tests.conftest import ROOT, _create_database, _drop_database, _server_url
from tests.helpers import wait_until_answering
from tests.support import smtp

MAIL_GUARD_SECONDS = 60


async def test_the_demo_writes_an_invitation_mail_into_the_data_folder(tmp_path):
    server_url = make_url(_server_url())
    name = await _create_database(server_url)  # a database of its own: the demo data is committed
    data, port = tmp_path / "data", smtp.free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("BILLING_API_")}  # no SMTP_*
    env |= {"PYTHONPATH": str(ROOT / "src"), "BILLING_API_DATA_DIR": str(data),
            "BILLING_API_DATABASE_URL": server_url.set(database=name).render_as_string(hide_password=False),
            "BILLING_API_JWT_SECRET": "demo-mail-" + "z" * 40, "BILLING_API_MAIL_POLL_SECONDS": "0.2",
            "BILLING_API_ARGON2_TIME_COST": "1", "BILLING_API_ARGON2_MEMORY_COST_KIB": "8",
            "BILLING_API_ARGON2_PARALLELISM": "1", "BILLING_API_LOG_FORMAT": "text"}
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            str(Path(sys.executable).with_name("billing-api")), "serve", "--demo", "--host", "127.0.0.1",
            "--port", str(port), env=env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            await wait_until_answering(http, "/readyz", log.read_text)
            mail = (data / "mail").resolve()
            assert f"written to {mail}/ as a .eml file" in log.read_text()  # the start says where mail lands
            assert list(mail.iterdir()) == []

            token = (await http.post("/v1/auth/token", data={"username": "dr.lovelace",
                                                              "password": "demo-password-1"})).json()["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            provider = (await http.get("/v1/me", headers=headers)).json()["user"]["id"]
            invited = await http.post(f"/v1/providers/{provider}/invitations", headers=headers, json={
                "email": "new.colleague@example.org", "username": "new.colleague", "role": "financial_viewer"})
            assert invited.status_code == 201, invited.text

            deadline = time.monotonic() + MAIL_GUARD_SECONDS
            while not list(mail.glob("*.eml")) and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            (eml,) = mail.glob("*.eml")
            message = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
            assert message["To"] == "new.colleague@example.org"
            assert smtp.token_of(message)  # the accept link, as the invitee would open it
            assert list(mail.iterdir()) == [eml]  # whole files only, no partial one left behind
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), timeout=60)
        await _drop_database(server_url, name)
