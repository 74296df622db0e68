"""HTTP for patients, visits and encounters (the records bills are made from)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from billing_api.auth.principal import CurrentPrincipal
from billing_api.authz.dependencies import CompanyReach, CurrentActor
from billing_api.bills.reader import BillsReader
from billing_api.companies import service as company_service
from billing_api.companies.context import ActiveCompany
from billing_api.db import Session
from billing_api.errors import problem_responses
from billing_api.idempotency.service import Idempotent, IdempotentRoute
from billing_api.pagination import Paging, next_cursor
from billing_api.patients import repository, service
from billing_api.patients.schemas import (
    EncounterCreate,
    EncounterLineRead,
    EncounterRead,
    PatientCreate,
    PatientPage,
    PatientRead,
    PatientUpdate,
    VisitCreate,
    VisitRead,
)

READ_ERRORS = problem_responses(401, 404, 422)
WRITE_ERRORS = problem_responses(400, 401, 403, 404, 409, 422)

router = APIRouter(prefix="/v1", route_class=IdempotentRoute)


@router.post("/patients",
             dependencies=[Idempotent], response_model=PatientRead, status_code=status.HTTP_201_CREATED,
             tags=["patients"],
             responses=WRITE_ERRORS)
async def create_patient(data: PatientCreate, session: Session, principal: CurrentPrincipal,
                         actor: CurrentActor) -> PatientRead:
    """Register a patient in a company the caller reaches (support users cannot)."""
    return PatientRead.model_validate(await service.create_patient(session, principal, actor, data))


@router.get("/patients", response_model=PatientPage, tags=["patients"], responses=READ_ERRORS)
async def list_patients(
    session: Session, actor: CurrentActor, reach: CompanyReach, paging: Paging, active: ActiveCompany,
    company_id: Annotated[uuid.UUID | None, Query(description="Only this company's patients.")] = None,
) -> PatientPage:
    """Patients of the companies the caller reaches (of the active company only, when `X-Company-Id` names one;
    with `company_id` as well, both must match)."""
    if company_id is not None:
        await company_service.visible_company(session, actor, company_id)
        reach = reach.within(company_id)
    if active is not None:
        reach = reach.within(active)
    rows = await repository.list_patients(session, reach, paging.limit, paging.after)
    return PatientPage(items=[PatientRead.model_validate(p) for p in rows[: paging.limit]],
                       next_cursor=next_cursor(rows, paging.limit))


@router.get("/patients/{patient_id}", response_model=PatientRead, tags=["patients"], responses=READ_ERRORS)
async def get_patient(patient_id: uuid.UUID, session: Session, actor: CurrentActor) -> PatientRead:
    """A patient of a company the caller reaches; any other patient is not found."""
    return PatientRead.model_validate(await service.visible_patient(session, actor, patient_id))


@router.patch("/patients/{patient_id}", response_model=PatientRead, tags=["patients"], responses=WRITE_ERRORS)
async def update_patient(patient_id: uuid.UUID, data: PatientUpdate, session: Session, principal: CurrentPrincipal,
                         actor: CurrentActor) -> PatientRead:
    """Change a patient's name, date of birth or payer of record (those who may register patients in the
    patient's company)."""
    return PatientRead.model_validate(await service.update_patient(session, principal, actor, patient_id, data))


@router.post("/visits",
             dependencies=[Idempotent], response_model=VisitRead, status_code=status.HTTP_201_CREATED, tags=["visits"],
             responses=WRITE_ERRORS)
async def create_visit(data: VisitCreate, session: Session, principal: CurrentPrincipal,
                       actor: CurrentActor) -> VisitRead:
    """Schedule a visit of a patient with a provider of the patient's company."""
    return VisitRead.model_validate(await service.create_visit(session, principal, actor, data))


def _encounter_read(encounter, lines, *, fees_shown: bool) -> EncounterRead:
    """The encounter with its lines; without `fees_shown`, every line's fee is null (withheld)."""
    return EncounterRead(
        id=encounter.id, company_id=encounter.company_id, patient_id=encounter.patient_id,
        provider_id=encounter.provider_id, visit_id=encounter.visit_id, service_date=encounter.service_date,
        imported=encounter.imported, created_at=encounter.created_at, diagnoses=encounter.diagnoses,
        lines=[EncounterLineRead(code_system=line.code_system, code=line.code, modifiers=line.modifiers,
                                 diagnosis_pointers=line.diagnosis_pointers, description=line.description,
                                 units=line.units, fee_cents=line.fee_cents if fees_shown else None,
                                 cpt_code=line.cpt_code) for line in lines],
    )


@router.post("/encounters",
             dependencies=[Idempotent], response_model=EncounterRead, status_code=status.HTTP_201_CREATED,
             tags=["encounters"], responses=WRITE_ERRORS)
async def create_encounter(data: EncounterCreate, session: Session, principal: CurrentPrincipal,
                           actor: CurrentActor, reader: BillsReader) -> EncounterRead:
    """Record an encounter (session) with its service lines. Only imported ones may lack codes. Each line's code
    follows its system's rule and the company's systems; lines point to the encounter's `diagnoses`. The answer
    shows the fees only to a caller who may view the provider's bills in the encounter's company (`bills:view`);
    for anyone else they are null."""
    encounter, lines = await service.create_encounter(session, principal, actor, data)
    return _encounter_read(encounter, lines, fees_shown=await reader.may_show_fees(encounter))


@router.get("/encounters/{encounter_id}", response_model=EncounterRead, tags=["encounters"],
            responses=READ_ERRORS)
async def get_encounter(encounter_id: uuid.UUID, session: Session, actor: CurrentActor,
                        reader: BillsReader) -> EncounterRead:
    """An encounter of a company the caller reaches, with its service lines; any other encounter is not found.
    The lines' fees are billing information: shown only to a caller who may view the provider's bills in the
    encounter's company (`bills:view`, as for the bills themselves), and null for everyone else, who still see
    the codes, units and descriptions. A read that shows fees is recorded in the access log."""
    encounter = await service.visible_encounter(session, actor, encounter_id)
    lines = await repository.encounter_lines(session, encounter.id)
    return _encounter_read(encounter, lines, fees_shown=await reader.encounter_fees(encounter, lines))
