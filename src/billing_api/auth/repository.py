"""Authentication's SQL: the caller's row, the account a login names, and the failure counters
(models/abuse.py). Each counter change is one INSERT ... ON CONFLICT statement that takes the key's row lock, so
concurrent attempts on one key queue on that row instead of racing."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import bindparam, case, delete, func, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from billing_api.db import columns_of, fetch, loaded
from billing_api.models import FailureCounter, User

# The users authentication reads are its own SQL (not identity's, a feature package auth must not import): the
# hot path still runs its one statement.

_USER_BY_ID = select(*columns_of(User)).where(User.id == bindparam("user_id"))


async def caller(session: AsyncSession, user_id: uuid.UUID) -> User | None:
    """The caller of a request, read fresh (no cache: deactivation and revocation hold on the next request) on
    every authenticated request, so without the ORM's loading (`db.fetch`); the same User as a `session.get`."""
    rows = await fetch(session, _USER_BY_ID, {"user_id": user_id})
    return loaded(session, User, rows[0]) if rows else None


async def find_user_by_login(session: AsyncSession, login: str) -> User | None:
    """A user by username or email, case-insensitively."""
    login = login.lower()
    statement = select(User).where(or_(func.lower(User.username) == login, func.lower(User.email) == login))
    # Usernames and emails never collide across accounts (identity.repository's `_login_taken`); a username
    # match wins anyway.
    statement = statement.order_by(func.lower(User.username) != login)
    return (await session.execute(statement.limit(1))).scalar_one_or_none()


# Failure counters

_row = FailureCounter.__table__.c


def _window(window: timedelta):
    """Whether the stored window has ended, and the window start that holds from now on."""
    ended = _row.window_started_at <= func.now() - window
    return ended, case((ended, func.now()), else_=_row.window_started_at)


async def lock(session: AsyncSession, scope: str, key: str, window: timedelta) -> datetime | None:
    """Hold the key's row lock until the transaction ends; the end of the key's lock if it is locked now."""
    ended, started = _window(window)
    statement = insert(FailureCounter).values(scope=scope, key=key, failures=0, window_started_at=func.now())
    statement = statement.on_conflict_do_update(
        index_elements=[_row.scope, _row.key],
        set_={"failures": case((ended, 0), else_=_row.failures), "window_started_at": started,
              "locked_until": case((ended, None), else_=_row.locked_until)},
    ).returning(_row.locked_until)
    return (await session.execute(statement)).scalar_one()


async def count_failure(session: AsyncSession, scope: str, key: str, max_failures: int,
                        window: timedelta) -> datetime | None:
    """One more failure. Reaching `max_failures` locks the key until its window ends; returns that end, if locked."""
    ended, started = _window(window)
    failures = case((ended, 1), else_=_row.failures + 1)
    statement = insert(FailureCounter).values(
        scope=scope, key=key, failures=1, window_started_at=func.now(),
        locked_until=func.now() + window if max_failures <= 1 else None,
    )
    statement = statement.on_conflict_do_update(
        index_elements=[_row.scope, _row.key],
        set_={"failures": failures, "window_started_at": started,
              "locked_until": case((failures >= max_failures, started + window), else_=None)},
    ).returning(_row.locked_until)
    return (await session.execute(statement)).scalar_one()


async def locked_until(session: AsyncSession, scope: str, key: str) -> datetime | None:
    """The end of the key's lock if it is locked now (reads without locking)."""
    statement = select(FailureCounter.locked_until).where(
        FailureCounter.scope == scope, FailureCounter.key == key, FailureCounter.locked_until > func.now()
    )
    return (await session.execute(statement)).scalar_one_or_none()


async def reset(session: AsyncSession, scope: str, key: str) -> None:
    await session.execute(delete(FailureCounter).where(FailureCounter.scope == scope, FailureCounter.key == key))
