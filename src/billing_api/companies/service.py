"""Company rules: who sees which company, and the two-level tree (a parent and its children)."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from billing_api.audit.service import record
from billing_api.auth.principal import Principal
from billing_api.authz.actor import Actor
from billing_api.authz.policies import may_administer_company, may_view_company
from billing_api.companies import repository
from billing_api.companies.schemas import CompanyCreate, CompanyUpdate
from billing_api.errors import Forbidden, NotFound, Unprocessable
from billing_api.models import Company


async def visible_company(session: AsyncSession, actor: Actor, company_id: uuid.UUID) -> Company:
    """The company, or 404 if the caller does not reach it."""
    company = await repository.get_company(session, company_id)
    if company is None or not may_view_company(actor, company.id):
        raise NotFound("No such company.", code="company_not_found")
    return company


async def list_companies(session: AsyncSession, actor: Actor) -> list[Company]:
    return await repository.list_companies(session, None if actor.is_support else sorted(actor.reached_company_ids))


async def reachable_companies(session: AsyncSession, actor: Actor) -> list[Company]:
    """The context switcher's list: the companies the actor reaches (support: its own)."""
    return await repository.list_companies(session, sorted(actor.reached_company_ids))


async def create_child_company(
    session: AsyncSession, principal: Principal, actor: Actor, data: CompanyCreate
) -> Company:
    parent = await visible_company(session, actor, data.parent_id)
    if not may_administer_company(actor, parent.id):
        raise Forbidden("Only a company administrator of the parent may add child companies.",
                        code="company_admin_required")
    if parent.parent_id is not None:
        # Two levels: a parent and its children. Deeper trees are not supported (and cannot loop).
        raise Unprocessable("A child company cannot have children of its own.", code="company_depth_exceeded")
    company = Company(id=uuid.uuid4(), name=data.name, parent_id=parent.id, time_zone=data.time_zone)
    session.add(company)
    await session.flush()
    record(session, principal, "company.created", company_id=parent.id, target_type="company", target_id=company.id,
           details={"name": company.name})
    return company


async def update_company(
    session: AsyncSession, principal: Principal, actor: Actor, company_id: uuid.UUID, data: CompanyUpdate
) -> Company:
    company = await visible_company(session, actor, company_id)
    if not may_administer_company(actor, company.id):
        raise Forbidden("Only a company administrator may change the company.", code="company_admin_required")
    changes = data.model_dump(exclude_unset=True)
    for required in ("name", "time_zone"):
        if required in changes and changes[required] is None:
            raise Unprocessable(f"`{required}` cannot be null.", code="field_required", extra={"field": required})
    for field, value in changes.items():
        setattr(company, field, value)
    await session.flush()
    record(session, principal, "company.updated", company_id=company.id, target_type="company",
           target_id=company.id, details=changes)
    return company
