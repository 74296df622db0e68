"""The demo's mail catcher: `billing-api serve --demo` with no SMTP server configured would send its mail to
localhost:25, where on a newcomer's machine nothing listens, and an invitation made on the demo would never be
seen. Instead, a small SMTP server (aiosmtpd) on loopback, in the serving process, receives it and writes each
message to a folder as a .eml file, which any mail program opens. The outbox sender talks to it as to any SMTP
server, so the demo runs the same delivery path as production.
"""

from __future__ import annotations

import socket
import uuid
from datetime import UTC, datetime
from pathlib import Path

from aiosmtpd.controller import Controller

HOST = "127.0.0.1"


class _ToFolder:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    async def handle_DATA(self, server, session, envelope) -> str:
        name = f"{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:8]}.eml"  # in the order received
        partial = self.folder / f".{name}.partial"
        partial.write_bytes(envelope.original_content or envelope.content)
        partial.replace(self.folder / name)  # whole messages only, for anyone watching the folder
        return "250 Message accepted for delivery"


def _free_port() -> int:
    # aiosmtpd's Controller cannot listen on port 0 (it connects to its own port to check it is up).
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def start(folder: Path) -> tuple[Controller, int]:
    """Catch mail into `folder` (created) from now on, in a thread of this process; the controller (stop it at the
    end) and the SMTP port it listens on."""
    folder.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    controller = Controller(_ToFolder(folder), hostname=HOST, port=port)
    controller.start()
    return controller, port
