"""`db.fetch` and `db.loaded`, the hot path's way around SQLAlchemy's execution: they behave as the session's
own statements do (same transaction, autoflush, errors, loaded objects)."""

from __future__ import annotations

import pytest
from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError

from billing_api.auth import repository as auth_repository
from billing_api.db import columns_of, fetch, loaded
from billing_api.models import AccessLogEntry, User, UserStatus

BY_ID = select(*columns_of(User)).where(User.id == bindparam("user_id"))


async def test_fetch_runs_in_the_sessions_transaction_and_sees_its_unflushed_changes(factory, session):
    user = await factory.user(await factory.company())
    user.display_name = "Renamed, not yet flushed"
    (row,) = await fetch(session, BY_ID, {"user_id": user.id})
    assert row.display_name == "Renamed, not yet flushed" and row["username"] == user.username
    await session.rollback()  # the fixture's savepoint: the statement ran inside it
    assert await fetch(session, BY_ID, {"user_id": user.id}) == []


async def test_loaded_is_the_orm_user_as_the_session_would_load_it(factory, session):
    user = await factory.user(await factory.company())
    await session.commit()
    session.expunge_all()
    caller = await auth_repository.caller(session, user.id)
    assert isinstance(caller, User) and caller in session and not session.dirty
    assert caller.status is UserStatus.active and caller.permissions == user.permissions  # enums and arrays typed
    caller.display_name = "Changed through the loaded object"
    await session.flush()  # an UPDATE of the existing row, not an INSERT of a new one
    (row,) = await fetch(session, BY_ID, {"user_id": user.id})
    assert row.display_name == "Changed through the loaded object"


async def test_loaded_brings_the_sessions_own_copy_up_to_the_row(factory, session):
    user = await factory.user(await factory.company())
    (row,) = await fetch(session, BY_ID, {"user_id": user.id})
    stale = {**dict(row.items()), "display_name": "What the database says now"}
    assert loaded(session, User, stale) is user and user.display_name == "What the database says now"


async def test_fetch_raises_what_sqlalchemy_raises(factory, session):
    insert = AccessLogEntry.__table__.insert().values(id=bindparam("id"), actor_id=bindparam("actor"))
    with pytest.raises(IntegrityError):  # NOT NULL columns left out: the driver's error, as SQLAlchemy's class
        await fetch(session, insert, {"id": None, "actor": None})
