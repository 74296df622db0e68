"""The rows a document is made of, beyond those the reads that guard it return (the bill and its lines through
the BillReader, the document through automation). Read after the guard: none of these decides access."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import date

from sqlalchemy import exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from billing_api.models import (
    Bill,
    BillingContact,
    BillStatus,
    Company,
    Encounter,
    EncounterLine,
    Patient,
    Payer,
    SuperbillItem,
    User,
)


async def patient(session: AsyncSession, patient_id: uuid.UUID) -> Patient:
    return (await session.execute(select(Patient).where(Patient.id == patient_id))).scalar_one()


async def company(session: AsyncSession, company_id: uuid.UUID) -> Company:
    return (await session.execute(select(Company).where(Company.id == company_id))).scalar_one()


async def payer_name(session: AsyncSession, payer_id: uuid.UUID) -> str | None:
    return (await session.execute(select(Payer.name).where(Payer.id == payer_id))).scalar_one_or_none()


async def users(session: AsyncSession, user_ids: set[uuid.UUID]) -> dict[uuid.UUID, User]:
    if not user_ids:
        return {}
    return {user.id: user for user in (await session.execute(select(User).where(User.id.in_(user_ids)))).scalars()}


async def billing_contact(session: AsyncSession, patient_id: uuid.UUID) -> BillingContact | None:
    return (await session.execute(
        select(BillingContact).where(BillingContact.patient_id == patient_id))).scalar_one_or_none()


async def superbill_sessions(session: AsyncSession, document_id: uuid.UUID, company_id: uuid.UUID,
                             patient_id: uuid.UUID, period_start: date,
                             period_end: date) -> list[tuple[Encounter, list[EncounterLine]]]:
    """The sessions a superbill covers, oldest first, with their billable lines: those it lists when it was made
    by hand (`superbill_item`, imported sessions included), else those of the period the nightly run totals
    (automation/repository.py `add_superbills`): not imported, lines with a code."""
    listed = select(SuperbillItem.encounter_id).where(SuperbillItem.document_id == document_id)
    in_period = (Encounter.company_id == company_id) & (Encounter.patient_id == patient_id) & ~Encounter.imported \
        & Encounter.service_date.between(period_start, period_end)
    encounters = list((await session.execute(
        select(Encounter)
        .where(Encounter.id.in_(listed) | (~exists(listed) & in_period))
        .order_by(Encounter.service_date, Encounter.created_at, Encounter.id))).scalars())
    lines: dict[uuid.UUID, list[EncounterLine]] = defaultdict(list)
    if encounters:
        for line in (await session.execute(
                select(EncounterLine)
                .where(EncounterLine.encounter_id.in_([e.id for e in encounters]), EncounterLine.code.is_not(None))
                .order_by(EncounterLine.encounter_id, EncounterLine.position))).scalars():
            lines[line.encounter_id].append(line)
    return [(encounter, lines[encounter.id]) for encounter in encounters if lines[encounter.id]]


async def paid_for_encounters(session: AsyncSession, encounter_ids: list[uuid.UUID]) -> int:
    """What has been paid on the issued bills of these sessions (a superbill's "paid")."""
    if not encounter_ids:
        return 0
    return int((await session.execute(
        select(func.coalesce(func.sum(Bill.total_cents - Bill.balance_cents), 0))
        .where(Bill.encounter_id.in_(encounter_ids), Bill.status.in_([BillStatus.submitted, BillStatus.paid]))
    )).scalar_one())
