from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from billing_api.audit import repository
from billing_api.audit.schemas import AuditEventPage, AuditEventRead
from billing_api.authz.dependencies import CurrentActor
from billing_api.authz.policies import is_list_manager
from billing_api.db import Session
from billing_api.errors import problem_responses
from billing_api.pagination import Paging, next_cursor

router = APIRouter(prefix="/v1", tags=["audit"])


@router.get("/audit-events", response_model=AuditEventPage, responses=problem_responses(401, 422))
async def list_audit_events(
    session: Session,
    actor: CurrentActor,
    paging: Paging,
    action: Annotated[str | None, Query(max_length=100)] = None,
    target_id: uuid.UUID | None = None,
) -> AuditEventPage:
    """Newest first. Company administrators and delegation managers see their reached companies' events;
    everyone sees the events about themself (a provider: changes to their list, support's views of their bills)."""
    managed = [c for c in sorted(actor.reached_company_ids)
               if actor.is_company_admin or is_list_manager(actor, c)]
    rows = await repository.list_events(session, company_ids=managed, about_user=actor.id, action=action,
                                        target_id=target_id, limit=paging.limit, after=paging.after)
    return AuditEventPage(items=[AuditEventRead.model_validate(e) for e in rows[: paging.limit]],
                          next_cursor=next_cursor(rows, paging.limit))
