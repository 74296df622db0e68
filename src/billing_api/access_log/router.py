"""HTTP for the access log: who saw a patient's billing data, and when."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from billing_api.access_log import service
from billing_api.access_log.schemas import AccessLogPage
from billing_api.authz.dependencies import BillsView, CurrentActor
from billing_api.db import Session
from billing_api.errors import problem_responses
from billing_api.pagination import Paging, next_cursor

router = APIRouter(prefix="/v1", tags=["access log"])


@router.get("/patients/{patient_id}/access-log", response_model=AccessLogPage,
            summary="Who saw this patient's billing data", responses=problem_responses(401, 403, 404, 422))
async def get_patient_access_log(patient_id: uuid.UUID, session: Session, actor: CurrentActor, scope: BillsView,
                                 paging: Paging) -> AccessLogPage:
    """Who saw this patient's billing data, when, from where and on whose behalf, newest first. Company
    administrators of the patient's company see every read; a provider of the patient sees the reads that
    showed their own bills (only their own providers and grants are listed). Others: 403, or 404 when the
    patient is not visible to them."""
    items, rows = await service.patient_access_log(session, actor, scope, patient_id, paging.limit, paging.after)
    return AccessLogPage(items=items, next_cursor=next_cursor(rows, paging.limit))
