from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from billing_api.schemas import Page, ReadModel


class AuditEventRead(ReadModel):
    id: uuid.UUID
    company_id: uuid.UUID | None
    actor_id: uuid.UUID | None
    action: str
    target_type: str | None
    target_id: uuid.UUID | None
    details: dict[str, Any]
    client_address: str | None
    created_at: datetime


class AuditEventPage(Page[AuditEventRead]):
    pass
