"""SQL of the events feed. Who sees an event is the bill scope's rule (bill events) or a list of companies
(company-level events), both compiled into the one query."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Text, and_, cast, func, insert, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from billing_api.authz.scope import BillScope
from billing_api.models import IntegrationEvent


async def add(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """One statement for any number of events (a night's automation writes one per bill)."""
    if rows:
        await session.execute(insert(IntegrationEvent), rows)


def _transaction_number(xid8: ColumnElement) -> ColumnElement[int]:
    return cast(cast(xid8, Text), BigInteger)


def _settled() -> ColumnElement[bool]:
    """Events of transactions that can no longer commit before them. Event positions are taken at insert, not
    at commit, so a feed ordered by position alone would let a poller pass an event whose transaction commits
    later. Ordered by the writing transaction's id instead, and shown once every transaction older than the
    oldest one still running has ended, nothing can appear behind a cursor. A transaction's own events are
    final to itself."""
    oldest_running = _transaction_number(func.pg_snapshot_xmin(func.pg_current_snapshot()))
    return or_(IntegrationEvent.transaction_id < oldest_running,
               IntegrationEvent.transaction_id == _transaction_number(func.pg_current_xact_id_if_assigned()))


async def page(session: AsyncSession, scope: BillScope, admin_company_ids: list[uuid.UUID], types: list[str] | None,
               after: tuple[int, int] | None, limit: int) -> list[IntegrationEvent]:
    """Oldest first, limit + 1: bill events whose provider's bills `scope` may view, and company-level events
    of `admin_company_ids`."""
    visible = or_(
        and_(IntegrationEvent.provider_id.is_not(None),
             scope.allows(IntegrationEvent.provider_id, IntegrationEvent.company_id)),
        and_(IntegrationEvent.provider_id.is_(None), IntegrationEvent.company_id.in_(admin_company_ids)),
    )
    statement = select(IntegrationEvent).where(visible, _settled())
    if types:
        statement = statement.where(IntegrationEvent.type.in_(types))
    if after is not None:
        statement = statement.where(tuple_(IntegrationEvent.transaction_id, IntegrationEvent.position) > tuple_(*after))
    statement = statement.order_by(IntegrationEvent.transaction_id, IntegrationEvent.position).limit(limit + 1)
    return list((await session.execute(statement, scope.params)).scalars())
