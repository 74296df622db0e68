from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from billing_api.models import AuditEvent


async def count_recent(session: AsyncSession, actor_id: uuid.UUID, action: str, since: datetime) -> int:
    statement = select(func.count()).where(
        AuditEvent.actor_id == actor_id, AuditEvent.action == action, AuditEvent.created_at >= since
    )
    return (await session.execute(statement)).scalar_one()
