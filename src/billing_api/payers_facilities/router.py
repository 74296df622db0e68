"""HTTP for payers and facilities of a company. No SQL and no rules here."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from billing_api.auth.principal import CurrentPrincipal
from billing_api.authz.dependencies import CurrentActor
from billing_api.db import Session
from billing_api.errors import problem_responses
from billing_api.pagination import Paging, next_cursor
from billing_api.payers_facilities import service
from billing_api.payers_facilities.schemas import (
    CopyRequest,
    CopyResult,
    FacilityCreate,
    FacilityPage,
    FacilityRead,
    FacilityUpdate,
    PayerCreate,
    PayerPage,
    PayerRead,
    PayerUpdate,
)
from billing_api.payers_facilities.service import FACILITIES, PAYERS

READ_ERRORS = problem_responses(401, 404, 422)
WRITE_ERRORS = problem_responses(400, 401, 403, 404, 409, 422)
WHO = ("At the parent level (a top-level company) only company administrators may change them, whatever their "
       "roles hold; at a child level, users who reach it and hold `{permission}`, and company administrators.")

router = APIRouter(prefix="/v1/companies/{company_id}", responses=problem_responses(401))


# Payers


@router.get("/payers", response_model=PayerPage, tags=["payers"], responses=READ_ERRORS)
async def list_payers(company_id: uuid.UUID, session: Session, actor: CurrentActor, paging: Paging) -> PayerPage:
    """The company's payers, oldest first (anyone who reaches the company)."""
    rows = await service.list_records(session, actor, PAYERS, company_id, paging.limit, paging.after)
    return PayerPage(items=[PayerRead.model_validate(r) for r in rows[: paging.limit]],
                     next_cursor=next_cursor(rows, paging.limit))


@router.post("/payers", response_model=PayerRead, status_code=status.HTTP_201_CREATED, tags=["payers"],
             responses=WRITE_ERRORS, description="Add a payer. " + WHO.format(permission="payers:manage"))
async def create_payer(company_id: uuid.UUID, data: PayerCreate, session: Session, principal: CurrentPrincipal,
                       actor: CurrentActor) -> PayerRead:
    return PayerRead.model_validate(await service.create_record(session, principal, actor, PAYERS, company_id, data))


@router.get("/payers/{payer_id}", response_model=PayerRead, tags=["payers"], responses=READ_ERRORS)
async def get_payer(company_id: uuid.UUID, payer_id: uuid.UUID, session: Session, actor: CurrentActor) -> PayerRead:
    """One payer of the company."""
    return PayerRead.model_validate(await service.visible_record(session, actor, PAYERS, company_id, payer_id))


@router.patch("/payers/{payer_id}", response_model=PayerRead, tags=["payers"], responses=WRITE_ERRORS,
              description="Edit a payer. " + WHO.format(permission="payers:manage"))
async def update_payer(company_id: uuid.UUID, payer_id: uuid.UUID, data: PayerUpdate, session: Session,
                       principal: CurrentPrincipal, actor: CurrentActor) -> PayerRead:
    payer = await service.update_record(session, principal, actor, PAYERS, company_id, payer_id, data)
    return PayerRead.model_validate(payer)


@router.delete("/payers/{payer_id}", status_code=status.HTTP_204_NO_CONTENT, tags=["payers"],
               responses=WRITE_ERRORS,
               description="Delete a payer (copies in child companies stay). " + WHO.format(permission="payers:manage"))
async def delete_payer(company_id: uuid.UUID, payer_id: uuid.UUID, session: Session, principal: CurrentPrincipal,
                       actor: CurrentActor) -> Response:
    await service.delete_record(session, principal, actor, PAYERS, company_id, payer_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/payers/{payer_id}/copy", response_model=CopyResult, tags=["payers"], responses=WRITE_ERRORS)
async def copy_payer(company_id: uuid.UUID, payer_id: uuid.UUID, data: CopyRequest, session: Session,
                     principal: CurrentPrincipal, actor: CurrentActor) -> CopyResult:
    """Copy a parent-level payer down to chosen child companies (company administrators). Idempotent: a child
    that has the copy already is reported `already_present`. All or nothing: a company that is not a child
    (422 `company_not_a_child`) or a name clash in a child (409) copies nothing."""
    return await service.copy_record(session, principal, actor, PAYERS, company_id, payer_id, data.company_ids)


# Facilities


@router.get("/facilities", response_model=FacilityPage, tags=["facilities"], responses=READ_ERRORS)
async def list_facilities(company_id: uuid.UUID, session: Session, actor: CurrentActor,
                          paging: Paging) -> FacilityPage:
    """The company's facilities, oldest first (anyone who reaches the company)."""
    rows = await service.list_records(session, actor, FACILITIES, company_id, paging.limit, paging.after)
    return FacilityPage(items=[FacilityRead.model_validate(r) for r in rows[: paging.limit]],
                        next_cursor=next_cursor(rows, paging.limit))


@router.post("/facilities", response_model=FacilityRead, status_code=status.HTTP_201_CREATED, tags=["facilities"],
             responses=WRITE_ERRORS, description="Add a facility. " + WHO.format(permission="facilities:manage"))
async def create_facility(company_id: uuid.UUID, data: FacilityCreate, session: Session,
                          principal: CurrentPrincipal, actor: CurrentActor) -> FacilityRead:
    created = await service.create_record(session, principal, actor, FACILITIES, company_id, data)
    return FacilityRead.model_validate(created)


@router.get("/facilities/{facility_id}", response_model=FacilityRead, tags=["facilities"], responses=READ_ERRORS)
async def get_facility(company_id: uuid.UUID, facility_id: uuid.UUID, session: Session,
                       actor: CurrentActor) -> FacilityRead:
    """One facility of the company."""
    found = await service.visible_record(session, actor, FACILITIES, company_id, facility_id)
    return FacilityRead.model_validate(found)


@router.patch("/facilities/{facility_id}", response_model=FacilityRead, tags=["facilities"],
              responses=WRITE_ERRORS, description="Edit a facility. " + WHO.format(permission="facilities:manage"))
async def update_facility(company_id: uuid.UUID, facility_id: uuid.UUID, data: FacilityUpdate, session: Session,
                          principal: CurrentPrincipal, actor: CurrentActor) -> FacilityRead:
    found = await service.update_record(session, principal, actor, FACILITIES, company_id, facility_id, data)
    return FacilityRead.model_validate(found)


@router.delete("/facilities/{facility_id}", status_code=status.HTTP_204_NO_CONTENT, tags=["facilities"],
               responses=WRITE_ERRORS, description="Delete a facility (copies in child companies stay). "
               + WHO.format(permission="facilities:manage"))
async def delete_facility(company_id: uuid.UUID, facility_id: uuid.UUID, session: Session,
                          principal: CurrentPrincipal, actor: CurrentActor) -> Response:
    await service.delete_record(session, principal, actor, FACILITIES, company_id, facility_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/facilities/{facility_id}/copy", response_model=CopyResult, tags=["facilities"],
             responses=WRITE_ERRORS)
async def copy_facility(company_id: uuid.UUID, facility_id: uuid.UUID, data: CopyRequest, session: Session,
                        principal: CurrentPrincipal, actor: CurrentActor) -> CopyResult:
    """Copy a parent-level facility down to chosen child companies (company administrators). Idempotent: a
    child that has the copy already is reported `already_present`. All or nothing: a company that is not a
    child (422 `company_not_a_child`) or a name clash in a child (409) copies nothing."""
    return await service.copy_record(session, principal, actor, FACILITIES, company_id, facility_id,
                                     data.company_ids)
