"""All SQL about users, groups and memberships."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Select, and_, delete, func, or_, select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from billing_api.authz.scope import CompanyScope
from billing_api.models import Group, GroupMember, User, UserStatus


def _after(statement: Select, model: type, after: tuple[datetime, uuid.UUID] | None) -> Select:
    if after is not None:
        statement = statement.where(tuple_(model.created_at, model.id) > tuple_(*after))
    return statement.order_by(model.created_at, model.id)


async def get_user(session: AsyncSession, user_id: uuid.UUID) -> User | None:
    return await session.get(User, user_id)


async def get_user_for_update(session: AsyncSession, user_id: uuid.UUID) -> User | None:
    """Lock the row and re-read it: the request may hold the user already (the caller, say), and a change
    made on the stale copy would overwrite a concurrent one (two token_version bumps becoming one)."""
    # FOR NO KEY UPDATE (key_share): the foreign-key checks of inserts that reference the user (audit and access
    # log rows, inserted under the hash chain's lock) must not wait for this lock; waiting deadlocked.
    statement = (select(User).where(User.id == user_id).with_for_update(key_share=True)
                 .execution_options(populate_existing=True))
    return (await session.execute(statement)).scalar_one_or_none()


async def _login_taken(session: AsyncSession, login: str, except_user: uuid.UUID | None) -> bool:
    """Someone else logs in with `login`, as their username or as their email.

    Both log in (POST /v1/auth/token takes either), so a username may not equal another account's email
    and an email may not equal another account's username: one login names one account.
    """
    login = login.lower()
    statement = select(User.id).where(or_(func.lower(User.username) == login, func.lower(User.email) == login))
    if except_user:
        statement = statement.where(User.id != except_user)
    return (await session.execute(statement.limit(1))).first() is not None


async def email_taken(session: AsyncSession, email: str, *, except_user: uuid.UUID | None = None) -> bool:
    return await _login_taken(session, email, except_user)


async def username_taken(session: AsyncSession, username: str, *, except_user: uuid.UUID | None = None) -> bool:
    return await _login_taken(session, username, except_user)


async def list_users(
    session: AsyncSession,
    reach: CompanyScope,
    *,
    status: UserStatus | None,
    query: str | None,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None,
) -> list[User]:
    """Users of the companies in `reach`, oldest first; limit + 1 rows."""
    statement = reach.filter(select(User), User.company_id)
    if status is not None:
        statement = statement.where(User.status == status)
    if query:
        pattern = f"%{_escape_like(query)}%"
        statement = statement.where(or_(User.display_name.ilike(pattern), User.username.ilike(pattern)))
    statement = _after(statement, User, after).limit(limit + 1)
    return list((await session.execute(statement)).scalars())


async def users_in_company(session: AsyncSession, company_id: uuid.UUID, user_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    statement = select(User.id).where(User.company_id == company_id, User.id.in_(user_ids))
    return set((await session.execute(statement)).scalars())


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# Groups


def _member_counts() -> tuple:
    total = (
        select(func.count()).where(GroupMember.group_id == Group.id).correlate(Group).scalar_subquery()
    )
    active = (
        select(func.count())
        .select_from(GroupMember)
        .join(User, User.id == GroupMember.user_id)
        .where(GroupMember.group_id == Group.id, User.status == UserStatus.active)
        .correlate(Group)
        .scalar_subquery()
    )
    return total.label("member_count"), active.label("active_member_count")


async def get_group(session: AsyncSession, group_id: uuid.UUID, *, for_update: bool = False) -> Group | None:
    statement = select(Group).where(Group.id == group_id)
    if for_update:
        statement = statement.with_for_update(key_share=True).execution_options(populate_existing=True)
    return (await session.execute(statement)).scalar_one_or_none()


async def get_group_with_counts(session: AsyncSession, group_id: uuid.UUID) -> tuple[Group, int, int] | None:
    row = (await session.execute(select(Group, *_member_counts()).where(Group.id == group_id))).first()
    return (row[0], row[1], row[2]) if row else None


async def list_groups(
    session: AsyncSession,
    reach: CompanyScope,
    *,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None,
) -> list[tuple[Group, int, int]]:
    statement = reach.filter(select(Group, *_member_counts()), Group.company_id)
    statement = _after(statement, Group, after).limit(limit + 1)
    return [(row[0], row[1], row[2]) for row in (await session.execute(statement)).all()]


async def find_group_by_name(session: AsyncSession, company_id: uuid.UUID, name: str) -> Group | None:
    """The company's group of exactly this name (the newest, should there be two): for setting up, no caller."""
    statement = (select(Group).where(Group.company_id == company_id, Group.name == name)
                 .order_by(Group.created_at.desc(), Group.id.desc()).limit(1))
    return (await session.execute(statement)).scalar_one_or_none()


async def group_name_taken(
    session: AsyncSession, company_id: uuid.UUID, name: str, *, except_group: uuid.UUID | None = None
) -> bool:
    statement = select(Group.id).where(Group.company_id == company_id, func.lower(Group.name) == name.lower())
    if except_group:
        statement = statement.where(Group.id != except_group)
    return (await session.execute(statement.limit(1))).first() is not None


async def group_members(session: AsyncSession, group_id: uuid.UUID) -> list[User]:
    statement = (
        select(User)
        .join(GroupMember, GroupMember.user_id == User.id)
        .where(GroupMember.group_id == group_id)
        .order_by(User.display_name, User.id)
    )
    return list((await session.execute(statement)).scalars())


async def set_group_members(session: AsyncSession, group_id: uuid.UUID, user_ids: set[uuid.UUID]) -> None:
    await session.execute(
        delete(GroupMember).where(GroupMember.group_id == group_id, GroupMember.user_id.not_in(user_ids))
    )
    if user_ids:
        await session.execute(
            insert(GroupMember)
            .values([{"group_id": group_id, "user_id": user_id} for user_id in user_ids])
            .on_conflict_do_nothing()
        )


# Directory


async def search_directory(
    session: AsyncSession, company_id: uuid.UUID, query: str, limit: int
) -> tuple[list[User], list[tuple[Group, int]]]:
    pattern = f"%{_escape_like(query)}%"
    users = (
        await session.execute(
            select(User)
            .where(
                User.company_id == company_id,
                User.status == UserStatus.active,
                or_(User.display_name.ilike(pattern), User.username.ilike(pattern)),
            )
            .order_by(User.display_name, User.id)
            .limit(limit)
        )
    ).scalars()
    _, active_count = _member_counts()
    groups = (
        await session.execute(
            select(Group, active_count)
            .where(and_(Group.company_id == company_id, Group.name.ilike(pattern)))
            .order_by(Group.name, Group.id)
            .limit(limit)
        )
    ).all()
    return list(users), [(row[0], row[1]) for row in groups]
