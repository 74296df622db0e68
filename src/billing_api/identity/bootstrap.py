"""Operator-side creation (CLI and demo data): no caller to authorize, idempotent by name."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from billing_api.auth import repository as auth_repository
from billing_api.auth.passwords import hash_password
from billing_api.companies import repository as company_repository
from billing_api.config import Settings
from billing_api.identity import repository
from billing_api.models import AccountType, Company, Group, User


async def ensure_company(
    session: AsyncSession, name: str, *, time_zone: str = "UTC", parent: Company | None = None
) -> Company:
    company = await company_repository.find_company_by_name(session, name)
    if company is None:
        if parent is not None and parent.parent_id is not None:
            # Two levels (the database refuses it too): a child company cannot have children.
            raise ValueError(f"{parent.name} is a child company and cannot have children")
        company = Company(id=uuid.uuid4(), name=name, time_zone=time_zone, parent_id=parent.id if parent else None)
        session.add(company)
        await session.flush()
    return company


async def ensure_user(
    session: AsyncSession,
    settings: Settings,
    company: Company,
    username: str,
    *,
    display_name: str,
    password: str,
    email: str | None = None,
    account_type: AccountType = AccountType.standard,
    billing_number: str | None = None,
    permissions: list[str] | None = None,
) -> User:
    user = await auth_repository.find_user_by_login(session, username)
    if user is None:
        user = User(
            id=uuid.uuid4(),
            company_id=company.id,
            username=username,
            email=email or f"{username}@example.org",
            display_name=display_name,
            password_hash=await hash_password(settings, password),
            account_type=account_type,
            is_provider=billing_number is not None,
            billing_number=billing_number,
            permissions=sorted(permissions or []),
        )
        session.add(user)
        await session.flush()
    return user


async def ensure_group(
    session: AsyncSession, company: Company, name: str, members: list[User], permissions: list[str] | None = None
) -> Group:
    found = await repository.find_group_by_name(session, company.id, name)
    if found is None:
        found = Group(id=uuid.uuid4(), company_id=company.id, name=name, permissions=sorted(permissions or []))
        session.add(found)
        await session.flush()
    current = {member.id for member in await repository.group_members(session, found.id)}
    await repository.set_group_members(session, found.id, current | {member.id for member in members})
    return found
