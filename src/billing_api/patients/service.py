"""Rules for patients, visits and encounters: visible within the companies the caller reaches."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from billing_api.audit.service import record
from billing_api.auth.principal import Principal
from billing_api.authz import repository as authz_repository
from billing_api.authz.actor import Actor
from billing_api.authz.policies import may_view_company
from billing_api.automation import repository as automation_repository
from billing_api.codes import service as codes
from billing_api.errors import Forbidden, NotFound, Unprocessable
from billing_api.identity import repository as identity_repository
from billing_api.models import Encounter, EncounterLine, Patient, User, UserStatus, Visit
from billing_api.patients import repository
from billing_api.patients.schemas import EncounterCreate, PatientCreate, PatientUpdate, VisitCreate
from billing_api.payers_facilities.service import billable_payer


def _may_record(actor: Actor, company_id: uuid.UUID) -> None:
    if actor.is_support:
        raise Forbidden("Support accounts are read-only.", code="support_read_only")
    if not actor.reaches(company_id):
        raise NotFound("No such company.", code="company_not_found")


async def visible_patient(session: AsyncSession, actor: Actor, patient_id: uuid.UUID) -> Patient:
    patient = await repository.get_patient(session, patient_id)
    if patient is None or not may_view_company(actor, patient.company_id):
        raise NotFound("No such patient.", code="patient_not_found")
    return patient


async def visible_visit(session: AsyncSession, actor: Actor, visit_id: uuid.UUID) -> Visit:
    visit = await repository.get_visit(session, visit_id)
    if visit is None or not may_view_company(actor, visit.company_id):
        raise NotFound("No such visit.", code="visit_not_found")
    return visit


async def visible_encounter(session: AsyncSession, actor: Actor, encounter_id: uuid.UUID) -> Encounter:
    encounter = await repository.get_encounter(session, encounter_id)
    if encounter is None or not may_view_company(actor, encounter.company_id):
        raise NotFound("No such encounter.", code="encounter_not_found")
    return encounter


async def provider_working_in(session: AsyncSession, provider_id: uuid.UUID, company_id: uuid.UUID) -> User:
    """An active provider who reaches the company: only they can be billed for there."""
    provider = await identity_repository.get_user(session, provider_id)
    if provider is None or not provider.is_provider or provider.status != UserStatus.active:
        raise Unprocessable("`provider_id` is not an active provider.", code="provider_invalid",
                            extra={"field": "provider_id"})
    reached = (await session.execute(authz_repository.reached_companies(provider_id))).scalars().all()
    if company_id not in reached:
        raise Unprocessable("The provider does not work in the patient's company.", code="provider_invalid",
                            extra={"field": "provider_id"})
    return provider


async def create_patient(session: AsyncSession, principal: Principal, actor: Actor, data: PatientCreate) -> Patient:
    _may_record(actor, data.company_id)
    if data.payer_id is not None:
        await billable_payer(session, data.payer_id, data.company_id)
    patient = Patient(id=uuid.uuid4(), **data.model_dump())
    session.add(patient)
    await session.flush()
    # Billing automation: a new patient starts from the company's current defaults.
    await automation_repository.create_patient_settings(session, patient.id, patient.company_id)
    record(session, principal, "patient.created", company_id=patient.company_id, target_type="patient",
           target_id=patient.id)
    return patient


async def update_patient(session: AsyncSession, principal: Principal, actor: Actor, patient_id: uuid.UUID,
                         data: PatientUpdate) -> Patient:
    patient = await visible_patient(session, actor, patient_id)
    _may_record(actor, patient.company_id)
    changes = data.changes("first_name", "last_name")
    if changes.get("payer_id") is not None:
        await billable_payer(session, changes["payer_id"], patient.company_id)
    for field, value in changes.items():
        setattr(patient, field, value)
    await session.flush()
    record(session, principal, "patient.updated", company_id=patient.company_id, target_type="patient",
           target_id=patient.id, details={"fields": sorted(changes)})
    return patient


async def create_visit(session: AsyncSession, principal: Principal, actor: Actor, data: VisitCreate) -> Visit:
    patient = await visible_patient(session, actor, data.patient_id)
    _may_record(actor, patient.company_id)
    await provider_working_in(session, data.provider_id, patient.company_id)
    visit = Visit(id=uuid.uuid4(), company_id=patient.company_id, patient_id=patient.id,
                  provider_id=data.provider_id, scheduled_at=data.scheduled_at)
    session.add(visit)
    await session.flush()
    return visit


async def create_encounter(
    session: AsyncSession, principal: Principal, actor: Actor, data: EncounterCreate
) -> tuple[Encounter, list[EncounterLine]]:
    patient = await visible_patient(session, actor, data.patient_id)
    _may_record(actor, patient.company_id)
    await provider_working_in(session, data.provider_id, patient.company_id)
    if data.visit_id is not None:
        visit = await visible_visit(session, actor, data.visit_id)
        if visit.patient_id != patient.id or visit.provider_id != data.provider_id:
            raise Unprocessable("The visit is of another patient or provider.", code="visit_mismatch",
                                extra={"field": "visit_id"})
    systems = await codes.company_systems(session, patient.company_id)
    diagnoses = codes.checked_diagnoses(data.diagnoses, systems)
    checked = codes.checked_lines(data.lines, systems, len(diagnoses), codes_required=not data.imported)
    encounter = Encounter(id=uuid.uuid4(), company_id=patient.company_id, patient_id=patient.id,
                          provider_id=data.provider_id, visit_id=data.visit_id, service_date=data.service_date,
                          imported=data.imported, diagnoses=diagnoses)
    session.add(encounter)
    await session.flush()
    lines = [
        EncounterLine(id=uuid.uuid4(), encounter_id=encounter.id, position=position, **columns)
        for position, columns in enumerate(checked)
    ]
    session.add_all(lines)
    await session.flush()
    return encounter, lines
