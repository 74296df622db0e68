"""Provider and practice billing identity: who may read and change them, the rules on save, and what documents
print (`identity_for_documents`).

Reading a provider's identity: whoever knows the provider (themself, anyone who reaches the provider's company,
support, and users the provider's delegation list names, who prepare the provider's claims). Changing it: the
provider and company administrators who reach the provider's company. A practice's identity: read by whoever
reaches the company, changed by its company administrators. Support reads and never changes.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from billing_api.audit.service import record as audit
from billing_api.auth.principal import Principal
from billing_api.authz.actor import Actor
from billing_api.authz.policies import may_administer_company
from billing_api.billing_identity import numbers, repository
from billing_api.billing_identity.schemas import (
    CompanyBillingIdentityRead,
    CompanyBillingIdentityUpdate,
    ProviderBillingIdentityRead,
    ProviderBillingIdentityUpdate,
)
from billing_api.companies import service as company_service
from billing_api.delegation.service import provider_known
from billing_api.errors import Forbidden, NotFound
from billing_api.identity import repository as identity_repository
from billing_api.models import Company, CompanyBillingIdentity, ProviderBillingIdentity, User

PROVIDER_FIELDS = ("npi", "province", "provincial_billing_number", "credentials", "taxonomy_code")
COMPANY_FIELDS = ("legal_name", "tax_id", "business_number", "address_lines", "phone", "place_of_service")


# What documents print


@dataclass(frozen=True)
class ProviderIdentity:
    npi: str | None = None
    province: str | None = None
    provincial_billing_number: str | None = None
    credentials: str | None = None
    taxonomy_code: str | None = None


@dataclass(frozen=True)
class PracticeIdentity:
    legal_name: str | None = None
    tax_id: str | None = None
    business_number: str | None = None
    address_lines: tuple[str, ...] | None = None
    phone: str | None = None
    place_of_service: str | None = None
    place_of_service_name: str | None = None


@dataclass(frozen=True)
class DocumentIdentity:
    """The identities a claim, superbill or statement names: the practice's, and each provider's (every field None
    when it was never set)."""

    providers: dict[uuid.UUID, ProviderIdentity]
    practice: PracticeIdentity


async def identity_for_documents(session: AsyncSession, *, provider_ids: Collection[uuid.UUID],
                                 company_id: uuid.UUID) -> DocumentIdentity:
    """For the document renderer, which has already decided that the caller may see the document: no access
    check here, and nothing written."""
    found = await repository.provider_identities(session, provider_ids)
    practice = await repository.get_company_identity(session, company_id)
    return DocumentIdentity(
        providers={
            provider_id: ProviderIdentity(**{field: getattr(found[provider_id], field) for field in PROVIDER_FIELDS})
            if provider_id in found else ProviderIdentity()
            for provider_id in provider_ids
        },
        practice=PracticeIdentity(
            legal_name=practice.legal_name, tax_id=practice.tax_id, business_number=practice.business_number,
            address_lines=tuple(practice.address_lines) or None, phone=practice.phone,
            place_of_service=practice.place_of_service,
            place_of_service_name=numbers.PLACES_OF_SERVICE.get(practice.place_of_service or ""),
        ) if practice else PracticeIdentity(),
    )


# Providers


async def _known_provider(session: AsyncSession, actor: Actor, provider_id: uuid.UUID) -> User:
    provider = await identity_repository.get_user(session, provider_id)
    if provider is None or not await provider_known(session, actor, provider):
        raise NotFound("No such provider.", code="provider_not_found")
    return provider


def _provider_read(provider_id: uuid.UUID, row: ProviderBillingIdentity | None) -> ProviderBillingIdentityRead:
    if row is None:
        return ProviderBillingIdentityRead(provider_id=provider_id, npi=None, province=None,
                                           provincial_billing_number=None, credentials=None, taxonomy_code=None,
                                           updated_at=None, updated_by=None)
    return ProviderBillingIdentityRead.model_validate(row)


async def get_provider_identity(session: AsyncSession, actor: Actor,
                                provider_id: uuid.UUID) -> ProviderBillingIdentityRead:
    provider = await _known_provider(session, actor, provider_id)
    return _provider_read(provider.id, await repository.get_provider_identity(session, provider.id))


def _check_provider_edit(actor: Actor, provider: User) -> None:
    if actor.is_support:
        raise Forbidden("Support accounts are read-only.", code="support_read_only")
    if not actor.active or not (actor.id == provider.id or may_administer_company(actor, provider.company_id)):
        raise Forbidden("Only the provider and company administrators change a provider's billing identity.",
                        code="billing_identity_edit_forbidden")


def _provider_values(data: ProviderBillingIdentityUpdate) -> dict[str, Any]:
    """Every rule, before anything is written."""
    province, number = numbers.provincial_billing_number(data.province, data.provincial_billing_number)
    return {
        "npi": numbers.npi(data.npi) if data.npi is not None else None,
        "province": province,
        "provincial_billing_number": number,
        "credentials": data.credentials,
        "taxonomy_code": numbers.taxonomy_code(data.taxonomy_code) if data.taxonomy_code is not None else None,
    }


def _apply(row: ProviderBillingIdentity | CompanyBillingIdentity, values: dict[str, Any]) -> dict[str, Any]:
    changes = {field: value for field, value in values.items() if getattr(row, field) != value}
    for field, value in changes.items():
        setattr(row, field, value)
    return changes


async def put_provider_identity(session: AsyncSession, principal: Principal, actor: Actor, provider_id: uuid.UUID,
                                data: ProviderBillingIdentityUpdate) -> ProviderBillingIdentityRead:
    provider = await _known_provider(session, actor, provider_id)
    _check_provider_edit(actor, provider)
    values = _provider_values(data)
    row = await repository.provider_identity_for_update(session, provider.id)
    changes = _apply(row, values)
    row.updated_by = principal.id
    await session.flush()
    audit(session, principal, "provider_billing_identity.updated", company_id=provider.company_id,
          target_type="user", target_id=provider.id, details={"changes": changes})
    return _provider_read(provider.id, row)


# Practices


def _company_read(company_id: uuid.UUID, row: CompanyBillingIdentity | None) -> CompanyBillingIdentityRead:
    if row is None:
        return CompanyBillingIdentityRead(company_id=company_id, legal_name=None, tax_id=None, business_number=None,
                                          address_lines=[], phone=None, place_of_service=None,
                                          place_of_service_name=None, updated_at=None, updated_by=None)
    return CompanyBillingIdentityRead(
        company_id=company_id, legal_name=row.legal_name, tax_id=row.tax_id, business_number=row.business_number,
        address_lines=list(row.address_lines), phone=row.phone, place_of_service=row.place_of_service,
        place_of_service_name=numbers.PLACES_OF_SERVICE.get(row.place_of_service or ""),
        updated_at=row.updated_at, updated_by=row.updated_by,
    )


async def get_company_identity(session: AsyncSession, actor: Actor,
                               company_id: uuid.UUID) -> CompanyBillingIdentityRead:
    company = await company_service.visible_company(session, actor, company_id)
    return _company_read(company.id, await repository.get_company_identity(session, company.id))


def _check_company_edit(actor: Actor, company: Company) -> None:
    if actor.is_support:
        raise Forbidden("Support accounts are read-only.", code="support_read_only")
    if not may_administer_company(actor, company.id):
        raise Forbidden("Only company administrators change the practice's billing identity.",
                        code="company_admin_required")


def _company_values(data: CompanyBillingIdentityUpdate) -> dict[str, Any]:
    def checked(check, value):
        return check(value) if value is not None else None

    return {
        "legal_name": data.legal_name,
        "tax_id": checked(numbers.tax_id, data.tax_id),
        "business_number": checked(numbers.business_number, data.business_number),
        "address_lines": list(data.address_lines),
        "phone": checked(numbers.phone, data.phone),
        "place_of_service": checked(numbers.place_of_service, data.place_of_service),
    }


async def put_company_identity(session: AsyncSession, principal: Principal, actor: Actor, company_id: uuid.UUID,
                               data: CompanyBillingIdentityUpdate) -> CompanyBillingIdentityRead:
    company = await company_service.visible_company(session, actor, company_id)
    _check_company_edit(actor, company)
    values = _company_values(data)
    row = await repository.company_identity_for_update(session, company.id)
    changes = _apply(row, values)
    row.updated_by = principal.id
    await session.flush()
    audit(session, principal, "company_billing_identity.updated", company_id=company.id, target_type="company",
          target_id=company.id, details={"changes": changes})
    return _company_read(company.id, row)
