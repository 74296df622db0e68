"""A running service for end-to-end tests: `billing-api serve --demo` in a subprocess on a fresh database.

Tests that speak to the service the way a client does (schemathesis, generated SDKs, a browser) use
`live_service`; everything else uses the in-process `client`.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.conftest import _create_database, _drop_database, _server_url

STARTUP_SECONDS = 120  # migrations and the demo data on a busy machine


@dataclass(frozen=True)
class LiveService:
    base_url: str
    database_url: str


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _service_environment(database_url: str) -> dict[str, str]:
    return os.environ | {
        "BILLING_API_ENV": "test",
        "BILLING_API_DATABASE_URL": database_url,
        "BILLING_API_JWT_SECRET": "e2e-secret-" + "x" * 40,
        # Cheap hashes (STACK-NOTES trap 10); no mail leaves the machine.
        "BILLING_API_ARGON2_TIME_COST": "1",
        "BILLING_API_ARGON2_MEMORY_COST_KIB": "8",
        "BILLING_API_ARGON2_PARALLELISM": "1",
        "BILLING_API_MAIL_SENDER_ENABLED": "false",
        "BILLING_API_SMTP_HOST": "127.0.0.1",
        "BILLING_API_SMTP_PORT": "9",
    }


def _wait_until_ready(process: subprocess.Popen, base_url: str) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"billing-api serve exited with {process.returncode}")
        try:
            if httpx.get(f"{base_url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"billing-api serve was not ready within {STARTUP_SECONDS} s")


@pytest.fixture(scope="session")
async def live_service() -> AsyncIterator[LiveService]:
    """`billing-api serve --demo` on a database of its own; the demo logins work (password demo-password-1)."""
    server_url = make_url(_server_url())
    name = await _create_database(server_url)
    database_url = server_url.set(database=name).render_as_string(hide_password=False)
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "billing_api", "serve", "--demo", "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1", "--log-level", "warning"],
        env=_service_environment(database_url),
        stdout=subprocess.DEVNULL,
    )
    try:
        _wait_until_ready(process, base_url)
        yield LiveService(base_url=base_url, database_url=database_url)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        await _drop_database(server_url, name)
