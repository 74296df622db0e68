"""Small assertions shared by the test modules."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from billing_api.models import AccountType

ADMIN = AccountType.company_admin
SUPPORT = AccountType.support


def assert_problem(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """An RFC 9457 problem+json answer with the given status (and stable code)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json", response.headers
    body = response.json()
    assert body["status"] == status and body["title"] and isinstance(body["code"], str) and body["code"]
    assert "Traceback" not in response.text
    if code is not None:
        assert body["code"] == code, body
    return body


START_GUARD_SECONDS = 180  # a guard against a server that never starts, not a speed check


async def wait_until_answering(http: httpx.AsyncClient, path: str, diagnostics: Callable[[], str]) -> None:
    """Poll `path` of a service started as a subprocess until it answers 200; fail with `diagnostics()` (its log)."""
    for _ in range(START_GUARD_SECONDS * 2):
        try:
            if (await http.get(path)).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.5)
    raise AssertionError(diagnostics())


# The tables identity writes to. A snapshot of them shows that a refused request wrote nothing.
TABLES = ("company", "app_user", "user_group", "group_member", "audit_event")


async def snapshot(session: AsyncSession, tables: tuple[str, ...] = TABLES) -> dict[str, list[tuple]]:
    state = {}
    for table in tables:
        rows = await session.execute(text(f"SELECT * FROM {table} ORDER BY 1, 2"))
        state[table] = [tuple(row) for row in rows]
    return state


async def count(session: AsyncSession, table: str, where: str = "true", **params: Any) -> int:
    return (await session.execute(text(f"SELECT count(*) FROM {table} WHERE {where}"), params)).scalar_one()
