"""Abuse limits on password guessing (ASVS 2.2.1, NIST 800-63B 5.2.2).

One failure counter per account, shared by login and the password-confirmation step, and one per client
address for logins. `account_max_failures` failures within `account_failure_window_minutes` of the first
lock the account until that window ends, even for the right password (else the lock could be walked
around); a success resets the account's counter, never the address's. With the defaults (5 per 15 minutes)
no account can be tried more than 25 times in any hour; config.Settings refuses settings that would allow
more than 100.
"""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from billing_api.auth import repository
from billing_api.config import Settings

ACCOUNT, ADDRESS = "account", "address"


def account_key(user_id: uuid.UUID | None, login: str = "") -> str:
    """A login that no account has is counted (and locked) under its name, exactly like a real account."""
    return str(user_id) if user_id is not None else "login:" + login.lower()


def windows(settings: Settings) -> dict[str, timedelta]:
    """Each counter scope's window: failures counted from a window's first, and a lock's longest span."""
    return {ACCOUNT: timedelta(minutes=settings.account_failure_window_minutes),
            ADDRESS: timedelta(minutes=settings.address_failure_window_minutes)}


def _account_window(settings: Settings) -> timedelta:
    return windows(settings)[ACCOUNT]


async def lock_account(session: AsyncSession, settings: Settings, key: str) -> datetime | None:
    """Take the account counter's row lock, held until the request's transaction ends, so the check, the
    password check and the count of its failure happen as one; the end of the account's lock, if locked."""
    return await repository.lock(session, ACCOUNT, key, _account_window(settings))


async def account_failed(session: AsyncSession, settings: Settings, key: str) -> datetime | None:
    return await repository.count_failure(session, ACCOUNT, key, settings.account_max_failures,
                                          _account_window(settings))


async def account_succeeded(session: AsyncSession, key: str) -> None:
    await repository.reset(session, ACCOUNT, key)


async def address_locked(session: AsyncSession, address: str | None) -> datetime | None:
    return await repository.locked_until(session, ADDRESS, address) if address else None


async def address_failed(session: AsyncSession, settings: Settings, address: str | None) -> datetime | None:
    if not address:
        return None
    return await repository.count_failure(session, ADDRESS, address, settings.address_max_failures,
                                          windows(settings)[ADDRESS])


def retry_after(until: datetime) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil((until - datetime.now(UTC)).total_seconds())))}
