"""All SQL about payers and facilities (one table each, the same shape)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import exists, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from billing_api.models import Bill, Facility, Patient, Payer

Record = Payer | Facility
RecordModel = type[Payer] | type[Facility]


async def list_records(
    session: AsyncSession, model: RecordModel, company_id: uuid.UUID, limit: int,
    after: tuple[datetime, uuid.UUID] | None,
) -> list[Record]:
    """Oldest first, limit + 1 rows."""
    statement = select(model).where(model.company_id == company_id)
    if after is not None:
        statement = statement.where(tuple_(model.created_at, model.id) > tuple_(*after))
    statement = statement.order_by(model.created_at, model.id).limit(limit + 1)
    return list((await session.execute(statement)).scalars())


async def get_record(
    session: AsyncSession, model: RecordModel, company_id: uuid.UUID, record_id: uuid.UUID, *, for_update: bool = False
) -> Record | None:
    statement = select(model).where(model.id == record_id, model.company_id == company_id)
    if for_update:
        statement = statement.with_for_update().execution_options(populate_existing=True)
    return (await session.execute(statement)).scalar_one_or_none()


async def companies_with_name(
    session: AsyncSession, model: RecordModel, company_ids: Sequence[uuid.UUID], name: str,
    *, except_id: uuid.UUID | None = None,
) -> set[uuid.UUID]:
    """Which of the companies already have a record of that name (case-insensitive)."""
    statement = select(model.company_id).where(model.company_id.in_(company_ids),
                                               func.lower(model.name) == name.lower())
    if except_id is not None:
        statement = statement.where(model.id != except_id)
    return set((await session.execute(statement)).scalars())


async def copies_of(
    session: AsyncSession, model: RecordModel, source_id: uuid.UUID, company_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Record]:
    """The existing copies of the source in those companies, by company."""
    statement = select(model).where(model.copied_from_id == source_id, model.company_id.in_(company_ids))
    return {record.company_id: record for record in (await session.execute(statement)).scalars()}


async def add(session: AsyncSession, records: Sequence[Record]) -> None:
    session.add_all(records)
    await session.flush()


async def remove(session: AsyncSession, record: Record) -> None:
    await session.delete(record)
    await session.flush()


async def get_payer(session: AsyncSession, payer_id: uuid.UUID) -> Payer | None:
    """Any company's payer: the caller decides what it may do with it."""
    return await session.get(Payer, payer_id)


async def payer_in_use(session: AsyncSession, payer_id: uuid.UUID) -> bool:
    """Whether a bill names the payer or a patient has it as their payer of record."""
    statement = select(exists().where(Bill.payer_id == payer_id) | exists().where(Patient.payer_id == payer_id))
    return bool((await session.execute(statement)).scalar())
