"""HTTP for billing customer assignments (groups and users) and the context switcher. No SQL and no rules."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from billing_api.assignments import service
from billing_api.assignments.schemas import CompanyIdsSet, GroupAssignmentsRead, SwitcherRead, UserAssignmentsRead
from billing_api.auth.principal import CurrentPrincipal
from billing_api.authz.dependencies import CurrentActor
from billing_api.companies.context import ActiveCompany
from billing_api.db import Session
from billing_api.errors import problem_responses

READ_ERRORS = problem_responses(401, 403, 404, 422)
WRITE_ERRORS = problem_responses(400, 401, 403, 404, 409, 422)
TAG = "billing customer assignments"

router = APIRouter(prefix="/v1", responses=problem_responses(401))


@router.get("/me/companies", response_model=SwitcherRead, tags=["me"], responses=problem_responses(404, 422))
async def get_my_companies(session: Session, actor: CurrentActor, active: ActiveCompany) -> SwitcherRead:
    """The context switcher: the companies the caller reaches (home company, children a company administrator
    reaches, children assigned directly or through a role), with the active one (`X-Company-Id`) marked."""
    return await service.switcher(session, actor, active)


@router.get("/groups/{group_id}/billing-customer-assignments", response_model=GroupAssignmentsRead, tags=[TAG],
            responses=READ_ERRORS)
async def get_group_billing_customer_assignments(group_id: uuid.UUID, session: Session,
                                                 actor: CurrentActor) -> GroupAssignmentsRead:
    """Every child company of the group's company, and whether the group (role) selects it."""
    return await service.group_assignments(session, actor, group_id)


@router.put("/groups/{group_id}/billing-customer-assignments", response_model=GroupAssignmentsRead, tags=[TAG],
            responses=WRITE_ERRORS)
async def set_group_billing_customer_assignments(
    group_id: uuid.UUID, data: CompanyIdsSet, session: Session, principal: CurrentPrincipal, actor: CurrentActor
) -> GroupAssignmentsRead:
    """Replace the child companies the group (role) selects; every member reaches them from their next request,
    and loses the ones taken away. Only child companies of the group's company (422 `company_not_a_child`).
    Company administrators and holders of `users:edit_others`; the latter only assign companies they reach."""
    return await service.set_group_assignments(session, principal, actor, group_id, data.company_ids)


@router.get("/users/{user_id}/billing-customer-assignments", response_model=UserAssignmentsRead, tags=[TAG],
            responses=READ_ERRORS)
async def get_user_billing_customer_assignments(user_id: uuid.UUID, session: Session,
                                                actor: CurrentActor) -> UserAssignmentsRead:
    """Every child company of the user's home company: whether the user reaches it, why (each role, a direct
    assignment, company administrator), and whether it can be unchecked. The user may read their own."""
    return await service.user_assignments(session, actor, user_id)


@router.put("/users/{user_id}/billing-customer-assignments", response_model=UserAssignmentsRead, tags=[TAG],
            responses=WRITE_ERRORS)
async def set_user_billing_customer_assignments(
    user_id: uuid.UUID, data: CompanyIdsSet, session: Session, principal: CurrentPrincipal, actor: CurrentActor
) -> UserAssignmentsRead:
    """Save the checked list: every child company the user should reach. Children not given otherwise become
    direct assignments. Leaving out one that a role gives is refused (422 `assignment_given_by_role`, naming the
    company and the role), as is leaving out any child of a company administrator (422
    `assignment_given_by_company_admin`); a refused save changes nothing."""
    return await service.set_user_assignments(session, principal, actor, user_id, data.company_ids)
