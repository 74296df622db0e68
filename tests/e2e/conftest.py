"""A running service for the end-to-end tests: `billing-api serve --demo` as a subprocess on a fresh database.

`live_service` is the default one (session-wide); `start_live_service(env)` starts another with extra settings.
Each gets its own database on the test server, dropped when the run ends. Their mail goes to a real SMTP server
on loopback (aiosmtpd) that keeps every message in the Maildir `live_service.maildir` (unless `env` names
another SMTP server).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from aiosmtpd.handlers import Mailbox
from sqlalchemy.engine import make_url

from tests.conftest import ROOT, _create_database, _drop_database, _server_url
from tests.support import smtp

STARTUP_SECONDS = 90


@dataclass(frozen=True)
class LiveService:
    base_url: str
    database_url: str
    log: Path
    maildir: Path


def _wait_ready(process: subprocess.Popen, base_url: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"billing-api serve exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(f"{base_url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"billing-api serve not ready within {STARTUP_SECONDS}s:\n{log.read_text()[-4000:]}")


@pytest.fixture(scope="session")
async def start_live_service(tmp_path_factory) -> AsyncIterator[Callable[..., LiveService]]:
    server_url = make_url(_server_url())
    started: list[tuple[subprocess.Popen, str]] = []
    maildir = tmp_path_factory.mktemp("live-mail") / "mail"
    mail_server, mail_port = smtp.start(Mailbox(maildir))

    async def start(env: dict[str, str] | None = None) -> LiveService:
        name = await _create_database(server_url)
        database_url = server_url.set(database=name).render_as_string(hide_password=False)
        port = smtp.free_port()
        log = tmp_path_factory.mktemp("live-service") / "serve.log"
        environment = {
            **os.environ,
            "PYTHONPATH": str(ROOT / "src"),
            "BILLING_API_DATABASE_URL": database_url,
            "BILLING_API_JWT_SECRET": "e2e-secret-" + "y" * 40,
            "BILLING_API_ARGON2_TIME_COST": "1",
            "BILLING_API_ARGON2_MEMORY_COST_KIB": "8",
            "BILLING_API_ARGON2_PARALLELISM": "1",
            "BILLING_API_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
            "BILLING_API_MAIL_POLL_SECONDS": "0.2",
            "BILLING_API_SMTP_HOST": "127.0.0.1",
            "BILLING_API_SMTP_PORT": str(mail_port),
            "BILLING_API_SMTP_STARTTLS": "false",
            **(env or {}),
        }
        command = [str(Path(sys.executable).with_name("billing-api")), "serve", "--demo", "--host", "127.0.0.1",
                   "--port", str(port), "--workers", "1", "--log-level", "warning"]
        with log.open("wb") as out:
            process = subprocess.Popen(command, env=environment, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
        started.append((process, name))
        base_url = f"http://127.0.0.1:{port}"
        _wait_ready(process, base_url, log)
        return LiveService(base_url=base_url, database_url=database_url, log=log, maildir=maildir)

    yield start
    for process, name in started:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        await _drop_database(server_url, name)
    mail_server.stop()


@pytest.fixture(scope="session")
async def live_service(start_live_service) -> LiveService:
    return await start_live_service()
