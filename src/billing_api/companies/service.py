"""Company rules: who sees which company, and the two-level tree (a parent and its children)."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from billing_api.assignments.repository import drop_assignments_to
from billing_api.audit.service import record
from billing_api.auth.principal import Principal
from billing_api.authz.actor import Actor
from billing_api.authz.policies import may_administer_company, may_view_company
from billing_api.authz.scope import CompanyScope
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


async def home_company(session: AsyncSession, principal: Principal) -> Company:
    """The caller's own company. Always theirs to read, reach or not: an invited user reaches no company
    (they work through list entries), yet `GET /v1/me` must still answer them."""
    return await repository.get_company(session, principal.company_id)


async def list_companies(session: AsyncSession, reach: CompanyScope) -> list[Company]:
    return await repository.list_companies(session, reach)


async def reachable_companies(session: AsyncSession, actor: Actor) -> list[Company]:
    """The context switcher's list: the companies the actor reaches (support: its own)."""
    return await repository.list_companies(session, actor.reached)


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
    changes = data.changes("name", "time_zone", "service_code_systems", "diagnosis_code_systems",
                           "access_review_dormant_days", "access_review_interval_days")
    for field in ("service_code_systems", "diagnosis_code_systems"):
        if field in changes:  # stored once each, in a stable order
            changes[field] = sorted(set(changes[field]))
    details = {field: str(value) if isinstance(value, uuid.UUID) else value for field, value in changes.items()}
    if "parent_id" in changes:
        parent_id = changes.pop("parent_id")
        if parent_id != company.parent_id:
            company = await _set_parent(session, actor, company, parent_id)
            details["previous_parent_id"] = str(company.parent_id) if company.parent_id else None
            company.parent_id = parent_id
            # Made by the old parent's users and groups: they would grant nothing any more (reach checks the
            # tree on every request anyway), so they go.
            details["assignments_removed"] = await drop_assignments_to(session, company.id)
    for field, value in changes.items():
        setattr(company, field, value)
    await session.flush()
    record(session, principal, "company.updated", company_id=company.id, target_type="company",
           target_id=company.id, details=details)
    return company


MAX_TREE_WALK = 10


async def _set_parent(
    session: AsyncSession, actor: Actor, company: Company, parent_id: uuid.UUID | None
) -> Company:
    """Check a move of `company` under `parent_id` (None: detach) and lock the rows it touches; returns the
    company re-read under its lock. Two levels, no cycles: the database's trigger enforces the same."""
    if company.parent_id is not None and not may_administer_company(actor, company.parent_id):
        raise Forbidden("Only a company administrator of the current parent may move a child company.",
                        code="company_admin_required")
    if parent_id == company.id:
        raise Unprocessable("A company cannot be its own parent.", code="company_cycle",
                            extra={"field": "parent_id", "company_id": str(company.id)})
    if parent_id is not None:
        parent = await visible_company(session, actor, parent_id)
        if not may_administer_company(actor, parent.id):
            raise Forbidden("Only a company administrator of the new parent may move a company under it.",
                            code="company_admin_required")
    # Locked in id order (no deadlock between two moves of the same pair), then checked on fresh rows.
    locked = await repository.lock_companies(session, [c for c in (company.id, parent_id) if c is not None])
    company = locked[company.id]
    if parent_id is None:
        return company
    ancestor: Company | None = locked[parent_id]
    for _ in range(MAX_TREE_WALK):
        if ancestor is None:
            break
        if ancestor.id == company.id:
            raise Unprocessable(f"{company.name} is above {locked[parent_id].name} in the tree: the move would "
                                "make a cycle.", code="company_cycle",
                                extra={"field": "parent_id", "company_id": str(company.id)})
        ancestor = await repository.get_company(session, ancestor.parent_id) if ancestor.parent_id else None
    if locked[parent_id].parent_id is not None:
        raise Unprocessable("A child company cannot have children of its own.", code="company_depth_exceeded",
                            extra={"field": "parent_id", "company_id": str(parent_id)})
    if await repository.has_children(session, company.id):
        raise Unprocessable(f"{company.name} has child companies, so it cannot become a child company.",
                            code="company_depth_exceeded", extra={"field": "parent_id", "company_id": str(company.id)})
    return company
