"""Real SMTP servers on loopback (aiosmtpd), for every test that sends mail (the root conftest's `collector`, the
mail tests' `refuser`, the e2e services): one that collects every message, one that refuses every recipient. Each
runs in its own thread, on a port picked free first (docs/stack-notes.md, trap 9). `free_port` also serves the
tests that start a server of their own."""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
import socket
import threading
import time
from email.message import EmailMessage

from aiosmtpd.controller import Controller

from billing_api.config import Settings

LINK = re.compile(r"(https?://\S+/invitations/accept\?token=([A-Za-z0-9_-]+))")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Collector:
    """Accepts every message and keeps it, parsed."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self._lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self._lock:
            self.messages.append(message)
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[EmailMessage]:
        with self._lock:
            return [m for m in self.messages if str(m["To"]).lower() == address.lower()]

    def wait_for(self, address: str, count: int = 1, timeout: float = 10.0) -> list[EmailMessage]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.to(address)
            if len(found) >= count:
                return found
            time.sleep(0.02)
        raise AssertionError(f"no mail to {address} within {timeout}s (got {len(self.to(address))})")

    async def wait_for_async(self, address: str, count: int = 1, timeout: float = 10.0) -> list[EmailMessage]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.to(address)
            if len(found) >= count:
                return found
            await asyncio.sleep(0.02)
        raise AssertionError(f"no mail to {address} within {timeout}s (got {len(self.to(address))})")


class Refuser:
    """Refuses every recipient, as a server with no such mailbox does."""

    def __init__(self) -> None:
        self.refused: list[str] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:
        self.refused.append(address)
        return "550 5.1.1 <" + address + ">: Recipient address rejected: User unknown in virtual mailbox table"


def start(handler) -> tuple[Controller, int]:
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    return controller, port


def serving(handler):
    """`handler` served on a free loopback port for as long as the generator is open (a fixture's body)."""
    controller, port = start(handler)
    handler.port = port
    yield handler
    controller.stop()


def mail_settings(settings: Settings, port: int, **changes) -> Settings:
    """The settings with the service's sender pointed at one of these servers."""
    return settings.model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": port,
                                       "public_base_url": "https://billing.example.org", **changes})


def bodies(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    return text, html


def token_of(message: EmailMessage) -> str:
    """The token of the accept link in the plain-text body (the HTML body carries the same link)."""
    text, html = bodies(message)
    found = LINK.search(text)
    assert found, text
    assert found.group(1) in html.replace("&amp;", "&")
    return found.group(2)
