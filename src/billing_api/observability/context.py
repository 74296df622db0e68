"""The request being served, as log lines and error bodies see it.

The middleware puts a fresh dict in the context variable for each request; the principal dependency adds the
user id to that same dict, so the access line written after the endpoint returns sees it whatever context
copies happened in between.
"""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar
from typing import Any

REQUEST_ID_HEADER = "X-Request-ID"
REQUEST_ID_MAX_LENGTH = 64
_UNSAFE = re.compile(r"[^A-Za-z0-9._:/+=@-]")

current: ContextVar[dict[str, Any] | None] = ContextVar("billing_api_request", default=None)


def request_id_from(incoming: str | None) -> str:
    """The caller's id stripped to safe characters and capped (it ends up in logs and headers), or a new one."""
    cleaned = _UNSAFE.sub("", incoming or "")[:REQUEST_ID_MAX_LENGTH]
    return cleaned or uuid.uuid4().hex


def request_id() -> str | None:
    state = current.get()
    return state["request_id"] if state else None


def bind_user(user_id: uuid.UUID) -> None:
    state = current.get()
    if state is not None:
        state["user_id"] = str(user_id)
