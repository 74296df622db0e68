"""All SQL about patients, visits and encounters (never bills: those are in bills.repository)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from billing_api.authz.scope import CompanyScope
from billing_api.models import Encounter, EncounterLine, Patient, Visit


async def get_patient(session: AsyncSession, patient_id: uuid.UUID) -> Patient | None:
    return await session.get(Patient, patient_id)


async def list_patients(
    session: AsyncSession, reach: CompanyScope, limit: int, after: tuple[datetime, uuid.UUID] | None,
) -> list[Patient]:
    statement = reach.filter(select(Patient), Patient.company_id)
    if after is not None:
        statement = statement.where(tuple_(Patient.created_at, Patient.id) > tuple_(*after))
    statement = statement.order_by(Patient.created_at, Patient.id).limit(limit + 1)
    return list((await session.execute(statement)).scalars())


async def get_visit(session: AsyncSession, visit_id: uuid.UUID) -> Visit | None:
    return await session.get(Visit, visit_id)


async def list_visits(
    session: AsyncSession,
    reach: CompanyScope,
    *,
    provider_id: uuid.UUID | None,
    patient_id: uuid.UUID | None,
    scheduled_from: datetime | None,
    scheduled_to: datetime | None,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None,
) -> list[Visit]:
    """Visits of the companies in `reach`, in schedule order, limit + 1 rows. The cursor key is (scheduled_at, id)."""
    statement = reach.filter(select(Visit), Visit.company_id)
    if provider_id is not None:
        statement = statement.where(Visit.provider_id == provider_id)
    if patient_id is not None:
        statement = statement.where(Visit.patient_id == patient_id)
    if scheduled_from is not None:
        statement = statement.where(Visit.scheduled_at >= scheduled_from)
    if scheduled_to is not None:
        statement = statement.where(Visit.scheduled_at < scheduled_to)
    if after is not None:
        statement = statement.where(tuple_(Visit.scheduled_at, Visit.id) > tuple_(*after))
    statement = statement.order_by(Visit.scheduled_at, Visit.id).limit(limit + 1)
    return list((await session.execute(statement)).scalars())


async def get_encounter(session: AsyncSession, encounter_id: uuid.UUID) -> Encounter | None:
    return await session.get(Encounter, encounter_id)


async def encounter_lines(session: AsyncSession, encounter_id: uuid.UUID) -> list[EncounterLine]:
    statement = select(EncounterLine).where(EncounterLine.encounter_id == encounter_id).order_by(EncounterLine.position)
    return list((await session.execute(statement)).scalars())
