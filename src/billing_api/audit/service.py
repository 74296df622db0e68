"""Recording audit events. Events are added to the request's session and commit with its work."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from billing_api.models import AuditEvent

if TYPE_CHECKING:
    from billing_api.auth.principal import Principal


def build_event(
    principal: Principal | None,
    action: str,
    *,
    company_id: uuid.UUID | None = None,
    target_type: str | None = None,
    target_id: uuid.UUID | None = None,
    details: dict[str, Any] | None = None,
    address: str | None = None,
) -> AuditEvent:
    return AuditEvent(
        id=uuid.uuid4(),
        company_id=company_id if company_id is not None else (principal.company_id if principal else None),
        actor_id=principal.id if principal else None,
        action=action,
        target_type=target_type,
        target_id=target_id,
        details=details or {},
        client_address=address if address is not None else (principal.address if principal else None),
    )


def record(session: AsyncSession, principal: Principal | None, action: str, **fields: Any) -> AuditEvent:
    event = build_event(principal, action, **fields)
    session.add(event)
    return event
