"""HTTP for delegation lists, access transparency and billing segregation."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from billing_api.auth.principal import CurrentPrincipal
from billing_api.authz.dependencies import BillsView, CurrentActor
from billing_api.authz.permissions import Permission
from billing_api.db import Session
from billing_api.delegation import service
from billing_api.delegation.schemas import (
    AccessExplanation,
    DelegationListRead,
    DelegationListSave,
    ProviderAccessPage,
    SegregationEnable,
    SegregationRead,
)
from billing_api.deps import AppSettings
from billing_api.errors import problem_responses
from billing_api.pagination import MAX_LIMIT, decode_name_cursor, encode_cursor

READ_ERRORS = problem_responses(401, 403, 404, 422)
SAVE_ERRORS = problem_responses(400, 401, 403, 404, 409, 422, 429)

router = APIRouter(prefix="/v1")


@router.get("/providers/{provider_id}/delegation", response_model=DelegationListRead, tags=["delegation"],
            responses=READ_ERRORS)
async def get_delegation_list(provider_id: uuid.UUID, response: Response, session: Session,
                              actor: CurrentActor) -> DelegationListRead:
    """The provider's delegation list: users and groups (with active member counts), each with its permissions.
    Deactivated users stay listed with `active: false` and grant nothing."""
    provider = await service.provider_for_manager(session, actor, provider_id)
    result = await service.read_list(session, provider)
    response.headers["ETag"] = f'"{result.version}"'
    return result


@router.put("/providers/{provider_id}/delegation", response_model=DelegationListRead, tags=["delegation"],
            responses=SAVE_ERRORS)
async def save_delegation_list(provider_id: uuid.UUID, data: DelegationListSave, response: Response,
                               session: Session, settings: AppSettings, principal: CurrentPrincipal,
                               actor: CurrentActor) -> DelegationListRead:
    """Replace the whole list. Needs your password and the `version` you read: a wrong password (403) or a
    stale version (409) saves nothing. Takes effect on the very next request."""
    result = await service.save_list(session, settings, principal, actor, provider_id, data)
    response.headers["ETag"] = f'"{result.version}"'
    return result


@router.get("/access/explain", response_model=AccessExplanation, tags=["access"], responses=READ_ERRORS)
async def explain_access(
    session: Session,
    actor: CurrentActor,
    user_id: uuid.UUID,
    provider_id: uuid.UUID,
    permission: Permission = Permission.BILLS_VIEW,
) -> AccessExplanation:
    """Why a user may or may not use a permission on a provider's bills: the rule, list entry and group."""
    decision = await service.explain(session, actor, user_id, provider_id, permission)
    return AccessExplanation(
        allowed=decision.allowed, user_id=decision.actor_id, provider_id=decision.provider_id,
        company_id=decision.company_id, permission=decision.permission,
        reasons=[service.reason_read(reason) for reason in decision.reasons],
    )


@router.get("/providers/{provider_id}/access", response_model=ProviderAccessPage, tags=["access"],
            responses=READ_ERRORS)
async def list_provider_access(
    provider_id: uuid.UUID,
    session: Session,
    actor: CurrentActor,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> ProviderAccessPage:
    """Everyone who can see this provider's bills, groups expanded, each with the reasons, by name."""
    after = decode_name_cursor(cursor) if cursor else None
    items, more = await service.provider_access(session, actor, provider_id, limit, after)
    next_cursor = encode_cursor(items[-1].display_name, items[-1].user_id) if more else None
    return ProviderAccessPage(items=items, next_cursor=next_cursor)


@router.get("/companies/{company_id}/billing-segregation", response_model=SegregationRead,
            tags=["segregation"], responses=READ_ERRORS)
async def get_billing_segregation(company_id: uuid.UUID, session: Session, actor: CurrentActor,
                                  view: BillsView) -> SegregationRead:
    """On or off; before it is on, readiness (providers with bills and an empty list) and a preview of who
    will lose access to whose bills."""
    return await service.segregation_state(session, actor, view, company_id)


@router.post("/companies/{company_id}/billing-segregation", response_model=SegregationRead,
             tags=["segregation"], responses=SAVE_ERRORS)
async def enable_billing_segregation(company_id: uuid.UUID, data: SegregationEnable, session: Session,
                                     settings: AppSettings, principal: CurrentPrincipal, actor: CurrentActor,
                                     view: BillsView) -> SegregationRead:
    """Turn billing segregation on: permanent, password-confirmed. Refused (409) while providers with bills
    have empty lists, unless `acknowledge_empty_lists` is true."""
    return await service.enable_segregation(session, settings, principal, actor, view, company_id, data)
