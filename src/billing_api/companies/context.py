"""The active company of a request (the context switcher): named by the `X-Company-Id` header.

Routes that honour it take `ActiveCompany`, which also documents the header in the OpenAPI contract. Without
the header a list spans every company the caller may see; with it, only that company's records.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Header
from sqlalchemy.ext.asyncio import AsyncSession

from billing_api.auth.principal import CurrentPrincipal, Principal
from billing_api.authz import repository as authz_repository
from billing_api.companies import repository
from billing_api.db import Session
from billing_api.errors import NotFound
from billing_api.models import AccountType

ACTIVE_COMPANY_HEADER = "X-Company-Id"


async def _may_name(session: AsyncSession, principal: Principal, company_id: uuid.UUID) -> bool:
    """A company the caller reaches (support: any company), as `policies.may_view_company` decides; read only
    when the header is given, so the hot list routes load nothing more without it."""
    if principal.user.account_type == AccountType.support:
        return await repository.get_company(session, company_id) is not None
    return await authz_repository.reaches(session, principal.id, company_id)


async def active_company(
    session: Session,
    principal: CurrentPrincipal,
    # Typed without `| None` (the default is never validated): a header is sent or not, it is never null,
    # so the contract must not offer `null` as a value.
    company_id: Annotated[uuid.UUID, Header(
        alias=ACTIVE_COMPANY_HEADER,
        description="The active company (from `GET /v1/me/companies`): only its records are listed. Omitted: "
                    "every company the caller reaches. A company the caller does not reach is a 404 "
                    "(`active_company_not_found`).",
    )] = None,
) -> uuid.UUID | None:
    if company_id is None:
        return None
    if not await _may_name(session, principal, company_id):
        raise NotFound(f"The {ACTIVE_COMPANY_HEADER} header names no company you reach.",
                       code="active_company_not_found", extra={"header": ACTIVE_COMPANY_HEADER})
    return company_id


ActiveCompany = Annotated[uuid.UUID | None, Depends(active_company)]


def within_active_company(active: uuid.UUID | None, company_id: uuid.UUID, noun: str) -> None:
    """A record of another company than the active one is not found (while the header names one)."""
    if active is not None and company_id != active:
        raise NotFound(f"No such {noun} in the active company.", code=f"{noun}_not_found")
