"""All SQL about billing identities."""

from __future__ import annotations

import uuid
from collections.abc import Collection

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from billing_api.models import CompanyBillingIdentity, ProviderBillingIdentity


async def get_provider_identity(session: AsyncSession, provider_id: uuid.UUID) -> ProviderBillingIdentity | None:
    statement = select(ProviderBillingIdentity).where(ProviderBillingIdentity.provider_id == provider_id)
    return (await session.execute(statement)).scalar_one_or_none()


async def provider_identities(session: AsyncSession,
                              provider_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, ProviderBillingIdentity]:
    statement = select(ProviderBillingIdentity).where(ProviderBillingIdentity.provider_id.in_(list(provider_ids)))
    return {row.provider_id: row for row in (await session.execute(statement)).scalars()}


async def get_company_identity(session: AsyncSession, company_id: uuid.UUID) -> CompanyBillingIdentity | None:
    statement = select(CompanyBillingIdentity).where(CompanyBillingIdentity.company_id == company_id)
    return (await session.execute(statement)).scalar_one_or_none()


async def provider_identity_for_update(session: AsyncSession, provider_id: uuid.UUID) -> ProviderBillingIdentity:
    """The provider's row, created empty if it was missing, locked: two saves at once take turns, and the second
    sees (and audits against) what the first wrote."""
    await session.execute(insert(ProviderBillingIdentity).values(provider_id=provider_id)
                          .on_conflict_do_nothing(index_elements=["provider_id"]))
    statement = (select(ProviderBillingIdentity).where(ProviderBillingIdentity.provider_id == provider_id)
                 .with_for_update().execution_options(populate_existing=True))
    return (await session.execute(statement)).scalar_one()


async def company_identity_for_update(session: AsyncSession, company_id: uuid.UUID) -> CompanyBillingIdentity:
    await session.execute(insert(CompanyBillingIdentity).values(company_id=company_id)
                          .on_conflict_do_nothing(index_elements=["company_id"]))
    statement = (select(CompanyBillingIdentity).where(CompanyBillingIdentity.company_id == company_id)
                 .with_for_update().execution_options(populate_existing=True))
    return (await session.execute(statement)).scalar_one()
