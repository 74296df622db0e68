"""All SQL about companies."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from billing_api.authz.scope import CompanyScope
from billing_api.models import Company


async def get_company(session: AsyncSession, company_id: uuid.UUID, *, for_update: bool = False) -> Company | None:
    statement = select(Company).where(Company.id == company_id)
    if for_update:
        statement = statement.with_for_update(key_share=True)
    return (await session.execute(statement)).scalar_one_or_none()


async def list_companies(session: AsyncSession, reach: CompanyScope) -> list[Company]:
    """The companies in `reach`, parents before their children, by name."""
    statement = reach.filter(select(Company), Company.id)
    statement = statement.order_by(Company.parent_id.is_not(None), Company.name, Company.id)
    return list((await session.execute(statement)).scalars())


async def find_company_by_name(session: AsyncSession, name: str) -> Company | None:
    statement = select(Company).where(Company.name == name).order_by(Company.created_at).limit(1)
    return (await session.execute(statement)).scalar_one_or_none()


async def children_of(session: AsyncSession, company_id: uuid.UUID) -> list[Company]:
    """The child companies of a company, by name."""
    statement = select(Company).where(Company.parent_id == company_id).order_by(Company.name, Company.id)
    return list((await session.execute(statement)).scalars())


async def has_children(session: AsyncSession, company_id: uuid.UUID) -> bool:
    statement = select(Company.id).where(Company.parent_id == company_id).limit(1)
    return (await session.execute(statement)).first() is not None


async def lock_companies(session: AsyncSession, company_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Company]:
    """Lock the rows (in id order, so two requests locking the same pair never deadlock) and re-read them."""
    statement = (
        select(Company).where(Company.id.in_(company_ids)).order_by(Company.id)
        .with_for_update(key_share=True).execution_options(populate_existing=True)
    )
    return {company.id: company for company in (await session.execute(statement)).scalars()}
