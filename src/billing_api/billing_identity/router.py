"""HTTP for provider and practice billing identity. No SQL and no rules here."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from billing_api.auth.principal import CurrentPrincipal
from billing_api.authz.dependencies import CurrentActor
from billing_api.billing_identity import service
from billing_api.billing_identity.schemas import (
    CompanyBillingIdentityRead,
    CompanyBillingIdentityUpdate,
    ProviderBillingIdentityRead,
    ProviderBillingIdentityUpdate,
)
from billing_api.db import Session
from billing_api.errors import problem_responses

READ_ERRORS = problem_responses(401, 404, 422)
WRITE_ERRORS = problem_responses(400, 401, 403, 404, 422)

router = APIRouter(prefix="/v1", tags=["billing identity"])


@router.get("/providers/{provider_id}/billing-identity", response_model=ProviderBillingIdentityRead,
            responses=READ_ERRORS)
async def get_provider_billing_identity(provider_id: uuid.UUID, session: Session,
                                        actor: CurrentActor) -> ProviderBillingIdentityRead:
    """What claims and superbills name for the provider: NPI, provincial billing number, credentials, taxonomy
    code (every field null until saved). Whoever knows the provider: themself, users who reach the provider's
    company, support, and the users the provider's delegation list names."""
    return await service.get_provider_identity(session, actor, provider_id)


@router.put("/providers/{provider_id}/billing-identity", response_model=ProviderBillingIdentityRead,
            responses=WRITE_ERRORS)
async def put_provider_billing_identity(provider_id: uuid.UUID, data: ProviderBillingIdentityUpdate,
                                        session: Session, principal: CurrentPrincipal,
                                        actor: CurrentActor) -> ProviderBillingIdentityRead:
    """Replace the provider's billing identity (a field left out is cleared). The provider and company
    administrators who reach the provider's company. Every number is checked before anything is saved: 422
    with a `code` naming the field and the rule (`npi_check_digit`, `provincial_billing_number_format`, ...)."""
    return await service.put_provider_identity(session, principal, actor, provider_id, data)


@router.get("/companies/{company_id}/billing-identity", response_model=CompanyBillingIdentityRead,
            responses=READ_ERRORS)
async def get_company_billing_identity(company_id: uuid.UUID, session: Session,
                                       actor: CurrentActor) -> CompanyBillingIdentityRead:
    """What claims and superbills name for the practice: billing name, tax id or business number, address,
    phone, default place of service. Whoever reaches the company, and support."""
    return await service.get_company_identity(session, actor, company_id)


@router.put("/companies/{company_id}/billing-identity", response_model=CompanyBillingIdentityRead,
            responses=WRITE_ERRORS)
async def put_company_billing_identity(company_id: uuid.UUID, data: CompanyBillingIdentityUpdate,
                                       session: Session, principal: CurrentPrincipal,
                                       actor: CurrentActor) -> CompanyBillingIdentityRead:
    """Replace the practice's billing identity (a field left out is cleared). Company administrators. Every
    value is checked before anything is saved: 422 with a `code` naming the field and the rule (`tax_id_prefix`,
    `place_of_service_unknown`, ...)."""
    return await service.put_company_identity(session, principal, actor, company_id, data)
