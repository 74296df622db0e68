from __future__ import annotations

import uuid

from fastapi import APIRouter, status

from billing_api.auth.principal import CurrentPrincipal
from billing_api.authz.dependencies import CompanyReach, CurrentActor
from billing_api.companies import service
from billing_api.companies.schemas import CompanyCreate, CompanyList, CompanyRead, CompanyUpdate
from billing_api.db import Session
from billing_api.errors import problem_responses

router = APIRouter(prefix="/v1/companies", tags=["companies"], responses=problem_responses(401))


@router.get("", response_model=CompanyList, responses=problem_responses(403))
async def list_companies(session: Session, reach: CompanyReach) -> CompanyList:
    """Companies the caller reaches (support: every company)."""
    companies = await service.list_companies(session, reach)
    return CompanyList(items=[CompanyRead.model_validate(c) for c in companies])


@router.post("", response_model=CompanyRead, status_code=status.HTTP_201_CREATED,
             responses=problem_responses(400, 403, 404, 409, 422))
async def create_company(data: CompanyCreate, session: Session, principal: CurrentPrincipal,
                         actor: CurrentActor) -> CompanyRead:
    """Add a child company under a parent the caller administers. Top-level companies are created with
    the `billing-api create-company` command."""
    return CompanyRead.model_validate(await service.create_child_company(session, principal, actor, data))


@router.get("/{company_id}", response_model=CompanyRead, responses=problem_responses(404, 422))
async def get_company(company_id: uuid.UUID, session: Session, actor: CurrentActor) -> CompanyRead:
    """A company the caller reaches; any other company is not found."""
    return CompanyRead.model_validate(await service.visible_company(session, actor, company_id))


@router.patch("/{company_id}", response_model=CompanyRead, responses=problem_responses(400, 403, 404, 422))
async def update_company(company_id: uuid.UUID, data: CompanyUpdate, session: Session,
                         principal: CurrentPrincipal, actor: CurrentActor) -> CompanyRead:
    """Rename a company, change its time zone or move it under another parent (company administrators; a move
    needs the administrators of both parents)."""
    return CompanyRead.model_validate(await service.update_company(session, principal, actor, company_id, data))
