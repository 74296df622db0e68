from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import false, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from billing_api.models import AuditEvent


async def list_events(
    session: AsyncSession,
    *,
    company_ids: list[uuid.UUID] | None,
    about_user: uuid.UUID | None,
    action: str | None,
    target_id: uuid.UUID | None,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None,
) -> list[AuditEvent]:
    """Newest first, limit + 1. Visible: events of `company_ids`, or events whose target is `about_user`."""
    visible = []
    if company_ids:
        visible.append(AuditEvent.company_id.in_(company_ids))
    if about_user is not None:
        visible.append(AuditEvent.target_id == about_user)
    statement = select(AuditEvent).where(or_(*visible) if visible else false())
    if action:
        statement = statement.where(AuditEvent.action == action)
    if target_id is not None:
        statement = statement.where(AuditEvent.target_id == target_id)
    if after is not None:
        statement = statement.where(tuple_(AuditEvent.created_at, AuditEvent.id) < tuple_(*after))
    statement = statement.order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc()).limit(limit + 1)
    return list((await session.execute(statement)).scalars())
