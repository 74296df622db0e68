"""HTTP for every bill surface of the seeds. Reads show bills through the BillReader the guard builds (it records
what it shows); writes take the BillScope of each permission they need from the BillAccess guard."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from pydantic_core import to_json

from billing_api.auth.principal import CurrentPrincipal
from billing_api.authz.dependencies import BillsDelete, BillsSave, BillsSubmit, BillsView, CompanyReach, CurrentActor
from billing_api.bills import service
from billing_api.bills.reader import BillsReader
from billing_api.bills.repository import BillFilters, BillRepository
from billing_api.bills.schemas import BillCreate, BillPage, BillRead, BillUpdate, VisitPage, VisitWithBills
from billing_api.companies.context import ActiveCompany, within_active_company
from billing_api.db import Session
from billing_api.errors import problem_responses
from billing_api.idempotency.service import Idempotent, IdempotentRoute
from billing_api.models import BillStatus, Coverage
from billing_api.pagination import Paging, next_cursor
from billing_api.patients import repository as patients_repository
from billing_api.patients import service as patients_service
from billing_api.patients.schemas import VisitRead
from billing_api.schemas import Day, Moment

READ_ERRORS = problem_responses(401, 404, 422)
WRITE_ERRORS = problem_responses(400, 401, 403, 404, 409, 422)

router = APIRouter(prefix="/v1", route_class=IdempotentRoute)


def _json(page: dict) -> Response:
    # The page is already the API's JSON shape (`response_model` documents it): encoded once, not validated again.
    return Response(to_json(page), media_type="application/json")


@router.get("/bills", response_model=BillPage, tags=["bills"], responses=READ_ERRORS)
async def list_bills(
    reader: BillsReader,
    paging: Paging,
    active: ActiveCompany,
    provider_id: uuid.UUID | None = None,
    patient_id: uuid.UUID | None = None,
    bill_status: Annotated[BillStatus | None, Query(alias="status")] = None,
    coverage: Coverage | None = None,
    service_date_from: Annotated[Day | None, Query(description="Service date on or after.")] = None,
    service_date_to: Annotated[Day | None, Query(description="Service date on or before.")] = None,
) -> Response:
    """The billing dashboard: every bill the caller may see, newest first (in the active company only, when
    `X-Company-Id` names one)."""
    filters = BillFilters(provider_id=provider_id, patient_id=patient_id, company_id=active, status=bill_status,
                          coverage=coverage, service_date_from=service_date_from, service_date_to=service_date_to)
    return _json(await reader.page(filters, paging.limit, paging.after, "billing_dashboard"))


@router.post("/bills",
             dependencies=[Idempotent], response_model=BillRead, status_code=status.HTTP_201_CREATED, tags=["bills"],
             responses=WRITE_ERRORS)
async def create_bill(data: BillCreate, session: Session, principal: CurrentPrincipal,
                      view: BillsView, save: BillsSave) -> BillRead:
    """Create a draft bill for a provider (needs `bills:save` on that provider's bills)."""
    bill = await service.create_bill(session, principal, view, save, data)
    return (await service.present(BillRepository(session, view), [bill]))[0]


@router.get("/bills/{bill_id}", response_model=BillRead, tags=["bills"], responses=READ_ERRORS)
async def get_bill(bill_id: uuid.UUID, reader: BillsReader) -> BillRead:
    """One bill the caller may see (`bills:view` on its provider's bills); any other bill is not found."""
    return await reader.bill(bill_id)


@router.patch("/bills/{bill_id}", response_model=BillRead, tags=["bills"], responses=WRITE_ERRORS)
async def update_bill(bill_id: uuid.UUID, data: BillUpdate, session: Session, principal: CurrentPrincipal,
                      view: BillsView, save: BillsSave) -> BillRead:
    """Edit a draft bill (`bills:save`)."""
    bill = await service.update_bill(session, principal, view, save, bill_id, data)
    return (await service.present(BillRepository(session, view), [bill]))[0]


@router.post("/bills/{bill_id}/submit",
             dependencies=[Idempotent], response_model=BillRead, tags=["bills"], responses=WRITE_ERRORS)
async def submit_bill(bill_id: uuid.UUID, session: Session, principal: CurrentPrincipal, view: BillsView,
                      submit: BillsSubmit) -> BillRead:
    """Submit a draft bill (`bills:submit`)."""
    bill = await service.submit_bill(session, principal, view, submit, bill_id)
    return (await service.present(BillRepository(session, view), [bill]))[0]


@router.delete("/bills/{bill_id}", status_code=status.HTTP_204_NO_CONTENT, tags=["bills"],
               responses=WRITE_ERRORS)
async def delete_bill(bill_id: uuid.UUID, session: Session, principal: CurrentPrincipal, view: BillsView,
                      delete: BillsDelete) -> Response:
    """Delete a draft bill (`bills:delete`)."""
    await service.delete_bill(session, principal, view, delete, bill_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/encounters/{encounter_id}/bills", response_model=list[BillRead], tags=["bills"],
            responses=READ_ERRORS)
async def list_encounter_bills(encounter_id: uuid.UUID, session: Session, actor: CurrentActor,
                               reader: BillsReader, active: ActiveCompany) -> list[BillRead]:
    """Bills created in an encounter that the caller may see. With `X-Company-Id`, an encounter of another
    company is not found."""
    encounter = await patients_service.visible_encounter(session, actor, encounter_id)
    within_active_company(active, encounter.company_id, "encounter")
    return await reader.of_encounter(encounter_id)


@router.get("/patients/{patient_id}/bills", response_model=BillPage, tags=["bills"], responses=READ_ERRORS)
async def list_patient_bills(
    patient_id: uuid.UUID,
    session: Session,
    actor: CurrentActor,
    reader: BillsReader,
    paging: Paging,
    active: ActiveCompany,
    coverage: Annotated[Coverage | None, Query(description="`insured` or `private`; both when omitted.")] = None,
) -> Response:
    """The patient chart's billing: insured and private bills the caller may see, newest first. With
    `X-Company-Id`, a patient of another company is not found."""
    patient = await patients_service.visible_patient(session, actor, patient_id)
    within_active_company(active, patient.company_id, "patient")
    filters = BillFilters(patient_id=patient_id, coverage=coverage)
    return _json(await reader.page(filters, paging.limit, paging.after, "patient_chart"))


@router.get("/visits", response_model=VisitPage, tags=["visits"], responses=READ_ERRORS)
async def list_visits(
    session: Session,
    reach: CompanyReach,
    reader: BillsReader,
    paging: Paging,
    active: ActiveCompany,
    provider_id: uuid.UUID | None = None,
    patient_id: uuid.UUID | None = None,
    scheduled_from: Annotated[Moment | None, Query(description="Scheduled at or after.")] = None,
    scheduled_to: Annotated[Moment | None, Query(description="Scheduled before.")] = None,
    coverage: Annotated[Coverage | None, Query(description="Only bills of this coverage.")] = None,
) -> VisitPage:
    """The visits dashboard: visits in schedule order, each with the bills the caller may see (of the active
    company only, when `X-Company-Id` names one)."""
    if active is not None:
        # Narrowed, as the patients list is: the header's check admits an invited user's home company, which
        # their reach leaves out.
        reach = reach.within(active)
    rows = await patients_repository.list_visits(
        session, reach, provider_id=provider_id, patient_id=patient_id, scheduled_from=scheduled_from,
        scheduled_to=scheduled_to, limit=paging.limit, after=paging.after,
    )
    visits = rows[: paging.limit]
    bills = await reader.of_visits([visit.id for visit in visits], coverage)
    items = [VisitWithBills(**VisitRead.model_validate(visit).model_dump(), bills=bills.get(visit.id, []))
             for visit in visits]
    return VisitPage(items=items, next_cursor=next_cursor(rows, paging.limit, key="scheduled_at"))
