"""SQL that authorization reads. The statements here are also embedded in bill queries."""

from __future__ import annotations

import uuid

from sqlalchemy import ColumnElement, Select, and_, func, select, union
from sqlalchemy.ext.asyncio import AsyncSession

from billing_api.models import AccountType, Company, Group, GroupMember, User, UserKind


def reached_companies(user_id: ColumnElement[uuid.UUID] | uuid.UUID) -> Select[tuple[uuid.UUID]]:
    """Company ids the user reaches (rule 3): the home company and, for a company admin, its children."""
    home = select(User.company_id.label("company_id")).where(User.id == user_id)
    admin_children = (
        select(Company.id.label("company_id"))
        .join(User, and_(User.id == user_id, User.account_type == AccountType.company_admin))
        .where(Company.parent_id == User.company_id)
    )
    return union(home, admin_children).subquery("reached").select()


def users_reaching(company_id: uuid.UUID, *, members_only: bool = False) -> Select[tuple[uuid.UUID]]:
    """The inverse of `reached_companies`: ids of users who reach the company (any status). With
    `members_only`, the practice's own people (rule 6 never applies to invited users)."""
    home = select(User.id.label("user_id")).where(User.company_id == company_id)
    parent_admins = (
        select(User.id.label("user_id"))
        .join(Company, Company.parent_id == User.company_id)
        .where(Company.id == company_id, User.account_type == AccountType.company_admin)
    )
    if members_only:
        home = home.where(User.kind == UserKind.member)
        parent_admins = parent_admins.where(User.kind == UserKind.member)
    return union(home, parent_admins).subquery("reaching").select()


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

