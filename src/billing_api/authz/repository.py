"""SQL that authorization reads. The statements here are also embedded in bill queries."""

from __future__ import annotations

import uuid

from sqlalchemy import ColumnElement, Select, and_, func, select, union
from sqlalchemy.ext.asyncio import AsyncSession

from billing_api.models import (
    AccountType,
    Company,
    Group,
    GroupCompanyAssignment,
    GroupMember,
    User,
    UserCompanyAssignment,
    UserKind,
)


def reached_companies(user_id: ColumnElement[uuid.UUID] | uuid.UUID) -> Select[tuple[uuid.UUID]]:
    """Company ids the user reaches (rule 3): the home company; for a company admin, every child of it; child
    companies of it assigned to the user directly or to a group (role) the user belongs to. An assignment
    counts only while its company is a child of the user's home company."""
    home = select(User.company_id.label("company_id")).where(User.id == user_id)
    admin_children = (
        select(Company.id.label("company_id"))
        .join(User, and_(User.id == user_id, User.account_type == AccountType.company_admin))
        .where(Company.parent_id == User.company_id)
    )
    assigned = (
        select(UserCompanyAssignment.company_id.label("company_id"))
        .join(Company, Company.id == UserCompanyAssignment.company_id)
        .join(User, User.id == UserCompanyAssignment.user_id)
        .where(UserCompanyAssignment.user_id == user_id, Company.parent_id == User.company_id)
    )
    through_groups = (
        select(GroupCompanyAssignment.company_id.label("company_id"))
        .join(GroupMember, GroupMember.group_id == GroupCompanyAssignment.group_id)
        .join(Company, Company.id == GroupCompanyAssignment.company_id)
        .join(User, User.id == GroupMember.user_id)
        .where(GroupMember.user_id == user_id, Company.parent_id == User.company_id)
    )
    return union(home, admin_children, assigned, through_groups).subquery("reached").select()


def users_reaching(company_id: uuid.UUID, *, members_only: bool = False) -> Select[tuple[uuid.UUID]]:
    """The exact inverse of `reached_companies`: ids of users who reach the company (any status). With
    `members_only`, the practice's own people (rule 6 never applies to invited users)."""
    home = select(User.id.label("user_id")).where(User.company_id == company_id)
    parent_admins = (
        select(User.id.label("user_id"))
        .join(Company, Company.parent_id == User.company_id)
        .where(Company.id == company_id, User.account_type == AccountType.company_admin)
    )
    assigned = (
        select(User.id.label("user_id"))
        .join(UserCompanyAssignment, UserCompanyAssignment.user_id == User.id)
        .join(Company, Company.id == UserCompanyAssignment.company_id)
        .where(UserCompanyAssignment.company_id == company_id, Company.parent_id == User.company_id)
    )
    through_groups = (
        select(User.id.label("user_id"))
        .join(GroupMember, GroupMember.user_id == User.id)
        .join(GroupCompanyAssignment, GroupCompanyAssignment.group_id == GroupMember.group_id)
        .join(Company, Company.id == GroupCompanyAssignment.company_id)
        .where(GroupCompanyAssignment.company_id == company_id, Company.parent_id == User.company_id)
    )
    branches = [home, parent_admins, assigned, through_groups]
    if members_only:
        branches = [branch.where(User.kind == UserKind.member) for branch in branches]
    return union(*branches).subquery("reaching").select()


def role_permissions(user_id: uuid.UUID) -> Select[tuple[str]]:
    """Permissions held directly or through a group's role."""
    direct = select(func.unnest(User.permissions).label("permission")).where(User.id == user_id)
    through_groups = (
        select(func.unnest(Group.permissions).label("permission"))
        .join(GroupMember, GroupMember.group_id == Group.id)
        .where(GroupMember.user_id == user_id)
    )
    return union(direct, through_groups).subquery("held").select()


async def actor_facts(session: AsyncSession, user_id: uuid.UUID) -> tuple[list[str], list[uuid.UUID]]:
    permissions = (await session.execute(role_permissions(user_id))).scalars().all()
    reached = (await session.execute(reached_companies(user_id))).scalars().all()
    return list(permissions), list(reached)



async def reaches(session: AsyncSession, user_id: uuid.UUID, company_id: uuid.UUID) -> bool:
    """Does the user reach the company (rule 3): one probe, for requests that need no other fact about them."""
    reached = reached_companies(user_id).subquery()
    statement = select(reached.c.company_id).where(reached.c.company_id == company_id).exists().select()
    return bool((await session.execute(statement)).scalar_one())
