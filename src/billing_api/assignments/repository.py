"""All SQL about billing customer assignments. Reach itself (rule 3) is `authz.repository.reached_companies`."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from billing_api.models import Company, Group, GroupCompanyAssignment, GroupMember, User, UserCompanyAssignment


async def group_company_ids(session: AsyncSession, group_id: uuid.UUID) -> set[uuid.UUID]:
    statement = select(GroupCompanyAssignment.company_id).where(GroupCompanyAssignment.group_id == group_id)
    return set((await session.execute(statement)).scalars())


async def set_group_companies(session: AsyncSession, group_id: uuid.UUID, company_ids: set[uuid.UUID]) -> None:
    await session.execute(delete(GroupCompanyAssignment).where(
        GroupCompanyAssignment.group_id == group_id, GroupCompanyAssignment.company_id.not_in(company_ids)))
    if company_ids:
        await session.execute(
            insert(GroupCompanyAssignment)
            .values([{"group_id": group_id, "company_id": company_id} for company_id in company_ids])
            .on_conflict_do_nothing()
        )


async def user_company_ids(session: AsyncSession, user_id: uuid.UUID) -> set[uuid.UUID]:
    """The user's direct assignments."""
    statement = select(UserCompanyAssignment.company_id).where(UserCompanyAssignment.user_id == user_id)
    return set((await session.execute(statement)).scalars())


async def set_user_companies(session: AsyncSession, user_id: uuid.UUID, company_ids: set[uuid.UUID]) -> None:
    await session.execute(delete(UserCompanyAssignment).where(
        UserCompanyAssignment.user_id == user_id, UserCompanyAssignment.company_id.not_in(company_ids)))
    if company_ids:
        await session.execute(
            insert(UserCompanyAssignment)
            .values([{"user_id": user_id, "company_id": company_id} for company_id in company_ids])
            .on_conflict_do_nothing()
        )


async def role_sources(session: AsyncSession, user: User) -> list[tuple[uuid.UUID, uuid.UUID, str]]:
    """(company id, group id, group name): child companies of the user's home company that a group (role) of
    theirs gives them, by group name."""
    statement = (
        select(GroupCompanyAssignment.company_id, Group.id, Group.name)
        .join(Group, Group.id == GroupCompanyAssignment.group_id)
        .join(GroupMember, GroupMember.group_id == Group.id)
        .join(Company, Company.id == GroupCompanyAssignment.company_id)
        .where(GroupMember.user_id == user.id, Company.parent_id == user.company_id)
        .order_by(Group.name, Group.id)
    )
    return [tuple(row) for row in (await session.execute(statement)).all()]


async def companies_of_groups(session: AsyncSession, group_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
    """Every company assigned to any of the groups (what joining them hands over)."""
    statement = select(GroupCompanyAssignment.company_id).where(GroupCompanyAssignment.group_id.in_(list(group_ids)))
    return set((await session.execute(statement)).scalars())


async def drop_assignments_to(session: AsyncSession, company_id: uuid.UUID) -> int:
    """Remove every assignment naming the company (it moved to another parent, or left its parent): they
    were made by the old parent's users and groups and would grant nothing any more."""
    users = await session.execute(delete(UserCompanyAssignment).where(UserCompanyAssignment.company_id == company_id))
    groups = await session.execute(
        delete(GroupCompanyAssignment).where(GroupCompanyAssignment.company_id == company_id))
    return users.rowcount + groups.rowcount
